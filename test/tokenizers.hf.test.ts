// HFTokenizer against the `tokenizers` library: the fixture folder's expected.json strings
// (FERRO_HF_FIXTURES) and test/fixtures/hf_tokenizer_extra.json (curated hard strings, random
// strings and random id sequences for two tokenizers, made by scripts/gen_hf_tokenizer_extra.py).

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { ConfigError, FormatError } from '../ts/tensor/errors.js';
import { HFTokenizer } from '../ts/tokenizers/hf.js';
import { hfFixtureDir, hfFixtureFile, loadHfExpected } from './helpers/hf_fixtures.js';

interface EncodeCase {
  text: string;
  ids: number[];
  decoded: string;
  decoded_with_special: string;
}
interface DecodeCase {
  ids: number[];
  decoded: string;
  decoded_with_special: string;
}
interface ExtraSet {
  encode: EncodeCase[];
  decode: DecodeCase[];
  tokenizer_json?: object;
}

const EXTRA_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/hf_tokenizer_extra.json');
const extra = JSON.parse(readFileSync(EXTRA_PATH, 'utf8')) as { tokenizers: Record<'fixture' | 'trained' | 'prototype_keys', ExtraSet> };

const read = (name: string): string => readFileSync(hfFixtureFile(name), 'utf8');
const fromTokenizerJson = (): HFTokenizer => HFTokenizer.fromJSON(read('tokenizer.json'), read('tokenizer_config.json'));
const fromVocabMerges = (): HFTokenizer => HFTokenizer.fromVocabAndMerges(read('vocab.json'), read('merges.txt'), read('tokenizer_config.json'));

describe(`HFTokenizer on the fixture folder (${hfFixtureDir()})`, () => {
  const expected = loadHfExpected();
  // A folder may have tokenizer.json only (transformers 5 writes no vocab.json / merges.txt).
  const hasLegacyFiles = existsSync(hfFixtureFile('vocab.json')) && existsSync(hfFixtureFile('merges.txt'));
  const loaders = { 'tokenizer.json': fromTokenizerJson, ...(hasLegacyFiles ? { 'vocab.json+merges.txt': fromVocabMerges } : {}) };

  for (const [source, load] of Object.entries(loaders)) {
    const tok = load();
    expected.strings.forEach((s, i) => {
      it(`expected.json string ${i} (${s.n_ids} ids) [${source}]`, () => {
        expect(tok.encode(s.text)).toEqual(s.ids);
        expect(tok.encode(s.text).map((id) => tok.idToToken(id))).toEqual(s.tokens);
        // With special tokens kept, decoding gives the text back wherever tokenizers' did.
        if (s.roundtrip) expect(tok.decode(s.ids, { skipSpecialTokens: false })).toBe(s.text);
      });
    });
    it(`prompt ids [${source}]`, () => {
      for (const p of expected.prompts) expect(tok.encode(p.text)).toEqual(p.input_ids);
    });
  }

  it('vocabulary size and special ids come from the files', () => {
    const tok = fromTokenizerJson();
    const config = expected.model.config as { vocab_size: number };
    expect(tok.vocabSize).toBe(config.vocab_size);
    const eos = tok.tokenToId('<|endoftext|>');
    expect(eos).toBeTypeOf('number');
    expect(tok.eosTokenId).toBe(eos);
    expect(tok.specialTokenIds).toContain(eos);
    if (hasLegacyFiles) {
      expect(fromVocabMerges().eosTokenId).toBe(eos);
      expect(fromVocabMerges().vocabSize).toBe(tok.vocabSize);
    }
  });

  it('special tokens in the text become their ids, and decode drops them unless asked', () => {
    const tok = fromTokenizerJson();
    const eos = tok.eosTokenId!;
    const ids = tok.encode('a<|endoftext|>b');
    expect(ids).toEqual([...tok.encode('a'), eos, ...tok.encode('b')]);
    expect(tok.decode(ids)).toBe('ab');
    expect(tok.decode(ids, { skipSpecialTokens: false })).toBe('a<|endoftext|>b');
  });

  it("tokenizer_config.json names the special ids but changes no id or decoding (tokenizers ignores it)", () => {
    const config = { eos_token: '<|endoftext|>', remove_space: true, do_lowercase_and_remove_accent: true, clean_up_tokenization_spaces: true, additional_special_tokens: ['The'] };
    const tok = HFTokenizer.fromJSON(read('tokenizer.json'), config);
    for (const s of expected.strings) {
      expect(tok.encode(s.text)).toEqual(s.ids);
      if (s.roundtrip) expect(tok.decode(s.ids)).toBe(s.text);
    }
    expect(tok.eosTokenId).toBe(tok.tokenToId('<|endoftext|>'));
  });

  // Defined only where the folder has the legacy files.
  (hasLegacyFiles ? it : it.skip)("vocab.json + merges.txt honour tokenizer_config.json's add_prefix_space, on every piece between special tokens, as transformers does", () => {
    const plain = fromVocabMerges();
    const prefixed = HFTokenizer.fromVocabAndMerges(read('vocab.json'), read('merges.txt'), { add_prefix_space: true });
    expect(prefixed.encode('Hello world')).toEqual(plain.encode(' Hello world'));
    expect(prefixed.encode(' Hello world')).toEqual(plain.encode(' Hello world'));
    expect(prefixed.encode('a<|endoftext|>b')).toEqual([...plain.encode(' a'), plain.eosTokenId, ...plain.encode(' b')]);
  });

  it('toJSON gives back a document that loads into the same tokenizer', () => {
    const tok = hasLegacyFiles ? fromVocabMerges() : fromTokenizerJson();
    const again = HFTokenizer.fromJSON(JSON.stringify(tok.toJSON()));
    for (const s of expected.strings) expect(again.encode(s.text)).toEqual(s.ids);
  });

  it('fromURL fetches tokenizer.json, or vocab.json + merges.txt when it is missing', async () => {
    const served = (names: string[]): typeof fetch =>
      (async (input: string | URL | Request) => {
        const name = String(input).split('/').pop()!;
        return names.includes(name) ? new Response(read(name)) : new Response('not found', { status: 404 });
      }) as typeof fetch;
    const s = expected.strings[0]!;
    const full = await HFTokenizer.fromURL('http://127.0.0.1:1/ckpt', served(['tokenizer.json', 'tokenizer_config.json']));
    expect(full.encode(s.text)).toEqual(s.ids);
    if (hasLegacyFiles) {
      const legacy = await HFTokenizer.fromURL('http://127.0.0.1:1/ckpt/', served(['vocab.json', 'merges.txt']));
      expect(legacy.encode(s.text)).toEqual(s.ids);
    }
    await expect(HFTokenizer.fromURL('http://127.0.0.1:1/empty', served([]))).rejects.toThrow(/empty\/tokenizer\.json.*empty\/merges\.txt/);
  });
});

