// Loading GPT-2 checkpoints: random weights written as transformers lays them out (Conv1D
// [in, out], F32 / F16 / BF16, head tied or not, stored once or twice, with or without the
// `transformer.` prefix) load to the same parameters; the loader's own scratch never exceeds
// one copy of the largest tensor; bad configs and files are refused by name.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../ts/backend/backend.js';
import { writeSafetensors, type SafetensorsTensor } from '../ts/io/safetensors.js';
import { GPT2LMHeadModel } from '../ts/models/gpt2.js';
import { Rng } from '../ts/nn/init.js';
import { ConfigError, FormatError } from '../ts/tensor/errors.js';
import { getBackend } from './helpers/backends.js';
import { hfFixtureDir } from './helpers/hf_fixtures.js';

const CONFIG = { model_type: 'gpt2', vocab_size: 1000, n_positions: 32, n_embd: 64, n_layer: 2, n_head: 4, activation_function: 'gelu_new', resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 };

/** float32 -> IEEE half bits (round to nearest even), for values well inside half's range. */
function toHalfBits(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  const mant = u & 0x7fffff;
  if (exp <= 0) return sign; // flushes tiny values (none here matter)
  let h = sign | (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++;
  return h;
}

/** A checkpoint in transformers' layout from an [out, in]-layout state (ours). */
function checkpoint(state: Map<string, { shape: number[]; values: Float32Array }>, dtype: 'F32' | 'F16' | 'BF16', options: { headTwice?: boolean; noPrefix?: boolean; maskBuffers?: boolean } = {}): Uint8Array {
  const tensors = new Map<string, SafetensorsTensor>();
  // openai-community/gpt2 keeps each layer's causal mask (attn.bias) and masked_bias beside
  // the weights: buffers, not parameters, skipped on load.
  if (options.maskBuffers) {
    for (let i = 0; i < CONFIG.n_layer; i++) {
      const n = CONFIG.n_positions;
      tensors.set(`h.${i}.attn.bias`, { dtype: 'F32', shape: [1, 1, n, n], data: Float32Array.from({ length: n * n }, (_, k) => (k % n <= Math.floor(k / n) ? 1 : 0)) });
      tensors.set(`h.${i}.attn.masked_bias`, { dtype: 'F32', shape: [], data: Float32Array.from([-1e4]) });
    }
  }
  for (const [name, { shape, values }] of state) {
    let data = values;
    let fileShape = shape;
    if (/\.(c_attn|c_proj|c_fc)\.weight$/.test(name)) {
      const [rows, cols] = shape as [number, number];
      data = new Float32Array(values.length);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) data[c * rows + r] = values[r * cols + c]!;
      fileShape = [cols, rows];
    }
    const encoded: SafetensorsTensor = dtype === 'F32' ? { dtype, shape: fileShape, data }
      : dtype === 'BF16' ? { dtype, shape: fileShape, data: Uint16Array.from(new Uint32Array(data.buffer), (b) => b >>> 16) }
      : { dtype, shape: fileShape, data: Uint16Array.from(data, toHalfBits) };
    tensors.set(options.noPrefix ? name.replace(/^transformer\./, '') : name, encoded);
    if (options.headTwice && name === 'transformer.wte.weight') tensors.set('lm_head.weight', encoded);
  }
  return writeSafetensors(tensors, { format: 'pt' });
}

/** Values as the dtype stores them (what a correct load must give back exactly). */
function stored(values: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): Float32Array {
  if (dtype === 'F32') return values;
  if (dtype === 'BF16') return new Float32Array(Uint32Array.from(new Uint32Array(values.buffer), (b) => (b & 0xffff0000) >>> 0).buffer);
  return Float32Array.from(values, (v) => {
    const h = toHalfBits(v);
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    return (h & 0x8000 ? -1 : 1) * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
  });
}

