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

interface PoolEntry<T> {
  readonly dtype: DType;
  readonly bytes: number;
  readonly items: T[];
  /** When a buffer of this size last came back (put's count), for eviction order. */
  returned: number;
}

/** Freed buffers kept for reuse, by dtype and length: the native backend's typed arrays and
 * the wasm backend's blocks, so that a warm training step (which frees what it allocated)
 * allocates nothing, and takes no fresh zeroed pages from the system.
 *
 * How much it keeps: at most the most bytes that were ever handed out at once (the working
 * set's high-water mark), or `floorBytes` where that is more. A loop whose steps repeat their
 * sizes thus keeps its whole working set here: nothing is created, nothing becomes garbage,
 * and the peak stays that of one step (a fixed cap below the working set turned the excess
 * into garbage and fresh arrays every step). A buffer that does not fit evicts the least
 * recently returned sizes first, so stale sizes leave before fresh ones. */
export class BufferPool<T> {
  /** By dtype, then length. A training step takes and returns a few hundred buffers, so the
   * lookup uses number keys (no string built per call), and recency is a stamp set on return
   * rather than a reordering of the map: only an eviction, which a loop of repeating sizes
   * never reaches, sorts by it. */
  private readonly free: Record<DType, Map<number, PoolEntry<T>>> = { f32: new Map(), i32: new Map(), u8: new Map() };
  private held = 0;
  private handedOut = 0;
  private highWater = 0;
  private returns = 0;
  constructor(
    private readonly floorBytes: number,
    /** Gives an evicted buffer back (wasm: to the module's allocator; native: to the GC). */
    private readonly release: (item: T, dtype: DType, bytes: number) => void = () => {},
  ) {}

  /** A buffer of exactly this dtype and length, or undefined (then call `created`). */
  take(dtype: DType, length: number, bytes: number): T | undefined {
    const item = this.free[dtype].get(length)?.items.pop();
    if (item === undefined) return undefined;
    this.held -= bytes;
    this.handOut(bytes);
    return item;
  }

  /** A pool miss: the caller makes a new buffer of `bytes`. */
  created(bytes: number): void {
    this.handOut(bytes);
  }

  /** Takes a freed buffer back, evicting older sizes to stay within the limit; false (a
   * buffer larger than the limit) means the caller releases it. */
  put(dtype: DType, length: number, bytes: number, item: T): boolean {
    this.handedOut = Math.max(0, this.handedOut - bytes);
    const limit = Math.max(this.floorBytes, this.highWater);
    if (bytes === 0 || bytes > limit) return false;
    if (this.held + bytes > limit) this.evict(limit - bytes);
    const sizes = this.free[dtype];
    let entry = sizes.get(length);
    if (entry === undefined) {
      entry = { dtype, bytes, items: [], returned: 0 };
      sizes.set(length, entry);
    }
    entry.returned = ++this.returns;
    entry.items.push(item);
    this.held += bytes;
    return true;
  }

  /** Releases buffers of the least recently returned sizes until at most `target` bytes are held. */
  private evict(target: number): void {
    const entries = Object.values(this.free).flatMap((sizes) => [...sizes].map(([length, entry]) => ({ sizes, length, entry })));
    entries.sort((a, b) => a.entry.returned - b.entry.returned);
    for (const { sizes, length, entry } of entries) {
      while (entry.items.length > 0 && this.held > target) {
        this.release(entry.items.pop()!, entry.dtype, entry.bytes);
        this.held -= entry.bytes;
      }
      if (entry.items.length === 0) sizes.delete(length);
      if (this.held <= target) break;
    }
  }

  /** A handed-out buffer went without put (collected as garbage, or never made). */
  lost(bytes: number): void {
    this.handedOut = Math.max(0, this.handedOut - bytes);
  }

  /** Bytes held for reuse. */
  get bytes(): number {
    return this.held;
  }

  private handOut(bytes: number): void {
    this.handedOut += bytes;
    if (this.handedOut > this.highWater) this.highWater = this.handedOut;
  }
}
