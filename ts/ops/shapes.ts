// Shape logic shared by the tensor ops, written once: NumPy / PyTorch broadcasting, dim
// normalisation, strides, and the small i32 shape / stride buffers the strided kernels take.
import type { Backend, Storage } from '../backend/backend.js';
import { ShapeError } from '../tensor/errors.js';
import { shapeSize, type Shape } from '../tensor/tensor.js';
import { fmt } from './validate.js';

/** The most dims the strided and broadcast kernels walk (crates/kernels/src/ops/strided.rs). */
export const MAX_DIMS = 8;

/** dim in [-ndim, ndim) as a non-negative axis; `extra` widens the range (unsqueeze, stack). */
export function normalizeDim(op: string, dim: number, ndim: number, extra = 0): number {
  const range = ndim + extra;
  if (!Number.isInteger(dim) || dim < -Math.max(range, 1) || dim >= Math.max(range, 1)) {
    throw new ShapeError(op, `dim ${dim} is out of range for a tensor of ${ndim} dimensions (expected an integer in [${-Math.max(range, 1)}, ${Math.max(range, 1) - 1}])`, ndim, dim);
  }
  return dim < 0 ? dim + Math.max(range, 1) : dim;
}

/** Sorted, distinct axes of `dims` (null / undefined: all of them). */
export function normalizeDims(op: string, dims: number | readonly number[] | null | undefined, ndim: number): number[] {
  if (dims === null || dims === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof dims === 'number' ? [dims] : dims;
  const axes = list.map((d) => normalizeDim(op, d, ndim));
  if (new Set(axes).size !== axes.length) throw new ShapeError(op, `dim [${list.join(', ')}] names a dimension twice`, ndim, list);
  return axes.sort((a, b) => a - b);
}

/** The broadcast of shapes (right-aligned; each dim equal or 1), or a ShapeError naming them. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const ndim = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(ndim).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const at = ndim - s.length + i;
      const d = s[i]!;
      if (d === out[at]) continue;
      if (out[at] === 1) out[at] = d;
      else if (d !== 1) {
        throw new ShapeError(op, `shapes ${shapes.map(fmt).join(' and ')} cannot be broadcast together (dim ${at - ndim}: ${out[at]} vs ${d})`, out[at], d);
      }
    }
  }
  return out;
}

/** Row-major strides of a contiguous tensor. */
export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = acc;
    acc *= shape[i]!;
  }
  return strides;
}

/** Strides that read a contiguous tensor of `shape` over the broadcast shape `out`: 0 on the
 * dims it lacks or has as 1. */
export function broadcastStrides(shape: Shape, out: Shape): number[] {
  const own = contiguousStrides(shape);
  const lead = out.length - shape.length;
  return out.map((_, i) => (i < lead || shape[i - lead] === 1 ? 0 : own[i - lead]!));
}

/** `shape` with the axes in `dims` set to 1 (keepdim) or removed. */
export function reducedShape(shape: Shape, dims: readonly number[], keepdim: boolean): number[] {
  return keepdim ? shape.map((d, i) => (dims.includes(i) ? 1 : d)) : shape.filter((_, i) => !dims.includes(i));
}

/** [outer, n, inner] sizes around the contiguous block of axes [from, to). */
export function blockSizes(shape: Shape, from: number, to: number): [number, number, number] {
  return [shapeSize(shape.slice(0, from)), shapeSize(shape.slice(from, to)), shapeSize(shape.slice(to))];
}

/** Runs fn with i32 storages holding each list (a 0-d walk is given as one dim of size 1 and
 * stride 0, so no kernel sees an empty shape), then frees them. */
export function withDims<T>(op: string, backend: Backend, lists: readonly (readonly number[])[], fn: (buffers: Storage[]) => T): T {
  const ndim = lists[0]!.length;
  if (ndim > MAX_DIMS) throw new ShapeError(op, `at most ${MAX_DIMS} dimensions are supported, got ${ndim}`, MAX_DIMS, ndim);
  const buffers = lists.map((l, i) => backend.fromArray('i32', ndim === 0 ? [i === 0 ? 1 : 0] : l));
  try {
    return fn(buffers);
  } finally {
    for (const b of buffers) backend.free(b);
  }
}
