// The wasm backend: the Rust kernels compiled to WebAssembly with SIMD (crates/wasm/src/lib.rs).
// Runs in Node and in the browser. Three jobs, three files: loading the module
// (wasm_load.ts), its storage in linear memory (wasm_storage.ts), and this file, the
// Backend: threads, memory calls handed to WasmMemory, and the kernel calls, generated from
// scripts/kernel-table.mjs (WasmKernels in kernels.generated.ts) over `buffer()` below.
//
// Each kernel export returns a status; on a non-zero status the message Rust left in
// last_error becomes a RangeError (`matmulForward: a has length 6, expected 12`). Rust
// refuses bad arguments before any kernel runs, so the module stays usable after the error.
// This side checks what Rust cannot see: that a storage belongs to this backend, is alive,
// and has the dtype the kernel expects.

import { checkMinParallelFlops, type Backend, type BackendName, type Capability, type DType, type HostArray, type Storage } from './backend.js';
import { WasmKernels, type WasmBuffer } from './kernels.generated.js';
import { instantiateWasm, type LoadWasmOptions, type WasmExports } from './wasm_load.js';
import { WasmMemory } from './wasm_storage.js';
import type { WasmThreads } from './wasm_threads.js';

export { wasmRelaxedSimdSupported, wasmSimdSupported, type LoadWasmOptions, type WasmExports } from './wasm_load.js';

/** Loads the wasm module and returns a backend over it, starting with one thread (see
 * `setThreads`). Each call makes a new instance with its own memory. Throws if this engine
 * lacks WebAssembly SIMD. */
export async function loadWasmBackend(opts: LoadWasmOptions = {}): Promise<WasmBackend> {
  const { wasm, threads, relaxedSimd } = await instantiateWasm(opts);
  return new WasmBackend(wasm, threads, relaxedSimd);
}

export class WasmBackend extends WasmKernels implements Backend {
  readonly name: BackendName = 'wasm';
  readonly capabilities: ReadonlySet<Capability>;
  private readonly memory: WasmMemory;

  /** `threads` is null for the single-threaded module (or where workers cannot start);
   * `relaxedSimd` says whether the module is a relaxed-SIMD build (null: not known). */
  constructor(
    protected readonly wasm: WasmExports,
    private readonly threads: WasmThreads | null = null,
    readonly relaxedSimd: boolean | null = null,
  ) {
    super();
    this.capabilities = new Set<Capability>(threads === null ? ['simd'] : ['simd', 'threads']);
    this.memory = new WasmMemory(wasm);
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

  // ---- memory (wasm_storage.ts) ------------------------------------------------------------------

  alloc(dtype: DType, length: number): Storage {
    return this.memory.allocate(dtype, length, true);
  }

  allocUninit(dtype: DType, length: number): Storage {
    return this.memory.allocate(dtype, length, false);
  }

  /** Tests: fill allocUninit's storage with NaN (f32) or junk (ints); see NativeBackend. */
  setPoisonUninitialised(on: boolean): void {
    this.memory.poisonUninit = on;
  }

  fromArray(dtype: DType, data: ArrayLike<number>): Storage {
    return this.memory.fromArray(dtype, data);
  }

  /** Calls into the module's allocator so far, pool misses (diagnostics, tests). */
  allocatorCalls(): number {
    return this.memory.allocatorCalls;
  }

  read(s: Storage): HostArray {
    return this.memory.read(s);
  }

  write(s: Storage, data: ArrayLike<number>): void {
    this.memory.write(s, data);
  }

  writeAt(s: Storage, offset: number, data: ArrayLike<number>): void {
    this.memory.writeAt(s, offset, data);
  }

  fill(s: Storage, value: number): void {
    this.memory.fill(s, value);
  }

  copy(dst: Storage, src: Storage): void {
    this.memory.copy(dst, src);
  }

  free(s: Storage): void {
    this.memory.free(s);
  }

  // ---- kernel calls (generated in kernels.generated.ts) --------------------------------------------

  protected buffer<D extends DType>(s: Storage, op: string, name: string, dtype: D): WasmBuffer<D> {
    const storage = this.memory.live(s, op, name);
    if (storage.dtype !== dtype) throw new TypeError(`${op}: ${name} must have dtype ${dtype}, got ${storage.dtype}`);
    return storage as WasmBuffer<DType> as WasmBuffer<D>;
  }

  protected checkStatus(status: number): void {
    if (status !== 0) throw new RangeError(this.memory.lastError());
  }

  /** NaN is also what a refused call returns; last_error tells the two apart. */
  protected checkResult(result: number): number {
    if (Number.isNaN(result) && this.wasm.ff_last_error_len() > 0) throw new RangeError(this.memory.lastError());
    return result;
  }
}
