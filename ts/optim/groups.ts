// Default parameter groups for AdamW: decay on matrices (>= 2-D weights: linear layers,
// embeddings), none on biases and LayerNorm gains, as most Transformer recipes (GPT-2, nanoGPT).
import type { Tensor } from '../tensor/tensor.js';
import type { ParamGroup } from './adam.js';
// (type-only import: adam.ts imports decayGroups from here at run time)

export interface NamedParameterSource {
  namedParameters(): [string, Tensor][];
  namedModules(): [string, { constructor: { name: string } }][];
}

export function decayGroups(model: NamedParameterSource, weightDecay: number): ParamGroup[] {
  const normPrefixes = model
    .namedModules()
    .filter(([, m]) => m.constructor.name === 'LayerNorm')
    .map(([name]) => (name === '' ? '' : `${name}.`));
  const decay: Tensor[] = [];
  const noDecay: Tensor[] = [];
  const seen = new Set<Tensor>();
  for (const [name, p] of model.namedParameters()) {
    if (seen.has(p)) continue; // tied weights
    seen.add(p);
    const inNorm = normPrefixes.some((prefix) => name.startsWith(prefix) && !name.slice(prefix.length).includes('.'));
    (p.ndim >= 2 && !inNorm ? decay : noDecay).push(p);
  }
  return [
    { params: decay, weightDecay },
    { params: noDecay, weightDecay: 0 },
  ];
}

/** Global L2 norm of the gradients, without clipping. */
export function gradNorm(params: Iterable<Tensor>): number {
  let sumSq = 0;
  for (const p of params) if (p.grad) sumSq += p.grad.backend.sumSquares(p.grad.storageFor('gradNorm'));
  return Math.sqrt(sumSq);
}
