// Tensor methods that chain (x.matmul(w).add(b).relu().sum()), as PyTorch's: a thin layer that
// delegates to the ops. The tensor layer cannot import the ops (they sit above it), so the
// ops install their functions here (ts/ops/index.ts calls installTensorMethods once).
import { Tensor, type Shape } from './tensor.js';

type Dims = number | readonly number[] | null;
interface Keepdim {
  keepdim?: boolean;
}
interface MaxResult {
  values: Tensor;
  indices: Tensor;
}

/** The op each method calls, with the tensor as its first argument. */
export interface TensorMethodOps {
  add(a: Tensor, b: Tensor | number): Tensor;
  sub(a: Tensor, b: Tensor | number): Tensor;
  mul(a: Tensor, b: Tensor | number): Tensor;
  div(a: Tensor, b: Tensor | number): Tensor;
  pow(a: Tensor, b: Tensor | number): Tensor;
  maximum(a: Tensor, b: Tensor | number): Tensor;
  minimum(a: Tensor, b: Tensor | number): Tensor;
  eq(a: Tensor, b: Tensor | number): Tensor;
  ne(a: Tensor, b: Tensor | number): Tensor;
  lt(a: Tensor, b: Tensor | number): Tensor;
  le(a: Tensor, b: Tensor | number): Tensor;
  gt(a: Tensor, b: Tensor | number): Tensor;
  ge(a: Tensor, b: Tensor | number): Tensor;
  matmul(a: Tensor, b: Tensor): Tensor;
  exp(x: Tensor): Tensor;
  log(x: Tensor): Tensor;
  sqrt(x: Tensor): Tensor;
  rsqrt(x: Tensor): Tensor;
  tanh(x: Tensor): Tensor;
  sigmoid(x: Tensor): Tensor;
  relu(x: Tensor): Tensor;
  gelu(x: Tensor): Tensor;
  geluTanh(x: Tensor): Tensor;
  silu(x: Tensor): Tensor;
  softplus(x: Tensor, options?: { beta?: number; threshold?: number }): Tensor;
  abs(x: Tensor): Tensor;
  neg(x: Tensor): Tensor;
  clamp(x: Tensor, min?: number | null, max?: number | null): Tensor;
  sum(x: Tensor, dim?: Dims, options?: Keepdim): Tensor;
  mean(x: Tensor, dim?: Dims, options?: Keepdim): Tensor;
  variance(x: Tensor, dim?: Dims, options?: Keepdim & { correction?: number }): Tensor;
  amax(x: Tensor, dim?: Dims, options?: Keepdim): Tensor;
  amin(x: Tensor, dim?: Dims, options?: Keepdim): Tensor;
  logsumexp(x: Tensor, dim: Dims, options?: Keepdim): Tensor;
  max(x: Tensor, dim: number, options?: Keepdim): MaxResult;
  min(x: Tensor, dim: number, options?: Keepdim): MaxResult;
  argmax(x: Tensor, dim?: number | null, options?: Keepdim): Tensor;
  argmin(x: Tensor, dim?: number | null, options?: Keepdim): Tensor;
  softmaxDim(x: Tensor, dim: number): Tensor;
  logSoftmax(x: Tensor, dim: number): Tensor;
  reshape(x: Tensor, shape: Shape): Tensor;
  permute(x: Tensor, perm: readonly number[]): Tensor;
  transpose(x: Tensor, dim0: number, dim1: number): Tensor;
  expand(x: Tensor, sizes: readonly number[]): Tensor;
  squeeze(x: Tensor, dim?: number | null): Tensor;
  unsqueeze(x: Tensor, dim: number): Tensor;
  flatten(x: Tensor, startDim?: number, endDim?: number): Tensor;
  narrow(x: Tensor, dim: number, start: number, length: number): Tensor;
  slice(x: Tensor, dim: number, start?: number | null, stop?: number | null, step?: number): Tensor;
  split(x: Tensor, splitSizeOrSections: number | readonly number[], dim?: number): Tensor[];
  chunk(x: Tensor, chunks: number, dim?: number): Tensor[];
  indexSelect(x: Tensor, dim: number, index: Tensor): Tensor;
  gather(x: Tensor, dim: number, index: Tensor): Tensor;
  scatterAdd(x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor;
  maskedFill(x: Tensor, mask: Tensor, value: number): Tensor;
  tril(x: Tensor, diagonal?: number): Tensor;
  triu(x: Tensor, diagonal?: number): Tensor;
}

declare module './tensor.js' {
  interface Tensor {
    add(other: Tensor | number): Tensor;
    sub(other: Tensor | number): Tensor;
    mul(other: Tensor | number): Tensor;
    div(other: Tensor | number): Tensor;
    pow(exponent: Tensor | number): Tensor;
    maximum(other: Tensor | number): Tensor;
    minimum(other: Tensor | number): Tensor;
    eq(other: Tensor | number): Tensor;
    ne(other: Tensor | number): Tensor;
    lt(other: Tensor | number): Tensor;
    le(other: Tensor | number): Tensor;
    gt(other: Tensor | number): Tensor;
    ge(other: Tensor | number): Tensor;
    matmul(other: Tensor): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    rsqrt(): Tensor;
    tanh(): Tensor;
    sigmoid(): Tensor;
    relu(): Tensor;
    /** approximate: 'none' (exact, default) or 'tanh', as PyTorch's gelu. */
    gelu(options?: { approximate?: 'none' | 'tanh' }): Tensor;
    silu(): Tensor;
    softplus(options?: { beta?: number; threshold?: number }): Tensor;
    abs(): Tensor;
    neg(): Tensor;
    clamp(min?: number | null, max?: number | null): Tensor;
    sum(dim?: Dims, options?: Keepdim): Tensor;
    mean(dim?: Dims, options?: Keepdim): Tensor;
    /** Variance with correction (default 1, unbiased). */
    var(dim?: Dims, options?: Keepdim & { correction?: number }): Tensor;
    amax(dim?: Dims, options?: Keepdim): Tensor;
    amin(dim?: Dims, options?: Keepdim): Tensor;
    logsumexp(dim: Dims, options?: Keepdim): Tensor;
    /** Without a dim: the max of all elements (0-d); with one: values and first indices. */
    max(): Tensor;
    max(dim: number, options?: Keepdim): MaxResult;
    min(): Tensor;
    min(dim: number, options?: Keepdim): MaxResult;
    argmax(dim?: number | null, options?: Keepdim): Tensor;
    argmin(dim?: number | null, options?: Keepdim): Tensor;
    softmax(dim: number): Tensor;
    logSoftmax(dim: number): Tensor;
    reshape(shape: readonly number[]): Tensor;
    reshape(...shape: number[]): Tensor;
    view(shape: readonly number[]): Tensor;
    view(...shape: number[]): Tensor;
    permute(dims: readonly number[]): Tensor;
    permute(...dims: number[]): Tensor;
    transpose(dim0: number, dim1: number): Tensor;
    expand(sizes: readonly number[]): Tensor;
    expand(...sizes: number[]): Tensor;
    squeeze(dim?: number | null): Tensor;
    unsqueeze(dim: number): Tensor;
    flatten(startDim?: number, endDim?: number): Tensor;
    narrow(dim: number, start: number, length: number): Tensor;
    /** Python's x[..., start:stop:step] along dim. */
    slice(dim: number, start?: number | null, stop?: number | null, step?: number): Tensor;
    split(splitSizeOrSections: number | readonly number[], dim?: number): Tensor[];
    chunk(chunks: number, dim?: number): Tensor[];
    indexSelect(dim: number, index: Tensor): Tensor;
    gather(dim: number, index: Tensor): Tensor;
    scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor;
    maskedFill(mask: Tensor, value: number): Tensor;
    tril(diagonal?: number): Tensor;
    triu(diagonal?: number): Tensor;
  }
}

type SizeArgs = number[] | [readonly number[]];
/** x.reshape(2, 3) and x.reshape([2, 3]) alike, as PyTorch. */
const sizesOf = (args: SizeArgs): readonly number[] => (args.length === 1 && Array.isArray(args[0]) ? args[0] : (args as number[]));

/** Installs the methods on Tensor.prototype (idempotent). */
export function installTensorMethods(ops: TensorMethodOps): void {
  const methods: Record<string, (this: Tensor, ...args: never[]) => unknown> = {
    add(other: Tensor | number) { return ops.add(this, other); },
    sub(other: Tensor | number) { return ops.sub(this, other); },
    mul(other: Tensor | number) { return ops.mul(this, other); },
    div(other: Tensor | number) { return ops.div(this, other); },
    pow(exponent: Tensor | number) { return ops.pow(this, exponent); },
    maximum(other: Tensor | number) { return ops.maximum(this, other); },
    minimum(other: Tensor | number) { return ops.minimum(this, other); },
    eq(other: Tensor | number) { return ops.eq(this, other); },
    ne(other: Tensor | number) { return ops.ne(this, other); },
    lt(other: Tensor | number) { return ops.lt(this, other); },
    le(other: Tensor | number) { return ops.le(this, other); },
    gt(other: Tensor | number) { return ops.gt(this, other); },
    ge(other: Tensor | number) { return ops.ge(this, other); },
    matmul(other: Tensor) { return ops.matmul(this, other); },
    exp() { return ops.exp(this); },
    log() { return ops.log(this); },
    sqrt() { return ops.sqrt(this); },
    rsqrt() { return ops.rsqrt(this); },
    tanh() { return ops.tanh(this); },
    sigmoid() { return ops.sigmoid(this); },
    relu() { return ops.relu(this); },
    gelu(options: { approximate?: 'none' | 'tanh' } = {}) {
      return (options.approximate ?? 'none') === 'tanh' ? ops.geluTanh(this) : ops.gelu(this);
    },
    silu() { return ops.silu(this); },
    softplus(options?: { beta?: number; threshold?: number }) { return ops.softplus(this, options); },
    abs() { return ops.abs(this); },
    neg() { return ops.neg(this); },
    clamp(min?: number | null, max?: number | null) { return ops.clamp(this, min, max); },
    sum(dim?: Dims, options?: Keepdim) { return ops.sum(this, dim, options); },
    mean(dim?: Dims, options?: Keepdim) { return ops.mean(this, dim, options); },
    var(dim?: Dims, options?: Keepdim & { correction?: number }) { return ops.variance(this, dim, options); },
    amax(dim?: Dims, options?: Keepdim) { return ops.amax(this, dim, options); },
    amin(dim?: Dims, options?: Keepdim) { return ops.amin(this, dim, options); },
    logsumexp(dim: Dims, options?: Keepdim) { return ops.logsumexp(this, dim, options); },
    max(dim?: number, options?: Keepdim) { return dim === undefined ? ops.amax(this) : ops.max(this, dim, options); },
    min(dim?: number, options?: Keepdim) { return dim === undefined ? ops.amin(this) : ops.min(this, dim, options); },
    argmax(dim?: number | null, options?: Keepdim) { return ops.argmax(this, dim, options); },
    argmin(dim?: number | null, options?: Keepdim) { return ops.argmin(this, dim, options); },
    softmax(dim: number) { return ops.softmaxDim(this, dim); },
    logSoftmax(dim: number) { return ops.logSoftmax(this, dim); },
    reshape(...shape: SizeArgs) { return ops.reshape(this, sizesOf(shape)); },
    view(...shape: SizeArgs) { return ops.reshape(this, sizesOf(shape)); },
    permute(...dims: SizeArgs) { return ops.permute(this, sizesOf(dims)); },
    transpose(dim0: number, dim1: number) { return ops.transpose(this, dim0, dim1); },
    expand(...sizes: SizeArgs) { return ops.expand(this, sizesOf(sizes)); },
    squeeze(dim?: number | null) { return ops.squeeze(this, dim); },
    unsqueeze(dim: number) { return ops.unsqueeze(this, dim); },
    flatten(startDim?: number, endDim?: number) { return ops.flatten(this, startDim, endDim); },
    narrow(dim: number, start: number, length: number) { return ops.narrow(this, dim, start, length); },
    slice(dim: number, start?: number | null, stop?: number | null, step?: number) { return ops.slice(this, dim, start, stop, step); },
    split(sizes: number | readonly number[], dim?: number) { return ops.split(this, sizes, dim); },
    chunk(chunks: number, dim?: number) { return ops.chunk(this, chunks, dim); },
    indexSelect(dim: number, index: Tensor) { return ops.indexSelect(this, dim, index); },
    gather(dim: number, index: Tensor) { return ops.gather(this, dim, index); },
    scatterAdd(dim: number, index: Tensor, src: Tensor) { return ops.scatterAdd(this, dim, index, src); },
    maskedFill(mask: Tensor, value: number) { return ops.maskedFill(this, mask, value); },
    tril(diagonal?: number) { return ops.tril(this, diagonal); },
    triu(diagonal?: number) { return ops.triu(this, diagonal); },
  };
  for (const [name, fn] of Object.entries(methods)) {
    Object.defineProperty(Tensor.prototype, name, { value: fn, writable: true, configurable: true, enumerable: false });
  }
}
