// Shape ops and views (crates/kernels/src/ops/strided.rs): permute, transpose, expand, slicing
// with steps, squeeze / unsqueeze / flatten, cat / stack / split / chunk, tril / triu. Every
// strided view is made contiguous by one kernel (a copy: tensors here are always contiguous),
// whose backward accumulates through the same strides (summing what expand repeated).
import { record } from '../autograd/tape.js';
import { ConfigError, ShapeError } from '../tensor/errors.js';
import { libraryCall } from '../tensor/memory.js';
import { shapeSize, type Shape, type Tensor } from '../tensor/tensor.js';
import { reshape } from './elementwise.js';
import { contiguousStrides, normalizeDim, withDims } from './shapes.js';
import { backendOf, empty, fmt, output, recordSingleInput, requireDType, requireInt } from './validate.js';

/** The contiguous copy of the view (shape, strides, offset) of x. */
export function stridedView(op: string, x: Tensor, shape: Shape, strides: readonly number[], offset: number): Tensor {
  const backend = backendOf(op, x);
  requireDType(op, x, 'f32', 'x');
  const out = output(backend, shape);
  withDims(op, backend, [shape, strides], ([s, st]) => backend.stridedCopyForward(out.storage, x.storage, s!, st!, offset));
  return recordSingleInput(op, out, x, (dx, dout) => withDims(op, backend, [shape, strides], ([s, st]) => backend.stridedCopyBackward(dx, dout, s!, st!, offset)));
}

/** x with its dims reordered: out dim i is x's dim perm[i] (negative dims count from the end). */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const op = 'permute';
  const axes = perm.map((d) => normalizeDim(op, d, x.ndim));
  if (axes.length !== x.ndim || new Set(axes).size !== axes.length) {
    throw new ShapeError(op, `perm [${perm.join(', ')}] must name each of the ${x.ndim} dims of ${fmt(x.shape)} once`, x.ndim, perm);
  }
  const strides = contiguousStrides(x.shape);
  return stridedView(op, x, axes.map((a) => x.shape[a]!), axes.map((a) => strides[a]!), 0);
}

/** Swaps dims dim0 and dim1. */
export function transpose(x: Tensor, dim0: number, dim1: number): Tensor {
  const op = 'transpose';
  const [a, b] = [normalizeDim(op, dim0, x.ndim), normalizeDim(op, dim1, x.ndim)];
  const perm = x.shape.map((_, i) => (i === a ? b : i === b ? a : i));
  return permute(x, perm);
}

/** x repeated along its size-1 dims (and new leading dims) to `sizes`; -1 keeps a dim. The
 * gradient sums over the repeats. */
export function expand(x: Tensor, sizes: readonly number[]): Tensor {
  const op = 'expand';
  const lead = sizes.length - x.ndim;
  if (lead < 0) throw new ShapeError(op, `sizes [${sizes.join(', ')}] have fewer dims than x ${fmt(x.shape)}`, x.ndim, sizes.length);
  const own = contiguousStrides(x.shape);
  const shape: number[] = [];
  const strides: number[] = [];
  sizes.forEach((s, i) => {
    const d = i < lead ? 1 : x.shape[i - lead]!;
    const size = s === -1 && i >= lead ? d : s;
    if (!Number.isSafeInteger(size) || size < 0 || (d !== 1 && size !== d)) {
      throw new ShapeError(op, `cannot expand ${fmt(x.shape)} to [${sizes.join(', ')}] (dim ${i}: ${d} to ${s})`, d, s);
    }
    shape.push(size);
    strides.push(i < lead || (d === 1 && size !== 1) ? 0 : own[i - lead]!);
  });
  return stridedView(op, x, shape, strides, 0);
}

/** Python's x[..., start:stop:step, ...] along `dim` (negative start / stop count from the end,
 * null stop = to the end; step >= 1). */
export function slice(x: Tensor, dim: number, start: number | null = null, stop: number | null = null, step = 1): Tensor {
  const op = 'slice';
  const axis = normalizeDim(op, dim, x.ndim);
  requireInt(op, 'step', step, 1);
  const size = x.shape[axis]!;
  const clampIndex = (v: number | null, fallback: number): number => {
    if (v === null) return fallback;
    if (!Number.isSafeInteger(v)) throw new ConfigError(op, `start and stop must be integers or null, got ${v}`);
    return Math.min(Math.max(v < 0 ? v + size : v, 0), size);
  };
  const from = clampIndex(start, 0);
  const to = clampIndex(stop, size);
  const length = to > from ? Math.ceil((to - from) / step) : 0;
  const own = contiguousStrides(x.shape);
  const shape = x.shape.map((d, i) => (i === axis ? length : d));
  const strides = own.map((s, i) => (i === axis ? s * step : s));
  return stridedView(op, x, shape, strides, from * own[axis]!);
}

