// The wasm backend: the Rust kernels compiled to WebAssembly with SIMD (crates/wasm/src/lib.rs),
// loaded by this file without wasm-bindgen. Runs in Node and in the browser. Two builds:
// build/ferroformer.wasm (single-threaded) and, where shared memory is available,
// build/ferroformer-threads.wasm, whose kernels also run on workers (see wasm_threads.ts).
//
// Storage lives in the module's linear memory: `{ptr, bytes}` from `ff_alloc`, returned with
// `ff_free`. Call `free` (Tensor.dispose does): a FinalizationRegistry frees storages that
// were dropped without it, but only as a backstop — the collector does not see wasm memory
// pressure, so it may run late or never, and linear memory never shrinks.
//
// Linear memory grows whenever an allocation does not fit, which detaches its ArrayBuffer
// (or, for shared memory, leaves the old buffer short), so every typed-array view over it is
// built at the moment of use and never kept.
//
// Each kernel export returns a status; on a non-zero status the message Rust left in
// last_error becomes a RangeError (`matmulForward: a has length 6, expected 12`). Rust
// refuses bad arguments before any kernel runs, so the module stays usable after the error.
// This file checks what Rust cannot see: that a storage belongs to this backend, is alive,
// and has the dtype the kernel expects.

import { checkMinParallelFlops, LINEAR_ACTIVATION_CODE, type Backend, type BackendName, type Capability, type DType, type HostArray, type LinearActivation, type Storage } from './backend.js';
import { BYTES_PER_ELEMENT, BufferPool, checkRange, POISON } from './host_storage.js';
import { nodeBuiltin } from './node_builtin.js';
import {
  createSharedMemory, isThreadedModule, sharedMemoryAvailable, type ThreadedExports, WasmThreads, workerStarter,
} from './wasm_threads.js';

/** Must equal ABI_VERSION in crates/wasm/src/lib.rs. */
const ABI_VERSION = 1;

/** Largest allocation the shim accepts: Rust's isize::MAX on wasm32. Also keeps byte counts
 * within an i32 argument, which would otherwise wrap silently. */
const MAX_ALLOC_BYTES = 2 ** 31 - 1;

// ---- the module's exports --------------------------------------------------------------------

/** A kernel export: (pointer, length) per buffer, then scalars; returns a status (0 = ok). */
type KernelExport = (...args: number[]) => number;

/** What crates/wasm/src/lib.rs exports. Pointers and lengths are numbers (wasm32). */
export interface WasmExports {
  readonly memory: WebAssembly.Memory;
  ff_abi_version(): number;
  ff_last_error_ptr(): number;
  ff_last_error_len(): number;
  ff_alloc(bytes: number, align: number): number;
  ff_alloc_uninit(bytes: number, align: number): number;
  ff_free(ptr: number, bytes: number, align: number): void;
  ff_sum_squares(x: number, xLen: number): number;
  ff_min_parallel_flops(): number;
  ff_set_min_parallel_flops(flops: number): void;
  ff_matmul_forward: KernelExport;
  ff_matmul_backward: KernelExport;
  ff_linear_forward: KernelExport;
  ff_linear_backward: KernelExport;
  ff_softmax_forward: KernelExport;
  ff_softmax_backward: KernelExport;
  ff_layernorm_forward: KernelExport;
  ff_layernorm_backward: KernelExport;
  ff_attention_forward: KernelExport;
  ff_attention_probs: KernelExport;
  ff_attention_backward: KernelExport;
  ff_relu_forward: KernelExport;
  ff_relu_backward: KernelExport;
  ff_gelu_forward: KernelExport;
  ff_gelu_backward: KernelExport;
  ff_gelu_tanh_forward: KernelExport;
  ff_gelu_tanh_backward: KernelExport;
  ff_embedding_forward: KernelExport;
  ff_embedding_backward: KernelExport;
  ff_cross_entropy_forward: KernelExport;
  ff_cross_entropy_backward: KernelExport;
  ff_dropout_forward: KernelExport;
  ff_dropout_backward: KernelExport;
  ff_add_forward: KernelExport;
  ff_accumulate: KernelExport;
  ff_scale_forward: KernelExport;
  ff_scale_inplace: KernelExport;
  ff_mul_forward: KernelExport;
  ff_bias_add_forward: KernelExport;
  ff_bias_add_backward: KernelExport;
  ff_transpose12_forward: KernelExport;
  ff_transpose12_backward: KernelExport;
  ff_narrow_forward: KernelExport;
  ff_narrow_backward: KernelExport;
  ff_adam_update: KernelExport;
}

