// The wasm modules through WasmBackend, each test on both the single-threaded and the
// threaded module: kernels against plain JS loops, how refusals surface (RangeError naming
// the op, the module usable afterwards), memory (alloc/free reuse, reads after linear memory
// grew), that the built module really uses SIMD, and that workers change no bits.
// Needs build/ferroformer.wasm (`npm run build:wasm`); the threaded tests skip without
// build/ferroformer-threads.wasm.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import binaryen from 'binaryen';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { HostArray } from '../ts/backend/backend.js';
import { BackendError } from '../ts/tensor/errors.js';
import { loadWasmBackend, wasmSimdSupported, type WasmBackend } from '../ts/backend/wasm.js';
import { ABI_VERSION } from '../ts/backend/wasm_load.js';
// @ts-expect-error: a plain .mjs data module without types
import { KERNELS } from '../scripts/kernel-table.mjs';
import { maxAbsDiff, naiveMatmul, naiveSoftmax, randomArray } from './helpers/naive.js';

const wasmUrl = new URL('../build/ferroformer.wasm', import.meta.url);

// The threaded module is optional (the build only warns when it fails); the single-threaded
// one is not.
const threadsBuilt = existsSync(fileURLToPath(new URL('../build/ferroformer-threads.wasm', import.meta.url)));

