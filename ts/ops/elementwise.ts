// Elementwise arithmetic and layout ops that the layers are built from.
import type { Backend, Storage } from '../backend/backend.js';
import { record } from '../autograd/tape.js';
import { ShapeError } from '../tensor/errors.js';
import { shapeSize, type GradTarget, type Shape, type Tensor } from '../tensor/tensor.js';
import { backendOf, empty, fmt, output, recordSingleInput, requireDType, requireFinite, requireInt, sameShapeOp } from './validate.js';

/** Input i's gradient gets dout unchanged: dout itself when the tape can hand it over (the
 * input has no gradient buffer yet), else copied into a buffer nothing has written yet, else
 * added into its buffer. */
function passGradient(backend: Backend, dout: Storage, adopt: (i: number) => boolean, gradTarget: (i: number) => GradTarget | null, i: number): void {
  if (adopt(i)) return;
  const g = gradTarget(i);
  if (g === null) return;
  if (g.accumulate) backend.accumulate(g.storage, dout, 1);
  else backend.copy(g.storage, dout);
}

/** a + b, same shape (residual connections). */
export function add(a: Tensor, b: Tensor): Tensor {
  return sameShapeOp(
    'add',
    [[a, 'a'], [b, 'b']],
    (backend, out) => backend.addForward(out, a.storage, b.storage),
    (backend, dout, _grad, adopt, gradTarget) => {
      // dout is a's gradient as it stands, and b's: both adopt it, sharing one buffer that the
      // tape copies only for one that must change it later.
      for (const i of [0, 1]) passGradient(backend, dout, adopt, gradTarget, i);
    },
  );
}

/** a * b elementwise, same shape. */
export function mul(a: Tensor, b: Tensor): Tensor {
  return sameShapeOp(
    'mul',
    [[a, 'a'], [b, 'b']],
    (backend, out) => backend.mulForward(out, a.storage, b.storage),
    (backend, dout, grad) => {
      // d(a*b)/da = b: multiply into a scratch buffer, then accumulate.
      const scratch = backend.alloc('f32', a.size);
      try {
        for (const [g, other] of [[grad(0), b], [grad(1), a]] as const) {
          if (!g) continue;
          backend.mulForward(scratch, dout, other.storageFor('mul'));
          backend.accumulate(g, scratch, 1);
        }
      } finally {
        backend.free(scratch);
      }
    },
  );
}

/** x * s for a number s. */
export function scale(x: Tensor, s: number): Tensor {
  requireFinite('scale', 'factor', s);
  return sameShapeOp(
    'scale',
    [[x, 'x']],
    (backend, out) => backend.scaleForward(out, x.storage, s),
    (backend, dout, grad) => {
      const dx = grad(0);
      if (dx) backend.accumulate(dx, dout, s);
    },
  );
}

/** x + bias broadcast over the leading axes: x [..., *bias.shape], e.g. a Linear bias [C]
 * over [B, T, C], or a positional table [T, C] over [B, T, C]. */
export function addBias(x: Tensor, bias: Tensor): Tensor {
  const op = 'addBias';
  const backend = backendOf(op, x, bias);
  requireDType(op, x, 'f32', 'x');
  requireDType(op, bias, 'f32', 'bias');
  const tail = x.shape.slice(x.ndim - bias.ndim);
  if (bias.ndim > x.ndim || tail.some((d, i) => d !== bias.shape[i])) {
    throw new ShapeError(op, `bias ${fmt(bias.shape)} must match the trailing dimensions of x ${fmt(x.shape)}`, tail, bias.shape);
  }
  const cols = bias.size;
  const rows = cols === 0 ? 0 : x.size / cols;
  const out = output(backend, x.shape);
  backend.biasAddForward(out.storage, x.storage, bias.storage, rows, cols);
  return record(out, {
    op,
    inputs: [x, bias],
    saved: [],
    backward: (dout, grad, adopt, gradTarget) => {
      // The bias's gradient reads dout first: adopting hands it to x, which may then change it.
      const db = grad(1);
      if (db) backend.biasAddBackward(db, dout, rows, cols);
      passGradient(backend, dout, adopt, gradTarget, 0);
    },
  });
}

/** The same values under another shape (one dimension may be -1). Shares storage. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const op = 'reshape';
  backendOf(op, x);
  const resolved = [...shape];
  const unknown = resolved.indexOf(-1);
  if (unknown >= 0) {
    const known = shapeSize(resolved.filter((_, i) => i !== unknown));
    if (known === 0 || x.size % known !== 0) {
      throw new ShapeError(op, `cannot reshape ${fmt(x.shape)} into ${fmt(shape)}`, shape, x.shape);
    }
    resolved[unknown] = x.size / known;
  }
  if (shapeSize(resolved) !== x.size || resolved.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new ShapeError(op, `cannot reshape ${fmt(x.shape)} (${x.size} elements) into ${fmt(shape)}`, shape, x.shape);
  }
  const out = x.viewAs(resolved);
  const backend = x.backend;
  return record(out, {
    op,
    inputs: [x],
    saved: [],
    // Same elements in the same order: out's gradient is x's.
    backward: (dout, _grad, adopt, gradTarget) => passGradient(backend, dout, adopt, gradTarget, 0),
  });
}

/** Swaps axes 1 and 2 of a 4-D tensor: [A, B, C, D] -> [A, C, B, D] (split/merge heads). */
export function transpose12(x: Tensor): Tensor {
  const op = 'transpose12';
  const backend = backendOf(op, x);
  requireDType(op, x, 'f32', 'x');
  if (x.ndim !== 4) throw new ShapeError(op, `x must be 4-D, got ${fmt(x.shape)}`, 4, x.shape);
  const [a, b, c, d] = x.shape as [number, number, number, number];
  const out = output(backend, [a, c, b, d]);
  backend.transpose12Forward(out.storage, x.storage, a, b, c, d);
  return recordSingleInput(op, out, x, (dx, dout) => backend.transpose12Backward(dx, dout, a, b, c, d));
}