// ---- loading ---------------------------------------------------------------------------------

export interface LoadWasmOptions {
  /** Where to get the single-threaded .wasm: a URL (file:, http:, https:, relative in the
   * browser) or, in Node, a file path. Default: build/ferroformer.wasm of this package. */
  wasmUrl?: URL | string;
  /** The same for the threaded module. Default: build/ferroformer-threads.wasm. */
  threadsWasmUrl?: URL | string;
  /** The bytes of either module, already in hand (then no file is read). */
  bytes?: BufferSource;
  /** false: always the single-threaded module. Default: the threaded one where shared
   * memory is available (Node; cross-origin-isolated pages) and the file is there. */
  threads?: boolean;
  /** The relaxed-SIMD single-threaded module (fma as f32x4.relaxed_madd). Default: used in
   * place of build/ferroformer.wasm where this engine validates relaxed SIMD (Chromium;
   * Node 20 with --experimental-wasm-relaxed-simd) and the file is there (in a browser:
   * only when `relaxedWasmUrl` is given); true: required (throws if unsupported or
   * missing); false: never. */
  relaxed?: boolean;
  /** Where to get the relaxed-SIMD module. Default in Node: build/ferroformer-relaxed.wasm;
   * no default in browsers (serve the file and pass its URL). */
  relaxedWasmUrl?: URL | string;
}

/** The smallest module using a SIMD instruction: `(func (result v128) i32.const 0
 * i8x16.splat i8x16.popcnt)` (as wasm-feature-detect checks it). */
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

export function wasmSimdSupported(): boolean {
  return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
}

/** `(func (result v128) i32.const 1 i8x16.splat i32.const 2 i8x16.splat
 * i8x16.relaxed_swizzle)` (as wasm-feature-detect checks relaxed SIMD). */
const RELAXED_SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253, 15,
  253, 128, 2, 11,
]);

export function wasmRelaxedSimdSupported(): boolean {
  return typeof WebAssembly === 'object' && WebAssembly.validate(RELAXED_SIMD_PROBE);
}

/** build/*.wasm beside dist/ (or ts/) of this package. Written as literal
 * `new URL(..., import.meta.url)` so that bundlers (Vite, webpack 5) copy the files. */
function defaultWasmUrl(): URL {
  return new URL('../../build/ferroformer.wasm', import.meta.url);
}

function defaultThreadsWasmUrl(): URL {
  return new URL('../../build/ferroformer-threads.wasm', import.meta.url);
}

/** The relaxed module's default location, in Node only. Deliberately not the literal
 * `new URL('...', import.meta.url)` form: bundlers would then ship a third module with every
 * browser build; browser apps that want it serve it and pass `relaxedWasmUrl`. */
const RELAXED_WASM_PATH = '../../build/ferroformer-relaxed.wasm';
function defaultRelaxedWasmUrl(): URL | null {
  return isNode() ? new URL(RELAXED_WASM_PATH, import.meta.url) : null;
}

const isNode = (): boolean => typeof process === 'object' && typeof process.versions?.node === 'string';

/** In Node a string is a URL only with a scheme of two letters or more (`C:\\` is a path). */
function asNodeLocation(location: URL | string): URL | string {
  if (location instanceof URL) return location;
  return /^[a-z][a-z0-9+.-]+:/i.test(location) ? new URL(location) : location;
}

async function readInNode(location: URL | string): Promise<BufferSource> {
  const where = asNodeLocation(location);
  if (where instanceof URL && where.protocol !== 'file:') return (await fetchChecked(where)).arrayBuffer();
  const { readFile } = nodeBuiltin('fs/promises', 'ferroformer: reading the wasm module');
  try {
    return await readFile(where);
  } catch (cause) {
    const code = (cause as { code?: string }).code;
    const hint = code === 'ENOENT' ? '; build it with `npm run build:wasm`' : '';
    throw new Error(`ferroformer: cannot read the wasm module at ${String(where)} (${String(cause)})${hint}`, { cause });
  }
}

async function fetchChecked(url: URL | string): Promise<Response> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`ferroformer: fetching ${String(url)} failed: HTTP ${response.status}`);
  return response;
}

/** Compiles while it downloads; servers that do not send `application/wasm` make
 * compileStreaming reject, so fall back to the whole body. */
