// Layer normalisation over the last axis: x [..., C], weight (gamma) and bias (beta) [C].
import { record } from '../autograd/tape.js';
import type { Tensor } from '../tensor/tensor.js';
import { backendOf, output, requireDType, requireFinite, requireShape } from './validate.js';
import { ConfigError } from '../tensor/errors.js';

export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps = 1e-5): Tensor {
  const op = 'layerNorm';
  const backend = backendOf(op, x, weight, bias);
  for (const [t, what] of [[x, 'x'], [weight, 'weight'], [bias, 'bias']] as const) requireDType(op, t, 'f32', what);
  const dim = x.shape[x.ndim - 1] ?? 1;
  requireShape(op, weight, [dim], 'weight');
  requireShape(op, bias, [dim], 'bias');
  requireFinite(op, 'eps', eps);
  if (eps <= 0) throw new ConfigError(op, `eps must be positive, got ${eps}`);
  const rows = dim === 0 ? 0 : x.size / dim;
  const out = output(backend, x.shape);
  const mean = backend.allocUninit('f32', rows);
  const rstd = backend.allocUninit('f32', rows);
  backend.layernormForward(out.storage, mean, rstd, x.storage, weight.storage, bias.storage, rows, dim, eps);
  return record(out, {
    op,
    inputs: [x, weight, bias],
    saved: [mean, rstd],
    backward: (dout, grad) => {
      const dx = grad(0) ?? backend.alloc('f32', x.size);
      const dw = grad(1) ?? backend.alloc('f32', dim);
      const db = grad(2) ?? backend.alloc('f32', dim);
      backend.layernormBackward(dx, dw, db, dout, x.storage, weight.storage, mean, rstd, rows, dim);
      // Scratch for gradients nobody asked for (the kernel writes all three at once).
      if (!grad(0)) backend.free(dx);
      if (!grad(1)) backend.free(dw);
      if (!grad(2)) backend.free(db);
    },
  });
}
