#!/usr/bin/env node
// The evaluation behind ts/tokenizers/hf.ts (docs/tokenizers.md): @huggingface/tokenizers
// against a Hugging Face reader built on our own byte-level BPE (ts/tokenizers/bpe.ts), on
// parity with the `tokenizers` library (test/fixtures/hf_tokenizer_extra.json and the fixture
// folder's expected.json), encode and decode speed on ~1 MB of mixed text, and size.
// Run after `npm run build:ts`: node scripts/eval_hf_tokenizers.mjs
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { createRequire } from 'node:module';

import { Tokenizer } from '@huggingface/tokenizers';

import { BpeTokenizer } from '../dist/tokenizers/bpe.js';
import { HFTokenizer } from '../dist/tokenizers/hf.js';

const root = new URL('..', import.meta.url);
const readText = (p) => readFileSync(new URL(p, root), 'utf8');
const extra = JSON.parse(readText('test/fixtures/hf_tokenizer_extra.json'));
const expected = JSON.parse(readText('test/fixtures/hf_gpt2_public/expected.json'));
const docs = {
  fixture: JSON.parse(readText('test/fixtures/hf_gpt2_public/tokenizer.json')),
  trained: extra.tokenizers.trained.tokenizer_json,
};

/** GPT-2's byte-to-unicode map, reversed: the character each byte is written as -> the byte. */
function unicodeToBytes() {
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n); n++; }
  return new Map(bs.map((b, i) => [String.fromCharCode(cs[i]), b]));
}

/** A tokenizer.json reader over BpeTokenizer: the merges mapped into its id layout (3 specials,
 * 256 bytes, then merges in rank order), the special tokens split out first, ids mapped back. */
function oursFromHF(doc) {
  const ourId = new Map();
  for (const [ch, b] of unicodeToBytes()) ourId.set(ch, 3 + b);
  const merges = doc.model.merges.map((m, i) => {
    const [a, b] = typeof m === 'string' ? m.split(' ') : m;
    ourId.set(a + b, 259 + i);
    return [ourId.get(a), ourId.get(b)];
  });
  const bpe = BpeTokenizer.fromJSON({ kind: 'bpe', version: 1, vocabSize: 259 + merges.length, split: 'gpt2', specials: { pad: '\u0000p', bos: '\u0000b', eos: '\u0000e' }, merges });
  const toHF = new Int32Array(259 + merges.length);
  const fromHF = new Map();
  for (const [token, id] of ourId) {
    toHF[id] = doc.model.vocab[token];
    fromHF.set(doc.model.vocab[token], id);
  }
  const specialId = new Map(doc.added_tokens.map((t) => [t.content, t.id]));
  const specialById = new Map(doc.added_tokens.map((t) => [t.id, t.content]));
  const splitter = new RegExp(`(${[...specialId.keys()].map((s) => s.replace(/[|\\^$.*+?()[\]{}]/g, '\\$&')).join('|')})`);
  return {
    encode(text) {
      const out = [];
      for (const part of text.split(splitter)) {
        if (specialId.has(part)) out.push(specialId.get(part));
        else for (const id of bpe.encode(part)) out.push(toHF[id]);
      }
      return out;
    },
    decode(ids) {
      return bpe.decode(ids.filter((id) => !specialById.has(id)).map((id) => fromHF.get(id)));
    },
  };
}

const impls = {};
for (const [name, doc] of Object.entries(docs)) {
  const lib = new Tokenizer(doc, { clean_up_tokenization_spaces: false });
  const ours = HFTokenizer.fromJSON(doc);
  const bpe = oursFromHF(doc);
  impls[name] = {
    '@huggingface/tokenizers as published': { encode: (t) => (t ? lib.encode(t).ids : []), decode: (ids) => (ids.length ? lib.decode(ids, { skip_special_tokens: true }) : '') },
    'HFTokenizer (library + White_Space pattern)': { encode: (t) => ours.encode(t), decode: (ids) => ours.decode(ids) },
    'reader over ts/tokenizers/bpe.ts': bpe,
  };
}

console.log('## Parity with tokenizers (encode ids, decode of those ids)');
for (const [name, fns] of Object.entries(impls)) {
  const cases = [...extra.tokenizers[name].encode, ...(name === 'fixture' ? expected.strings.map((s) => ({ ...s, decoded: s.text })) : [])];
  for (const [impl, fn] of Object.entries(fns)) {
    const badEncode = cases.filter((c) => JSON.stringify(fn.encode(c.text)) !== JSON.stringify(c.ids));
    const badDecode = [...cases, ...extra.tokenizers[name].decode].filter((c) => fn.decode(c.ids) !== c.decoded);
    console.log(`${name} tokenizer, ${impl}: encode ${cases.length - badEncode.length}/${cases.length}, decode ${cases.length + extra.tokenizers[name].decode.length - badDecode.length}/${cases.length + extra.tokenizers[name].decode.length}` +
      (badEncode.length ? `; encode differs on ${badEncode.slice(0, 2).map((c) => JSON.stringify(c.text).slice(0, 40)).join(', ')}` : ''));
  }
}

console.log('\n## Speed (best of 3, one thread)');
const notes = readText('data/ferrous_notes.txt');
const multilingual = extra.tokenizers.fixture.encode.slice(0, 64).map((c) => c.text).join('\n');
let big = '';
while (big.length < 1_000_000) big += notes + multilingual;
const megabytes = Buffer.byteLength(big) / 1e6;
const best = (fn) => {
  let t = Infinity;
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    fn();
    t = Math.min(t, performance.now() - t0);
  }
  return t;
};
for (const [name, fns] of Object.entries(impls)) {
  for (const [impl, fn] of Object.entries(fns)) {
    fn.encode(big.slice(0, 50_000));
    let ids = [];
    const encodeMs = best(() => (ids = fn.encode(big)));
    const decodeMs = best(() => fn.decode(ids));
    console.log(`${name} tokenizer, ${impl}: encode ${(megabytes / (encodeMs / 1000)).toFixed(2)} MB/s (${megabytes.toFixed(2)} MB -> ${ids.length} ids in ${encodeMs.toFixed(0)} ms), decode ${(ids.length / (decodeMs / 1000) / 1e6).toFixed(2)} M ids/s`);
  }
}

console.log('\n## Size');
const require = createRequire(import.meta.url);
const libMin = readFileSync(require.resolve('@huggingface/tokenizers').replace(/tokenizers\.(mjs|cjs)$/, 'tokenizers.min.mjs'));
console.log(`@huggingface/tokenizers 0.2: dist/tokenizers.min.mjs ${libMin.length} bytes, ${gzipSync(libMin, { level: 9 }).length} gzipped; no dependencies`);
const ownFiles = ['bpe.js', 'json_checks.js', 'specials.js'].map((f) => readFileSync(new URL(`dist/tokenizers/${f}`, root)));
const own = Buffer.concat(ownFiles);
console.log(`ts/tokenizers bpe + json_checks + specials (tsc output, unminified, already in the bundle): ${own.length} bytes, ${gzipSync(own, { level: 9 }).length} gzipped`);
