// Reference cross-entropy (crates/kernels/src/ops/cross_entropy.rs), as PyTorch's
// F.cross_entropy(reduction='mean', ignore_index, label_smoothing=eps):
// loss_r = (1-eps)(lse - x_t) + eps(lse - mean_j x_j), averaged over non-ignored rows.

import type { Floats } from './arrays.js';

export function crossEntropyForward(loss: Floats, lse: Floats, logits: Floats, targets: Int32Array,
  rows: number, vocab: number, ignoreIndex: number, labelSmoothing: number): void {
  const eps = labelSmoothing;
  let total = 0;
  let count = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * vocab;
    let max = -Infinity;
    for (let j = 0; j < vocab; j++) max = Math.max(max, logits[o + j]!);
    let sumExp = 0;
    let sumX = 0;
    for (let j = 0; j < vocab; j++) {
      sumExp += Math.exp(logits[o + j]! - max);
      sumX += logits[o + j]!;
    }
    const l = max + Math.log(sumExp);
    lse[r] = l;
    const t = targets[r]!;
    if (t === ignoreIndex) continue;
    total += (1 - eps) * (l - logits[o + t]!) + eps * (l - sumX / vocab);
    count++;
  }
  loss[0] = count === 0 ? NaN : total / count;
}

/** Adds the gradient to dlogits, or (not accumulate) writes it there, ignored rows zero. */
export function crossEntropyBackward(dlogits: Floats, dloss: Floats, logits: Floats, lse: Floats,
  targets: Int32Array, rows: number, vocab: number, ignoreIndex: number, labelSmoothing: number, accumulate: boolean): void {
  if (!accumulate) dlogits.fill(0);
  const eps = labelSmoothing;
  let count = 0;
  for (let r = 0; r < rows; r++) if (targets[r] !== ignoreIndex) count++;
  if (count === 0) return; // the loss was NaN and has no gradient path
  const g = dloss[0]! / count;
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    if (t === ignoreIndex) continue;
    const o = r * vocab;
    for (let j = 0; j < vocab; j++) {
      const p = Math.exp(logits[o + j]! - lse[r]!);
      const target = (j === t ? 1 - eps : 0) + eps / vocab;
      dlogits[o + j] = dlogits[o + j]! + g * (p - target);
    }
  }
}