describe.each([
  { module: 'single-threaded', threads: false },
  { module: 'threaded', threads: true },
])('wasm backend, $module module', ({ threads }) => {
  let backend: WasmBackend;

  beforeAll(async () => {
    if (threads && !threadsBuilt) return;
    backend = await loadWasmBackend({ threads });
  });

  beforeEach((context) => {
    if (threads && !threadsBuilt) context.skip('build/ferroformer-threads.wasm was not built');
  });

  it('loads with SIMD; the thread count is 1 until set', () => {
    expect(wasmSimdSupported()).toBe(true);
    expect(backend.name).toBe('wasm');
    expect(backend.capabilities.has('simd')).toBe(true);
    expect(backend.capabilities.has('threads')).toBe(threads);
    expect(backend.getThreads()).toBe(1);
    expect(() => backend.setThreads(1)).not.toThrow();
    if (!threads) {
      expect(() => backend.setThreads(4)).toThrow(RangeError);
      expect(() => backend.setThreads(4)).toThrow(/got 4/);
    } else {
      expect(() => backend.setThreads(0)).toThrow(/got 0/);
    }
  });

  it('reuses freed blocks without calling the allocator; alloc still hands them out zeroed', () => {
    const s = backend.alloc('f32', 1000);
    backend.fill(s, 7);
    backend.free(s);
    const calls = backend.allocatorCalls();
    const again = backend.alloc('f32', 1000);
    expect(backend.allocatorCalls()).toBe(calls);
    expect(Array.from(backend.read(again)).every((x) => x === 0)).toBe(true);
    backend.free(again);
    // A length not in the pool goes to the allocator.
    const other = backend.alloc('f32', 12347);
    expect(backend.allocatorCalls()).toBe(calls + 1);
    backend.free(other);
  });

  describe('matmul', () => {
    const [batch, m, k, n] = [2, 7, 13, 9];
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        it(`forward transA=${transA} transB=${transB} matches the triple loop, and accumulates`, () => {
          const a = randomArray(batch * m * k, 1);
          const b = randomArray(batch * k * n, 2);
    const want = naiveMatmul(a, b, batch, m, k, n, transA, transB);
          const [sa, sb, out] = [backend.fromArray('f32', a), backend.fromArray('f32', b), backend.alloc('f32', batch * m * n)];
          backend.matmulForward(out, sa, sb, batch, m, k, n, transA, transB, false);
          expect(maxAbsDiff(backend.read(out), want)).toBeLessThan(1e-5);
          backend.matmulForward(out, sa, sb, batch, m, k, n, transA, transB, true);
          expect(maxAbsDiff(backend.read(out), want.map((x) => 2 * x))).toBeLessThan(2e-5);
          for (const s of [sa, sb, out]) backend.free(s);
        });
      }
    }

    it('backward skips a null gradient and accumulates into the other', () => {
      const [m1, k1, n1] = [3, 4, 5];
      const a = randomArray(m1 * k1, 3);
      const b = randomArray(k1 * n1, 4);
      const dout = randomArray(m1 * n1, 5);
      // da = dout · b^T: a [m, n] x [n, k] product, i.e. the triple loop with transB.
    const want = naiveMatmul(dout, b, 1, m1, n1, k1, false, true);
      const da = backend.fromArray('f32', new Float32Array(m1 * k1).fill(1));
      backend.matmulBackward(da, null, backend.fromArray('f32', dout), backend.fromArray('f32', a),
        backend.fromArray('f32', b), 1, m1, k1, n1, false, false);
      expect(maxAbsDiff(backend.read(da), want.map((x) => x + 1))).toBeLessThan(1e-5);
    });
  });

  it('softmax honours the mask and zeroes a fully masked row', () => {
    const [rows, cols] = [4, 37];
    const x = randomArray(rows * cols, 6).map((v) => 4 * v);
    const mask = new Uint8Array(rows * cols).map((_, i) => (i % 3 === 0 ? 0 : 1));
    mask.fill(0, 2 * cols, 3 * cols);
    const out = backend.alloc('f32', rows * cols);
    backend.softmaxForward(out, backend.fromArray('f32', x), backend.fromArray('u8', mask), rows, cols);
    const got = backend.read(out);
    expect(maxAbsDiff(got, naiveSoftmax(x, mask, rows, cols))).toBeLessThan(1e-6);
    expect(Array.from(got.subarray(2 * cols, 3 * cols)).every((v) => v === 0)).toBe(true);
  });

  describe('refused calls', () => {
    it('a length mismatch throws a RangeError naming the op and the lengths, then the module still works', () => {
      const out = backend.alloc('f32', 4);
      const shortA = backend.alloc('f32', 6);
      const b = backend.fromArray('f32', [1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
      expect(() => backend.matmulForward(out, shortA, b, 1, 2, 6, 2, false, false, false))
        .toThrow(new RangeError('matmulForward: a has length 6, expected 12'));

      const a = backend.fromArray('f32', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      backend.matmulForward(out, a, b, 1, 2, 6, 2, false, false, false);
      expect(backend.read(out)).toEqual(new Float32Array([1 + 3 + 4 + 5 + 6, 2 + 3 + 4 + 5 + 6,
        7 + 9 + 10 + 11 + 12, 8 + 9 + 10 + 11 + 12]));
    });

    it('out-of-range ids, overlapping buffers and bad parameters are refused before any kernel runs', () => {
      const table = backend.fromArray('f32', [1, 2, 3, 4, 5, 6]);
      const out = backend.alloc('f32', 4);
      expect(() => backend.embeddingForward(out, backend.fromArray('i32', [0, 3]), table, 2))
        .toThrow('embeddingForward: ids[1] = 3 is outside [0, 3)');
      const x = backend.fromArray('f32', [1, 2, 3]);
      expect(() => backend.addForward(x, x, x)).toThrow('addForward: out and a overlap; an output must not share memory with another buffer');
      expect(() => backend.dropoutForward(x, backend.alloc('u8', 3), backend.alloc('f32', 3), 1, 0, 0))
        .toThrow(/dropoutForward: p = 1 is outside \[0, 1\)/);
      backend.embeddingForward(out, backend.fromArray('i32', [2, 0]), table, 2);
      expect(backend.read(out)).toEqual(new Float32Array([5, 6, 1, 2]));
    });

    it('wrong dtype, freed and foreign storages are refused in TypeScript', async () => {
      const f = backend.alloc('f32', 3);
      const i = backend.alloc('i32', 3);
      expect(() => backend.reluForward(f, i)).toThrow(new TypeError('reluForward: inp must have dtype f32, got i32'));
      backend.free(i);
      backend.free(i); // idempotent
      expect(() => backend.read(i)).toThrow('read: s was used after free()');
      const other = await loadWasmBackend({ threads });
      expect(() => backend.reluForward(f, other.alloc('f32', 3))).toThrow(/inp is not a storage of this wasm backend/);
    });
  });

  describe('memory', () => {
    it('alloc zero-fills; read returns a copy of the right type; write, fill and copy work', () => {
      const f = backend.fromArray('f32', [9, 9, 9]);
      backend.free(f);
      const fresh = backend.alloc('f32', 3); // likely the same block: must still be zeros
      expect(backend.read(fresh)).toEqual(new Float32Array(3));
      const copy = backend.read(fresh);
      copy[0] = 5;
      expect(backend.read(fresh)[0]).toBe(0);
      backend.write(fresh, [1.5, -2, 3]);
      const twin = backend.alloc('f32', 3);
      backend.copy(twin, fresh);
      expect(backend.read(twin)).toEqual(new Float32Array([1.5, -2, 3]));
      backend.fill(twin, 7);
      expect(backend.read(twin)).toEqual(new Float32Array([7, 7, 7]));
      expect(backend.read(backend.fromArray('u8', [1, 255]))).toEqual(new Uint8Array([1, 255]));
      expect(backend.read(backend.alloc('u8', 0))).toEqual(new Uint8Array(0));
      expect(() => backend.write(fresh, [1])).toThrow(RangeError);
      expect(() => backend.alloc('f32', 2 ** 30)).toThrow(/exceed the wasm limit/);
    });

    it('alloc/free thousands of times reuses memory instead of growing it', () => {
      const warm = backend.alloc('f32', 4096);
      backend.free(warm);
      const before = backend.memoryBytes();
      for (let i = 0; i < 5000; i++) {
        const s = backend.alloc('f32', 1024 + (i % 7) * 512);
        const t = backend.alloc('u8', 33);
        backend.free(s);
        backend.free(t);
      }
      expect(backend.memoryBytes()).toBeLessThanOrEqual(before + 1024 * 1024);
    });

    it('storages dropped without free() are freed by the FinalizationRegistry backstop', async () => {
      v8.setFlagsFromString('--expose-gc');
      const gc = vm.runInNewContext('gc') as () => void;
      const before = backend.memoryBytes();
      for (let i = 0; i < 24; i++) {
        backend.alloc('f32', 4 * 1024 * 1024); // 16 MiB, dropped at once
        gc();
        await new Promise((resolve) => setTimeout(resolve, 0)); // finalizers run as a task
      }
      // 24 x 16 MiB = 384 MiB if nothing were returned.
      expect(backend.memoryBytes() - before).toBeLessThan(128 * 1024 * 1024);
    });

    it('reads stay correct after linear memory grows', () => {
      const data = randomArray(1000, 7);
      const small = backend.fromArray('f32', data);
      const before = backend.memoryBytes();
      const big = backend.alloc('f32', 16 * 1024 * 1024); // 64 MiB: forces memory.grow
      expect(backend.memoryBytes()).toBeGreaterThan(before);
      expect(backend.read(small)).toEqual(data);
      backend.fill(big, 1);
      const out = backend.alloc('f32', 1000);
      backend.scaleForward(out, small, 2);
      expect(backend.read(out)).toEqual(data.map((v) => 2 * v));
      expect(backend.sumSquares(big)).toBe(16 * 1024 * 1024);
      backend.free(big);
    });
  });

  it('the built module contains SIMD arithmetic', async () => {
    const file = threads ? new URL('../build/ferroformer-threads.wasm', import.meta.url) : wasmUrl;
    const module = binaryen.readBinary(await readFile(file));
    try {
      const text = module.emitText();
      // Loads and stores alone could come from memcpy; arithmetic comes from the kernels.
      expect(text).toMatch(/\bf32x4\.(add|mul)\b/);
    } finally {
      module.dispose();
    }
  });
});

// The exports crates/wasm/src/lib.rs writes by hand, with their signatures, as of the ABI
// version the loader expects. When this fails, an export was added, removed or changed: bump
// ABI_VERSION in crates/wasm/src/lib.rs and ts/backend/wasm_load.ts, so that the loader refuses
// modules built before, and record the new list here. (Kernel exports are generated from the
// kernel table; test/kernel_table.test.ts checks them.)
const HAND_WRITTEN_EXPORTS: Record<number, { plain: string[]; threads: string[] }> = {
  2: {
    plain: [
      'ff_abi_version() -> i32', 'ff_alloc(i32, i32) -> i32', 'ff_alloc_uninit(i32, i32) -> i32', 'ff_free(i32, i32, i32) -> ',
      'ff_last_error_len() -> i32', 'ff_last_error_ptr() -> i32', 'ff_min_parallel_flops() -> f64', 'ff_set_min_parallel_flops(f64) -> ',
    ],
    threads: ['ff_set_caller_may_block(i32) -> ', 'ff_set_workers(i32) -> i32', 'ff_worker_run(i32, i32) -> ', 'ff_worker_tasks() -> i32'],
  },
};

describe('wasm ABI', () => {
  const signatures = async (file: string): Promise<string[]> => {
    const module = binaryen.readBinary(await readFile(new URL(`../build/${file}`, import.meta.url)));
    const kernels = new Set((KERNELS as { name: string }[]).map((k) => `ff_${k.name}`));
    const type = (t: number): string => ({ [binaryen.i32]: 'i32', [binaryen.i64]: 'i64', [binaryen.f32]: 'f32', [binaryen.f64]: 'f64' })[t] ?? String(t);
    try {
      const out: string[] = [];
      for (let i = 0; i < module.getNumExports(); i++) {
        const e = binaryen.getExportInfo(module.getExportByIndex(i));
        if (e.kind !== binaryen.ExternalFunction || !e.name.startsWith('ff_') || kernels.has(e.name)) continue;
        const f = binaryen.getFunctionInfo(module.getFunction(e.value));
        out.push(`${e.name}(${binaryen.expandType(f.params).map(type).join(', ')}) -> ${binaryen.expandType(f.results).map(type).join(', ')}`);
      }
      return out.sort();
    } finally {
      module.dispose();
    }
  };

  it(`the hand-written exports are the ones ABI version ${ABI_VERSION} names`, async () => {
    const expected = HAND_WRITTEN_EXPORTS[ABI_VERSION];
    expect(expected, `no export list recorded for ABI version ${ABI_VERSION}`).toBeDefined();
    expect(await signatures('ferroformer.wasm')).toEqual(expected!.plain);
    if (threadsBuilt) expect(await signatures('ferroformer-threads.wasm')).toEqual([...expected!.plain, ...expected!.threads].sort());
  });
});

// Tests that only make sense for one of the two modules.
describe('wasm backend, threaded module only', () => {
  let backend: WasmBackend;
  beforeAll(async () => {
    if (threadsBuilt) backend = await loadWasmBackend({ threads: true });
  });
  beforeEach((context) => {
    if (!threadsBuilt) context.skip('build/ferroformer-threads.wasm was not built');
  });

  it('with workers, matmul, attention and the fused linear (forward and backward) give the same bits as with one thread', async () => {
    const [batch, m, k, n] = [2, 67, 45, 38];
    const a = backend.fromArray('f32', randomArray(batch * m * k, 11));
    const b = backend.fromArray('f32', randomArray(batch * k * n, 12));
    const [bh, t, d] = [6, 19, 8];
    const q = backend.fromArray('f32', randomArray(bh * t * d, 13));
    const kv = backend.fromArray('f32', randomArray(bh * t * d, 14));
    const dout = backend.fromArray('f32', randomArray(batch * m * n, 15));
    const w = backend.fromArray('f32', randomArray(n * k, 16));
    const run = (): HostArray[] => {
      const out = backend.alloc('f32', batch * m * n);
      backend.matmulForward(out, a, b, batch, m, k, n, false, true, false);
      const [da, db] = [backend.alloc('f32', batch * m * k), backend.alloc('f32', batch * k * n)];
      backend.matmulBackward(da, db, dout, a, b, batch, m, k, n, false, true);
      const [att, lse] = [backend.alloc('f32', bh * t * d), backend.alloc('f32', bh * t)];
      backend.attentionForward(att, lse, q, kv, kv, null, 2, 3, t, t, d, true, 0.35, 0, 0, 0);
      const [dq, dk, dv] = [backend.alloc('f32', bh * t * d), backend.alloc('f32', bh * t * d), backend.alloc('f32', bh * t * d)];
      backend.attentionBackward(dq, dk, dv, q, q, kv, kv, att, lse, null, 2, 3, t, t, d, true, 0.35, 0, 0, 0);
      // Fused linear + GELU over [134, 45] -> 38 (rows span three epilogue blocks).
      const [lin, actGrad, dpre] = [backend.alloc('f32', 2 * m * n), backend.alloc('f32', 2 * m * n), backend.alloc('f32', 2 * m * n)];
      backend.linearForward(lin, actGrad, a, w, null, 2 * m, k, n, 'gelu');
      const [dx, dw] = [backend.alloc('f32', 2 * m * k), backend.alloc('f32', n * k)];
      backend.linearBackward(dx, dw, null, dpre, dout, a, w, actGrad, 2 * m, k, n, 'gelu', true, true);
      const kept = [out, da, db, att, lse, dq, dk, dv, lin, dx, dw];
      const results = kept.map((s) => backend.read(s));
      for (const s of [...kept, actGrad, dpre]) backend.free(s);
      return results;
    };
    const single = run();
    backend.setThreads(3);
    expect(backend.getThreads()).toBe(3);
    // These sizes stay on the calling thread by default (too small to gain): split them all.
    const threshold = backend.getMinParallelFlops();
    backend.setMinParallelFlops(0);
    // Workers start asynchronously (the calling thread does everything until then): repeat
    // until they have taken part, which also proves they do.
    for (let i = 0; i < 200 && backend.workerTasks() === 0; i++) {
      expect(run()).toEqual(single);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(backend.workerTasks()).toBeGreaterThan(0);
    expect(run()).toEqual(single);
    const want = naiveMatmul(backend.read(a) as Float32Array, backend.read(b) as Float32Array, batch, m, k, n, false, true);
    expect(maxAbsDiff(single[0], want)).toBeLessThan(1e-5);
    backend.setThreads(2);
    expect(run()).toEqual(single);
    backend.setThreads(1);
    expect(run()).toEqual(single);
    backend.setMinParallelFlops(threshold);
  });
});

describe('wasm backend, single-threaded module only', () => {
  it('loads from bytes in hand and from a file: URL; a missing file says how to build it', async () => {
    const fromBytes = await loadWasmBackend({ bytes: await readFile(wasmUrl) });
    const s = fromBytes.fromArray('f32', [3, 4]);
    expect(fromBytes.sumSquares(s)).toBe(25);
    const fromUrl = await loadWasmBackend({ wasmUrl });
    expect(fromUrl.read(fromUrl.fromArray('i32', [7]))).toEqual(new Int32Array([7]));
    await expect(loadWasmBackend({ wasmUrl: new URL('./missing.wasm', wasmUrl), threads: false }))
      .rejects.toThrow(/npm run build:wasm/);
  });

  it('refuses a module built from older sources by its ABI version, with a BackendError saying how to rebuild', async () => {
    // The smallest stand-ins for a stale build: one whose ff_abi_version says 1, one from
    // before the export existed.
    const stale = (version: number | null): Uint8Array => {
      const module = new binaryen.Module();
      if (version !== null) {
        module.addFunction('ff_abi_version', binaryen.none, binaryen.i32, [], module.i32.const(version));
        module.addFunctionExport('ff_abi_version', 'ff_abi_version');
      }
      const bytes = module.emitBinary();
      module.dispose();
      return bytes;
    };
    await expect(loadWasmBackend({ bytes: stale(1) })).rejects.toThrow(BackendError);
    await expect(loadWasmBackend({ bytes: stale(1) }))
      .rejects.toThrow(/the wasm module has ABI version 1, this code expects 2; rebuild it with `npm run build:wasm`/);
    await expect(loadWasmBackend({ bytes: stale(null) })).rejects.toThrow(/ABI version undefined, this code expects 2/);
    // The right ABI version but built before kernels were added to the table: the missing
    // kernel exports are named at load, not found at their first call.
    const withoutKernels = stale(ABI_VERSION);
    await expect(loadWasmBackend({ bytes: withoutKernels })).rejects.toThrow(BackendError);
    await expect(loadWasmBackend({ bytes: withoutKernels }))
      .rejects.toThrow(/the wasm module is older than this code: it lacks ff_matmul_forward, ff_matmul_backward, .*ff_split_heads_forward.*; rebuild it with `npm run build:wasm`/);
  });
});
