// Reference Adam / AdamW update (crates/kernels/src/optim/adam.rs), as torch.optim.Adam /
// AdamW (non-amsgrad, non-foreach semantics), in float64.

import type { Floats } from './arrays.js';

export function adamUpdate(param: Floats, m: Floats, v: Floats, grad: Floats, lr: number, beta1: number,
  beta2: number, eps: number, weightDecay: number, step: number, decoupled: boolean): void {
  const bc1 = 1 - beta1 ** step;
  const bc2 = 1 - beta2 ** step;
  const stepSize = lr / bc1;
  const sqrtBc2 = Math.sqrt(bc2);
  for (let i = 0; i < param.length; i++) {
    let g = grad[i]!;
    if (decoupled) param[i] = param[i]! * (1 - lr * weightDecay);
    else g += weightDecay * param[i]!;
    m[i] = beta1 * m[i]! + (1 - beta1) * g;
    v[i] = beta2 * v[i]! + (1 - beta2) * g * g;
    param[i] = param[i]! - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / sqrtBc2 + eps);
  }
}
