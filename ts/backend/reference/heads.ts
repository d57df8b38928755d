// Reference attention heads out of a packed projection (crates/kernels/src/ops/heads.rs).

import type { Floats } from './arrays.js';

/** out [a, c, b, d] = inp [a, b, dim, d] at [start, start + c) along axis 2, axes 1 and 2 swapped. */
export function splitHeadsForward(out: Floats, inp: Floats, a: number, b: number, c: number, d: number, dim: number, start: number): void {
  for (let i = 0; i < a; i++) {
    for (let j = 0; j < b; j++) {
      for (let l = 0; l < c; l++) {
        for (let e = 0; e < d; e++) out[((i * c + l) * b + j) * d + e] = inp[((i * b + j) * dim + start + l) * d + e]!;
      }
    }
  }
}

/** dinp [a, b, dim, d] at [start, start + c) along axis 2 += dout [a, c, b, d] transposed back. */
export function splitHeadsBackward(dinp: Floats, dout: Floats, a: number, b: number, c: number, d: number, dim: number, start: number): void {
  for (let i = 0; i < a; i++) {
    for (let j = 0; j < b; j++) {
      for (let l = 0; l < c; l++) {
        for (let e = 0; e < d; e++) {
          const xi = ((i * b + j) * dim + start + l) * d + e;
          dinp[xi] = dinp[xi]! + dout[((i * c + l) * b + j) * d + e]!;
        }
      }
    }
  }
}
