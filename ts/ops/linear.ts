// y = x W^T + b with PyTorch's layout: x [..., in], weight [out, in], bias [out].
import { ShapeError } from '../tensor/errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { addBias, reshape } from './elementwise.js';
import { matmul } from './matmul.js';
import { fmt, requireRank } from './validate.js';

export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const op = 'linear';
  requireRank(op, weight, [2], 'weight');
  const [outFeatures, inFeatures] = weight.shape as [number, number];
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== inFeatures) {
    throw new ShapeError(op, `x ${fmt(x.shape)} must end in ${inFeatures} to match weight ${fmt(weight.shape)}`, inFeatures, x.shape);
  }
  const rows = x.size / inFeatures;
  const flat = x.ndim === 2 ? x : reshape(x, [rows, inFeatures]);
  let y = matmul(flat, weight, { transB: true });
  if (bias) y = addBias(y, bias);
  return x.ndim === 2 ? y : reshape(y, [...x.shape.slice(0, -1), outFeatures]);
}