async function compileFromUrl(url: URL | string): Promise<WebAssembly.Module> {
  const response = await fetchChecked(url);
  if (typeof WebAssembly.compileStreaming === 'function') {
    try {
      return await WebAssembly.compileStreaming(response.clone());
    } catch {
      // Wrong MIME type or a proxy that mangles it: the plain path below reports real errors.
    }
  }
  return WebAssembly.compile(await response.arrayBuffer());
}

async function compile(location: URL | string): Promise<WebAssembly.Module> {
  return isNode() ? WebAssembly.compile(await readInNode(location)) : compileFromUrl(location);
}

/** The threaded module when allowed and present, else the single-threaded one. */
async function compileBest(opts: LoadWasmOptions): Promise<WebAssembly.Module> {
  if (opts.bytes !== undefined) return WebAssembly.compile(opts.bytes);
  if (opts.threads !== false && opts.relaxed !== true && sharedMemoryAvailable()) {
    try {
      return await compile(opts.threadsWasmUrl ?? defaultThreadsWasmUrl());
    } catch {
      // The threaded module is optional (its build may have been skipped): fall through.
    }
  }
  const relaxedUrl = opts.relaxedWasmUrl ?? defaultRelaxedWasmUrl();
  if (opts.relaxed === true) {
    if (!wasmRelaxedSimdSupported()) throw new Error('ferroformer: relaxed: true, but this engine does not support WebAssembly relaxed SIMD');
    if (relaxedUrl === null) throw new Error('ferroformer: relaxed: true needs relaxedWasmUrl in a browser');
    return compile(relaxedUrl);
  }
  if (opts.relaxed !== false && relaxedUrl !== null && wasmRelaxedSimdSupported()) {
    try {
      return await compile(relaxedUrl);
    } catch {
      // The relaxed module is optional (its build may have been skipped): fall through.
    }
  }
  return compile(opts.wasmUrl ?? defaultWasmUrl());
}

/** Loads the wasm module and returns a backend over it, starting with one thread (see
 * `setThreads`). Each call makes a new instance with its own memory. Throws if this engine
 * lacks WebAssembly SIMD. */
export async function loadWasmBackend(opts: LoadWasmOptions = {}): Promise<WasmBackend> {
  if (!wasmSimdSupported()) {
    throw new Error(
      'ferroformer: this JavaScript engine does not support WebAssembly SIMD (Node >= 16.4, ' +
        'Chrome >= 91, Firefox >= 89, Safari >= 16.4); the wasm backend needs it',
    );
  }
  const module = await compileBest(opts);
  if (!isThreadedModule(module)) {
    const instance = await WebAssembly.instantiate(module, {});
    return new WasmBackend(checkedExports(instance.exports));
  }
  if (!sharedMemoryAvailable()) {
    throw new Error('ferroformer: this is the threaded wasm module, but shared memory is not available here ' +
      '(browsers need a cross-origin-isolated page); load build/ferroformer.wasm instead');
  }
  const memory = createSharedMemory();
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const wasm = checkedExports({ ...instance.exports, memory }) as ThreadedExports;
  const startWorker = await workerStarter();
  return new WasmBackend(wasm, startWorker === null ? null : new WasmThreads(module, memory, wasm, startWorker));
}

function checkedExports(exports: WebAssembly.Exports): WasmExports {
  const wasm = exports as unknown as WasmExports;
  const version = typeof wasm.ff_abi_version === 'function' ? wasm.ff_abi_version() : undefined;
  if (version !== ABI_VERSION) {
    throw new Error(
      `ferroformer: the wasm module has ABI version ${String(version)}, this code expects ${ABI_VERSION}; ` +
        'rebuild it with `npm run build:wasm`',
    );
  }
  return wasm;
}

// ---- storage ---------------------------------------------------------------------------------

/** What the FinalizationRegistry needs to free a forgotten storage (never the storage itself,
 * which would keep it alive). */
interface Allocation {
  readonly ptr: number;
  readonly bytes: number;
  readonly align: number;
}

/** Most memory the backend keeps in its pool of freed blocks (linear memory never shrinks,
 * so the pool only decides how soon freed blocks are reused for other sizes). */
const POOL_MAX_BYTES = 64 * 1024 * 1024;

class WasmStorage implements Storage, Allocation {
  freed = false;
  constructor(
    readonly owner: WasmBackend,
    readonly dtype: DType,
    readonly length: number,
    readonly ptr: number,
    readonly bytes: number,
  ) {}
  get align(): number {
    return BYTES_PER_ELEMENT[this.dtype];
  }
}

