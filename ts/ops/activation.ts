// Pointwise activations: ReLU, GELU in its exact erf form (PyTorch's default), and GELU's
// tanh approximation (GPT-2's `gelu_new`, PyTorch's approximate='tanh').
import type { Tensor } from '../tensor/tensor.js';
import { sameShapeOp } from './validate.js';

export function relu(x: Tensor): Tensor {
  return sameShapeOp(
    'relu',
    [[x, 'x']],
    (backend, out) => backend.reluForward(out, x.storage),
    (backend, dout, grad) => {
      const dx = grad(0);
      if (dx) backend.reluBackward(dx, dout, x.storage);
    },
  );
}

export function gelu(x: Tensor): Tensor {
  return sameShapeOp(
    'gelu',
    [[x, 'x']],
    (backend, out) => backend.geluForward(out, x.storage),
    (backend, dout, grad) => {
      const dx = grad(0);
      if (dx) backend.geluBackward(dx, dout, x.storage);
    },
  );
}

export function geluTanh(x: Tensor): Tensor {
  return sameShapeOp(
    'geluTanh',
    [[x, 'x']],
    (backend, out) => backend.geluTanhForward(out, x.storage),
    (backend, dout, grad) => {
      const dx = grad(0);
      if (dx) backend.geluTanhBackward(dx, dout, x.storage);
    },
  );
}
