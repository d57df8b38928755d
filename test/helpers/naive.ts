// Small oracles shared by the backend tests: seeded inputs and textbook kernels.
import { expect } from 'vitest';

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

/** out[b] = op(a[b]) · op(b[b]) by the textbook triple loop, in float64. */
export function naiveMatmul(a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number,
  transA: boolean, transB: boolean): Float64Array {
  const out = new Float64Array(batch * m * n);
  for (let bi = 0; bi < batch; bi++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          const aip = transA ? a[bi * k * m + p * m + i]! : a[bi * m * k + i * k + p]!;
          const bpj = transB ? b[bi * n * k + j * k + p]! : b[bi * k * n + p * n + j]!;
          s += aip * bpj;
        }
        out[bi * m * n + i * n + j] = s;
      }
    }
  }
  return out;
}

export function maxAbsDiff(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let max = 0;
  for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(got[i]! - want[i]!));
  return max;
}