/** A buffer argument as the exports take it: (pointer, length in elements). */
type PtrLen = [ptr: number, length: number];
const ABSENT: PtrLen = [0, 0];

const flag = (value: boolean): number => (value ? 1 : 0);

/** `matmul_forward: ...` from Rust becomes `matmulForward: ...`, the name this API and the
 * native backend use. */
function renameOp(message: string, op: string): string {
  return message.replace(/^[a-z0-9_]+:/, `${op}:`);
}

// ---- backend ---------------------------------------------------------------------------------

export class WasmBackend implements Backend {
  readonly name: BackendName = 'wasm';
  readonly capabilities: ReadonlySet<Capability>;
  private readonly forgotten: FinalizationRegistry<Allocation>;

  /** `threads` is null for the single-threaded module (or where workers cannot start). */
  constructor(
    private readonly wasm: WasmExports,
    private readonly threads: WasmThreads | null = null,
  ) {
    this.capabilities = new Set<Capability>(threads === null ? ['simd'] : ['simd', 'threads']);
    this.forgotten = new FinalizationRegistry((lost: Allocation) => wasm.ff_free(lost.ptr, lost.bytes, lost.align));
  }

  /** Current size of linear memory in bytes (it grows, never shrinks). */
  memoryBytes(): number {
    return this.wasm.memory.buffer.byteLength;
  }

  getThreads(): number {
    return this.threads?.threads ?? 1;
  }

  /** Settles once the workers of the last `setThreads` have started (at once without
   * threads). In a browser a Web Worker starts only when the thread that created it returns
   * to its event loop: await this after `setThreads` before a long synchronous loop, or the
   * loop runs on one thread. */
  threadsReady(): Promise<void> {
    return this.threads?.ready ?? Promise.resolve();
  }

  /** Diagnostics: kernel tasks run by worker threads so far (0 without threads). */
  workerTasks(): number {
    return this.threads?.workerTasks ?? 0;
  }

  /** Estimated flops below which a kernel call stays on the calling thread (a hand-off to
   * a worker costs more than it saves there). Process-wide per module instance. */
  getMinParallelFlops(): number {
    return this.wasm.ff_min_parallel_flops();
  }

  /** Tuning and benchmarks: sets that threshold (0 splits every call). Results do not depend on it. */
  setMinParallelFlops(flops: number): void {
    checkMinParallelFlops(flops);
    this.wasm.ff_set_min_parallel_flops(flops);
  }

  /** Threads for matmul and attention, the calling one included (so n - 1 workers). The
   * single-threaded module accepts only 1. Results do not depend on n. */
  setThreads(n: number): void {
    if (this.threads !== null) {
      this.threads.set(n);
    } else if (n !== 1) {
      throw new RangeError(`setThreads: this wasm module is single-threaded, threads must be 1, got ${n}`);
    }
  }

  // ---- memory ----------------------------------------------------------------------------------

  alloc(dtype: DType, length: number): Storage {
    return this.allocate(dtype, length);
  }

  allocUninit(dtype: DType, length: number): Storage {
    const storage = this.allocate(dtype, length, false);
    if (this.poisonUninit) this.view(storage).fill(POISON[dtype]);
    return storage;
  }

  /** Tests: fill allocUninit's storage with NaN (f32) or junk (ints); see NativeBackend. */
  setPoisonUninitialised(on: boolean): void {
    this.poisonUninit = on;
  }

  private poisonUninit = false;

  fromArray(dtype: DType, data: ArrayLike<number>): Storage {
    const storage = this.allocate(dtype, data.length, false);
    this.view(storage).set(data);
    return storage;
  }

  /** Blocks of freed storages by dtype and length, handed out again by alloc (zero-filled)
   * and allocUninit: a warm training step calls no allocator at all (`allocatorCalls()`). */
  private readonly pool = new BufferPool<number>(POOL_MAX_BYTES);
  private allocations = 0;

  /** Calls into the module's allocator so far, pool misses (diagnostics, tests). */
  allocatorCalls(): number {
    return this.allocations;
  }

  private allocate(dtype: DType, length: number, zeroed = true): WasmStorage {
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
      this.allocations++;
      ptr = zeroed ? this.wasm.ff_alloc(bytes, size) : this.wasm.ff_alloc_uninit(bytes, size);
      if (ptr === 0) throw new RangeError(`alloc: ${this.lastError()} (${length} ${dtype} elements)`);
    }
    const storage = new WasmStorage(this, dtype, length, ptr, bytes);
    if (pooled !== undefined && zeroed) this.view(storage).fill(0);
    this.forgotten.register(storage, { ptr, bytes, align: size }, storage);
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

