// Storage over a typed array that JS owns, shared by the two backends that keep data on the
// JS heap: native (Float32Array for f32, lent to Rust per call) and reference (Float64Array).
import type { DType, HostArray, Storage } from './backend.js';

export class HostStorage<A extends HostArray = HostArray> implements Storage {
  freed = false;
  constructor(
    /** The backend that made it ('native' | 'reference'): storages never cross backends. */
    readonly owner: string,
    readonly dtype: DType,
    public data: A,
  ) {}
  get length(): number {
    return this.data.length;
  }
}

/** A zero-filled array for `dtype`, f32 held as Float32Array or Float64Array. */
export function newHostArray(dtype: DType, length: number, f32: Float32ArrayConstructor | Float64ArrayConstructor): HostArray {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`alloc: length must be a non-negative integer, got ${length}`);
  }
  switch (dtype) {
    case 'f32':
      return new f32(length);
    case 'i32':
      return new Int32Array(length);
    case 'u8':
      return new Uint8Array(length);
    default:
      throw new RangeError(`alloc: unknown dtype ${String(dtype)}`);
  }
}

/** The live storage behind `s` if `owner` made it, else an Error naming the op. */
export function liveHost<A extends HostArray>(s: Storage, owner: string, op: string, name: string): HostStorage<A> {
  if (!(s instanceof HostStorage) || s.owner !== owner) throw new TypeError(`${op}: ${name} is not a ${owner}-backend storage`);
  if (s.freed) throw new Error(`${op}: ${name} was used after free()`);
  return s as HostStorage<A>;
}

/** A RangeError unless [offset, offset + count) lies within a storage of `length` elements. */
export function checkRange(offset: number, count: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + count > length) {
    throw new RangeError(`writeAt: elements [${offset}, ${offset + count}) are outside the storage's ${length}`);
  }
}

/** Backend.read / write / fill / copy over host storage. */
export const hostMemory = {
  read(s: Storage, owner: string): HostArray {
    return liveHost(s, owner, 'read', 's').data.slice();
  },
  write(s: Storage, owner: string, data: ArrayLike<number>): void {
    const arr = liveHost(s, owner, 'write', 's').data;
    if (data.length !== arr.length) throw new RangeError(`write: data has length ${data.length}, expected ${arr.length}`);
    arr.set(data);
  },
  writeAt(s: Storage, owner: string, offset: number, data: ArrayLike<number>): void {
    const arr = liveHost(s, owner, 'writeAt', 's').data;
    checkRange(offset, data.length, arr.length);
    arr.set(data, offset);
  },
  fill(s: Storage, owner: string, value: number): void {
    liveHost(s, owner, 'fill', 's').data.fill(value);
  },
  copy(dst: Storage, src: Storage, owner: string): void {
    const d = liveHost(dst, owner, 'copy', 'dst');
    const s = liveHost(src, owner, 'copy', 'src');
    if (d.dtype !== s.dtype) throw new TypeError(`copy: dst has dtype ${d.dtype}, src ${s.dtype}`);
    if (d.length !== s.length) throw new RangeError(`copy: dst has length ${d.length}, src ${s.length}`);
    d.data.set(s.data);
  },
};

/** Bytes per element of each dtype (f32 and i32 as the kernels see them). */
export const BYTES_PER_ELEMENT: Readonly<Record<DType, number>> = { f32: 4, i32: 4, u8: 1 };

/** What the backends' setPoisonUninitialised fills allocUninit's storage with (tests). */
export const POISON: Readonly<Record<DType, number>> = { f32: NaN, i32: -0x5a5a5a5a, u8: 0xa5 };

/** Freed buffers kept for reuse, by dtype and length, up to `maxBytes` in all: the native
 * backend's typed arrays and the wasm backend's blocks, so that a warm training step (which
 * frees what it allocated) allocates nothing. */
export class BufferPool<T> {
  private readonly free = new Map<string, T[]>();
  private held = 0;
  constructor(private readonly maxBytes: number) {}

  /** A buffer of exactly this dtype and length, or undefined. */
  take(dtype: DType, length: number, bytes: number): T | undefined {
    const item = this.free.get(`${dtype}:${length}`)?.pop();
    if (item !== undefined) this.held -= bytes;
    return item;
  }

  /** Keeps the buffer unless that would pass the cap; false means the caller releases it. */
  put(dtype: DType, length: number, bytes: number, item: T): boolean {
    if (bytes === 0 || this.held + bytes > this.maxBytes) return false;
    const key = `${dtype}:${length}`;
    const list = this.free.get(key);
    if (list === undefined) this.free.set(key, [item]);
    else list.push(item);
    this.held += bytes;
    return true;
  }

  /** Bytes held for reuse. */
  get bytes(): number {
    return this.held;
  }
}
