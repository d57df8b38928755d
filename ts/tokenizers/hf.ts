// Hugging Face tokenizers: `tokenizer.json` (the `tokenizers` library's format) and the older
// `vocab.json` + `merges.txt` pair, for GPT-2's byte-level BPE and the other models the
// format describes. Pure TypeScript, no Node imports: it runs in the browser too.
//
// API
//   HFTokenizer.fromJSON(tokenizerJson, tokenizerConfig?)      tokenizer.json (text or parsed)
//   HFTokenizer.fromVocabAndMerges(vocabJson, mergesTxt, cfg?) GPT-2's original pair of files
//   HFTokenizer.fromFiles({ tokenizerJson | vocabJson+mergesTxt, tokenizerConfig? })
//   await HFTokenizer.fromURL(folderUrl)                        fetches the files above
//   tok.encode(text): number[]          ids equal to `tokenizers`' Tokenizer.encode(text).ids
//   tok.decode(ids, { skipSpecialTokens = true }): string        equal to Tokenizer.decode
//   tok.vocabSize, tok.eosTokenId, tok.bosTokenId, tok.padTokenId (null when the files name none)
//   tok.tokenToId(token), tok.idToToken(id), tok.toJSON() (the tokenizer.json document)
//
// The work is done by @huggingface/tokenizers (Hugging Face's own TypeScript implementation);
// docs/tokenizers.md says why it was chosen over a reader built on ts/tokenizers/bpe.ts. One
// correction is applied: its ByteLevel pre-tokenizer uses JavaScript's `\s`, which differs
// from Oniguruma's (what `tokenizers` compiles GPT-2's pattern with) on U+0085 (NEL, a space
// to Oniguruma) and U+FEFF (BOM, a space to JavaScript only); the pattern is replaced by one
// written with \p{White_Space}, which is exactly Oniguruma's Unicode `\s`.
//
// Unlike ts/tokenizers' own Tokenizer interface, special tokens written in the text (such as
// `<|endoftext|>`) are encoded as their special ids, because `tokenizers` does so and the
// checkpoint's ids must match. A lone UTF-16 surrogate (not representable in UTF-8, refused by
// `tokenizers`) is encoded as U+FFFD.

import { Tokenizer as HubTokenizer } from '@huggingface/tokenizers';

import { ConfigError, FormatError } from '../tensor/errors.js';
import { MAX_VOCAB_SIZE, show } from './json_checks.js';

/** GPT-2's pre-tokenizer pattern with Oniguruma's `\s` (Unicode White_Space) in place of
 * JavaScript's; `(?!\S)` becomes "not followed by a non-space". */
const BYTE_LEVEL_PATTERN =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;

/** The files a Hugging Face tokenizer can come from; each as text or as parsed JSON. */
export interface HFTokenizerFiles {
  /** tokenizer.json. When present, vocabJson and mergesTxt are ignored. */
  tokenizerJson?: string | object;
  /** tokenizer_config.json (optional): names the eos/bos/pad tokens. */
  tokenizerConfig?: string | object;
  /** vocab.json (token -> id), with mergesTxt, for checkpoints without tokenizer.json. */
  vocabJson?: string | object;
  /** merges.txt: an optional `#version` line, then one merge `left right` per line. */
  mergesTxt?: string;
}

export interface HFEncodeOptions {
  /** Run the post-processor (which adds e.g. BERT's [CLS]/[SEP]; GPT-2's adds nothing).
   * Default true, as in `tokenizers`. */
  addSpecialTokens?: boolean;
}

export interface HFDecodeOptions {
  /** Drop special tokens (`<|endoftext|>`). Default true, as in `tokenizers`' decode. */
  skipSpecialTokens?: boolean;
}

interface AddedTokenJSON {
  id: number;
  content: string;
  special?: boolean;
}

type JSONRecord = Record<string, unknown>;

