// Reference matmul and fused linear (crates/kernels/src/ops/matmul.rs, linear.rs), textbook
// loops in float64. op(a) is [m, k] (a stored [batch, k, m] when transA), op(b) is [k, n]
// (b stored [batch, n, k] when transB), out is [batch, m, n].

import { savesActGrad, type LinearActivation } from '../backend.js';
import { reluBackward } from './activation.js';
import type { Floats } from './arrays.js';
import { gelu, geluGrad, geluTanh, geluTanhGrad, relu } from './numerics.js';
import { biasAddBackward } from './elementwise.js';

export function matmulForward(out: Floats, a: Floats, b: Floats, batch: number, m: number, k: number, n: number,
  transA: boolean, transB: boolean, accumulate: boolean): void {
  for (let bi = 0; bi < batch; bi++) {
    const ao = bi * m * k;
    const bo = bi * k * n;
    const oo = bi * m * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          const aip = transA ? a[ao + p * m + i]! : a[ao + i * k + p]!;
          const bpj = transB ? b[bo + j * k + p]! : b[bo + p * n + j]!;
          s += aip * bpj;
        }
        out[oo + i * n + j] = accumulate ? out[oo + i * n + j]! + s : s;
      }
    }
  }
}

export function matmulBackward(da: Floats | null, db: Floats | null, dout: Floats, a: Floats, b: Floats,
  batch: number, m: number, k: number, n: number, transA: boolean, transB: boolean): void {
  for (let bi = 0; bi < batch; bi++) {
    const ao = bi * m * k;
    const bo = bi * k * n;
    const go = bi * m * n;
    if (da) {
      // d op(a)[i, p] = sum_j dout[i, j] · op(b)[p, j], written where a stores (i, p).
      for (let i = 0; i < m; i++) {
        for (let p = 0; p < k; p++) {
          let s = 0;
          for (let j = 0; j < n; j++) {
            const bpj = transB ? b[bo + j * k + p]! : b[bo + p * n + j]!;
            s += dout[go + i * n + j]! * bpj;
          }
          const idx = transA ? ao + p * m + i : ao + i * k + p;
          da[idx] = da[idx]! + s;
        }
      }
    }
    if (db) {
      // d op(b)[p, j] = sum_i op(a)[i, p] · dout[i, j], written where b stores (p, j).
      for (let p = 0; p < k; p++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let i = 0; i < m; i++) {
            const aip = transA ? a[ao + p * m + i]! : a[ao + i * k + p]!;
            s += aip * dout[go + i * n + j]!;
          }
          const idx = transB ? bo + j * k + p : bo + p * n + j;
          db[idx] = db[idx]! + s;
        }
      }
    }
  }
}

// ---- fused linear: composed from the kernels above and below, in float64 --------------------

// The GELUs save act'(pre) in actGrad (the kernel's semantics: backward multiplies by it).
export function linearForward(out: Floats, actGrad: Floats | null, x: Floats, weight: Floats, bias: Floats | null,
  rows: number, inF: number, outF: number, activation: LinearActivation): void {
  const target = savesActGrad(activation) ? actGrad! : out;
  matmulForward(target, x, weight, 1, rows, inF, outF, false, true, false);
  if (bias !== null) for (let i = 0; i < target.length; i++) target[i] = target[i]! + bias[i % outF]!;
  if (activation === 'relu') for (let i = 0; i < target.length; i++) target[i] = relu(target[i]!);
  if (savesActGrad(activation)) {
    const [f, grad] = activation === 'gelu' ? [gelu, geluGrad] : [geluTanh, geluTanhGrad];
    for (let i = 0; i < target.length; i++) {
      const pre = target[i]!;
      out[i] = f(pre);
      target[i] = grad(pre);
    }
  }
}

export function linearBackward(dx: Floats | null, dweight: Floats | null, dbias: Floats | null, dpre: Floats | null,
  dout: Floats, x: Floats, weight: Floats, saved: Floats | null, rows: number, inF: number, outF: number,
  activation: LinearActivation, accumulateDx: boolean, accumulateDweight: boolean): void {
  if (dx !== null && !accumulateDx) dx.fill(0);
  if (dweight !== null && !accumulateDweight) dweight.fill(0);
  let grad = dout;
  if (activation === 'relu') {
    dpre!.fill(0);
    reluBackward(dpre!, dout, saved!);
    grad = dpre!;
  } else if (activation !== 'identity') {
    for (let i = 0; i < dout.length; i++) dpre![i] = dout[i]! * saved![i]!;
    grad = dpre!;
  }
  if (dbias !== null) biasAddBackward(dbias, grad, rows, outF);
  matmulBackward(dx, dweight, grad, x, weight, 1, rows, inF, outF, false, true);
}