/** Elements [start, start + length) along `dim` (negative counts from the end). */
export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const op = 'narrow';
  const backend = backendOf(op, x);
  requireDType(op, x, 'f32', 'x');
  const axis = dim < 0 ? x.ndim + dim : dim;
  if (!Number.isInteger(axis) || axis < 0 || axis >= x.ndim) {
    throw new ShapeError(op, `dim ${dim} is out of range for ${fmt(x.shape)}`, x.ndim, dim);
  }
  const size = x.shape[axis]!;
  requireInt(op, 'start', start, 0);
  requireInt(op, 'length', length, 0);
  if (start + length > size) {
    throw new ShapeError(op, `range [${start}, ${start + length}) exceeds dimension ${axis} of ${fmt(x.shape)}`, size, start + length);
  }
  const outer = shapeSize(x.shape.slice(0, axis));
  const inner = shapeSize(x.shape.slice(axis + 1));
  const shape = [...x.shape];
  shape[axis] = length;
  const out = output(backend, shape);
  backend.narrowForward(out.storage, x.storage, outer, size, inner, start, length);
  return recordSingleInput(op, out, x, (dx, dout) => backend.narrowBackward(dx, dout, outer, size, inner, start, length));
}

/** Joins a and b along `dim` (all other dimensions equal), e.g. a KV cache [B, H, t, D]
 * with the new step's [B, H, 1, D]. Built on the narrow kernels: each input is scattered
 * into its slice of a zero-filled output. */
export function concat(a: Tensor, b: Tensor, dim: number): Tensor {
  const op = 'concat';
  const backend = backendOf(op, a, b);
  requireDType(op, a, 'f32', 'a');
  requireDType(op, b, 'f32', 'b');
  const axis = dim < 0 ? a.ndim + dim : dim;
  if (a.ndim !== b.ndim || axis < 0 || axis >= a.ndim || a.shape.some((d, i) => i !== axis && d !== b.shape[i])) {
    throw new ShapeError(op, `cannot join ${fmt(a.shape)} and ${fmt(b.shape)} along dim ${dim}`, a.shape, b.shape);
  }
  const outer = shapeSize(a.shape.slice(0, axis));
  const inner = shapeSize(a.shape.slice(axis + 1));
  const la = a.shape[axis]!;
  const lb = b.shape[axis]!;
  const shape = [...a.shape];
  shape[axis] = la + lb;
  const out = empty(backend, shape);
  backend.narrowBackward(out.storage, a.storage, outer, la + lb, inner, 0, la);
  backend.narrowBackward(out.storage, b.storage, outer, la + lb, inner, la, lb);
  return record(out, {
    op,
    inputs: [a, b],
    saved: [],
    backward: (dout, grad) => {
      const parts: [Storage | null, number, number][] = [[grad(0), 0, la], [grad(1), la, lb]];
      for (const [g, start, len] of parts) {
        if (!g) continue;
        const slice = backend.allocUninit('f32', outer * len * inner);
        backend.narrowForward(slice, dout, outer, la + lb, inner, start, len);
        backend.accumulate(g, slice, 1);
        backend.free(slice);
      }
    },
  });
}

/** Rows of x along dim 0 picked by i32 `indices` [N]: [N, ...x.shape[1:]] (beam search
 * reorders its caches with it). Gradients scatter back (the embedding kernels). */
export function indexSelect(x: Tensor, indices: Tensor): Tensor {
  const op = 'indexSelect';
  const backend = backendOf(op, x, indices);
  requireDType(op, x, 'f32', 'x');
  requireDType(op, indices, 'i32', 'indices');
  if (x.ndim < 1 || indices.ndim !== 1) {
    throw new ShapeError(op, `x must have a leading axis and indices must be 1-D, got x ${fmt(x.shape)} and indices ${fmt(indices.shape)}`);
  }
  const rows = x.shape[0]!;
  const values = backend.read(indices.storage);
  for (let i = 0; i < values.length; i++) {
    if (values[i]! < 0 || values[i]! >= rows) throw new ShapeError(op, `index ${values[i]} at position ${i} is outside [0, ${rows})`, rows, values[i]);
  }
  const rowSize = shapeSize(x.shape.slice(1));
  const out = output(backend, [indices.size, ...x.shape.slice(1)]);
  backend.embeddingForward(out.storage, indices.storage, x.storage, rowSize);
  return record(out, {
    op,
    inputs: [x, indices],
    saved: [],
    backward: (dout, grad) => {
      const dx = grad(0);
      if (dx) backend.embeddingBackward(dx, dout, indices.storage, rowSize);
    },
  });
}
