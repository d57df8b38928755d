// The Backend interface: one method per kernel of crates/kernels, over backend-owned
// storage. The layers above (tensor, autograd, ops) validate shapes before calling here, so a
// backend may assume dimensions are consistent; native and wasm still re-check lengths in
// Rust and throw a RangeError naming the op rather than touching memory out of bounds.
//
// Conventions (identical to the Rust kernels, see crates/kernels/src):
// - outputs first, then saved statistics, inputs, parameters, dimensions;
// - every `*Backward` ACCUMULATES (+=) into its gradient outputs;
// - masks are u8 storage, 1 = keep / attend, 0 = masked;
// - an output storage never aliases an input storage.

export type DType = 'f32' | 'i32' | 'u8';
export type BackendName = 'native' | 'wasm' | 'reference';

/** Optional abilities, used by tests to skip by name (never by string matching). */
export type Capability = 'threads' | 'simd' | 'float64';

/** Backend-owned memory: a Float32Array (native), {ptr,len} in wasm memory (wasm),
 * a Float64Array (reference). Opaque above the backend layer. */
export interface Storage {
  readonly dtype: DType;
  readonly length: number;
}

export type HostArray = Float32Array | Float64Array | Int32Array | Uint8Array;

/** The activation fused into a linear call, and the code the Rust shims take for it. */
export type LinearActivation = 'identity' | 'relu' | 'gelu' | 'gelu_tanh';
export const LINEAR_ACTIVATION_CODE: Readonly<Record<LinearActivation, number>> = { identity: 0, relu: 1, gelu: 2, gelu_tanh: 3 };

/** The GELUs' backward reads the pre-activation (ReLU's reads the output, y > 0 iff pre > 0). */
export function keepsPreActivation(activation: LinearActivation): boolean {
  return activation === 'gelu' || activation === 'gelu_tanh';
}

/** `setMinParallelFlops` of the native and wasm backends takes a whole number of flops, 0 or more. */
export function checkMinParallelFlops(flops: number): void {
  if (!(Number.isSafeInteger(flops) && flops >= 0)) {
    throw new RangeError(`setMinParallelFlops: flops must be an integer >= 0, got ${flops}`);
  }
}

export interface Backend {
  readonly name: BackendName;
  readonly capabilities: ReadonlySet<Capability>;

  /** Worker threads used by matmul and attention (1 where the backend has no threads). */
  getThreads(): number;
  setThreads(n: number): void;

  // ---- memory --------------------------------------------------------------------------
  /** Zero-filled storage of `length` elements. */
  alloc(dtype: DType, length: number): Storage;
  /** Storage whose contents are unspecified (a reused buffer keeps stale values): only for
   * an output the next kernel overwrites entirely. Saves alloc's zero-fill. */
  allocUninit(dtype: DType, length: number): Storage;
  /** New storage holding a copy of `data` converted to `dtype`. */
  fromArray(dtype: DType, data: ArrayLike<number>): Storage;
  /** A copy of the contents: Float32Array (f32 on native/wasm), Float64Array (f32 on
   * reference), Int32Array (i32), Uint8Array (u8). */
  read(s: Storage): HostArray;
  /** Overwrites the contents with `data` (same length). */
  write(s: Storage, data: ArrayLike<number>): void;
  /** Overwrites elements [offset, offset + data.length): a large tensor is filled chunk by
   * chunk (checkpoint loading) without a host copy of the whole of it. */
  writeAt(s: Storage, offset: number, data: ArrayLike<number>): void;
  fill(s: Storage, value: number): void;
  /** dst = src, same dtype and length. */
  copy(dst: Storage, src: Storage): void;
  /** Returns the memory; the storage must not be used afterwards. Idempotent. */
  free(s: Storage): void;

  // ---- kernels (see crates/kernels/src/ops for each definition) ------------------------
  matmulForward(out: Storage, a: Storage, b: Storage, batch: number, m: number, k: number, n: number,
    transA: boolean, transB: boolean, accumulate: boolean): void;
  matmulBackward(da: Storage | null, db: Storage | null, dout: Storage, a: Storage, b: Storage,
    batch: number, m: number, k: number, n: number, transA: boolean, transB: boolean): void;

  /** out [rows, outF] = act(x [rows, inF] · weight [outF, inF]ᵀ + bias); `pre` (the GELUs
   * only, else null) receives the pre-activation its backward needs. */
  linearForward(out: Storage, pre: Storage | null, x: Storage, weight: Storage, bias: Storage | null,
    rows: number, inF: number, outF: number, activation: LinearActivation): void;
  /** dx, dweight, dbias accumulate; dpre [rows, outF] is scratch (overwritten); saved is the
   * forward's out (ReLU) or pre (the GELUs). dpre and saved are null for the identity. */
  linearBackward(dx: Storage | null, dweight: Storage | null, dbias: Storage | null, dpre: Storage | null,
    dout: Storage, x: Storage, weight: Storage, saved: Storage | null, rows: number, inF: number, outF: number,
    activation: LinearActivation): void;

