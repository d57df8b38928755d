// Elementwise binary ops with NumPy / PyTorch broadcasting (crates/kernels/src/ops/broadcast.rs):
// add, sub, mul, div, pow, maximum, minimum, the comparisons, where and masked_fill. A number
// operand uses the unary kernel's scalar forms (x + s, s - x, x / s, s / x, x ** s, s ** x).
// Same-shape add and mul keep their SIMD kernels (ts/ops/elementwise.ts).
import { record } from '../autograd/tape.js';
import { DTypeError, ShapeError } from '../tensor/errors.js';
import { libraryCall } from '../tensor/memory.js';
import { Tensor, shapeSize } from '../tensor/tensor.js';
import { add as addSameShape, mul as mulSameShape } from './elementwise.js';
import { broadcastShapes, broadcastStrides, withDims } from './shapes.js';
import { UNARY, unaryOp } from './unary.js';
import { backendOf, fmt, output, requireDType, requireFinite } from './validate.js';

/** The BinaryOp codes of crates/kernels/src/ops/broadcast.rs. */
export const BINARY = {
  add: 0, sub: 1, mul: 2, div: 3, pow: 4, maximum: 5, minimum: 6,
  eq: 7, ne: 8, lt: 9, le: 10, gt: 11, ge: 12,
} as const;
export type BinaryName = keyof typeof BINARY;

const COMPARISONS: readonly BinaryName[] = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'];

/** a op b broadcast; the backward sums each gradient over the dims its input was broadcast
 * along. Comparisons give a u8 mask (PyTorch's bool: 1 where true) and no gradient. */
export function binary(name: BinaryName, a: Tensor, b: Tensor): Tensor {
  const op = name;
  const backend = backendOf(op, a, b);
  requireDType(op, a, 'f32', 'a');
  requireDType(op, b, 'f32', 'b');
  const shape = broadcastShapes(op, a.shape, b.shape);
  const aStrides = broadcastStrides(a.shape, shape);
  const bStrides = broadcastStrides(b.shape, shape);
  const code = BINARY[name];
  if (COMPARISONS.includes(name)) {
    const mask = output(backend, shape, 'u8');
    withDims(op, backend, [shape, aStrides, bStrides], ([s, sa, sb]) =>
      backend.compareForward(mask.storage, a.storage, b.storage, s!, sa!, sb!, code));
    return mask;
  }
  const out = output(backend, shape);
  withDims(op, backend, [shape, aStrides, bStrides], ([s, sa, sb]) =>
    backend.binaryForward(out.storage, a.storage, b.storage, s!, sa!, sb!, code));
  return record(out, {
    op,
    inputs: [a, b],
    saved: [],
    backward: (dout, grad) => {
      const [da, db] = [grad(0), grad(1)];
      if (!da && !db) return;
      withDims(op, backend, [shape, aStrides, bStrides], ([s, sa, sb]) =>
        backend.binaryBackward(da, db, dout, a.storageFor(op), b.storageFor(op), s!, sa!, sb!, code));
    },
  });
}

/** A number operand on either side: the matching scalar form of the unary kernel. */
function withScalar(name: BinaryName, a: Tensor | number, b: Tensor | number): Tensor {
  if (typeof a === 'number' && typeof b === 'number') {
    throw new DTypeError(name, 'Tensor', 'number', 'a or b (at least one operand must be a tensor)');
  }
  if (typeof b === 'number') {
    requireFinite(name, 'the scalar', b);
    if (name === 'add') return unaryOp(a as Tensor, UNARY.addScalar, b, 0, 'add');
    if (name === 'sub') return unaryOp(a as Tensor, UNARY.addScalar, -b, 0, 'sub');
    if (name === 'mul') return unaryOp(a as Tensor, UNARY.mulScalar, b, 0, 'mul');
    if (name === 'div') return unaryOp(a as Tensor, UNARY.divScalar, b, 0, 'div');
    if (name === 'pow') return unaryOp(a as Tensor, UNARY.powScalar, b, 0, 'pow');
  } else if (typeof a === 'number') {
    requireFinite(name, 'the scalar', a);
    if (name === 'add') return unaryOp(b, UNARY.addScalar, a, 0, 'add');
    if (name === 'sub') return unaryOp(b, UNARY.rsubScalar, a, 0, 'sub');
    if (name === 'mul') return unaryOp(b, UNARY.mulScalar, a, 0, 'mul');
    if (name === 'div') return unaryOp(b, UNARY.rdivScalar, a, 0, 'div');
    if (name === 'pow') return unaryOp(b, UNARY.rpowScalar, a, 0, 'pow');
  }
  // maximum / minimum / comparisons with a number: a 0-d tensor on the same backend.
  // Its backward reads the 0-d tensor: made inside libraryCall, the graph owns (and frees) it.
  const t = (typeof a === 'number' ? b : a) as Tensor;
  return libraryCall(() => {
    const scalar = new Tensor(t.backend.fromArray('f32', [typeof a === 'number' ? a : (b as number)]), [], t.backend);
    const out = typeof a === 'number' ? binary(name, scalar, b as Tensor) : binary(name, a, scalar);
    if (!out.requiresGrad) scalar.dispose();
    return out;
  });
}

