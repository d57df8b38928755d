// Reference elementwise and layout kernels (crates/kernels/src/ops/elementwise.rs).

import type { Floats } from './arrays.js';
import { splitHeadsBackward, splitHeadsForward } from './heads.js';

export function addForward(out: Floats, a: Floats, b: Floats): void {
  for (let i = 0; i < a.length; i++) out[i] = a[i]! + b[i]!;
}

export function accumulate(dst: Floats, src: Floats, alpha: number): void {
  for (let i = 0; i < src.length; i++) dst[i] = dst[i]! + alpha * src[i]!;
}

export function scaleForward(out: Floats, inp: Floats, s: number): void {
  for (let i = 0; i < inp.length; i++) out[i] = inp[i]! * s;
}

export function scaleInplace(x: Floats, s: number): void {
  for (let i = 0; i < x.length; i++) x[i] = x[i]! * s;
}

export function mulForward(out: Floats, a: Floats, b: Floats): void {
  for (let i = 0; i < a.length; i++) out[i] = a[i]! * b[i]!;
}

export function biasAddForward(out: Floats, inp: Floats, bias: Floats, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[r * cols + c] = inp[r * cols + c]! + bias[c]!;
  }
}

export function biasAddBackward(dbias: Floats, dout: Floats, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) dbias[c] = dbias[c]! + dout[r * cols + c]!;
  }
}

/** inp [a, b, c, d] -> out [a, c, b, d] */
export function transpose12Forward(out: Floats, inp: Floats, a: number, b: number, c: number, d: number): void {
  splitHeadsForward(out, inp, a, b, c, d, c, 0);
}

export function transpose12Backward(dinp: Floats, dout: Floats, a: number, b: number, c: number, d: number): void {
  splitHeadsBackward(dinp, dout, a, b, c, d, c, 0);
}

/** inp [outer, dim, inner] -> out [outer, len, inner] from `start` along axis 1 */
export function narrowForward(out: Floats, inp: Floats, outer: number, dim: number, inner: number,
  start: number, len: number): void {
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < len; j++) {
      for (let e = 0; e < inner; e++) out[(o * len + j) * inner + e] = inp[(o * dim + start + j) * inner + e]!;
    }
  }
}

export function narrowBackward(dinp: Floats, dout: Floats, outer: number, dim: number, inner: number,
  start: number, len: number): void {
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < len; j++) {
      for (let e = 0; e < inner; e++) {
        const xi = (o * dim + start + j) * inner + e;
        dinp[xi] = dinp[xi]! + dout[(o * len + j) * inner + e]!;
      }
    }
  }
}

export function sumSquares(x: Floats): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return s;
}
