// A seeded slice of `npm run fuzz` (scripts/fuzz.mjs) against the TypeScript sources, plus
// targeted hostile inputs: absurd sizes allocate nothing, the native addon and the wasm
// module refuse unchecked lengths with a RangeError (process alive), and a Rust panic
// becomes a JS error.
import { describe, expect, it } from 'vitest';
import { loadNativeAddon } from '../ts/backend/native.js';
import type { WasmBackend } from '../ts/backend/wasm.js';
import * as io from '../ts/io/safetensors.js';
import * as nn from '../ts/nn/index.js';
import * as optim from '../ts/optim/index.js';
import { ConfigError, DTypeError, FormatError, NumericsError, ShapeError } from '../ts/tensor/errors.js';
import * as tokenizers from '../ts/tokenizers/index.js';
import * as train from '../ts/train/index.js';
// @ts-expect-error: a plain .mjs script without types
import { runFuzz } from '../scripts/fuzz.mjs';
import { getBackend } from './helpers/backends.js';

interface FuzzReport {
  total: { success: number; typed: number; failure: number };
  counts: Record<string, { success: number; typed: number; failure: number }>;
  slowest: { ms: number };
  failures: unknown[];
}

const errors = [FormatError, ShapeError, ConfigError, DTypeError, NumericsError];

describe('fuzz slice (seeded)', () => {
  it('2,000 mutated safetensors files, tokenizer JSON and checkpoints end in a success or a typed error', async () => {
    const backend = await getBackend('native');
    const report = runFuzz({ io, tokenizers, train, nn, optim, backend, errors }, { cases: 2000, seed: 20240611 }) as FuzzReport;
    if (report.failures.length > 0) console.log(JSON.stringify(report.failures, null, 1));
    expect(report.total.failure).toBe(0);
    expect(report.total.success + report.total.typed).toBe(2000);
    // The mutations reach both outcomes for every reader (a fuzzer that only produces
    // garbage, or only valid files, tests little).
    for (const c of Object.values(report.counts)) {
      expect(c.typed).toBeGreaterThan(50);
      expect(c.success).toBeGreaterThan(5);
    }
    expect(report.slowest.ms).toBeLessThan(1000);
  });
});

function header(json: unknown, dataBytes = 0, declared?: bigint): Uint8Array {
  const head = new TextEncoder().encode(JSON.stringify(json));
  const out = new Uint8Array(8 + head.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, declared ?? BigInt(head.length), true);
  out.set(head, 8);
  return out;
}

describe('absurd sizes allocate nothing and never hang', () => {
  const cases: [string, Uint8Array][] = [
    ['a shape of 2^40 x 2^40 elements', header({ t: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 16] } }, 16)],
    ['a shape whose product overflows 2^53', header({ t: { dtype: 'F64', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 8] } }, 8)],
    ['offsets at 2^60', header({ t: { dtype: 'U8', shape: [4], data_offsets: [2 ** 60, 2 ** 60 + 4] } }, 4)],
    ['a header length of 2^63', header({}, 0, 2n ** 63n)],
    ['a header length of 100 MB + 1 in a tiny file', header({}, 0, 100_000_001n)],
    ['a million-element shape claimed by 4 bytes', header({ t: { dtype: 'F32', shape: [1000, 1000], data_offsets: [0, 4] } }, 4)],
  ];
  it.each(cases)('%s: FormatError, quickly, no large allocation', (_name, bytes) => {
    const before = process.memoryUsage().arrayBuffers;
    const started = performance.now();
    expect(() => io.readSafetensors(bytes)).toThrow(FormatError);
    expect(performance.now() - started).toBeLessThan(100);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 2 ** 20);
  });

  it('a tokenizer claiming a huge vocabulary is refused without allocating it', () => {
    const before = process.memoryUsage().arrayBuffers;
    const text = JSON.stringify({ ...tokenizers.CharTokenizer.train('abc').toJSON(), vocabSize: 2 ** 40 });
    expect(() => tokenizers.loadTokenizer(text)).toThrow(FormatError);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 2 ** 20);
  });

  it('__proto__ and constructor keys in checkpoint metadata are refused and pollute nothing', async () => {
    const backend = await getBackend('reference');
    const model = new nn.DecoderLM({ vocab: 5, dModel: 4, nHeads: 1, numLayers: 1, dFF: 4, maxLen: 4 }, { backend, rng: new nn.Rng(1) });
    const bytes = train.checkpointToBytes({ model, step: 1 });
    const { tensors, metadata } = io.readSafetensors(bytes);
    for (const evil of ['{"__proto__": {"polluted": 1}}', '{"a": {"constructor": {"prototype": {"polluted": 1}}}}']) {
      const bad = io.writeSafetensors(tensors as never, { ...metadata, extra: evil });
      expect(() => train.loadCheckpointBytes(bad, { model })).toThrow(/forbidden key/);
      expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    }
  });
});