function sameShape(a: Tensor, b: Tensor): boolean {
  return a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]) && shapeSize(a.shape) > 0;
}

/** a + b with broadcasting (either may be a number). */
export function add(a: Tensor | number, b: Tensor | number): Tensor {
  if (a instanceof Tensor && b instanceof Tensor) return sameShape(a, b) ? addSameShape(a, b) : binary('add', a, b);
  return withScalar('add', a, b);
}

export function sub(a: Tensor | number, b: Tensor | number): Tensor {
  return a instanceof Tensor && b instanceof Tensor ? binary('sub', a, b) : withScalar('sub', a, b);
}

/** a * b with broadcasting (either may be a number). */
export function mul(a: Tensor | number, b: Tensor | number): Tensor {
  if (a instanceof Tensor && b instanceof Tensor) return sameShape(a, b) ? mulSameShape(a, b) : binary('mul', a, b);
  return withScalar('mul', a, b);
}

export function div(a: Tensor | number, b: Tensor | number): Tensor {
  return a instanceof Tensor && b instanceof Tensor ? binary('div', a, b) : withScalar('div', a, b);
}

export function pow(a: Tensor | number, b: Tensor | number): Tensor {
  return a instanceof Tensor && b instanceof Tensor ? binary('pow', a, b) : withScalar('pow', a, b);
}

const named = (name: BinaryName) => (a: Tensor | number, b: Tensor | number): Tensor =>
  a instanceof Tensor && b instanceof Tensor ? binary(name, a, b) : withScalar(name, a, b);

/** Elementwise max / min; ties split the gradient in half, NaN propagates (PyTorch). */
export const maximum = named('maximum');
export const minimum = named('minimum');
/** Comparisons: a u8 mask, 1 where true (PyTorch's bool), for where / maskedFill. */
export const eq = named('eq');
export const ne = named('ne');
export const lt = named('lt');
export const le = named('le');
export const gt = named('gt');
export const ge = named('ge');

/** cond (u8, nonzero = take a) ? a : b, all three broadcast together; a or b may be a number. */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  const op = 'where';
  if (a instanceof Tensor && b instanceof Tensor) return whereTensors(op, cond, a, b);
  return libraryCall(() => {
    const scalars: Tensor[] = [];
    const asTensor = (v: Tensor | number): Tensor => {
      if (v instanceof Tensor) return v;
      const t = new Tensor(cond.backend.fromArray('f32', [v]), [], cond.backend);
      scalars.push(t);
      return t;
    };
    const out = whereTensors(op, cond, asTensor(a), asTensor(b));
    if (!out.requiresGrad) for (const t of scalars) t.dispose();
    return out;
  });
}

function whereTensors(op: string, cond: Tensor, a: Tensor, b: Tensor): Tensor {
  const backend = backendOf(op, cond, a, b);
  requireDType(op, cond, 'u8', 'cond');
  requireDType(op, a, 'f32', 'a');
  requireDType(op, b, 'f32', 'b');
  const shape = broadcastShapes(op, cond.shape, a.shape, b.shape);
  const strides = [cond, a, b].map((t) => broadcastStrides(t.shape, shape));
  const out = output(backend, shape);
  withDims(op, backend, [shape, ...strides], ([s, sc, sa, sb]) =>
    backend.whereForward(out.storage, cond.storage, a.storage, b.storage, s!, sc!, sa!, sb!));
  return record(out, {
    op,
    inputs: [cond, a, b],
    saved: [],
    backward: (dout, grad) => {
      const [da, db] = [grad(1), grad(2)];
      if (!da && !db) return;
      withDims(op, backend, [shape, ...strides], ([s, sc, sa, sb]) =>
        backend.whereBackward(da, db, dout, cond.storageFor(op), s!, sc!, sa!, sb!));
    },
  });
}

/** x with `value` where mask (u8, broadcast against x) is nonzero: PyTorch's
 * masked_fill(mask, value). The filled positions get no gradient. */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  const op = 'maskedFill';
  const shape = broadcastShapes(op, x.shape, mask.shape);
  if (shape.length !== x.ndim || shape.some((d, i) => d !== x.shape[i])) {
    throw new ShapeError(op, `mask ${fmt(mask.shape)} must broadcast to the shape of x ${fmt(x.shape)}, not widen it to ${fmt(shape)}`, x.shape, mask.shape);
  }
  return where(mask, value, x);
}