function parseJSON(op: string, what: string, value: string | object): JSONRecord {
  let parsed: unknown = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch (e) {
      throw new FormatError(`${op}: ${what} is not valid JSON (${(e as Error).message})`);
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new FormatError(`${op}: ${what} must be a JSON object, got ${show(parsed)}`);
  }
  // No refusal of `__proto__` / `constructor` keys here (ts/tokenizers' own JSON does refuse
  // them): they are ordinary tokens of real vocabularies (GPT-2 has "constructor"). JSON.parse
  // makes them own properties, the library keeps vocabularies in Maps, and this file only
  // reads them with Object.hasOwn / own-property access, so nothing reaches a prototype.
  return parsed as JSONRecord;
}

/** A token named in tokenizer_config.json: a string, or an AddedToken object `{content}`. */
function configToken(config: JSONRecord, key: string): string | undefined {
  const value = config[key];
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as JSONRecord)['content'] === 'string') {
    return (value as JSONRecord)['content'] as string;
  }
  return undefined;
}

/** Replaces the ByteLevel pre-tokenizers' pattern (directly or inside a Sequence). */
function fixByteLevelPattern(preTokenizer: unknown): void {
  // The library's pre-tokenizers are callable objects (functions with a class prototype).
  if ((typeof preTokenizer !== 'object' && typeof preTokenizer !== 'function') || preTokenizer === null) return;
  const node = preTokenizer as { config?: { type?: string }; pattern?: RegExp; use_regex?: boolean; tokenizers?: unknown[] };
  // `pattern` is a public field of the library's ByteLevel class (types/core/preTokenizer).
  if (node.config?.type === 'ByteLevel' && 'pattern' in node) node.pattern = new RegExp(BYTE_LEVEL_PATTERN);
  if (Array.isArray(node.tokenizers)) node.tokenizers.forEach(fixByteLevelPattern);
}

/** Parses merges.txt: skips a `#version` header and blank lines; each line is `left right`. */
function parseMerges(op: string, mergesTxt: string): Array<[string, string]> {
  if (typeof mergesTxt !== 'string') throw new FormatError(`${op}: merges.txt must be text, got ${show(mergesTxt)}`);
  const merges: Array<[string, string]> = [];
  const lines = mergesTxt.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.length === 0 || (i === 0 && line.startsWith('#version'))) continue;
    const parts = line.split(' ');
    if (parts.length !== 2 || parts[0]!.length === 0 || parts[1]!.length === 0) {
      throw new FormatError(`${op}: merges.txt line ${i + 1} must be two tokens separated by one space, got ${show(line)}`);
    }
    merges.push([parts[0]!, parts[1]!]);
  }
  return merges;
}

/** Checks the parts of tokenizer.json this class reads itself, before the library sees it. */
function checkTokenizerJSON(op: string, doc: JSONRecord): { vocab: JSONRecord; added: AddedTokenJSON[] } {
  const model = doc['model'];
  if (typeof model !== 'object' || model === null) throw new FormatError(`${op}: tokenizer.json has no "model" object`);
  const vocab = (model as JSONRecord)['vocab'];
  if (typeof vocab !== 'object' || vocab === null) throw new FormatError(`${op}: tokenizer.json model.vocab must be an object or array, got ${show(vocab)}`);
  const rawAdded = doc['added_tokens'] ?? [];
  if (!Array.isArray(rawAdded)) throw new FormatError(`${op}: tokenizer.json added_tokens must be an array, got ${show(rawAdded)}`);
  const added = rawAdded.map((t: unknown, i): AddedTokenJSON => {
    const token = t as JSONRecord;
    if (typeof token !== 'object' || token === null || typeof token['content'] !== 'string' || !Number.isInteger(token['id'])) {
      throw new FormatError(`${op}: tokenizer.json added_tokens[${i}] must have a string "content" and an integer "id", got ${show(t)}`);
    }
    return { id: token['id'] as number, content: token['content'] as string, special: token['special'] === true };
  });
  return { vocab: vocab as JSONRecord, added };
}

export class HFTokenizer {
  /** Number of ids: one past the largest id of the vocabulary and the added tokens. */
  readonly vocabSize: number;
  /** End of text (GPT-2: `<|endoftext|>`), from tokenizer_config.json, else `<|endoftext|>`
   * when the vocabulary has it, else `</s>`; null when none is found. */
  readonly eosTokenId: number | null;
  readonly bosTokenId: number | null;
  readonly padTokenId: number | null;
  /** Ids of the added tokens marked special, ascending. */
  readonly specialTokenIds: readonly number[];
  private readonly impl: HubTokenizer;
  private readonly doc: JSONRecord;

