// Pointwise activations: ReLU, and GELU in its exact erf form (PyTorch's default).
import { record } from '../autograd/tape.js';
import type { Tensor } from '../tensor/tensor.js';
import { backendOf, empty, requireDType } from './validate.js';

export function relu(x: Tensor): Tensor {
  const op = 'relu';
  const backend = backendOf(op, x);
  requireDType(op, x, 'f32', 'x');
  const out = empty(backend, x.shape);
  backend.reluForward(out.storage, x.storage);
  return record(out, {
    op,
    inputs: [x],
    saved: [],
    backward: (dout, grad) => {
      const dx = grad(0);
      if (dx) backend.reluBackward(dx, dout, x.storage);
    },
  });
}

export function gelu(x: Tensor): Tensor {
  const op = 'gelu';
  const backend = backendOf(op, x);
  requireDType(op, x, 'f32', 'x');
  const out = empty(backend, x.shape);
  backend.geluForward(out.storage, x.storage);
  return record(out, {
    op,
    inputs: [x],
    saved: [],
    backward: (dout, grad) => {
      const dx = grad(0);
      if (dx) backend.geluBackward(dx, dout, x.storage);
    },
  });
}
