// Reference softmax (crates/kernels/src/ops/softmax.rs), row by row in float64.

import type { Floats } from './arrays.js';

export function softmaxForward(out: Floats, inp: Floats, mask: Uint8Array | null, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    softmaxRow(out, r * cols, inp, r * cols, cols, (c) => mask === null || mask[r * cols + c] !== 0);
  }
}

export function softmaxBackward(dinp: Floats, dout: Floats, out: Floats, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let dot = 0;
    for (let c = 0; c < cols; c++) dot += dout[o + c]! * out[o + c]!;
    for (let c = 0; c < cols; c++) dinp[o + c] = dinp[o + c]! + out[o + c]! * (dout[o + c]! - dot);
  }
}

/** out[outOff + c] = softmax over the visible entries of x[xOff .. xOff+cols); invisible
 * entries are exactly 0, and a row with nothing visible is all zeros. */
function softmaxRow(out: Floats, outOff: number, x: Floats, xOff: number, cols: number,
  visible: (c: number) => boolean): void {
  let max = -Infinity;
  for (let c = 0; c < cols; c++) if (visible(c)) max = Math.max(max, x[xOff + c]!);
  if (max === -Infinity) {
    // nothing visible (or every visible logit is -inf): zeros keep training finite
    for (let c = 0; c < cols; c++) out[outOff + c] = 0;
    return;
  }
  let sum = 0;
  for (let c = 0; c < cols; c++) {
    const e = visible(c) ? Math.exp(x[xOff + c]! - max) : 0;
    out[outOff + c] = e;
    sum += e;
  }
  for (let c = 0; c < cols; c++) out[outOff + c] = out[outOff + c]! / sum;
}