/** PyTorch's as_strided: the tensor of shape `size` whose element (i0, i1, ...) is element
 * `storageOffset + i0 * stride[0] + i1 * stride[1] + ...` of x's (contiguous) elements, as one
 * copy; its gradient adds back through the same strides (overlapping elements sum). E.g. the
 * heads of a packed [B, T, 3C] projection: part p as [B, nh, T, hs] is
 * `asStrided(qkv, [B, nh, T, hs], [T * 3 * C, hs, 3 * C, 1], p * C)`, one copy where narrow,
 * reshape and transpose make two. */
export function asStrided(x: Tensor, size: readonly number[], stride: readonly number[], storageOffset = 0): Tensor {
  const op = 'asStrided';
  if (size.length !== stride.length) {
    throw new ShapeError(op, `size [${size.join(', ')}] and stride [${stride.join(', ')}] must have the same length`, size.length, stride.length);
  }
  for (const [name, values] of [['size', size], ['stride', stride]] as const) {
    if (values.some((v) => !Number.isSafeInteger(v) || v < 0)) throw new ConfigError(op, `${name} must hold non-negative integers, got [${values.join(', ')}]`);
  }
  requireInt(op, 'storageOffset', storageOffset, 0);
  const last = size.some((d) => d === 0) ? storageOffset - 1 : size.reduce((at, d, i) => at + (d - 1) * stride[i]!, storageOffset);
  if (last >= x.size) {
    throw new ShapeError(op, `size [${size.join(', ')}], stride [${stride.join(', ')}] and offset ${storageOffset} reach element ${last} of x ${fmt(x.shape)} (${x.size} elements)`, x.size, last + 1);
  }
  return stridedView(op, x, size, stride, storageOffset);
}

/** Inserts a size-1 dim at `dim` (in [-ndim-1, ndim]). A view. */
export function unsqueeze(x: Tensor, dim: number): Tensor {
  const axis = normalizeDim('unsqueeze', dim, x.ndim, 1);
  return reshape(x, [...x.shape.slice(0, axis), 1, ...x.shape.slice(axis)]);
}

/** Removes size-1 dims (all of them, or `dim` when it has size 1). A view. */
export function squeeze(x: Tensor, dim: number | null = null): Tensor {
  if (dim === null) return reshape(x, x.shape.filter((d) => d !== 1));
  const axis = normalizeDim('squeeze', dim, x.ndim);
  return reshape(x, x.shape[axis] === 1 ? x.shape.filter((_, i) => i !== axis) : x.shape);
}

/** Merges dims startDim..endDim into one. A view. */
export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const [a, b] = [normalizeDim('flatten', startDim, x.ndim), normalizeDim('flatten', endDim, x.ndim)];
  if (a > b) throw new ShapeError('flatten', `startDim ${startDim} comes after endDim ${endDim}`, a, b);
  return reshape(x, [...x.shape.slice(0, a), shapeSize(x.shape.slice(a, b + 1)), ...x.shape.slice(b + 1)]);
}

/** Joins tensors along `dim` (all other dims equal). Each input is accumulated into its window
 * of a zeroed output; its gradient is that window of the output's gradient. */
export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  const op = 'cat';
  if (tensors.length === 0) throw new ConfigError(op, 'needs at least one tensor');
  const backend = backendOf(op, ...tensors);
  const first = tensors[0]!;
  const axis = normalizeDim(op, dim, first.ndim);
  for (const [i, t] of tensors.entries()) {
    requireDType(op, t, 'f32', `tensors[${i}]`);
    if (t.ndim !== first.ndim || t.shape.some((d, j) => j !== axis && d !== first.shape[j])) {
      throw new ShapeError(op, `tensors[${i}] ${fmt(t.shape)} does not match tensors[0] ${fmt(first.shape)} outside dim ${dim}`, first.shape, t.shape);
    }
  }
  const shape = first.shape.map((d, j) => (j === axis ? tensors.reduce((s, t) => s + t.shape[axis]!, 0) : d));
  const outStrides = contiguousStrides(shape);
  const out = empty(backend, shape);
  const offsets: number[] = [];
  let at = 0;
  for (const t of tensors) {
    offsets.push(at * outStrides[axis]!);
    at += t.shape[axis]!;
  }
  tensors.forEach((t, i) => {
    withDims(op, backend, [t.shape, outStrides], ([s, st]) => backend.stridedCopyBackward(out.storage, t.storage, s!, st!, offsets[i]!));
  });
  return record(out, {
    op,
    inputs: tensors,
    saved: [],
    backward: (dout, grad) => {
      tensors.forEach((t, i) => {
        const g = grad(i);
        if (!g) return;
        const window = backend.allocUninit('f32', t.size);
        withDims(op, backend, [t.shape, outStrides], ([s, st]) => backend.stridedCopyForward(window, dout, s!, st!, offsets[i]!));
        backend.accumulate(g, window, 1);
        backend.free(window);
      });
    },
  });
}

