// Reductions over any set of dims with keepdim (crates/kernels/src/ops/reduce.rs): the reduced
// dims are made one block [outer, n, inner] (a permute copy when they are not adjacent), then
// one kernel reduces it. Also max / min along a dim with indices, argmax / argmin, and
// softmax / log-softmax on any dim.
import { record } from '../autograd/tape.js';
import { ConfigError, ShapeError, checkOptions } from '../tensor/errors.js';
import { libraryCall } from '../tensor/memory.js';
import { Tensor, shapeSize } from '../tensor/tensor.js';
import { blockSizes, normalizeDim, normalizeDims, reducedShape } from './shapes.js';
import { backendOf, fmt, output, recordSingleInput, requireDType } from './validate.js';
import { permute } from './views.js';

/** The ReduceOp codes of crates/kernels/src/ops/reduce.rs. */
const REDUCE = { sum: 0, mean: 1, var: 2, amax: 3, amin: 4, logsumexp: 5 } as const;
type ReduceName = keyof typeof REDUCE;

export type Dims = number | readonly number[] | null;

export interface ReduceOptions {
  keepdim?: boolean;
}

export interface VarOptions extends ReduceOptions {
  /** Subtracted from the count in the divisor (PyTorch's correction; default 1, unbiased). */
  correction?: number;
}

function reduce(name: ReduceName, x: Tensor, dim: Dims | undefined, keepdim: boolean, correction: number): Tensor {
  const op = name;
  backendOf(op, x);
  requireDType(op, x, 'f32', 'x');
  const dims = normalizeDims(op, dim, x.ndim);
  const outShape = reducedShape(x.shape, dims, keepdim);
  const n = shapeSize(dims.map((d) => x.shape[d]!));
  if (n === 0 && name !== 'sum') throw new ShapeError(op, `cannot reduce over ${fmt(dims.map((d) => x.shape[d]!))}: no elements`, 1, 0);
  if (name === 'var' && n - correction <= 0) {
    throw new ConfigError(op, `correction ${correction} leaves no degrees of freedom for ${n} elements`);
  }
  // Adjacent reduced dims are already one block; otherwise move them last (kept dims in order).
  const adjacent = dims.length === 0 || dims[dims.length - 1]! - dims[0]! === dims.length - 1;
  const kept = x.shape.map((_, i) => i).filter((i) => !dims.includes(i));
  const [outer, , inner] = adjacent ? blockSizes(x.shape, dims[0] ?? 0, (dims[0] ?? 0) + dims.length) : [shapeSize(kept.map((i) => x.shape[i]!)), n, 1];
  // The permuted copy belongs to the graph (backward frees it); without a graph it goes now.
  return libraryCall(() => {
    const src = adjacent ? x : permute(x, [...kept, ...dims]);
    const out = reduceBlock(op, src, outShape, outer, n, inner, REDUCE[name], correction);
    if (src !== x && !out.requiresGrad) src.dispose();
    return out;
  });
}

function reduceBlock(op: string, x: Tensor, outShape: number[], outer: number, n: number, inner: number, code: number, correction: number): Tensor {
  const backend = x.backend;
  const out = output(backend, outShape);
  backend.reduceForward(out.storage, x.storage, outer, n, inner, code, correction);
  return recordSingleInput(op, out, x, (dx, dout) => backend.reduceBackward(dx, dout, x.storageFor(op), out.storageFor(op), outer, n, inner, code, correction));
}

function keepdimOf(op: string, options: ReduceOptions | VarOptions, allowed: string[]): boolean {
  checkOptions(op, options, allowed);
  return options.keepdim ?? false;
}

/** Sum over `dim` (null / omitted: all dims, a 0-d result). */
export function sum(x: Tensor, dim: Dims = null, options: ReduceOptions = {}): Tensor {
  return reduce('sum', x, dim, keepdimOf('sum', options, ['keepdim']), 0);
}

export function mean(x: Tensor, dim: Dims = null, options: ReduceOptions = {}): Tensor {
  return reduce('mean', x, dim, keepdimOf('mean', options, ['keepdim']), 0);
}

/** Variance with `correction` (default 1, as PyTorch's var). */
export function variance(x: Tensor, dim: Dims = null, options: VarOptions = {}): Tensor {
  const keepdim = keepdimOf('var', options, ['keepdim', 'correction']);
  return reduce('var', x, dim, keepdim, options.correction ?? 1);
}