describe('native addon: unchecked lengths never reach a kernel', () => {
  it('random wrong lengths and dimensions throw RangeError; a panic becomes an Error; the addon keeps working', () => {
    const addon = loadNativeAddon();
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const f = (n: number): Float32Array => new Float32Array(n);
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      const [m, k, n] = [1 + rand(6), 1 + rand(6), 1 + rand(6)];
      const calls: (() => void)[] = [
        () => addon.matmulForward(f(m * n + 1 + rand(3)), f(m * k), f(k * n), 1, m, k, n, false, false, false),
        () => addon.matmulForward(f(m * n), f(m * k - 1), f(k * n), 1, m, k, n, false, false, false),
        () => addon.matmulForward(f(m * n), f(m * k), f(k * n), 2 ** 20, m, k, n, false, false, false),
        () => addon.softmaxForward(f(m * n), f(m * n), null, m + 1, n),
        () => addon.layernormForward(f(m * n), f(m), f(m), f(m * n), f(n), f(n + 1), m, n, 1e-5),
        () => addon.embeddingForward(f(m * n), Int32Array.from([rand(2) === 0 ? -1 : 1000]), f(10 * n), n),
        () => addon.crossEntropyForward(f(1), f(m), f(m * n), new Int32Array(m + 1), m, n, -100, 0),
        () => addon.attentionForward(f(m * k), f(m), f(m * k), f(m * k), f(m * k - 1), null, 1, 1, m, m, k, false, 1, 0, 0, 0),
        () => addon.linearForward(f(m * n), rand(2) === 0 ? null : f(m * n), f(m * k), f(n * k - 1), null, m, k, n, rand(4)),
        () => addon.narrowForward(f(m * n), f(m * k), m, k, 1, k, n),
        () => addon.transpose12Forward(f(m * k * n), f(m * k * n), m, k, n, 2),
        () => addon.adamUpdate(f(n), f(n), f(n + 1), f(n), 1e-3, 0.9, 0.999, 1e-8, 0, 1, false),
        () => addon.dropoutForward(f(n), new Uint8Array(n - 1), f(n), 0.5, 1, 0),
      ];
      const call = calls[i % calls.length]!;
      expect(call).toThrow(RangeError);
      refused++;
    }
    expect(refused).toBe(300);
    expect(() => addon.__panicForTest()).toThrow(Error);
    const out = f(4);
    addon.matmulForward(out, Float32Array.from([1, 2, 3, 4]), Float32Array.from([5, 6, 7, 8]), 1, 2, 2, 2, false, false, false);
    expect(Array.from(out)).toEqual([19, 22, 43, 50]);
  });
});

describe('wasm module: bad pointers and lengths are refused with a status, never a trap', () => {
  it('random out-of-bounds pointers, wrong lengths and huge dimensions give a non-zero status; the module keeps working', async () => {
    const backend = (await getBackend('wasm')) as WasmBackend;
    const wasm = (backend as unknown as { wasm: Record<string, (...a: number[]) => number> & { memory: WebAssembly.Memory } }).wasm;
    const ptr = wasm['ff_alloc']!(4096, 4);
    const memBytes = wasm.memory.buffer.byteLength; // after the alloc, which may grow it
    let seed = 99;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const badPtr = (): number => [memBytes - 2, memBytes + 64, 0xfffffff0, 1, ptr + 2][rand(5)]!;
    for (let i = 0; i < 300; i++) {
      const [m, k, n] = [1 + rand(6), 1 + rand(6), 1 + rand(6)];
      const calls: (() => number)[] = [
        () => wasm['ff_matmul_forward']!(badPtr(), m * n, ptr, m * k, ptr + 1024, k * n, 1, m, k, n, 0, 0, 0),
        () => wasm['ff_matmul_forward']!(ptr, m * n + 1, ptr + 1024, m * k, ptr + 2048, k * n, 1, m, k, n, 0, 0, 0),
        () => wasm['ff_matmul_forward']!(ptr, m * n, ptr + 1024, m * k, ptr + 2048, k * n, 2 ** 30, m, k, n, 0, 0, 0),
        () => wasm['ff_relu_forward']!(ptr, 64, badPtr(), 64),
        () => wasm['ff_add_forward']!(ptr, 2 ** 30, ptr + 1024, 2 ** 30, ptr + 2048, 2 ** 30),
        () => wasm['ff_accumulate']!(ptr, 16, ptr, 16, 1), // overlap
      ];
      const status = calls[i % calls.length]!();
      expect(status, `call ${i % calls.length} (m ${m}, k ${k}, n ${n})`).not.toBe(0);
    }
    wasm['ff_free']!(ptr, 4096, 4);
    const lib = await import('../ts/ops/index.js');
    const { tensor } = await import('../ts/tensor/tensor.js');
    const y = lib.matmul(tensor([1, 2, 3, 4], [2, 2], { backend }), tensor([5, 6, 7, 8], [2, 2], { backend }));
    expect(y.toArray()).toEqual([19, 22, 43, 50]);
  });
});
