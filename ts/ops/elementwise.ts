// Elementwise arithmetic and layout ops that the layers are built from.
import { record } from '../autograd/tape.js';
import { ShapeError } from '../tensor/errors.js';
import { shapeSize, type Shape, type Tensor } from '../tensor/tensor.js';
import { backendOf, empty, fmt, requireDType, requireFinite, requireInt, requireShape } from './validate.js';

/** a + b, same shape (residual connections). */
export function add(a: Tensor, b: Tensor): Tensor {
  const op = 'add';
  const backend = backendOf(op, a, b);
  requireDType(op, a, 'f32', 'a');
  requireDType(op, b, 'f32', 'b');
  requireShape(op, b, a.shape, 'b (same as a)');
  const out = empty(backend, a.shape);
  backend.addForward(out.storage, a.storage, b.storage);
  return record(out, {
    op,
    inputs: [a, b],
    saved: [],
    backward: (dout, grad) => {
      const da = grad(0);
      const db = grad(1);
      if (da) backend.accumulate(da, dout, 1);
      if (db) backend.accumulate(db, dout, 1);
    },
  });
}

/** a * b elementwise, same shape. */
export function mul(a: Tensor, b: Tensor): Tensor {
  const op = 'mul';
  const backend = backendOf(op, a, b);
  requireDType(op, a, 'f32', 'a');
  requireDType(op, b, 'f32', 'b');
  requireShape(op, b, a.shape, 'b (same as a)');
  const out = empty(backend, a.shape);
  backend.mulForward(out.storage, a.storage, b.storage);
  return record(out, {
    op,
    inputs: [a, b],
    saved: [],
    backward: (dout, grad) => {
      // d(a*b)/da = b: multiply into a scratch buffer, then accumulate.
      const scratch = backend.alloc('f32', a.size);
      const da = grad(0);
      const db = grad(1);
      if (da) {
        backend.mulForward(scratch, dout, b.storage);
        backend.accumulate(da, scratch, 1);
      }
      if (db) {
        backend.mulForward(scratch, dout, a.storage);
        backend.accumulate(db, scratch, 1);
      }
      backend.free(scratch);
    },
  });
}

/** x * s for a number s. */
export function scale(x: Tensor, s: number): Tensor {
  const op = 'scale';
  const backend = backendOf(op, x);
  requireDType(op, x, 'f32', 'x');
  requireFinite(op, 'factor', s);
  const out = empty(backend, x.shape);
  backend.scaleForward(out.storage, x.storage, s);
  return record(out, {
    op,
    inputs: [x],
    saved: [],
    backward: (dout, grad) => {
      const dx = grad(0);
      if (dx) backend.accumulate(dx, dout, s);
    },
  });
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
  const out = empty(backend, x.shape);
  backend.biasAddForward(out.storage, x.storage, bias.storage, rows, cols);
  return record(out, {
    op,
    inputs: [x, bias],
    saved: [],
    backward: (dout, grad) => {
      const dx = grad(0);
      const db = grad(1);
      if (dx) backend.accumulate(dx, dout, 1);
      if (db) backend.biasAddBackward(db, dout, rows, cols);
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
    backward: (dout, grad) => {
      const dx = grad(0);
      if (dx) backend.accumulate(dx, dout, 1);
    },
  });
}

/** Swaps axes 1 and 2 of a 4-D tensor: [A, B, C, D] -> [A, C, B, D] (split/merge heads). */
export function transpose12(x: Tensor): Tensor {
  const op = 'transpose12';
  const backend = backendOf(op, x);
  requireDType(op, x, 'f32', 'x');
  if (x.ndim !== 4) throw new ShapeError(op, `x must be 4-D, got ${fmt(x.shape)}`, 4, x.shape);
  const [a, b, c, d] = x.shape as [number, number, number, number];
  const out = empty(backend, [a, c, b, d]);
  backend.transpose12Forward(out.storage, x.storage, a, b, c, d);
  return record(out, {
    op,
    inputs: [x],
    saved: [],
    backward: (dout, grad) => {
      const dx = grad(0);
      if (dx) backend.transpose12Backward(dx, dout, a, b, c, d);
    },
  });
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
  const out = empty(backend, shape);
  backend.narrowForward(out.storage, x.storage, outer, size, inner, start, length);
  return record(out, {
    op,
    inputs: [x],
    saved: [],
    backward: (dout, grad) => {
      const dx = grad(0);
      if (dx) backend.narrowBackward(dx, dout, outer, size, inner, start, length);
    },
  });
}
