// Gradient clipping by global L2 norm (torch.nn.utils.clip_grad_norm_).
import { ConfigError } from '../tensor/errors.js';
import type { Tensor } from '../tensor/tensor.js';

/** Scales every gradient by maxNorm / (total + 1e-6) when that is below 1; returns the
 * total norm before clipping. A non-finite total is returned without scaling, so the
 * caller can report or skip the step (the weights are never touched here). */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): number {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) throw new ConfigError('clipGradNorm', `maxNorm must be a positive number, got ${maxNorm}`);
  const grads = [...params].flatMap((p) => (p.grad ? [p.grad] : []));
  let sumSq = 0;
  for (const g of grads) sumSq += g.backend.sumSquares(g.storageFor('clipGradNorm'));
  const total = Math.sqrt(sumSq);
  const coef = maxNorm / (total + 1e-6);
  if (Number.isFinite(total) && coef < 1) {
    for (const g of grads) g.backend.scaleInplace(g.storage, coef);
  }
  return total;
}
