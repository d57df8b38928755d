// The float64 reference backend: the test oracle. Every kernel is the textbook loop over
// Float64Array (ts/backend/reference/, one file per area as in crates/kernels/src/ops), written
// to be read next to its Rust doc comment, not to be fast. f32 storage is a Float64Array here,
// so the oracle carries no f32 rounding of its own; i32 storage is an Int32Array, u8 storage a
// Uint8Array.
//
// Unlike native and wasm, this backend is called from gradient checks with hand-built
// buffers. Its kernel methods (ReferenceKernels, generated from scripts/kernel-table.mjs) run
// the shims' checks in the shims' order (ts/backend/check.ts, the messages of
// crates/kernels/src/check.rs), so a misuse gives the same RangeError here as on native and
// wasm, before the implementation reads past the end of a typed array.

import type { Backend, BackendName, Capability, DType, HostArray, Storage } from './backend.js';
import { HostStorage, hostMemory, liveHost, newHostArray } from './host_storage.js';
import { ReferenceKernels, type ReferenceArrays, type ReferenceKernelImpls } from './kernels.generated.js';
import * as activation from './reference/activation.js';
import * as adam from './reference/adam.js';
import * as attention from './reference/attention.js';
import * as crossEntropy from './reference/cross_entropy.js';
import * as dropout from './reference/dropout.js';
import * as elementwise from './reference/elementwise.js';
import * as embedding from './reference/embedding.js';
import * as heads from './reference/heads.js';
import * as layernorm from './reference/layernorm.js';
import * as matmul from './reference/matmul.js';
import * as softmax from './reference/softmax.js';
import * as tensorOps from './reference/tensor_ops.js';

export { erf, erfc, gelu, geluGrad, geluTanh, geluTanhGrad, relu } from './reference/numerics.js';
export { dropoutThreshold, randomU32 } from './reference/rng.js';

type RefArray = Float64Array | Int32Array | Uint8Array;
const OWNER = 'reference';

const IMPLS: ReferenceKernelImpls = {
  ...matmul, ...softmax, ...layernorm, ...attention, ...activation, ...embedding, ...crossEntropy, ...dropout,
  ...elementwise, ...heads, ...adam, ...tensorOps,
};

function newArray(dtype: DType, length: number): RefArray {
  return newHostArray(dtype, length, Float64Array) as RefArray;
}

export class ReferenceBackend extends ReferenceKernels implements Backend {
  readonly name: BackendName = 'reference';
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>(['float64']);
  protected readonly impl = IMPLS;

  getThreads(): number {
    return 1;
  }

  setThreads(n: number): void {
    if (n !== 1) throw new RangeError(`setThreads: the reference backend has exactly 1 thread, got ${n}`);
  }

  // ---- memory ------------------------------------------------------------------------------

  alloc(dtype: DType, length: number): Storage {
    return new HostStorage(OWNER, dtype, newArray(dtype, length));
  }

  /** Fresh (zero) arrays: the oracle has no pool, so nothing to save. */
  allocUninit(dtype: DType, length: number): Storage {
    return this.alloc(dtype, length);
  }

  fromArray(dtype: DType, data: ArrayLike<number>): Storage {
    const arr = newArray(dtype, data.length);
    arr.set(data);
    return new HostStorage(OWNER, dtype, arr);
  }

  read(s: Storage): HostArray {
    return hostMemory.read(s, OWNER);
  }

  write(s: Storage, data: ArrayLike<number>): void {
    hostMemory.write(s, OWNER, data);
  }

  writeAt(s: Storage, offset: number, data: ArrayLike<number>): void {
    hostMemory.writeAt(s, OWNER, offset, data);
  }

  fill(s: Storage, value: number): void {
    hostMemory.fill(s, OWNER, value);
  }

  copy(dst: Storage, src: Storage): void {
    hostMemory.copy(dst, src, OWNER);
  }

  free(s: Storage): void {
    if (!(s instanceof HostStorage) || s.owner !== OWNER) throw new TypeError('free: s is not a reference-backend storage');
    if (s.freed) return;
    s.freed = true;
    s.data = new Float64Array(0); // drop the memory now, not when the handle is collected
  }

  /** The array behind a storage, checked to be this backend's, alive and of `dtype`. */
  protected array<D extends DType>(s: Storage, op: string, name: string, dtype: D): ReferenceArrays[D] {
    const r = liveHost<RefArray>(s, OWNER, op, name);
    if (r.dtype !== dtype) throw new TypeError(`${op}: ${name} must have dtype ${dtype}, got ${r.dtype}`);
    return r.data as ReferenceArrays[D];
  }
}
