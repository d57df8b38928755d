// Storage of the wasm backend: blocks of the module's linear memory, `{ptr, bytes}` from
// `ff_alloc`, returned with `ff_free`. Call `free` (Tensor.dispose does): a
// FinalizationRegistry frees storages that were dropped without it, but only as a backstop —
// the collector does not see wasm memory pressure, so it may run late or never, and linear
// memory never shrinks.
//
// Linear memory grows whenever an allocation does not fit, which detaches its ArrayBuffer
// (or, for shared memory, leaves the old buffer short), so every typed-array view over it is
// built at the moment of use and never kept.

import type { DType, HostArray, Storage } from './backend.js';
import { BYTES_PER_ELEMENT, BufferPool, checkRange, POISON } from './host_storage.js';
import type { Ptr, WasmBuffer } from './kernels.generated.js';
import type { WasmExports } from './wasm_load.js';

/** Largest allocation the shim accepts: Rust's isize::MAX on wasm32. Also keeps byte counts
 * within an i32 argument, which would otherwise wrap silently. */
const MAX_ALLOC_BYTES = 2 ** 31 - 1;

/** Freed blocks the pool may keep beyond the working set's high-water mark (see BufferPool;
 * linear memory never shrinks, so the pool only decides how soon freed blocks are reused for
 * other sizes). */
const POOL_FLOOR_BYTES = 64 * 1024 * 1024;

/** What the FinalizationRegistry needs to free a forgotten storage (never the storage itself,
 * which would keep it alive). */
interface Allocation {
  readonly ptr: number;
  readonly bytes: number;
  readonly align: number;
}

export class WasmStorage implements Storage, Allocation, WasmBuffer<DType> {
  freed = false;
  constructor(
    readonly owner: WasmMemory,
    readonly dtype: DType,
    readonly length: number,
    readonly ptr: Ptr<DType>,
    readonly bytes: number,
  ) {}
  get align(): number {
    return BYTES_PER_ELEMENT[this.dtype];
  }
}

/** The storages of one module instance. */
export class WasmMemory {
  private readonly forgotten: FinalizationRegistry<Allocation>;
  /** Blocks of freed storages by dtype and length, handed out again by alloc (zero-filled)
   * and allocUninit: a warm training step calls no allocator at all (`allocatorCalls`). */
  private readonly pool: BufferPool<number>;
  /** Calls into the module's allocator so far, pool misses (diagnostics, tests). */
  allocatorCalls = 0;
  /** Tests: fill allocUninit's storage with NaN (f32) or junk (ints); see NativeBackend. */
  poisonUninit = false;

  constructor(private readonly wasm: WasmExports) {
    this.forgotten = new FinalizationRegistry((lost: Allocation) => {
      this.pool.lost(lost.bytes);
      wasm.ff_free(lost.ptr, lost.bytes, lost.align);
    });
    this.pool = new BufferPool<number>(POOL_FLOOR_BYTES, (ptr, dtype, bytes) => wasm.ff_free(ptr, bytes, BYTES_PER_ELEMENT[dtype]));
  }

  allocate(dtype: DType, length: number, zeroed: boolean): WasmStorage {
    const size = BYTES_PER_ELEMENT[dtype];
    if (size === undefined) throw new TypeError(`alloc: unknown dtype ${String(dtype)}`);
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new RangeError(`alloc: length must be a non-negative integer, got ${length}`);
    }
    const bytes = length * size;
    if (bytes > MAX_ALLOC_BYTES) {
      throw new RangeError(`alloc: ${length} ${dtype} elements (${bytes} bytes) exceed the wasm limit of ${MAX_ALLOC_BYTES} bytes`);
    }
    const pooled = this.pool.take(dtype, length, bytes);
    let ptr: number;
    if (pooled !== undefined) {
      ptr = pooled;
    } else {
      this.allocatorCalls++;
      this.pool.created(bytes);
      ptr = zeroed ? this.wasm.ff_alloc(bytes, size) : this.wasm.ff_alloc_uninit(bytes, size);
      if (ptr === 0) {
        this.pool.lost(bytes);
        throw new RangeError(`alloc: ${this.lastError()} (${length} ${dtype} elements)`);
      }
    }
    const storage = new WasmStorage(this, dtype, length, ptr as Ptr<DType>, bytes);
    if (pooled !== undefined && zeroed) this.view(storage).fill(0);
    else if (!zeroed && this.poisonUninit) this.view(storage).fill(POISON[dtype]);
    this.forgotten.register(storage, { ptr, bytes, align: size }, storage);
    return storage;
  }

  fromArray(dtype: DType, data: ArrayLike<number>): WasmStorage {
    const storage = this.allocate(dtype, data.length, false);
    this.view(storage).set(data);
    return storage;
  }

  read(s: Storage): HostArray {
    return this.view(this.live(s, 'read', 's')).slice();
  }

  write(s: Storage, data: ArrayLike<number>): void {
    const storage = this.live(s, 'write', 's');
    if (data.length !== storage.length) {
      throw new RangeError(`write: data has length ${data.length}, expected ${storage.length}`);
    }
    this.view(storage).set(data);
  }

  writeAt(s: Storage, offset: number, data: ArrayLike<number>): void {
    const storage = this.live(s, 'writeAt', 's');
    checkRange(offset, data.length, storage.length);
    this.view(storage).set(data, offset);
  }

  fill(s: Storage, value: number): void {
    this.view(this.live(s, 'fill', 's')).fill(value);
  }

  copy(dst: Storage, src: Storage): void {
    const d = this.live(dst, 'copy', 'dst');
    const s = this.live(src, 'copy', 'src');
    if (d.dtype !== s.dtype) throw new TypeError(`copy: dst has dtype ${d.dtype}, src ${s.dtype}`);
    if (d.length !== s.length) throw new RangeError(`copy: dst has length ${d.length}, src ${s.length}`);
    new Uint8Array(this.wasm.memory.buffer).copyWithin(d.ptr, s.ptr, s.ptr + s.bytes);
  }

  free(s: Storage): void {
    if (!(s instanceof WasmStorage) || s.owner !== this) throw new TypeError('free: s is not a storage of this wasm backend');
    if (s.freed) return;
    s.freed = true;
    this.forgotten.unregister(s);
    if (!this.pool.put(s.dtype, s.length, s.bytes, s.ptr)) this.wasm.ff_free(s.ptr, s.bytes, s.align);
  }

  /** The live storage of this memory behind `s`, or an error naming the op and the argument. */
  live(s: Storage, op: string, name: string): WasmStorage {
    if (!(s instanceof WasmStorage) || s.owner !== this) {
      throw new TypeError(`${op}: ${name} is not a storage of this wasm backend`);
    }
    if (s.freed) throw new Error(`${op}: ${name} was used after free()`);
    return s;
  }

  /** A fresh view: one made before the memory grew would be detached (length 0). */
  view(s: WasmStorage): Float32Array | Int32Array | Uint8Array {
    const buffer = this.wasm.memory.buffer;
    switch (s.dtype) {
      case 'f32':
        return new Float32Array(buffer, s.ptr, s.length);
      case 'i32':
        return new Int32Array(buffer, s.ptr, s.length);
      case 'u8':
        return new Uint8Array(buffer, s.ptr, s.length);
    }
  }

  /** The message the module left for its last refused call. */
  lastError(): string {
    const bytes = new Uint8Array(this.wasm.memory.buffer, this.wasm.ff_last_error_ptr(), this.wasm.ff_last_error_len());
    // A copy: browsers' TextDecoder refuses views of shared memory (the threaded module).
    return new TextDecoder().decode(bytes.slice());
  }
}