  private constructor(doc: JSONRecord, config: JSONRecord) {
    const op = 'HFTokenizer';
    const { vocab, added } = checkTokenizerJSON(op, doc);
    try {
      // tokenizer_config.json is transformers' file: `tokenizers` ignores it, so the library
      // gets none of it (its remove_space, do_lowercase_and_remove_accent and
      // additional_special_tokens would change ids or decoding), and no clean-up of spaces.
      this.impl = new HubTokenizer(doc, { clean_up_tokenization_spaces: false });
    } catch (e) {
      throw new FormatError(`${op}: tokenizer.json could not be loaded (${(e as Error).message})`);
    }
    fixByteLevelPattern(this.impl.pre_tokenizer);
    this.doc = doc;

    const vocabIds = Array.isArray(vocab) ? vocab.map((_, i) => i) : Object.values(vocab);
    let maxId = -1;
    for (const id of vocabIds) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= MAX_VOCAB_SIZE) {
        throw new FormatError(`${op}: tokenizer.json vocabulary ids must be integers in [0, ${MAX_VOCAB_SIZE}), got ${show(id)}`);
      }
      if (id > maxId) maxId = id;
    }
    for (const t of added) if (t.id > maxId) maxId = t.id;
    this.vocabSize = maxId + 1;
    this.specialTokenIds = Object.freeze(added.filter((t) => t.special).map((t) => t.id).sort((a, b) => a - b));

    const idOf = (token: string | undefined): number | null => (token === undefined ? null : (this.tokenToId(token) ?? null));
    this.eosTokenId = idOf(configToken(config, 'eos_token')) ?? idOf('<|endoftext|>') ?? idOf('</s>');
    this.bosTokenId = idOf(configToken(config, 'bos_token')) ?? idOf('<|endoftext|>') ?? idOf('<s>');
    this.padTokenId = idOf(configToken(config, 'pad_token'));
  }

  /** From tokenizer.json (text or parsed) and optionally tokenizer_config.json.
   * @throws FormatError naming the file for invalid JSON or an unusable document. */
  static fromJSON(tokenizerJson: string | object, tokenizerConfig?: string | object): HFTokenizer {
    const op = 'HFTokenizer.fromJSON';
    const doc = parseJSON(op, 'tokenizer.json', tokenizerJson);
    const config = tokenizerConfig === undefined ? {} : parseJSON(op, 'tokenizer_config.json', tokenizerConfig);
    return new HFTokenizer(doc, config);
  }

  /**
   * From GPT-2's original files, as transformers' GPT2Tokenizer reads them: byte-level BPE,
   * a prefix space only when tokenizer_config.json sets add_prefix_space, the eos/bos/unk/pad tokens of tokenizer_config.json (default
   * `<|endoftext|>`) registered as special added tokens when the vocabulary has them.
   * @throws FormatError for invalid JSON, a malformed merges line or a merge of unknown tokens.
   */
  static fromVocabAndMerges(vocabJson: string | object, mergesTxt: string, tokenizerConfig?: string | object): HFTokenizer {
    const op = 'HFTokenizer.fromVocabAndMerges';
    const vocab = parseJSON(op, 'vocab.json', vocabJson);
    const config = tokenizerConfig === undefined ? {} : parseJSON(op, 'tokenizer_config.json', tokenizerConfig);
    const merges = parseMerges(op, mergesTxt);
    merges.forEach(([left, right], i) => {
      for (const part of [left, right, left + right]) {
        if (!Object.hasOwn(vocab, part)) throw new FormatError(`${op}: merges.txt merge ${i} (${show(`${left} ${right}`)}) uses ${show(part)}, which vocab.json lacks`);
      }
    });
    const specials = new Set<string>(['<|endoftext|>']);
    for (const key of ['eos_token', 'bos_token', 'unk_token', 'pad_token']) {
      const token = configToken(config, key);
      if (token !== undefined) specials.add(token);
    }
    const addedTokens = [...specials]
      .filter((content) => Object.hasOwn(vocab, content))
      .map((content) => ({ id: vocab[content] as number, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }))
      .sort((a, b) => a.id - b.id);
    // transformers' converter takes add_prefix_space from tokenizer_config.json (default false).
    const byteLevel = { type: 'ByteLevel', add_prefix_space: config['add_prefix_space'] === true, trim_offsets: true, use_regex: true };
    const doc: JSONRecord = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: addedTokens,
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: { ...byteLevel, trim_offsets: false },
      decoder: byteLevel,
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
    };
    return new HFTokenizer(doc, config);
  }

  /** From whichever files are given: tokenizer.json if present, else vocab.json + merges.txt.
   * @throws FormatError when neither is complete. */
  static fromFiles(files: HFTokenizerFiles): HFTokenizer {
    if (typeof files !== 'object' || files === null) throw new FormatError(`HFTokenizer.fromFiles: files must be an object, got ${show(files)}`);
    if (files.tokenizerJson !== undefined) return HFTokenizer.fromJSON(files.tokenizerJson, files.tokenizerConfig);
    if (files.vocabJson !== undefined && files.mergesTxt !== undefined) {
      return HFTokenizer.fromVocabAndMerges(files.vocabJson, files.mergesTxt, files.tokenizerConfig);
    }
    throw new FormatError('HFTokenizer.fromFiles: needs tokenizerJson (tokenizer.json), or vocabJson and mergesTxt (vocab.json + merges.txt)');
  }

  /**
   * Fetches a folder's tokenizer files from `folderUrl` (a checkpoint served over HTTP, or the
   * Hub's `https://huggingface.co/<repo>/resolve/main`): tokenizer.json, else vocab.json and
   * merges.txt; tokenizer_config.json when present.
   * @throws FormatError naming the URLs when neither set can be fetched.
   */
  static async fromURL(folderUrl: string, fetchFn: typeof fetch = fetch): Promise<HFTokenizer> {
    const base = folderUrl.endsWith('/') ? folderUrl : `${folderUrl}/`;
    const get = async (name: string): Promise<string | undefined> => {
      const response = await fetchFn(new URL(name, base));
      return response.ok ? response.text() : undefined;
    };
    const [tokenizerJson, tokenizerConfig] = await Promise.all([get('tokenizer.json'), get('tokenizer_config.json')]);
    if (tokenizerJson !== undefined) return HFTokenizer.fromJSON(tokenizerJson, tokenizerConfig);
    const [vocabJson, mergesTxt] = await Promise.all([get('vocab.json'), get('merges.txt')]);
    if (vocabJson !== undefined && mergesTxt !== undefined) return HFTokenizer.fromVocabAndMerges(vocabJson, mergesTxt, tokenizerConfig);
    throw new FormatError(`HFTokenizer.fromURL: found neither ${base}tokenizer.json nor ${base}vocab.json with ${base}merges.txt`);
  }

  encode(text: string, options: HFEncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new ConfigError('HFTokenizer.encode', `text must be a string, got ${show(text)}`);
    if (text.length === 0) return [];
    return this.impl.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  /** Invalid UTF-8 (a multi-byte character cut between ids) becomes U+FFFD, as in `tokenizers`.
   * @throws ConfigError for an id that is not an integer in [0, vocabSize). */
  decode(ids: readonly number[], options: HFDecodeOptions = {}): string {
    const op = 'HFTokenizer.decode';
    if (!Array.isArray(ids)) throw new ConfigError(op, `ids must be an array of integers, got ${show(ids)}`);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.impl.id_to_token(id) === undefined) {
        throw new ConfigError(op, `ids[${i}] must be a token id in [0, ${this.vocabSize}), got ${show(id)}`);
      }
    }
    if (ids.length === 0) return '';
    return this.impl.decode(ids as number[], { skip_special_tokens: options.skipSpecialTokens ?? true, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | undefined {
    return this.impl.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.impl.id_to_token(id);
  }

  /** The tokenizer.json document (for vocab.json + merges.txt, the equivalent one built from
   * them), ready for JSON.stringify into a checkpoint folder. */
  toJSON(): object {
    return this.doc;
  }
}