describe('HFTokenizer against tokenizers on hf_tokenizer_extra.json', () => {
  const tokenizers = {
    fixture: () => HFTokenizer.fromJSON(readFileSync(path.resolve(path.dirname(EXTRA_PATH), 'hf_gpt2_public/tokenizer.json'), 'utf8')),
    trained: () => HFTokenizer.fromJSON(extra.tokenizers.trained.tokenizer_json!),
    // Vocabulary keys __proto__, constructor, prototype: ordinary tokens, not a hazard.
    prototype_keys: () => HFTokenizer.fromJSON(JSON.stringify(extra.tokenizers.prototype_keys.tokenizer_json!)),
  };
  for (const [name, load] of Object.entries(tokenizers) as Array<[keyof typeof tokenizers, () => HFTokenizer]>) {
    const tok = load();
    const set = extra.tokenizers[name];
    it(`encode ids of ${set.encode.length} strings [${name}]`, () => {
      for (const c of set.encode) expect(tok.encode(c.text), JSON.stringify(c.text)).toEqual(c.ids);
    });
    it(`decode of those ids, with and without specials [${name}]`, () => {
      for (const c of set.encode) {
        expect(tok.decode(c.ids), JSON.stringify(c.text)).toBe(c.decoded);
        expect(tok.decode(c.ids, { skipSpecialTokens: false }), JSON.stringify(c.text)).toBe(c.decoded_with_special);
      }
    });
    it(`decode of ${set.decode.length} random id sequences (invalid UTF-8 included) [${name}]`, () => {
      for (const c of set.decode) {
        expect(tok.decode(c.ids), JSON.stringify(c.ids)).toBe(c.decoded);
        expect(tok.decode(c.ids, { skipSpecialTokens: false }), JSON.stringify(c.ids)).toBe(c.decoded_with_special);
      }
    });
    if (name !== 'prototype_keys') it(`NEL (U+0085) and BOM (U+FEFF) split as in Oniguruma [${name}]`, () => {
      const cases = set.encode.filter((c) => /[\u0085\ufeff]/u.test(c.text));
      expect(cases.length).toBeGreaterThan(2);
      for (const c of cases) expect(tok.encode(c.text), JSON.stringify(c.text)).toEqual(c.ids);
    });
  }

  it('__proto__ and constructor are single tokens of their vocabulary, and nothing reaches Object.prototype', () => {
    const tok = tokenizers.prototype_keys();
    for (const word of ['__proto__', 'constructor', 'prototype']) {
      expect(tok.encode(word)).toEqual([tok.tokenToId(word)]);
      expect(tok.decode(tok.encode(word))).toBe(word);
    }
    expect(typeof tok.tokenToId('__proto__')).toBe('number');
    expect(tok.idToToken(tok.tokenToId('constructor')!)).toBe('constructor');
    expect(Object.keys(Object.prototype)).toEqual([]);
  });

  it('a lone surrogate encodes as U+FFFD', () => {
    const tok = tokenizers.trained();
    expect(tok.encode('a\ud800b')).toEqual(tok.encode('a\ufffdb'));
  });
});

describe('HFTokenizer misuse', () => {
  const tok = fromTokenizerJson();
  it('decode refuses ids outside the vocabulary', () => {
    expect(() => tok.decode([1, tok.vocabSize])).toThrow(ConfigError);
    expect(() => tok.decode([1, tok.vocabSize])).toThrow(/ids\[1\].*\[0, 400\)|ids\[1\]/);
    expect(() => tok.decode([0.5])).toThrow(ConfigError);
    expect(() => tok.decode([-1])).toThrow(ConfigError);
  });
  it('encode refuses a non-string', () => {
    expect(() => tok.encode(42 as unknown as string)).toThrow(ConfigError);
  });
  it('malformed files are FormatErrors naming the file', () => {
    expect(() => HFTokenizer.fromJSON('{not json')).toThrow(FormatError);
    expect(() => HFTokenizer.fromJSON('{not json')).toThrow(/tokenizer\.json/);
    expect(() => HFTokenizer.fromJSON('{}')).toThrow(/no "model"/);
    expect(() => HFTokenizer.fromVocabAndMerges('{"a":0}', '#version: 0.2\na b c\n')).toThrow(/merges\.txt line 2/);
    expect(() => HFTokenizer.fromVocabAndMerges('{"a":0,"b":1}', 'a b\n')).toThrow(/"ab".*vocab\.json lacks/);
    expect(() => HFTokenizer.fromFiles({ vocabJson: '{}' })).toThrow(/mergesTxt/);
  });
});