/** Max over dims; the gradient is spread evenly over tied maxima (PyTorch's amax). */
export function amax(x: Tensor, dim: Dims = null, options: ReduceOptions = {}): Tensor {
  return reduce('amax', x, dim, keepdimOf('amax', options, ['keepdim']), 0);
}

export function amin(x: Tensor, dim: Dims = null, options: ReduceOptions = {}): Tensor {
  return reduce('amin', x, dim, keepdimOf('amin', options, ['keepdim']), 0);
}

export function logsumexp(x: Tensor, dim: Dims, options: ReduceOptions = {}): Tensor {
  return reduce('logsumexp', x, dim, keepdimOf('logsumexp', options, ['keepdim']), 0);
}

export interface MaxResult {
  values: Tensor;
  /** i32 positions along dim: the first maximal one on ties. */
  indices: Tensor;
}

/** Max (or min) along one dim with its first index; the whole gradient goes to that index. */
function maxAlong(op: string, x: Tensor, dim: number, keepdim: boolean, min: boolean): MaxResult {
  const backend = backendOf(op, x);
  requireDType(op, x, 'f32', 'x');
  const axis = normalizeDim(op, dim, x.ndim);
  const [outer, n, inner] = x.ndim === 0 ? [1, 1, 1] : blockSizes(x.shape, axis, axis + 1);
  if (n === 0) throw new ShapeError(op, `dim ${dim} of ${fmt(x.shape)} is empty`, 1, 0);
  const shape = x.ndim === 0 ? [] : reducedShape(x.shape, [axis], keepdim);
  const values = output(backend, shape);
  const indices = output(backend, shape, 'i32');
  backend.maxDimForward(values.storage, indices.storage, x.storage, outer, n, inner, min);
  record(values, {
    op,
    inputs: [x],
    saved: [],
    backward: (dout, grad) => {
      const dx = grad(0);
      if (dx) backend.gatherBackward(dx, dout, indices.storageFor(op), outer, n, 1, inner);
    },
  });
  return { values, indices };
}

export function max(x: Tensor, dim: number, options: ReduceOptions = {}): MaxResult {
  return maxAlong('max', x, dim, keepdimOf('max', options, ['keepdim']), false);
}

export function min(x: Tensor, dim: number, options: ReduceOptions = {}): MaxResult {
  return maxAlong('min', x, dim, keepdimOf('min', options, ['keepdim']), true);
}

function argExtreme(op: string, x: Tensor, dim: number | null, options: ReduceOptions, min: boolean): Tensor {
  const keepdim = keepdimOf(op, options, ['keepdim']);
  const flat = dim === null ? x.viewAs([x.size]) : x;
  const { values, indices } = maxAlong(op, flat, dim ?? 0, dim === null ? false : keepdim, min);
  values.dispose();
  return dim === null && keepdim ? indices.viewAs(x.shape.map(() => 1)) : indices;
}

/** i32 index of the first maximum along dim (null: of the flattened tensor, 0-d). */
export function argmax(x: Tensor, dim: number | null = null, options: ReduceOptions = {}): Tensor {
  return argExtreme('argmax', x, dim, options, false);
}

export function argmin(x: Tensor, dim: number | null = null, options: ReduceOptions = {}): Tensor {
  return argExtreme('argmin', x, dim, options, true);
}

function softmaxAlong(op: string, x: Tensor, dim: number, log: boolean): Tensor {
  const backend = backendOf(op, x);
  requireDType(op, x, 'f32', 'x');
  const axis = normalizeDim(op, dim, x.ndim);
  const [outer, n, inner] = x.ndim === 0 ? [1, 1, 1] : blockSizes(x.shape, axis, axis + 1);
  const out = output(backend, x.shape);
  backend.softmaxDimForward(out.storage, x.storage, outer, n, inner, log);
  return recordSingleInput(op, out, x, (dx, dout) => backend.softmaxDimBackward(dx, dout, out.storageFor(op), outer, n, inner, log));
}

/** softmax along `dim` (any dim; PyTorch's F.softmax(x, dim)). */
export function softmaxDim(x: Tensor, dim: number): Tensor {
  return softmaxAlong('softmax', x, dim, false);
}

/** log-softmax along `dim`. */
export function logSoftmax(x: Tensor, dim: number): Tensor {
  return softmaxAlong('logSoftmax', x, dim, true);
}

