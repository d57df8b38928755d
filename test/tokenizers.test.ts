import { describe, expect, it } from 'vitest';

import { ConfigError, FormatError } from '../ts/tensor/errors.js';
import { BpeTokenizer, CharTokenizer, loadTokenizer, tokenizerFromJSON, type Tokenizer } from '../ts/tokenizers/index.js';

const ROUND_TRIP_TEXTS: Record<string, string> = {
  ascii: 'Hello, world! The quick brown fox jumps over the lazy dog. 1234567890',
  empty: '',
  accents: 'café crème brûlée, naïve résumé',
  cjk: '中文分词测试，你好世界。',
  emoji: 'smile 🙂 family 👨‍👩‍👧 flag 🇫🇷 done',
  whitespace: '  leading\t\ttabs\n\n\nnewlines   trailing   \r\n \u00a0\u3000',
  contractions: "I'll say it's done, we've seen they're right and I'd go; don't.",
  bom: '\ufeffstarts with a byte-order mark',
};

/** Deterministic English-like text: invented words from a syllable set (so the vocabulary of
 * words is large), repeated often enough to have many frequent pairs, plus multi-byte words. */
function syntheticCorpus(targetLength: number): string {
  const syllables = ['the', 'mo', 'del', 'at', 'ten', 'tion', 'lay', 'er', 'to', 'ken', 'em', 'bed', 'ding', 'trans',
    'for', 'ma', 'learn', 'ing', 'gra', 'di', 'ent', 'de', 'scent', 'op', 'ti', 'mi', 'zer', 'loss', 'batch', 'se', 'quence'];
  const extras = ['é', 'café', '中文', '🙂', "isn't", "we'll", '42', '3.14', '!', '(x)'];
  let state = 12345;
  const next = (): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state >>> 8;
  };
  const parts: string[] = [];
  let length = 0;
  while (length < targetLength) {
    let word = '';
    if (next() % 8 === 0) word = extras[next() % extras.length]!;
    else for (let n = 1 + (next() % 3); n > 0; n--) word += syllables[next() % syllables.length]!;
    const sep = next() % 11 === 0 ? '.\n' : ' ';
    parts.push(word, sep);
    length += word.length + sep.length;
  }
  return parts.join('').slice(0, targetLength);
}