/** A byte stream in chunks of `size` bytes. */
function oddChunks(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

describe('hf gpt2 loading [native]', () => {
  let backend: Backend;
  let state: Map<string, { shape: number[]; values: Float32Array }>;
  let dir: string;
  beforeAll(async () => {
    backend = await getBackend('native');
    const rng = new Rng(5);
    const model = new GPT2LMHeadModel(CONFIG, { backend, rng });
    state = new Map(model.namedParameters().map(([n, p]) => [n, { shape: [...p.shape], values: Float32Array.from(p.data()) }]));
    // Layer norms are 1/0 at initialisation: give them values a transposition bug would show.
    for (const [n, s] of state) if (/ln_|bias/.test(n)) s.values = rng.normal(s.values.length, 0.5);
    model.dispose();
    dir = mkdtempSync(path.join(tmpdir(), 'ferro-gpt2-load-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    it(`${dtype} from a folder: same parameters, scratch at most the largest tensor`, async () => {
      const sub = path.join(dir, dtype);
      rmSync(sub, { recursive: true, force: true });
      await import('node:fs').then((fs) => fs.mkdirSync(sub));
      writeFileSync(path.join(sub, 'config.json'), JSON.stringify({ ...CONFIG, torch_dtype: dtype === 'F32' ? 'float32' : 'float16' }));
      writeFileSync(path.join(sub, 'model.safetensors'), checkpoint(state, dtype, { headTwice: dtype === 'F16' }));
      const model = await GPT2LMHeadModel.fromPretrained(sub, { backend });
      try {
        for (const [name, p] of model.namedParameters()) {
          expect(Array.from(p.data()), name).toEqual(Array.from(stored(state.get(name)!.values, dtype)));
        }
        const stats = model.loadStats!;
        const largest = Math.max(...[...state.values()].map((s) => s.values.length * 4));
        expect(stats.largestTensorBytes).toBe(largest);
        expect(stats.weightBytes).toBe([...state.values()].reduce((n, s) => n + s.values.length * 4, 0));
        expect(stats.peakScratchBytes).toBeGreaterThan(0);
        expect(stats.peakScratchBytes).toBeLessThanOrEqual(largest);
        expect(model.configJson()['torch_dtype']).toBe('float32');
      } finally {
        model.dispose();
      }
    });
  }

  it('from a stream of unknown length in odd-sized chunks that split elements, as GPT2Model saves it (no transformer. prefix, mask buffers)', async () => {
    for (const dtype of ['F32', 'F16'] as const) {
      const model = await GPT2LMHeadModel.fromPretrained({ 'config.json': JSON.stringify(CONFIG), 'model.safetensors': oddChunks(checkpoint(state, dtype, { noPrefix: true, maskBuffers: true }), 1001) }, { backend });
      try {
        for (const [name, p] of model.namedParameters()) {
          expect(Array.from(p.data()), `${dtype} ${name}`).toEqual(Array.from(stored(state.get(name)!.values, dtype)));
        }
      } finally {
        model.dispose();
      }
    }
    const blob = await GPT2LMHeadModel.fromPretrained({ 'config.json': JSON.stringify(CONFIG), 'model.safetensors': new Blob([checkpoint(state, 'BF16')]) }, { backend });
    expect(Array.from(blob.transformer.h.list[1]!.mlp.c_fc.weight.data())).toEqual(Array.from(stored(state.get('transformer.h.1.mlp.c_fc.weight')!.values, 'BF16')));
    blob.dispose();
  });

  it('an untied head is its own parameter, read from lm_head.weight', async () => {
    const config = { ...CONFIG, tie_word_embeddings: false };
    const untied = new Map(state);
    const head = new Rng(9).normal(CONFIG.vocab_size * CONFIG.n_embd, 0.1);
    untied.set('lm_head.weight', { shape: [CONFIG.vocab_size, CONFIG.n_embd], values: head });
    const model = await GPT2LMHeadModel.fromPretrained({ 'config.json': JSON.stringify(config), 'model.safetensors': checkpoint(untied, 'F32') }, { backend });
    try {
      expect(model.lmHeadWeight).not.toBe(model.transformer.wte.weight);
      expect(Array.from(model.lmHeadWeight.data())).toEqual(Array.from(head));
      expect(model.namedParameters().map(([n]) => n)).toContain('lm_head.weight');
    } finally {
      model.dispose();
    }
  });

  it('from a folder URL (fetch, streamed), with a progress callback; a missing file names its URL', async () => {
    const { createServer } = await import('node:http');
    const { readFileSync } = await import('node:fs');
    const fixture = hfFixtureDir();
    const server = createServer((req, res) => {
      const m = /^\/tiny\/([\w.]+)$/.exec(req.url ?? '');
      try {
        if (!m) throw new Error('not served');
        const file = path.join(fixture, m[1]!);
        const body = readFileSync(file);
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
      } catch {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}/tiny/`;
    try {
      const seen: number[] = [];
      const viaUrl = await GPT2LMHeadModel.fromPretrained(base, { backend, onProgress: (loaded) => seen.push(loaded) });
      const viaFolder = await GPT2LMHeadModel.fromPretrained(fixture, { backend });
      for (const [[name, a], [, b]] of viaUrl.namedParameters().map((e, i) => [e, viaFolder.namedParameters()[i]!] as const)) {
        expect(Array.from(a.data()), name).toEqual(Array.from(b.data()));
      }
      expect(seen.at(-1)).toBe(readFileSync(path.join(fixture, 'model.safetensors')).length);
      expect(viaUrl.sideFiles.has('tokenizer.json')).toBe(true);
      viaUrl.dispose();
      viaFolder.dispose();
      await expect(GPT2LMHeadModel.fromPretrained(`${base}missing/`, { backend })).rejects.toThrow(/127\.0\.0\.1.*missing\/config\.json answered 404/);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('refuses unsupported configs and mismatched files by name', async () => {
    expect(() => new GPT2LMHeadModel({ ...CONFIG, activation_function: 'quick_gelu' }, { backend })).toThrow(ConfigError);
    expect(() => new GPT2LMHeadModel({ ...CONFIG, activation_function: 'quick_gelu' }, { backend })).toThrow(/quick_gelu.*supported: gelu_new/);
    expect(() => new GPT2LMHeadModel({ ...CONFIG, n_head: 5 }, { backend })).toThrow(/n_embd 64 must be divisible by n_head 5/);
    expect(() => new GPT2LMHeadModel({ ...CONFIG, model_type: 'llama' }, { backend })).toThrow(/model_type/);
    const missing = new Map(state);
    missing.delete('transformer.h.1.mlp.c_fc.weight');
    const load = (s: Map<string, { shape: number[]; values: Float32Array }>, config = CONFIG) =>
      GPT2LMHeadModel.fromPretrained({ 'config.json': JSON.stringify(config), 'model.safetensors': checkpoint(s, 'F32') }, { backend });
    await expect(load(missing)).rejects.toThrow(/1 missing \(transformer\.h\.1\.mlp\.c_fc\.weight\)/);
    await expect(load(state, { ...CONFIG, n_layer: 1 })).rejects.toThrow(FormatError);
    await expect(load(state, { ...CONFIG, n_layer: 1 })).rejects.toThrow(/unexpected \(transformer\.h\.1\./);
    await expect(load(state, { ...CONFIG, vocab_size: 999 })).rejects.toThrow(/transformer\.wte\.weight: expected \[999, 64\], got \[1000, 64\]/);
    const bytes = checkpoint(state, 'F32');
    const truncated = bytes.subarray(0, bytes.length - 100);
    // Known length: the header's offsets are refused before any data is read.
    await expect(GPT2LMHeadModel.fromPretrained({ 'config.json': JSON.stringify(CONFIG), 'model.safetensors': truncated }, { backend }))
      .rejects.toThrow(/tensor "transformer\..*data_offsets/);
    // A stream of unknown length: the end of the stream names the tensor it cut.
    await expect(GPT2LMHeadModel.fromPretrained({ 'config.json': JSON.stringify(CONFIG), 'model.safetensors': oddChunks(truncated, 4096) }, { backend }))
      .rejects.toThrow(/ends at byte \d+, inside tensor transformer\./);
  });
});
