// Matrix products. Shapes: a [M, K] or [B, M, K] (transA: [K, M] / [B, K, M]),
// b [K, N] or [B, K, N] (transB: [N, K] / [B, N, K]), out [M, N] or [B, M, N].
import { record } from '../autograd/tape.js';
import { ShapeError, checkOptions } from '../tensor/errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { backendOf, fmt, output, requireDType, requireRank } from './validate.js';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
}

export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const op = 'matmul';
  checkOptions(op, options, ['transA', 'transB']);
  const backend = backendOf(op, a, b);
  requireDType(op, a, 'f32', 'a');
  requireDType(op, b, 'f32', 'b');
  requireRank(op, a, [2, 3], 'a');
  requireRank(op, b, [2, 3], 'b');
  if (a.ndim !== b.ndim) {
    throw new ShapeError(op, `a and b must both be 2-D or both 3-D, got a ${fmt(a.shape)} and b ${fmt(b.shape)}`, a.shape, b.shape);
  }
  const transA = options.transA ?? false;
  const transB = options.transB ?? false;
  const batched = a.ndim === 3;
  const batch = batched ? a.shape[0]! : 1;
  if (batched && b.shape[0] !== batch) {
    throw new ShapeError(op, `batch sizes must match, got a ${fmt(a.shape)} and b ${fmt(b.shape)}`, a.shape, b.shape);
  }
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const [m, k] = transA ? [ac, ar] : [ar, ac];
  const [kb, n] = transB ? [bc, br] : [br, bc];
  if (k !== kb) {
    throw new ShapeError(op, `inner dimensions must match, got a ${fmt(a.shape)}${transA ? 'ᵀ' : ''} and b ${fmt(b.shape)}${transB ? 'ᵀ' : ''}`, k, kb);
  }
  const out = output(backend, batched ? [batch, m, n] : [m, n]);
  backend.matmulForward(out.storage, a.storage, b.storage, batch, m, k, n, transA, transB, false);
  return record(out, {
    op,
    inputs: [a, b],
    saved: [],
    backward: (dout, grad) =>
      backend.matmulBackward(grad(0), grad(1), dout, a.storage, b.storage, batch, m, k, n, transA, transB),
  });
}