  softmaxForward(out: Storage, inp: Storage, mask: Storage | null, rows: number, cols: number): void;
  softmaxBackward(dinp: Storage, dout: Storage, out: Storage, rows: number, cols: number): void;

  layernormForward(out: Storage, mean: Storage, rstd: Storage, inp: Storage, weight: Storage,
    bias: Storage, rows: number, dim: number, eps: number): void;
  layernormBackward(dinp: Storage, dweight: Storage, dbias: Storage, dout: Storage, inp: Storage,
    weight: Storage, mean: Storage, rstd: Storage, rows: number, dim: number): void;

  /** Flash attention: lse [B, H, Tq] (log-sum-exp of each row's scaled scores, -inf where
   * no key is visible) is saved instead of the [Tq, Tk] weights. */
  attentionForward(out: Storage, lse: Storage, q: Storage, k: Storage, v: Storage,
    keyMask: Storage | null, b: number, h: number, tq: number, tk: number, d: number,
    causal: boolean, scale: number): void;
  /** The weights [B, H, Tq, Tk] of a forward pass, rebuilt from its lse (for attention maps). */
  attentionProbs(probs: Storage, q: Storage, k: Storage, lse: Storage, keyMask: Storage | null,
    b: number, h: number, tq: number, tk: number, d: number, causal: boolean, scale: number): void;
  /** Recomputes the weights tile by tile from q, k and lse; `out` is the forward's output. */
  attentionBackward(dq: Storage, dk: Storage, dv: Storage, dout: Storage, q: Storage, k: Storage,
    v: Storage, out: Storage, lse: Storage, keyMask: Storage | null, b: number, h: number,
    tq: number, tk: number, d: number, causal: boolean, scale: number): void;

  reluForward(out: Storage, inp: Storage): void;
  reluBackward(dinp: Storage, dout: Storage, inp: Storage): void;
  geluForward(out: Storage, inp: Storage): void;
  geluBackward(dinp: Storage, dout: Storage, inp: Storage): void;
  /** GELU's tanh approximation (GPT-2's `gelu_new`). */
  geluTanhForward(out: Storage, inp: Storage): void;
  geluTanhBackward(dinp: Storage, dout: Storage, inp: Storage): void;

  /** ids: i32 storage; dim = table row length. */
  embeddingForward(out: Storage, ids: Storage, table: Storage, dim: number): void;
  embeddingBackward(dtable: Storage, dout: Storage, ids: Storage, dim: number): void;

  crossEntropyForward(loss: Storage, lse: Storage, logits: Storage, targets: Storage,
    rows: number, vocab: number, ignoreIndex: number, labelSmoothing: number): void;
  crossEntropyBackward(dlogits: Storage, dloss: Storage, logits: Storage, lse: Storage,
    targets: Storage, rows: number, vocab: number, ignoreIndex: number, labelSmoothing: number): void;

  /** keep: u8 storage. seed and offset are u32. */
  dropoutForward(out: Storage, keep: Storage, inp: Storage, p: number, seed: number, offset: number): void;
  dropoutBackward(dinp: Storage, dout: Storage, keep: Storage, p: number): void;

  addForward(out: Storage, a: Storage, b: Storage): void;
  /** dst += alpha * src */
  accumulate(dst: Storage, src: Storage, alpha: number): void;
  scaleForward(out: Storage, inp: Storage, s: number): void;
  scaleInplace(x: Storage, s: number): void;
  mulForward(out: Storage, a: Storage, b: Storage): void;
  biasAddForward(out: Storage, inp: Storage, bias: Storage, rows: number, cols: number): void;
  biasAddBackward(dbias: Storage, dout: Storage, rows: number, cols: number): void;
  transpose12Forward(out: Storage, inp: Storage, a: number, b: number, c: number, d: number): void;
  transpose12Backward(dinp: Storage, dout: Storage, a: number, b: number, c: number, d: number): void;
  narrowForward(out: Storage, inp: Storage, outer: number, dim: number, inner: number,
    start: number, len: number): void;
  narrowBackward(dinp: Storage, dout: Storage, outer: number, dim: number, inner: number,
    start: number, len: number): void;
  /** Sum of squares, accumulated in float64. */
  sumSquares(x: Storage): number;

  /** In-place Adam/AdamW update of param, m, v (see crates/kernels/src/optim/adam.rs). */
  adamUpdate(param: Storage, m: Storage, v: Storage, grad: Storage, lr: number, beta1: number,
    beta2: number, eps: number, weightDecay: number, step: number, decoupled: boolean): void;
}