function expectFormatError(run: () => unknown, ...fragments: string[]): void {
  let caught: unknown;
  try {
    run();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(FormatError);
  for (const fragment of fragments) expect((caught as Error).message).toContain(fragment);
}

function expectConfigError(run: () => unknown, ...fragments: string[]): void {
  let caught: unknown;
  try {
    run();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  for (const fragment of fragments) expect((caught as Error).message).toContain(fragment);
}

/**
 * minbpe's BasicTokenizer/RegexTokenizer loop, recounting every pair at every step: slow but
 * obviously right, the oracle for the incremental trainer.
 */
function naiveMerges(chunks: string[], firstByteId: number, maxMerges: number): Array<[number, number]> {
  let words = chunks.map((c) => Array.from(new TextEncoder().encode(c), (b) => b + firstByteId));
  const merges: Array<[number, number]> = [];
  for (let step = 0; step < maxMerges; step++) {
    const counts = new Map<string, number>();
    for (const w of words) for (let i = 0; i + 1 < w.length; i++) {
      const k = `${w[i]},${w[i + 1]}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    let best: [number, number] | undefined;
    let bestCount = 0;
    for (const [k, c] of counts) {
      const [a, b] = k.split(',').map(Number) as [number, number];
      if (c > bestCount || (c === bestCount && best !== undefined && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestCount = c;
      }
    }
    if (best === undefined) break;
    const newId = firstByteId + 256 + step;
    merges.push(best);
    words = words.map((w) => {
      const out: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === best![0] && w[i + 1] === best![1]) {
          out.push(newId);
          i++;
        } else out.push(w[i]!);
      }
      return out;
    });
  }
  return merges;
}

const GPT2_PATTERN = /'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

describe('CharTokenizer', () => {
  const corpus = Object.values(ROUND_TRIP_TEXTS).join('\n');
  const tok = CharTokenizer.train(corpus);

  it.each(Object.entries(ROUND_TRIP_TEXTS))('round-trips %s', (_name, text) => {
    expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('gives one id per code point, specials first, vocabulary sorted by code point', () => {
    expect([tok.padId, tok.bosId, tok.eosId, tok.unkId]).toEqual([0, 1, 2, 3]);
    expect(tok.encode('🙂')).toHaveLength(1);
    const small = CharTokenizer.train('b🙂a\uffffb');
    // Code point order puts U+FFFF before U+1F642, though UTF-16 unit order would not.
    expect(small.toJSON().vocab).toEqual(['a', 'b', '\uffff', '🙂']);
    expect(small.vocabSize).toBe(8);
    expect(small.encode('ab🙂')).toEqual([4, 5, 7]);
  });

  it('encodes unseen characters as unk, and decode skips specials unless asked', () => {
    const small = CharTokenizer.train('abc');
    const ids = small.encode('abxc', { addBos: true, addEos: true });
    expect(ids).toEqual([1, 4, 5, 3, 6, 2]);
    expect(small.decode(ids)).toBe('abc');
    expect(small.decode(ids, { skipSpecial: false })).toBe('<bos>ab<unk>c<eos>');
    expect(small.decode([0, 0, 4], { skipSpecial: false })).toBe('<pad><pad>a');
  });

  it('treats special strings in the text as plain characters', () => {
    const small = CharTokenizer.train('<eos>');
    expect(small.encode('<eos>')).not.toContain(small.eosId);
    expect(small.decode(small.encode('<eos>'))).toBe('<eos>');
  });

  it('accepts custom specials and refuses clashing ones', () => {
    const custom = CharTokenizer.train('ab', { specials: { pad: '[PAD]', unk: '[UNK]' } });
    expect(custom.decode([0, 3, 1, 2], { skipSpecial: false })).toBe('[PAD][UNK]<bos><eos>');
    expectConfigError(() => CharTokenizer.train('ab', { specials: { pad: 'X', eos: 'X' } }), 'pad and eos');
    expectConfigError(() => CharTokenizer.train('ab', { specials: { bos: '' } }), 'bos');
  });

  it('round-trips through JSON', () => {
    const text = JSON.stringify(tok);
    const loaded = loadTokenizer(text);
    expect(loaded).toBeInstanceOf(CharTokenizer);
    expect(JSON.stringify(loaded)).toBe(text);
    expect(loaded.encode(corpus)).toEqual(tok.encode(corpus));
  });

  it('refuses ids outside the vocabulary in decode', () => {
    expectConfigError(() => tok.decode([tok.vocabSize]), 'ids[0]');
    expectConfigError(() => tok.decode([4, -1]), 'ids[1]');
    expectConfigError(() => tok.decode([1.5]), 'ids[0]');
  });
});

describe('BpeTokenizer', () => {
  const corpus = syntheticCorpus(20_000);

  it('puts specials at 0..2 and byte b at 3 + b', () => {
    const untrained = BpeTokenizer.train('', { vocabSize: 259 });
    expect(untrained.vocabSize).toBe(259);
    expect([untrained.padId, untrained.bosId, untrained.eosId, untrained.firstByteId]).toEqual([0, 1, 2, 3]);
    expect(untrained.encode('a')).toEqual([3 + 97]);
    expect(untrained.encode('é')).toEqual([3 + 0xc3, 3 + 0xa9]);
    const withUnk = BpeTokenizer.train('', { vocabSize: 260, specials: { unk: '<unk>' } });
    expect(withUnk.encode('a')).toEqual([4 + 97]);
  });

  for (const split of ['gpt2', 'none'] as const) {
    describe(`split '${split}'`, () => {
      const tok = BpeTokenizer.train(corpus, { vocabSize: 400, split });

      it.each(Object.entries(ROUND_TRIP_TEXTS))('round-trips %s', (_name, text) => {
        expect(tok.decode(tok.encode(text))).toBe(text);
      });

      it('round-trips its training text and random code points', () => {
        expect(tok.decode(tok.encode(corpus))).toBe(corpus);
        let state = 7;
        const codePoints: number[] = [];
        for (let i = 0; i < 2000; i++) {
          state = (Math.imul(state, 48271) + 11) >>> 0;
          const cp = state % 0x11000;
          // Lone surrogates are excluded: TextEncoder writes them as U+FFFD.
          codePoints.push(cp >= 0xd800 && cp < 0xe000 ? 0x41 : cp);
        }
        const text = String.fromCodePoint(...codePoints);
        expect(tok.decode(tok.encode(text))).toBe(text);
      });

      it('uses exactly the requested vocabulary and compresses repetitive text', () => {
        expect(tok.vocabSize).toBe(400);
        expect(tok.mergeCount).toBe(400 - 259);
        expect(Math.max(...tok.encode(corpus))).toBeLessThan(400);
        const byteCount = new TextEncoder().encode(corpus).length;
        expect(tok.encode(corpus).length).toBeLessThan(byteCount / 2);
      });

      it('learns the same merges as a from-scratch recount (minbpe)', () => {
        const small = syntheticCorpus(3000) + ' aaaaaaa abababab aaab';
        const trained = BpeTokenizer.train(small, { vocabSize: 259 + 120, split });
        const chunks = split === 'gpt2' ? small.match(GPT2_PATTERN)! : [small];
        const expected = naiveMerges(chunks, 3, 120);
        expect(expected).toHaveLength(120);
        expect(trained.toJSON().merges).toEqual(expected);
      });

      it('is deterministic and round-trips through JSON with identical encodings', () => {
        const again = BpeTokenizer.train(corpus, { vocabSize: 400, split });
        const json = JSON.stringify(tok);
        expect(JSON.stringify(again)).toBe(json);
        const loaded = loadTokenizer(json);
        expect(loaded).toBeInstanceOf(BpeTokenizer);
        expect(JSON.stringify(loaded)).toBe(json);
        expect(loaded.encode(corpus)).toEqual(tok.encode(corpus));
        expect(tokenizerFromJSON(JSON.parse(json)).encode('the model 🙂')).toEqual(tok.encode('the model 🙂'));
      });
    });
  }

  it('stops early when the text runs out of pairs', () => {
    const tok = BpeTokenizer.train('abc', { vocabSize: 300, split: 'none' });
    expect(tok.vocabSize).toBe(259 + 2); // (a,b) then (ab,c)
    expect(tok.encode('abc')).toEqual([260]);
  });

  it('places bos and eos around the text only when asked', () => {
    const tok = BpeTokenizer.train(corpus, { vocabSize: 300 });
    const plain = tok.encode('the model');
    expect(tok.encode('the model', { addBos: true })).toEqual([tok.bosId, ...plain]);
    expect(tok.encode('the model', { addEos: true })).toEqual([...plain, tok.eosId]);
    const both = tok.encode('the model', { addBos: true, addEos: true });
    expect(both).toEqual([tok.bosId, ...plain, tok.eosId]);
    expect(tok.decode(both)).toBe('the model');
    expect(tok.decode([tok.padId, ...both, tok.padId], { skipSpecial: false })).toBe('<pad><bos>the model<eos><pad>');
    expect(tok.encode('', { addBos: true, addEos: true })).toEqual([1, 2]);
  });

  it('encodes special strings in the text as ordinary bytes', () => {
    const tok = BpeTokenizer.train(corpus, { vocabSize: 300 });
    const ids = tok.encode('a<eos>b<pad>');
    expect(ids.every((id) => id >= tok.firstByteId)).toBe(true);
    expect(tok.decode(ids)).toBe('a<eos>b<pad>');
  });

  it('decodes a partial UTF-8 sequence with replacement characters', () => {
    const tok = BpeTokenizer.train('', { vocabSize: 259 });
    const ids = tok.encode('中🙂');
    expect(tok.decode(ids.slice(0, 2))).toBe('\ufffd');
    expect(tok.decode(ids.slice(0, 5))).toContain('中');
    expect(tok.decode(ids.slice(0, 5))).toContain('\ufffd');
  });

  it('trains a ~100 KB text to vocab 512 quickly (measured, not asserted)', () => {
    const text = syntheticCorpus(100_000);
    const start = performance.now();
    const tok = BpeTokenizer.train(text, { vocabSize: 512 });
    const ms = performance.now() - start;
    expect(tok.vocabSize).toBe(512);
    expect(tok.decode(tok.encode(text))).toBe(text);
    console.log(`BPE training, 100 KB to vocab 512: ${ms.toFixed(0)} ms`);
  });

  it('refuses bad arguments with ConfigError', () => {
    expectConfigError(() => BpeTokenizer.train(corpus, { vocabSize: 100 }), 'vocabSize', '100', '259');
    expectConfigError(() => BpeTokenizer.train(corpus, { vocabSize: 259, specials: { unk: '<unk>' } }), 'vocabSize', '260');
    expectConfigError(() => BpeTokenizer.train(corpus, { vocabSize: 300.5 }), 'vocabSize');
    expectConfigError(() => BpeTokenizer.train(corpus, { vocabSize: 2_000_000 }), 'vocabSize');
    expectConfigError(() => BpeTokenizer.train(corpus, { vocabSize: 300, split: 'words' as 'gpt2' }), 'split');
    expectConfigError(() => BpeTokenizer.train(42 as unknown as string, { vocabSize: 300 }), 'text');
    const tok = BpeTokenizer.train('', { vocabSize: 259 });
    expectConfigError(() => tok.decode([259]), 'ids[0]', '259');
  });
});

describe('hostile tokenizer JSON', () => {
  const bpe = BpeTokenizer.train(syntheticCorpus(5000), { vocabSize: 270 }).toJSON();
  const char = CharTokenizer.train('hello world').toJSON();
  const bpeWith = (patch: Record<string, unknown>): string => JSON.stringify({ ...bpe, ...patch });
  const charWith = (patch: Record<string, unknown>): string => JSON.stringify({ ...char, ...patch });

  it('refuses prototype-polluting keys anywhere', () => {
    expectFormatError(() => loadTokenizer('{"kind":"bpe","__proto__":{}}'), '__proto__');
    expectFormatError(() => loadTokenizer(bpeWith({}).replace('"specials":{', '"specials":{"__proto__":{"x":1},')), '__proto__');
    expectFormatError(() => loadTokenizer(charWith({}).replace('"specials":{', '"specials":{"constructor":"x",')), 'constructor');
    expectFormatError(() => loadTokenizer(bpeWith({ merges: [{ prototype: 1 }] })), 'prototype');
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
  });

  it('refuses merges that are out of range, negative, non-integer, or not pairs', () => {
    const merges = bpe.merges;
    expectFormatError(() => loadTokenizer(bpeWith({ merges: [[259, 100]], vocabSize: 260 })), 'merges[0][0]', '259');
    expectFormatError(() => loadTokenizer(bpeWith({ merges: [...merges.slice(0, 3), [262, 5]], vocabSize: 263 })), 'merges[3][0]', '262');
    expectFormatError(() => loadTokenizer(bpeWith({ merges: [[-1, 5]], vocabSize: 260 })), 'merges[0][0]', '-1');
    expectFormatError(() => loadTokenizer(bpeWith({ merges: [[0, 5]], vocabSize: 260 })), 'merges[0][0]'); // a special
    expectFormatError(() => loadTokenizer(bpeWith({ merges: [[5.5, 6]], vocabSize: 260 })), 'merges[0][0]');
    expectFormatError(() => loadTokenizer(bpeWith({ merges: [['5', 6]], vocabSize: 260 })), 'merges[0][0]');
    expectFormatError(() => loadTokenizer(bpeWith({ merges: [[5, 6, 7]], vocabSize: 260 })), 'merges[0]');
    expectFormatError(() => loadTokenizer(bpeWith({ merges: [[5]], vocabSize: 260 })), 'merges[0]');
    expectFormatError(() => loadTokenizer(bpeWith({ merges: { 0: [5, 6] } })), 'merges', 'array');
    expectFormatError(() => loadTokenizer(bpeWith({ merges: 'abc' })), 'merges');
  });

  it('refuses an unknown kind, a wrong version, unknown keys, and non-objects', () => {
    expectFormatError(() => loadTokenizer(bpeWith({ kind: 'wordpiece' })), 'kind', 'wordpiece');
    expectFormatError(() => loadTokenizer(bpeWith({ kind: undefined })), 'kind');
    expectFormatError(() => loadTokenizer(bpeWith({ version: 2 })), 'version', '2');
    expectFormatError(() => loadTokenizer(charWith({ version: '1' })), 'version');
    expectFormatError(() => loadTokenizer(bpeWith({ extra: true })), 'extra');
    expectFormatError(() => loadTokenizer('[]'), 'tokenizer');
    expectFormatError(() => loadTokenizer('null'), 'tokenizer');
    expectFormatError(() => loadTokenizer('"bpe"'), 'tokenizer');
    expectFormatError(() => tokenizerFromJSON(new Map()), 'tokenizer');
  });

  it('refuses invalid JSON text', () => {
    expectFormatError(() => loadTokenizer('{"kind": "bpe",'), 'not valid JSON');
    expectFormatError(() => loadTokenizer(''), 'not valid JSON');
  });

  it('refuses duplicate vocabulary entries and merges', () => {
    expectFormatError(() => loadTokenizer(charWith({ vocab: ['a', 'b', 'a'], vocabSize: 7 })), 'vocab[2]', 'duplicate');
    expectFormatError(() => loadTokenizer(bpeWith({ merges: [[100, 101], [100, 101]], vocabSize: 261 })), 'merges[1]', 'duplicate');
    expectFormatError(() => loadTokenizer(charWith({ specials: { pad: 'x', bos: 'x', eos: 'y', unk: 'z' } })), 'specials');
  });

  it('refuses bad char vocabulary entries and specials', () => {
    expectFormatError(() => loadTokenizer(charWith({ vocab: ['ab'], vocabSize: 5 })), 'vocab[0]', 'one code point');
    expectFormatError(() => loadTokenizer(charWith({ vocab: [''], vocabSize: 5 })), 'vocab[0]');
    expectFormatError(() => loadTokenizer(charWith({ vocab: [7], vocabSize: 5 })), 'vocab[0]');
    expectFormatError(() => loadTokenizer(charWith({ specials: { pad: 'p', bos: 'b', eos: 'e' } })), 'specials.unk');
    expectFormatError(() => loadTokenizer(charWith({ specials: { pad: 1, bos: 'b', eos: 'e', unk: 'u' } })), 'specials.pad');
    expectFormatError(() => loadTokenizer(bpeWith({ split: 'words' })), 'split');
  });

  it('refuses absurd and inconsistent sizes', () => {
    expectFormatError(() => loadTokenizer(bpeWith({ vocabSize: 2_000_000 })), 'vocabSize', '2000000');
    expectFormatError(() => loadTokenizer(bpeWith({ vocabSize: bpe.vocabSize + 1 })), 'vocabSize');
    expectFormatError(() => loadTokenizer(charWith({ vocabSize: -1 })), 'vocabSize');
    const hugeMerges = new Array<[number, number]>(1_000_001).fill([3, 3]);
    expectFormatError(() => tokenizerFromJSON({ ...bpe, merges: hugeMerges, vocabSize: 1_000_000 }), 'merges', 'limit');
    const hugeVocab = new Array<string>(1_000_001).fill('a');
    expectFormatError(() => tokenizerFromJSON({ ...char, vocab: hugeVocab, vocabSize: 1_000_000 }), 'vocab', 'limit');
  });

  it('accepts what toJSON wrote, for both kinds', () => {
    const loaded: Tokenizer[] = [loadTokenizer(JSON.stringify(bpe)), loadTokenizer(JSON.stringify(char))];
    expect(loaded.map((t) => t.kind)).toEqual(['bpe', 'char']);
    expect(loaded.map((t) => JSON.stringify(t))).toEqual([JSON.stringify(bpe), JSON.stringify(char)]);
  });
});
