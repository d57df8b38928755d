// The tests' one set of oracles: the reference backend's float64 kernels
// (ts/backend/reference/), called here over plain arrays, plus seeded inputs and the error
// measure the compiled backends are compared with.
import { expect } from 'vitest';
import { matmulForward } from '../../ts/backend/reference/matmul.js';
import { softmaxForward } from '../../ts/backend/reference/softmax.js';

/** Deterministic values in [-1, 1) (a small LCG), so failures reproduce. */
export function randomArray(length: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
}

/** out[b] = op(a[b]) · op(b[b]) in float64 (the reference matmul). */
export function naiveMatmul(a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number,
  transA: boolean, transB: boolean): Float64Array {
  const out = new Float64Array(batch * m * n);
  matmulForward(out, a, b, batch, m, k, n, transA, transB, false);
  return out;
}

/** Row softmax with a keep-mask (1 keep, 0 drop), in float64 (the reference softmax); a fully
 * masked row is all zeros. */
export function naiveSoftmax(x: Float32Array, mask: Uint8Array | null, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  softmaxForward(out, x, mask, rows, cols);
  return out;
}

export function maxAbsDiff(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let max = 0;
  for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(got[i]! - want[i]!));
  return max;
}
