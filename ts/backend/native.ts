// The native backend: the Rust kernels through the napi addon (crates/node/src/lib.rs).
//
// Storage is a plain typed array owned by JS (Float32Array for f32, Int32Array for i32,
// Uint8Array for u8); each kernel call lends it to Rust for the duration of the call, with
// no copy, and Rust keeps nothing afterwards. So memory is the garbage collector's: `free`
// only drops the reference early.
//
// The kernel methods are generated (NativeKernels in kernels.generated.ts). The addon checks
// every length against the dimensions and throws a RangeError naming the op and the sizes
// (`matmulForward: b has length 3, expected 4`); a kernel panic comes back as an Error
// (`<op>: kernel panicked: ...`) and the addon stays usable. This file only checks what Rust
// cannot see: that a storage is native, alive, and of the right dtype (`array`).

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { checkMinParallelFlops, type Backend, type BackendName, type Capability, type DType, type HostArray, type Storage } from './backend.js';
import { NativeKernels, type NativeArrays, type NativeKernelExports } from './kernels.generated.js';
import { BackendError } from '../tensor/errors.js';
import { BYTES_PER_ELEMENT, BufferPool, HostStorage, POISON, hostMemory, liveHost, newHostArray } from './host_storage.js';

type NativeArray = Float32Array | Int32Array | Uint8Array;

/** The addon's exports: the kernels (generated from scripts/kernel-table.mjs, napi-rs
 * camelCases the Rust names) and the thread setting. Outputs are written in place; an output
 * never shares memory with another argument (the addon throws a RangeError if it does). */
export interface NativeAddon extends NativeKernelExports {
  getThreads(): number;
  setThreads(n: number): void;
  workerTasks(): number;
  getMinParallelFlops(): number;
  setMinParallelFlops(flops: number): void;
  /** Panics inside the addon's catch_unwind (tests only). */
  __panicForTest(): void;
}

// ---- loading ---------------------------------------------------------------------------

/** On Linux, musl (Alpine) needs its own build. glibc reports its version in the process
 * report header; musl has none. Cheap enough for a one-time load. */
function isMusl(): boolean {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime === undefined;
}

/** napi-rs's platform suffix, as `napi build --platform` names the file:
 * linux-x64-gnu, linux-arm64-musl, darwin-arm64, win32-x64-msvc ... */
export function nativePlatformSuffix(platform: string = process.platform, arch: string = process.arch): string {
  switch (platform) {
    case 'linux': {
      const libc = isMusl() ? 'musl' : 'gnu';
      return arch === 'arm' ? `linux-arm-${libc}eabihf` : `linux-${arch}-${libc}`;
    }
    case 'win32':
      return `win32-${arch}-msvc`;
    case 'android':
      return arch === 'arm' ? 'android-arm-eabi' : `android-${arch}`;
    default:
      return `${platform}-${arch}`;
  }
}

let addon: NativeAddon | null = null;

/** Loads build/ferroformer.<platform>.node, once. The path is relative to this module and
 * holds both from ts/backend/native.ts (tests run the sources) and from
 * dist/backend/native.js (the package ships build/ beside dist/). Throws an Error saying
 * what is missing, so the caller can fall back to wasm. */
