// The Backend interface: one method per kernel of crates/kernels, over backend-owned
// storage. The layers above (tensor, autograd, ops) validate shapes before calling here, so a
// backend may assume dimensions are consistent; native and wasm still re-check lengths in
// Rust and throw a RangeError naming the op rather than touching memory out of bounds.
//
// The kernel methods (`Kernels`) are generated from scripts/kernel-table.mjs, with the lengths
// each buffer must have. Conventions (identical to the Rust kernels, see crates/kernels/src):
// - outputs first, then saved statistics, inputs, parameters, dimensions;
// - every `*Backward` ACCUMULATES (+=) into its gradient outputs;
// - masks are u8 storage, 1 = keep / attend, 0 = masked;
// - an output storage never aliases an input storage.

import type { Kernels } from './kernels.generated.js';

export type { Kernels } from './kernels.generated.js';
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

/** Whether a fused linear's forward saves act'(pre-activation) for its backward: the GELUs do
 * (backward is then dout ∘ act'); ReLU's backward reads the output (y > 0 iff pre > 0). */
export function savesActGrad(activation: LinearActivation): boolean {
  return activation === 'gelu' || activation === 'gelu_tanh';
}

/** `setMinParallelFlops` of the native and wasm backends takes a whole number of flops, 0 or more. */
export function checkMinParallelFlops(flops: number): void {
  if (!(Number.isSafeInteger(flops) && flops >= 0)) {
    throw new RangeError(`setMinParallelFlops: flops must be an integer >= 0, got ${flops}`);
  }
}

/** Memory and threads; the kernels (`Kernels`) are generated from scripts/kernel-table.mjs. */
export interface Backend extends Kernels {
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
}