  // ---- helpers ---------------------------------------------------------------------------------

  /** A fresh view: one made before the memory grew would be detached (length 0). */
  private view(s: WasmStorage): Float32Array | Int32Array | Uint8Array {
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

  private live(s: Storage, op: string, name: string): WasmStorage {
    if (!(s instanceof WasmStorage) || s.owner !== this) {
      throw new TypeError(`${op}: ${name} is not a storage of this wasm backend`);
    }
    if (s.freed) throw new Error(`${op}: ${name} was used after free()`);
    return s;
  }

  private typed(s: Storage, op: string, name: string, dtype: DType): PtrLen {
    const storage = this.live(s, op, name);
    if (storage.dtype !== dtype) throw new TypeError(`${op}: ${name} must have dtype ${dtype}, got ${storage.dtype}`);
    return [storage.ptr, storage.length];
  }

  private f32(s: Storage, op: string, name: string): PtrLen {
    return this.typed(s, op, name, 'f32');
  }

  private i32(s: Storage, op: string, name: string): PtrLen {
    return this.typed(s, op, name, 'i32');
  }

  private u8(s: Storage, op: string, name: string): PtrLen {
    return this.typed(s, op, name, 'u8');
  }

  /** A null optional buffer is passed as a null pointer, which Rust reads as None. */
  private optF32(s: Storage | null, op: string, name: string): PtrLen {
    return s === null ? ABSENT : this.f32(s, op, name);
  }

  private optU8(s: Storage | null, op: string, name: string): PtrLen {
    return s === null ? ABSENT : this.u8(s, op, name);
  }

  private lastError(): string {
    const bytes = new Uint8Array(this.wasm.memory.buffer, this.wasm.ff_last_error_ptr(), this.wasm.ff_last_error_len());
    // A copy: browsers' TextDecoder refuses views of shared memory (the threaded module).
    return new TextDecoder().decode(bytes.slice());
  }

  /** Throws the RangeError Rust described when a kernel export refused its arguments. */
  private check(op: string, status: number): void {
    if (status !== 0) throw new RangeError(renameOp(this.lastError(), op));
  }

  // ---- kernels (lengths, ranges and overlaps are checked in Rust) ------------------------------

  matmulForward(out: Storage, a: Storage, b: Storage, batch: number, m: number, k: number, n: number,
    transA: boolean, transB: boolean, accumulate: boolean): void {
    const op = 'matmulForward';
    this.check(op, this.wasm.ff_matmul_forward(...this.f32(out, op, 'out'), ...this.f32(a, op, 'a'),
      ...this.f32(b, op, 'b'), batch, m, k, n, flag(transA), flag(transB), flag(accumulate)));
  }

  matmulBackward(da: Storage | null, db: Storage | null, dout: Storage, a: Storage, b: Storage,
    batch: number, m: number, k: number, n: number, transA: boolean, transB: boolean): void {
    const op = 'matmulBackward';
    this.check(op, this.wasm.ff_matmul_backward(...this.optF32(da, op, 'da'), ...this.optF32(db, op, 'db'),
      ...this.f32(dout, op, 'dout'), ...this.f32(a, op, 'a'), ...this.f32(b, op, 'b'),
      batch, m, k, n, flag(transA), flag(transB)));
  }

  linearForward(out: Storage, pre: Storage | null, x: Storage, weight: Storage, bias: Storage | null,
    rows: number, inF: number, outF: number, activation: LinearActivation): void {
    const op = 'linearForward';
    this.check(op, this.wasm.ff_linear_forward(...this.f32(out, op, 'out'), ...this.optF32(pre, op, 'pre'),
      ...this.f32(x, op, 'x'), ...this.f32(weight, op, 'weight'), ...this.optF32(bias, op, 'bias'),
      rows, inF, outF, LINEAR_ACTIVATION_CODE[activation]));
  }

  linearBackward(dx: Storage | null, dweight: Storage | null, dbias: Storage | null, dpre: Storage | null,
    dout: Storage, x: Storage, weight: Storage, saved: Storage | null, rows: number, inF: number, outF: number,
    activation: LinearActivation): void {
    const op = 'linearBackward';
    this.check(op, this.wasm.ff_linear_backward(...this.optF32(dx, op, 'dx'), ...this.optF32(dweight, op, 'dweight'),
      ...this.optF32(dbias, op, 'dbias'), ...this.optF32(dpre, op, 'dpre'), ...this.f32(dout, op, 'dout'),
      ...this.f32(x, op, 'x'), ...this.f32(weight, op, 'weight'), ...this.optF32(saved, op, 'saved'),
      rows, inF, outF, LINEAR_ACTIVATION_CODE[activation]));
  }

  softmaxForward(out: Storage, inp: Storage, mask: Storage | null, rows: number, cols: number): void {
    const op = 'softmaxForward';
    this.check(op, this.wasm.ff_softmax_forward(...this.f32(out, op, 'out'), ...this.f32(inp, op, 'inp'),
      ...this.optU8(mask, op, 'mask'), rows, cols));
  }

  softmaxBackward(dinp: Storage, dout: Storage, out: Storage, rows: number, cols: number): void {
    const op = 'softmaxBackward';
    this.check(op, this.wasm.ff_softmax_backward(...this.f32(dinp, op, 'dinp'), ...this.f32(dout, op, 'dout'),
      ...this.f32(out, op, 'out'), rows, cols));
  }

  layernormForward(out: Storage, mean: Storage, rstd: Storage, inp: Storage, weight: Storage,
    bias: Storage, rows: number, dim: number, eps: number): void {
    const op = 'layernormForward';
    this.check(op, this.wasm.ff_layernorm_forward(...this.f32(out, op, 'out'), ...this.f32(mean, op, 'mean'),
      ...this.f32(rstd, op, 'rstd'), ...this.f32(inp, op, 'inp'), ...this.f32(weight, op, 'weight'),
      ...this.f32(bias, op, 'bias'), rows, dim, eps));
  }

  layernormBackward(dinp: Storage, dweight: Storage, dbias: Storage, dout: Storage, inp: Storage,
    weight: Storage, mean: Storage, rstd: Storage, rows: number, dim: number): void {
    const op = 'layernormBackward';
    this.check(op, this.wasm.ff_layernorm_backward(...this.f32(dinp, op, 'dinp'),
      ...this.f32(dweight, op, 'dweight'), ...this.f32(dbias, op, 'dbias'), ...this.f32(dout, op, 'dout'),
      ...this.f32(inp, op, 'inp'), ...this.f32(weight, op, 'weight'), ...this.f32(mean, op, 'mean'),
      ...this.f32(rstd, op, 'rstd'), rows, dim));
  }

  attentionForward(out: Storage, lse: Storage, q: Storage, k: Storage, v: Storage,
    keyMask: Storage | null, b: number, h: number, tq: number, tk: number, d: number,
    causal: boolean, scale: number): void {
    const op = 'attentionForward';
    this.check(op, this.wasm.ff_attention_forward(...this.f32(out, op, 'out'), ...this.f32(lse, op, 'lse'),
      ...this.f32(q, op, 'q'), ...this.f32(k, op, 'k'), ...this.f32(v, op, 'v'),
      ...this.optU8(keyMask, op, 'keyMask'), b, h, tq, tk, d, flag(causal), scale));
  }

  attentionProbs(probs: Storage, q: Storage, k: Storage, lse: Storage, keyMask: Storage | null,
    b: number, h: number, tq: number, tk: number, d: number, causal: boolean, scale: number): void {
    const op = 'attentionProbs';
    this.check(op, this.wasm.ff_attention_probs(...this.f32(probs, op, 'probs'), ...this.f32(q, op, 'q'),
      ...this.f32(k, op, 'k'), ...this.f32(lse, op, 'lse'), ...this.optU8(keyMask, op, 'keyMask'),
      b, h, tq, tk, d, flag(causal), scale));
  }

  attentionBackward(dq: Storage, dk: Storage, dv: Storage, dout: Storage, q: Storage, k: Storage,
    v: Storage, out: Storage, lse: Storage, keyMask: Storage | null, b: number, h: number,
    tq: number, tk: number, d: number, causal: boolean, scale: number): void {
    const op = 'attentionBackward';
    this.check(op, this.wasm.ff_attention_backward(...this.f32(dq, op, 'dq'), ...this.f32(dk, op, 'dk'),
      ...this.f32(dv, op, 'dv'), ...this.f32(dout, op, 'dout'), ...this.f32(q, op, 'q'),
      ...this.f32(k, op, 'k'), ...this.f32(v, op, 'v'), ...this.f32(out, op, 'out'), ...this.f32(lse, op, 'lse'),
      ...this.optU8(keyMask, op, 'keyMask'), b, h, tq, tk, d, flag(causal), scale));
  }

  reluForward(out: Storage, inp: Storage): void {
    const op = 'reluForward';
    this.check(op, this.wasm.ff_relu_forward(...this.f32(out, op, 'out'), ...this.f32(inp, op, 'inp')));
  }

  reluBackward(dinp: Storage, dout: Storage, inp: Storage): void {
    const op = 'reluBackward';
    this.check(op, this.wasm.ff_relu_backward(...this.f32(dinp, op, 'dinp'), ...this.f32(dout, op, 'dout'),
      ...this.f32(inp, op, 'inp')));
  }

  geluForward(out: Storage, inp: Storage): void {
    const op = 'geluForward';
    this.check(op, this.wasm.ff_gelu_forward(...this.f32(out, op, 'out'), ...this.f32(inp, op, 'inp')));
  }

  geluBackward(dinp: Storage, dout: Storage, inp: Storage): void {
    const op = 'geluBackward';
    this.check(op, this.wasm.ff_gelu_backward(...this.f32(dinp, op, 'dinp'), ...this.f32(dout, op, 'dout'),
      ...this.f32(inp, op, 'inp')));
  }

  geluTanhForward(out: Storage, inp: Storage): void {
    const op = 'geluTanhForward';
    this.check(op, this.wasm.ff_gelu_tanh_forward(...this.f32(out, op, 'out'), ...this.f32(inp, op, 'inp')));
  }

  geluTanhBackward(dinp: Storage, dout: Storage, inp: Storage): void {
    const op = 'geluTanhBackward';
    this.check(op, this.wasm.ff_gelu_tanh_backward(...this.f32(dinp, op, 'dinp'), ...this.f32(dout, op, 'dout'),
      ...this.f32(inp, op, 'inp')));
  }

  embeddingForward(out: Storage, ids: Storage, table: Storage, dim: number): void {
    const op = 'embeddingForward';
    this.check(op, this.wasm.ff_embedding_forward(...this.f32(out, op, 'out'), ...this.i32(ids, op, 'ids'),
      ...this.f32(table, op, 'table'), dim));
  }

  embeddingBackward(dtable: Storage, dout: Storage, ids: Storage, dim: number): void {
    const op = 'embeddingBackward';
    this.check(op, this.wasm.ff_embedding_backward(...this.f32(dtable, op, 'dtable'),
      ...this.f32(dout, op, 'dout'), ...this.i32(ids, op, 'ids'), dim));
  }

  crossEntropyForward(loss: Storage, lse: Storage, logits: Storage, targets: Storage,
    rows: number, vocab: number, ignoreIndex: number, labelSmoothing: number): void {
    const op = 'crossEntropyForward';
    this.check(op, this.wasm.ff_cross_entropy_forward(...this.f32(loss, op, 'loss'), ...this.f32(lse, op, 'lse'),
      ...this.f32(logits, op, 'logits'), ...this.i32(targets, op, 'targets'), rows, vocab, ignoreIndex,
      labelSmoothing));
  }

  crossEntropyBackward(dlogits: Storage, dloss: Storage, logits: Storage, lse: Storage,
    targets: Storage, rows: number, vocab: number, ignoreIndex: number, labelSmoothing: number): void {
    const op = 'crossEntropyBackward';
    this.check(op, this.wasm.ff_cross_entropy_backward(...this.f32(dlogits, op, 'dlogits'),
      ...this.f32(dloss, op, 'dloss'), ...this.f32(logits, op, 'logits'), ...this.f32(lse, op, 'lse'),
      ...this.i32(targets, op, 'targets'), rows, vocab, ignoreIndex, labelSmoothing));
  }

  dropoutForward(out: Storage, keep: Storage, inp: Storage, p: number, seed: number, offset: number): void {
    const op = 'dropoutForward';
    this.check(op, this.wasm.ff_dropout_forward(...this.f32(out, op, 'out'), ...this.u8(keep, op, 'keep'),
      ...this.f32(inp, op, 'inp'), p, seed, offset));
  }

  dropoutBackward(dinp: Storage, dout: Storage, keep: Storage, p: number): void {
    const op = 'dropoutBackward';
    this.check(op, this.wasm.ff_dropout_backward(...this.f32(dinp, op, 'dinp'), ...this.f32(dout, op, 'dout'),
      ...this.u8(keep, op, 'keep'), p));
  }

  addForward(out: Storage, a: Storage, b: Storage): void {
    const op = 'addForward';
    this.check(op, this.wasm.ff_add_forward(...this.f32(out, op, 'out'), ...this.f32(a, op, 'a'),
      ...this.f32(b, op, 'b')));
  }

  accumulate(dst: Storage, src: Storage, alpha: number): void {
    const op = 'accumulate';
    this.check(op, this.wasm.ff_accumulate(...this.f32(dst, op, 'dst'), ...this.f32(src, op, 'src'), alpha));
  }

  scaleForward(out: Storage, inp: Storage, s: number): void {
    const op = 'scaleForward';
    this.check(op, this.wasm.ff_scale_forward(...this.f32(out, op, 'out'), ...this.f32(inp, op, 'inp'), s));
  }

  scaleInplace(x: Storage, s: number): void {
    const op = 'scaleInplace';
    this.check(op, this.wasm.ff_scale_inplace(...this.f32(x, op, 'x'), s));
  }

  mulForward(out: Storage, a: Storage, b: Storage): void {
    const op = 'mulForward';
    this.check(op, this.wasm.ff_mul_forward(...this.f32(out, op, 'out'), ...this.f32(a, op, 'a'),
      ...this.f32(b, op, 'b')));
  }

  biasAddForward(out: Storage, inp: Storage, bias: Storage, rows: number, cols: number): void {
    const op = 'biasAddForward';
    this.check(op, this.wasm.ff_bias_add_forward(...this.f32(out, op, 'out'), ...this.f32(inp, op, 'inp'),
      ...this.f32(bias, op, 'bias'), rows, cols));
  }

  biasAddBackward(dbias: Storage, dout: Storage, rows: number, cols: number): void {
    const op = 'biasAddBackward';
    this.check(op, this.wasm.ff_bias_add_backward(...this.f32(dbias, op, 'dbias'), ...this.f32(dout, op, 'dout'),
      rows, cols));
  }

  transpose12Forward(out: Storage, inp: Storage, a: number, b: number, c: number, d: number): void {
    const op = 'transpose12Forward';
    this.check(op, this.wasm.ff_transpose12_forward(...this.f32(out, op, 'out'), ...this.f32(inp, op, 'inp'),
      a, b, c, d));
  }

  transpose12Backward(dinp: Storage, dout: Storage, a: number, b: number, c: number, d: number): void {
    const op = 'transpose12Backward';
    this.check(op, this.wasm.ff_transpose12_backward(...this.f32(dinp, op, 'dinp'), ...this.f32(dout, op, 'dout'),
      a, b, c, d));
  }

  narrowForward(out: Storage, inp: Storage, outer: number, dim: number, inner: number,
    start: number, len: number): void {
    const op = 'narrowForward';
    this.check(op, this.wasm.ff_narrow_forward(...this.f32(out, op, 'out'), ...this.f32(inp, op, 'inp'),
      outer, dim, inner, start, len));
  }

  narrowBackward(dinp: Storage, dout: Storage, outer: number, dim: number, inner: number,
    start: number, len: number): void {
    const op = 'narrowBackward';
    this.check(op, this.wasm.ff_narrow_backward(...this.f32(dinp, op, 'dinp'), ...this.f32(dout, op, 'dout'),
      outer, dim, inner, start, len));
  }

  /** NaN is also what a refused call returns; last_error tells the two apart. */
  sumSquares(x: Storage): number {
    const op = 'sumSquares';
    const sum = this.wasm.ff_sum_squares(...this.f32(x, op, 'x'));
    if (Number.isNaN(sum) && this.wasm.ff_last_error_len() > 0) throw new RangeError(renameOp(this.lastError(), op));
    return sum;
  }

  adamUpdate(param: Storage, m: Storage, v: Storage, grad: Storage, lr: number, beta1: number,
    beta2: number, eps: number, weightDecay: number, step: number, decoupled: boolean): void {
    const op = 'adamUpdate';
    this.check(op, this.wasm.ff_adam_update(...this.f32(param, op, 'param'), ...this.f32(m, op, 'm'),
      ...this.f32(v, op, 'v'), ...this.f32(grad, op, 'grad'), lr, beta1, beta2, eps, weightDecay, step,
      flag(decoupled)));
  }
}
