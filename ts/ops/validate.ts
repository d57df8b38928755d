// Checks shared by the ops: everything is validated here, in TypeScript, before a kernel
// runs, so a bad call throws a typed error naming the op and leaves the backend untouched.
import type { Backend, DType, Storage } from '../backend/backend.js';
import { record } from '../autograd/tape.js';
import { ConfigError, DTypeError, ShapeError } from '../tensor/errors.js';
import { Tensor, checkSize, shapeSize, type GradTarget, type Shape } from '../tensor/tensor.js';
import { checkFiniteStorage, getCheckNumerics } from '../tensor/numerics.js';

export function fmt(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** The one backend all inputs share (mixing backends is an error). Also rejects
 * disposed inputs with a DisposedError naming the op. */
export function backendOf(op: string, ...tensors: (Tensor | null | undefined)[]): Backend {
  let backend: Backend | null = null;
  for (const t of tensors) {
    if (t == null) continue;
    t.storageFor(op);
    if (backend === null) backend = t.backend;
    else if (t.backend !== backend) {
      throw new ShapeError(op, `inputs live on different backends (${backend.name} and ${t.backend.name})`);
    }
  }
  if (backend === null) throw new ShapeError(op, 'no tensor input');
  if (getCheckNumerics()) {
    tensors.forEach((t, i) => {
      if (t != null) checkFiniteStorage(op, backend, t.storageFor(op), `input ${i} ${fmt(t.shape)}`);
    });
  }
  return backend;
}

export function requireDType(op: string, t: Tensor, dtype: DType, what: string): void {
  if (t.dtype !== dtype) throw new DTypeError(op, dtype, t.dtype, what);
}

export function requireRank(op: string, t: Tensor, ranks: readonly number[], what: string): void {
  if (!ranks.includes(t.ndim)) {
    throw new ShapeError(op, `${what} must have ${ranks.join(' or ')} dimensions, got ${fmt(t.shape)}`, ranks, t.shape);
  }
}

/** `what` may be a function, so a name built from other values costs nothing unless it throws. */
export function requireShape(op: string, t: Tensor, shape: Shape, what: string | (() => string)): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    const name = typeof what === 'string' ? what : what();
    throw new ShapeError(op, `${name} must have shape ${fmt(shape)}, got ${fmt(t.shape)}`, shape, t.shape);
  }
}

export function requireFinite(op: string, name: string, value: number): void {
  if (!Number.isFinite(value)) throw new ConfigError(op, `${name} must be a finite number, got ${value}`);
}

/** The (p, seed, offset) of a counter-RNG dropout: p in [0, 1), seed and offset u32. */
export function requireDropout(op: string, pName: string, p: number, seed: number | undefined, offset: number | undefined): void {
  if (!(p >= 0 && p < 1)) throw new ConfigError(op, `${pName} must be in [0, 1), got ${p}`);
  for (const [key, v] of [['seed', seed], ['offset', offset]] as const) {
    if (v === undefined) throw new ConfigError(op, `${pName} ${p} needs { seed, offset } (the mask is drawn from that counter stream)`);
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new ConfigError(op, `${key} must be a u32, got ${v}`);
  }
}

export function requireInt(op: string, name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new ConfigError(op, `${name} must be an integer >= ${min}, got ${value}`);
  }
}

/** A fresh zero-filled tensor on `backend` (for outputs a kernel accumulates into). */
export function empty(backend: Backend, shape: Shape, dtype: DType = 'f32'): Tensor {
  checkSize('output', shape);
  return new Tensor(backend.alloc(dtype, shapeSize(shape)), shape, backend);
}

/** A tensor for an op's output that its kernel overwrites entirely: no zero-fill, so the
 * contents are unspecified until the kernel runs. Only ops whose kernel writes every element
 * use it (checked by the poisoned parity run in test/parity/kernels.test.ts). */
export function output(backend: Backend, shape: Shape, dtype: DType = 'f32'): Tensor {
  checkSize('output', shape);
  return new Tensor(backend.allocUninit(dtype, shapeSize(shape)), shape, backend);
}

/** An op whose f32 inputs and output all share one shape (add, mul, scale, activations):
 * validates, allocates the output, runs `forward`, and records `backward`, which
 * accumulates into grad(i) for the inputs that need it. */
export function sameShapeOp(
  op: string,
  inputs: readonly [Tensor, string][],
  forward: (backend: Backend, out: Storage) => void,
  backward: (backend: Backend, dout: Storage, grad: (i: number) => Storage | null, adopt: (i: number) => boolean,
    gradTarget: (i: number) => GradTarget | null) => void,
): Tensor {
  // Built by push, not map: an optimised Array.prototype.map makes a holey array, another
  // hidden class than the other ops' input lists, and every function reading node.inputs
  // (the tape's) was deoptimised when V8 first optimised this one (W5 at step ~90).
  const tensors: Tensor[] = [];
  for (const [t] of inputs) tensors.push(t);
  const backend = backendOf(op, ...tensors);
  const [first] = inputs[0]!;
  for (const [t, what] of inputs) {
    requireDType(op, t, 'f32', what);
    if (t !== first) requireShape(op, t, first.shape, () => `${what} (same as ${inputs[0]![1]})`);
  }
  const out = output(backend, first.shape);
  forward(backend, out.storage);
  return record(out, { op, inputs: tensors, saved: [], backward: (dout, grad, adopt, gradTarget) => backward(backend, dout, grad, adopt, gradTarget) });
}

/** Records `out = f(x)` for one input whose backward only accumulates into x's gradient
 * (`dx += ...`, nothing saved): the shape of pointwise, view, narrow and reduction ops. */
export function recordSingleInput(op: string, out: Tensor, x: Tensor, accumulate: (dx: Storage, dout: Storage) => void): Tensor {
  return record(out, {
    op,
    inputs: [x],
    saved: [],
    backward: (dout, grad) => {
      const dx = grad(0);
      if (dx) accumulate(dx, dout);
    },
  });
}
