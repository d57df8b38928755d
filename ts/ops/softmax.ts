// Softmax over the last axis with an optional keep-mask (u8, 1 keeps, same shape as x).
import type { Tensor } from '../tensor/tensor.js';
import { backendOf, output, recordSingleInput, requireDType, requireShape } from './validate.js';

export function softmax(x: Tensor, mask?: Tensor | null): Tensor {
  const op = 'softmax';
  const backend = backendOf(op, x, mask);
  requireDType(op, x, 'f32', 'x');
  if (mask) {
    requireDType(op, mask, 'u8', 'mask');
    requireShape(op, mask, x.shape, 'mask (same as x)');
  }
  const cols = x.ndim === 0 ? 1 : x.shape[x.ndim - 1]!;
  const rows = cols === 0 ? 0 : x.size / cols;
  const out = output(backend, x.shape);
  backend.softmaxForward(out.storage, x.storage, mask ? mask.storage : null, rows, cols);
  return recordSingleInput(op, out, x, (dx, dout) => backend.softmaxBackward(dx, dout, out.storageFor(op), rows, cols));
}
