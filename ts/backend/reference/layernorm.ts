// Reference layer norm (crates/kernels/src/ops/layernorm.rs), over the last axis of
// [rows, dim], biased variance as PyTorch.

import type { Floats } from './arrays.js';

export function layernormForward(out: Floats, mean: Floats, rstd: Floats, inp: Floats, weight: Floats,
  bias: Floats, rows: number, dim: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let mu = 0;
    for (let c = 0; c < dim; c++) mu += inp[o + c]!;
    mu /= dim;
    let v = 0;
    for (let c = 0; c < dim; c++) v += (inp[o + c]! - mu) ** 2;
    v /= dim; // biased, as PyTorch
    const rs = 1 / Math.sqrt(v + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (let c = 0; c < dim; c++) out[o + c] = (inp[o + c]! - mu) * rs * weight[c]! + bias[c]!;
  }
}

export function layernormBackward(dinp: Floats, dweight: Floats, dbias: Floats, dout: Floats, inp: Floats,
  weight: Floats, mean: Floats, rstd: Floats, rows: number, dim: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    const mu = mean[r]!;
    const rs = rstd[r]!;
    // xhat = (x - mu)·rstd; dxhat = dout·w;
    // dx = rstd · (dxhat - mean(dxhat) - xhat·mean(dxhat·xhat)).
    let meanD = 0;
    let meanDX = 0;
    for (let c = 0; c < dim; c++) {
      const xhat = (inp[o + c]! - mu) * rs;
      const dxhat = dout[o + c]! * weight[c]!;
      meanD += dxhat;
      meanDX += dxhat * xhat;
    }
    meanD /= dim;
    meanDX /= dim;
    for (let c = 0; c < dim; c++) {
      const xhat = (inp[o + c]! - mu) * rs;
      const dxhat = dout[o + c]! * weight[c]!;
      dbias[c] = dbias[c]! + dout[o + c]!;
      dweight[c] = dweight[c]! + dout[o + c]! * xhat;
      dinp[o + c] = dinp[o + c]! + rs * (dxhat - meanD - xhat * meanDX);
    }
  }
}