/** Joins same-shape tensors along a new dim. */
export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  const op = 'stack';
  if (tensors.length === 0) throw new ConfigError(op, 'needs at least one tensor');
  const first = tensors[0]!;
  const axis = normalizeDim(op, dim, first.ndim, 1);
  for (const [i, t] of tensors.entries()) {
    if (t.ndim !== first.ndim || t.shape.some((d, j) => d !== first.shape[j])) {
      throw new ShapeError(op, `tensors[${i}] ${fmt(t.shape)} differs from tensors[0] ${fmt(first.shape)}`, first.shape, t.shape);
    }
  }
  return libraryCall(() => cat(tensors.map((t) => unsqueeze(t, axis)), axis));
}

/** Pieces along `dim`: of `splitSize` each (the last may be smaller), or of the given sizes. */
export function split(x: Tensor, splitSizeOrSections: number | readonly number[], dim = 0): Tensor[] {
  const op = 'split';
  const axis = normalizeDim(op, dim, x.ndim);
  const size = x.shape[axis]!;
  let sizes: number[];
  if (typeof splitSizeOrSections === 'number') {
    requireInt(op, 'split size', splitSizeOrSections, 1);
    sizes = [];
    for (let at = 0; at < size; at += splitSizeOrSections) sizes.push(Math.min(splitSizeOrSections, size - at));
  } else {
    sizes = [...splitSizeOrSections];
    if (sizes.reduce((s, v) => s + v, 0) !== size || sizes.some((v) => !Number.isSafeInteger(v) || v < 0)) {
      throw new ShapeError(op, `sections [${sizes.join(', ')}] must be non-negative and sum to dim ${dim} of ${fmt(x.shape)} (${size})`, size, sizes);
    }
  }
  const pieces: Tensor[] = [];
  let at = 0;
  for (const s of sizes) {
    pieces.push(slice(x, axis, at, at + s));
    at += s;
  }
  return pieces;
}

/** `chunks` pieces along `dim` of ceil(size / chunks) each (fewer when that covers the dim). */
export function chunk(x: Tensor, chunks: number, dim = 0): Tensor[] {
  requireInt('chunk', 'chunks', chunks, 1);
  const axis = normalizeDim('chunk', dim, x.ndim);
  return split(x, Math.max(1, Math.ceil(x.shape[axis]! / chunks)), axis);
}

function triangle(op: string, x: Tensor, diagonal: number, upper: boolean): Tensor {
  const backend = backendOf(op, x);
  requireDType(op, x, 'f32', 'x');
  if (x.ndim < 2) throw new ShapeError(op, `x must have at least 2 dims, got ${fmt(x.shape)}`, 2, x.shape);
  if (!Number.isSafeInteger(diagonal)) throw new ConfigError(op, `diagonal must be an integer, got ${diagonal}`);
  const [rows, cols] = x.shape.slice(-2) as [number, number];
  const batch = shapeSize(x.shape.slice(0, -2));
  const out = output(backend, x.shape);
  backend.triangleForward(out.storage, x.storage, batch, rows, cols, diagonal, upper);
  return recordSingleInput(op, out, x, (dx, dout) => backend.triangleBackward(dx, dout, batch, rows, cols, diagonal, upper));
}

/** The lower triangle of the last two dims (col - row <= diagonal); the rest 0. */
export function tril(x: Tensor, diagonal = 0): Tensor {
  return triangle('tril', x, diagonal, false);
}

/** The upper triangle of the last two dims (col - row >= diagonal); the rest 0. */
export function triu(x: Tensor, diagonal = 0): Tensor {
  return triangle('triu', x, diagonal, true);
}