export function loadNativeAddon(): NativeAddon {
  if (addon !== null) return addon;
  const fileName = `ferroformer.${nativePlatformSuffix()}.node`;
  const path = fileURLToPath(new URL(`../../build/${fileName}`, import.meta.url));
  if (!existsSync(path)) {
    throw new Error(
      `ferroformer: native addon not found at ${path}; build it with \`npm run build:native\` ` +
        `(needs cargo), or use the wasm backend`,
    );
  }
  let loaded: NativeAddon;
  try {
    loaded = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (cause) {
    throw new Error(`ferroformer: native addon ${path} failed to load: ${String(cause)}`, { cause });
  }
  checkAddonExports(loaded, path);
  addon = loaded;
  return addon;
}

/** What the backend calls on the addon besides the generated kernel methods. */
const ADDON_CONTROL_EXPORTS = ['getThreads', 'setThreads', 'workerTasks', 'getMinParallelFlops', 'setMinParallelFlops'];

/** The addon carries no version number; what this code needs of it is its exports. An addon
 * built from older sources (a kernel since added to the table) would otherwise load and fail
 * at the first call of the missing export, far from the cause. Every method of the generated
 * `NativeKernels` calls the addon export of the same name. */
export function checkAddonExports(loaded: object, path: string): void {
  const kernels = Object.getOwnPropertyNames(NativeKernels.prototype).filter((name) => name !== 'constructor');
  const exports = loaded as Record<string, unknown>;
  const missing = [...kernels, ...ADDON_CONTROL_EXPORTS].filter((name) => typeof exports[name] !== 'function');
  if (missing.length > 0) {
    throw new BackendError(
      'ferroformer',
      `the native addon ${path} is older than this code: it lacks ${missing.join(', ')}; ` +
        'rebuild it with `npm run build:native`',
    );
  }
}

export function loadNativeBackend(): NativeBackend {
  return new NativeBackend(loadNativeAddon());
}

// ---- storage ---------------------------------------------------------------------------

type NativeStorage = HostStorage<NativeArray>;
const OWNER = 'native';

function newArray(dtype: DType, length: number): NativeArray {
  return newHostArray(dtype, length, Float32Array) as NativeArray;
}

/** The live native storage behind `s`, or an Error naming the op. */
function live(s: Storage, op: string, name: string): NativeStorage {
  return liveHost<NativeArray>(s, OWNER, op, name);
}

// ---- backend ---------------------------------------------------------------------------

/** Freed arrays the pool may keep beyond the working set's high-water mark (see BufferPool). */
const POOL_FLOOR_BYTES = 256 * 1024 * 1024;
const EMPTY = new Float32Array(0);

export class NativeBackend extends NativeKernels implements Backend {
  readonly name: BackendName = 'native';
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>(['threads', 'simd']);

  /** Arrays of freed storages by dtype and length, handed out again (zero-filled) by alloc:
   * a training step frees what it allocated, so once warm it takes no new memory from the
   * engine (no zeroed pages, no GC work). An evicted array is left to the GC. Safe because a
   * storage's array never escapes it (read() copies; the addon borrows it only during a call). */
  private readonly pool = new BufferPool<NativeArray>(POOL_FLOOR_BYTES);

  constructor(protected readonly addon: NativeAddon) {
    super();
  }

  /** Threads are process-wide: every NativeBackend shares the addon's one pool. */
  getThreads(): number {
    return this.addon.getThreads();
  }

  /** Throws a RangeError unless n is an integer from 1 to 1024. */
  setThreads(n: number): void {
    this.addon.setThreads(n);
  }

  /** Diagnostics: kernel tasks run by pool threads (not the calling thread) so far. */
  workerTasks(): number {
    return this.addon.workerTasks();
  }

  /** Estimated flops below which a kernel call stays on the calling thread (a hand-off to
   * the pool costs more than it saves there). Process-wide. */
  getMinParallelFlops(): number {
    return this.addon.getMinParallelFlops();
  }

  /** Tuning and benchmarks: sets that threshold (0 splits every call). Results do not depend on it. */
  setMinParallelFlops(flops: number): void {
    checkMinParallelFlops(flops);
    this.addon.setMinParallelFlops(flops);
  }

  // ---- memory ------------------------------------------------------------------------------

  alloc(dtype: DType, length: number): Storage {
    const reused = this.takePooled(dtype, length);
    if (reused !== null) {
      reused.fill(0);
      return new HostStorage(OWNER, dtype, reused);
    }
    return new HostStorage(OWNER, dtype, this.newArray(dtype, length));
  }

  allocUninit(dtype: DType, length: number): Storage {
    const arr = this.takePooled(dtype, length) ?? this.newArray(dtype, length);
    if (this.poisonUninit) arr.fill(POISON[dtype]);
    return new HostStorage(OWNER, dtype, arr);
  }

  /** Tests: fill allocUninit's storage with NaN (f32) or junk (ints), so that an op which
   * wrongly relies on zeroed output shows up as NaN instead of passing by luck. */
  setPoisonUninitialised(on: boolean): void {
    this.poisonUninit = on;
  }

  private poisonUninit = false;

  fromArray(dtype: DType, data: ArrayLike<number>): Storage {
    const arr = this.takePooled(dtype, data.length) ?? this.newArray(dtype, data.length);
    arr.set(data);
    return new HostStorage(OWNER, dtype, arr);
  }

  /** Typed arrays created so far, pool misses (diagnostics, tests: a warm training step
   * creates none). */
  newArrayCount(): number {
    return this.created;
  }

  private created = 0;

  private newArray(dtype: DType, length: number): NativeArray {
    this.created++;
    this.pool.created(length * BYTES_PER_ELEMENT[dtype]);
    return newArray(dtype, length);
  }

  /** Bytes held for reuse by alloc (diagnostics, tests). */
  pooledMemoryBytes(): number {
    return this.pool.bytes;
  }

  private takePooled(dtype: DType, length: number): NativeArray | null {
    return this.pool.take(dtype, length, length * BYTES_PER_ELEMENT[dtype]) ?? null;
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
    if (!(s instanceof HostStorage) || s.owner !== OWNER) throw new TypeError('free: s is not a native-backend storage');
    if (s.freed) return;
    s.freed = true;
    const arr = s.data;
    // Detach the array from the handle (a use after free throws), then keep it for reuse
    // or let it go at the next GC.
    s.data = EMPTY;
    this.pool.put(s.dtype, arr.length, arr.byteLength, arr);
  }

  /** The array behind a storage, checked to be this backend's, alive and of `dtype` (the
   * generated kernel methods call it for every buffer; the addon checks the rest). */
  protected array<D extends DType>(s: Storage, op: string, name: string, dtype: D): NativeArrays[D] {
    const n = live(s, op, name);
    if (n.dtype !== dtype) throw new TypeError(`${op}: ${name} must have dtype ${dtype}, got ${n.dtype}`);
    return n.data as NativeArrays[D];
  }
}
