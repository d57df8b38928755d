// A character-level tokenizer: one id per Unicode code point seen in the training text.
// Small vocabularies and no training cost make it the tokenizer of choice for toy models
// (tiny-shakespeare style); anything unseen at training time encodes to unk.

import { ConfigError } from '../tensor/errors.js';
import {
  assertNoForbiddenKeys,
  expectArray,
  expectHeader,
  expectInteger,
  expectOnlyKeys,
  expectRecord,
  expectString,
  formatError,
  MAX_VOCAB_SIZE,
  ownField,
  show,
  TOKENIZER_JSON_VERSION,
} from './json_checks.js';
import { checkTokenId, parseSpecials, resolveSpecials, specialsInIdOrder, specialsToJSON } from './specials.js';
import type { DecodeOptions, EncodeOptions, SpecialTokens, Tokenizer } from './tokenizer.js';

export interface CharTrainOptions {
  specials?: Partial<SpecialTokens>;
}

/** The JSON layout: `vocab[i]` (one code point each) has id `4 + i`, after pad, bos, eos, unk. */
export interface CharTokenizerJSON {
  kind: 'char';
  version: number;
  vocabSize: number;
  specials: Required<SpecialTokens>;
  vocab: string[];
}

const CHAR_JSON_KEYS = ['kind', 'version', 'vocabSize', 'specials', 'vocab'] as const;

export class CharTokenizer implements Tokenizer {
  readonly kind = 'char' as const;
  readonly vocabSize: number;
  readonly padId = 0;
  readonly bosId = 1;
  readonly eosId = 2;
  readonly unkId = 3;
  readonly specials: Readonly<Required<SpecialTokens>>;
  private readonly chars: readonly string[];
  private readonly idByChar: ReadonlyMap<string, number>;
  private readonly specialStrings: readonly string[];

  private constructor(specials: Required<SpecialTokens>, chars: readonly string[]) {
    this.specials = Object.freeze({ ...specials });
    this.specialStrings = specialsInIdOrder(specials);
    this.chars = Object.freeze([...chars]);
    const firstCharId = this.specialStrings.length;
    this.idByChar = new Map(chars.map((ch, i) => [ch, firstCharId + i]));
    this.vocabSize = firstCharId + chars.length;
  }

  /** The vocabulary is the distinct code points of `text`, sorted by code point, so the same
   * text always gives the same ids. */
  static train(text: string, options: CharTrainOptions = {}): CharTokenizer {
    const op = 'CharTokenizer.train';
    if (typeof text !== 'string') throw new ConfigError(op, `text must be a string, got ${show(text)}`);
    const specials = resolveSpecials(op, options.specials, true) as Required<SpecialTokens>;
    // for...of walks code points, so an emoji is one token rather than two surrogate halves.
    const distinct = [...new Set(text)];
    distinct.sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    return new CharTokenizer(specials, distinct);
  }

  /** @throws FormatError as tokenizerFromJSON does. */
  static fromJSON(json: unknown): CharTokenizer {
    assertNoForbiddenKeys(json);
    const record = expectRecord(json, 'tokenizer');
    expectHeader(record, 'char');
    expectOnlyKeys(record, 'tokenizer', CHAR_JSON_KEYS);
    const vocabSize = expectInteger(ownField(record, 'vocabSize'), 'vocabSize', 0, MAX_VOCAB_SIZE + 1);
    const specials = parseSpecials(ownField(record, 'specials'), true) as Required<SpecialTokens>;
    const firstCharId = specialsInIdOrder(specials).length;
    const vocab = expectArray(ownField(record, 'vocab'), 'vocab', MAX_VOCAB_SIZE - firstCharId);
    if (vocabSize !== firstCharId + vocab.length) {
      throw formatError('vocabSize', `must equal ${firstCharId} specials + ${vocab.length} vocab entries, got ${vocabSize}`);
    }
    const seen = new Set<string>();
    const chars: string[] = [];
    for (let i = 0; i < vocab.length; i++) {
      const ch = expectString(vocab[i], `vocab[${i}]`);
      // Encoding looks up single code points, so a longer entry could never be produced.
      const codePoint = ch.codePointAt(0);
      if (codePoint === undefined || ch.length !== (codePoint > 0xffff ? 2 : 1)) {
        throw formatError(`vocab[${i}]`, `must be exactly one code point, got ${show(ch)}`);
      }
      if (seen.has(ch)) throw formatError(`vocab[${i}]`, `duplicates an earlier entry ${show(ch)}`);
      seen.add(ch);
      chars.push(ch);
    }
    return new CharTokenizer(specials, chars);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new ConfigError('CharTokenizer.encode', `text must be a string, got ${show(text)}`);
    const ids: number[] = [];
    if (options.addBos) ids.push(this.bosId);
    for (const ch of text) ids.push(this.idByChar.get(ch) ?? this.unkId);
    if (options.addEos) ids.push(this.eosId);
    return ids;
  }

  /** With skipSpecial (the default) unk ids are dropped too, as Hugging Face's
   * skip_special_tokens does; pass false to see where unknown characters were. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skipSpecial = options.skipSpecial ?? true;
    const firstCharId = this.specialStrings.length;
    const parts: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = checkTokenId('CharTokenizer.decode', ids, i, this.vocabSize);
      if (id >= firstCharId) parts.push(this.chars[id - firstCharId]!);
      else if (!skipSpecial) parts.push(this.specialStrings[id]!);
    }
    return parts.join('');
  }

  toJSON(): CharTokenizerJSON {
    return {
      kind: 'char',
      version: TOKENIZER_JSON_VERSION,
      vocabSize: this.vocabSize,
      specials: specialsToJSON(this.specials) as Required<SpecialTokens>,
      vocab: [...this.chars],
    };
  }
}
