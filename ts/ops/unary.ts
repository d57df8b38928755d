// Elementwise unary math through one kernel with an op code (crates/kernels/src/ops/unary.rs),
// with PyTorch's values and gradient conventions: relu and abs have gradient 0 at 0, clamp
// passes it only strictly inside (min, max), softplus is x itself where beta * x > threshold,
// NaN propagates.
import { ConfigError, checkOptions } from '../tensor/errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { backendOf, output, recordSingleInput, requireDType, requireFinite } from './validate.js';

/** The UnaryOp codes of crates/kernels/src/ops/unary.rs. */
export const UNARY = {
  exp: 0, log: 1, sqrt: 2, rsqrt: 3, tanh: 4, sigmoid: 5, relu: 6, gelu: 7, geluTanh: 8, silu: 9,
  softplus: 10, abs: 11, neg: 12, clamp: 13,
  addScalar: 14, rsubScalar: 15, mulScalar: 16, divScalar: 17, rdivScalar: 18, powScalar: 19, rpowScalar: 20,
} as const;

/** y = op(x) by code, p0 / p1 its scalars; backward accumulates dy * op'(x). */
export function unaryOp(x: Tensor, code: number, p0: number, p1: number, op: string): Tensor {
  const backend = backendOf(op, x);
  requireDType(op, x, 'f32', 'x');
  const out = output(backend, x.shape);
  backend.unaryForward(out.storage, x.storage, code, p0, p1);
  return recordSingleInput(op, out, x, (dx, dout) => backend.unaryBackward(dx, dout, x.storageFor(op), code, p0, p1));
}

const simple = (name: keyof typeof UNARY) => (x: Tensor): Tensor => unaryOp(x, UNARY[name], 0, 0, name);

export const exp = simple('exp');
export const log = simple('log');
export const sqrt = simple('sqrt');
export const rsqrt = simple('rsqrt');
export const tanh = simple('tanh');
export const sigmoid = simple('sigmoid');
/** x * sigmoid(x). */
export const silu = simple('silu');
/** |x|; gradient sign(x), 0 at 0. */
export const abs = simple('abs');
export const neg = simple('neg');

export interface SoftplusOptions {
  /** PyTorch's beta (default 1). */
  beta?: number;
  /** Above beta * x > threshold the result is x itself (default 20). */
  threshold?: number;
}

/** log(1 + exp(beta x)) / beta, or x where beta * x > threshold (PyTorch's softplus). */
export function softplus(x: Tensor, options: SoftplusOptions = {}): Tensor {
  const op = 'softplus';
  checkOptions(op, options, ['beta', 'threshold']);
  const beta = options.beta ?? 1;
  const threshold = options.threshold ?? 20;
  requireFinite(op, 'beta', beta);
  requireFinite(op, 'threshold', threshold);
  if (beta === 0) throw new ConfigError(op, 'beta must not be 0');
  return unaryOp(x, UNARY.softplus, beta, threshold, op);
}

/** x limited to [min, max] (either bound may be null); NaN stays NaN; the gradient passes
 * only where min < x < max. */
export function clamp(x: Tensor, min: number | null = null, max: number | null = null): Tensor {
  const op = 'clamp';
  if (min === null && max === null) throw new ConfigError(op, 'at least one of min and max must be given');
  for (const [name, v] of [['min', min], ['max', max]] as const) {
    if (v !== null && (typeof v !== 'number' || Number.isNaN(v))) throw new ConfigError(op, `${name} must be a number or null, got ${String(v)}`);
  }
  return unaryOp(x, UNARY.clamp, min ?? -Infinity, max ?? Infinity, op);
}
