// The relaxed-SIMD wasm modules (build/ferroformer-relaxed.wasm and, threaded,
// build/ferroformer-threads-relaxed.wasm): feature detection, the explicit `relaxed: true`
// load, the default choice where the engine has relaxed SIMD, and results agreeing with the
// baseline simd128 module. Node 20 needs --experimental-wasm-relaxed-simd; this file turns it
// on at run time (v8 flags are per process, and vitest runs each file in its own fork).
import { setFlagsFromString } from 'node:v8';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadWasmBackend, wasmRelaxedSimdSupported, type WasmBackend } from '../ts/backend/wasm.js';
import { relErr } from './helpers/backends.js';
import { randomArray } from './helpers/naive.js';

const built = existsSync(new URL('../build/ferroformer-relaxed.wasm', import.meta.url));
const threadsBuilt = existsSync(new URL('../build/ferroformer-threads-relaxed.wasm', import.meta.url));

/** matmul 65x257x33 and causal attention [1,2,70,16] on one backend. */
function run(backend: WasmBackend): Float32Array[] {
  const [m, k, n] = [65, 257, 33];
  const a = backend.fromArray('f32', randomArray(m * k, 1));
  const b = backend.fromArray('f32', randomArray(k * n, 2));
  const c = backend.alloc('f32', m * n);
  backend.matmulForward(c, a, b, 1, m, k, n, false, false, false);
  const [h, t, d] = [2, 70, 16];
  const q = backend.fromArray('f32', randomArray(h * t * d, 3));
  const kk = backend.fromArray('f32', randomArray(h * t * d, 4));
  const v = backend.fromArray('f32', randomArray(h * t * d, 5));
  const out = backend.alloc('f32', h * t * d);
  const lse = backend.alloc('f32', h * t);
  backend.attentionForward(out, lse, q, kk, v, null, 1, h, t, t, d, true, 0.25, 0, 0, 0);
  return [backend.read(c) as Float32Array, backend.read(out) as Float32Array];
}

describe.skipIf(!built)('wasm relaxed SIMD module', () => {
  it('is refused where the engine lacks relaxed SIMD, and loads once it has it', async () => {
    if (!wasmRelaxedSimdSupported()) {
      await expect(loadWasmBackend({ relaxed: true })).rejects.toThrow(/relaxed SIMD/);
      setFlagsFromString('--experimental-wasm-relaxed-simd');
    }
    expect(wasmRelaxedSimdSupported()).toBe(true);
    const relaxed = await loadWasmBackend({ relaxed: true, threads: false });
    expect(relaxed.relaxedSimd).toBe(true);
    expect(relaxed.capabilities.has('threads')).toBe(false);
    const plain = await loadWasmBackend({ relaxed: false, threads: false });
    expect(plain.relaxedSimd).toBe(false);
    const [c1, o1] = run(relaxed);
    const [c0, o0] = run(plain);
    expect(relErr(c1!, c0!)).toBeLessThan(1e-5);
    expect(relErr(o1!, o0!)).toBeLessThan(1e-5);
  });

  it.skipIf(!threadsBuilt)('threads and relaxed SIMD together by default, with the single-threaded module\'s bits at any thread count', async () => {
    setFlagsFromString('--experimental-wasm-relaxed-simd');
    const single = run(await loadWasmBackend({ relaxed: true, threads: false }));
    const threaded = await loadWasmBackend();
    expect(threaded.relaxedSimd).toBe(true);
    expect(threaded.capabilities.has('threads')).toBe(true);
    expect(run(threaded)).toEqual(single);
    const threshold = threaded.getMinParallelFlops();
    threaded.setThreads(2);
    threaded.setMinParallelFlops(0);
    await threaded.threadsReady();
    // A worker joins asynchronously: repeat until it has taken part.
    for (let i = 0; i < 200 && threaded.workerTasks() === 0; i++) {
      expect(run(threaded)).toEqual(single);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(threaded.workerTasks()).toBeGreaterThan(0);
    expect(run(threaded)).toEqual(single);
    threaded.setMinParallelFlops(threshold);
    threaded.setThreads(1);
    // Without relaxed SIMD the same call takes the plain threaded module.
    const plainThreaded = await loadWasmBackend({ relaxed: false });
    expect(plainThreaded.relaxedSimd).toBe(false);
    expect(plainThreaded.capabilities.has('threads')).toBe(true);
  });
});
