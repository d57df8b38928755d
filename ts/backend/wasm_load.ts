// Loading the wasm module (crates/wasm/src/lib.rs, built by scripts/build-wasm.mjs) without
// wasm-bindgen, in Node and in browsers: which of the four builds to take (threaded where
// shared memory is available, relaxed SIMD where the engine validates it, both where both
// hold, else plain SIMD), fetching or reading it, and instantiating it with the memory the
// threaded builds import.

import { WasmKernels, type WasmKernelExports } from './kernels.generated.js';
import { BackendError } from '../tensor/errors.js';
import { nodeBuiltin } from './node_builtin.js';
import {
  createSharedMemory, initThreadLocals, isThreadedModule, sharedMemoryAvailable, type ThreadedExports, WasmThreads, workerStarter,
} from './wasm_threads.js';

/** Must equal ABI_VERSION in crates/wasm/src/lib.rs. */
export const ABI_VERSION = 2;

/** Largest allocation the shim accepts: Rust's isize::MAX on wasm32. Also keeps byte counts
 * within an i32 argument, which would otherwise wrap silently. */
const MAX_ALLOC_BYTES = 2 ** 31 - 1;

/** What crates/wasm/src/lib.rs exports: memory, errors and the kernels (kernels.rs, generated
 * from scripts/kernel-table.mjs). Pointers and lengths are numbers (wasm32). */
export interface WasmExports extends WasmKernelExports {
  readonly memory: WebAssembly.Memory;
  ff_abi_version(): number;
  ff_last_error_ptr(): number;
  ff_last_error_len(): number;
  ff_alloc(bytes: number, align: number): number;
  ff_alloc_uninit(bytes: number, align: number): number;
  ff_free(ptr: number, bytes: number, align: number): void;
  ff_min_parallel_flops(): number;
  ff_set_min_parallel_flops(flops: number): void;
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
  /** The relaxed-SIMD modules (fma as f32x4.relaxed_madd). Default: used in place of
   * build/ferroformer.wasm and build/ferroformer-threads.wasm where this engine validates
   * relaxed SIMD (Chromium; Node 20 with --experimental-wasm-relaxed-simd) and the file is
   * there (in a browser: only when its URL is given); true: required (throws if unsupported,
   * or if neither relaxed module is there); false: never. */
  relaxed?: boolean;
  /** Where to get the relaxed-SIMD single-threaded module. Default in Node:
   * build/ferroformer-relaxed.wasm; no default in browsers (serve the file and pass its URL). */
  relaxedWasmUrl?: URL | string;
  /** The same for the relaxed-SIMD threaded module. Default in Node:
   * build/ferroformer-threads-relaxed.wasm; none in browsers. */
  threadsRelaxedWasmUrl?: URL | string;
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

/** The relaxed modules' default locations, in Node only. Deliberately not the literal
 * `new URL('...', import.meta.url)` form: bundlers would then ship two more modules with every
 * browser build; browser apps that want them serve them and pass `relaxedWasmUrl` /
 * `threadsRelaxedWasmUrl`. */
const RELAXED_WASM_PATH = '../../build/ferroformer-relaxed.wasm';
const THREADS_RELAXED_WASM_PATH = '../../build/ferroformer-threads-relaxed.wasm';
function inNode(path: string): URL | null {
  return isNode() ? new URL(path, import.meta.url) : null;
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

/** The first of these that is allowed and present: threaded with relaxed SIMD, threaded,
 * relaxed SIMD, plain SIMD. Every module but the last is optional (its build may have been
 * skipped, a browser app may not serve it), so a missing one falls through. */
async function compileBest(opts: LoadWasmOptions): Promise<{ module: WebAssembly.Module; relaxedSimd: boolean | null }> {
  if (opts.bytes !== undefined) return { module: await WebAssembly.compile(opts.bytes), relaxedSimd: null };
  if (opts.relaxed === true && !wasmRelaxedSimdSupported()) {
    throw new Error('ferroformer: relaxed: true, but this engine does not support WebAssembly relaxed SIMD');
  }
  const relaxed = opts.relaxed !== false && wasmRelaxedSimdSupported();
  const threads = opts.threads !== false && sharedMemoryAvailable();
  const candidates: [URL | string | null, boolean][] = [
    [threads && relaxed ? opts.threadsRelaxedWasmUrl ?? inNode(THREADS_RELAXED_WASM_PATH) : null, true],
    [threads && opts.relaxed !== true ? opts.threadsWasmUrl ?? defaultThreadsWasmUrl() : null, false],
    [relaxed ? opts.relaxedWasmUrl ?? inNode(RELAXED_WASM_PATH) : null, true],
  ];
  for (const [url, relaxedSimd] of candidates) {
    if (url === null) continue;
    try {
      return { module: await compile(url), relaxedSimd };
    } catch {
      // Optional module missing or unreadable: try the next one.
    }
  }
  if (opts.relaxed === true) {
    throw new Error('ferroformer: relaxed: true, but no relaxed-SIMD module was found ' +
      '(build it with `npm run build:wasm`; in a browser pass relaxedWasmUrl or threadsRelaxedWasmUrl)');
  }
  return { module: await compile(opts.wasmUrl ?? defaultWasmUrl()), relaxedSimd: false };
}

/** What `instantiateWasm` gives: the instance's exports, its workers when it is a threaded
 * module (null for a single-threaded one, or where workers cannot start), and whether the
 * module is a relaxed-SIMD build (null: bytes given, unknown). */
export interface WasmInstance {
  wasm: WasmExports;
  threads: WasmThreads | null;
  relaxedSimd: boolean | null;
}

/** An instance of the best module for `opts`. Throws if this engine lacks WebAssembly SIMD. */
export async function instantiateWasm(opts: LoadWasmOptions): Promise<WasmInstance> {
  if (!wasmSimdSupported()) {
    throw new Error(
      'ferroformer: this JavaScript engine does not support WebAssembly SIMD (Node >= 16.4, ' +
        'Chrome >= 91, Firefox >= 89, Safari >= 16.4); the wasm backend needs it',
    );
  }
  const { module, relaxedSimd } = await compileBest(opts);
  if (!isThreadedModule(module)) {
    const instance = await WebAssembly.instantiate(module, {});
    return { wasm: checkedExports(instance.exports), threads: null, relaxedSimd };
  }
  if (!sharedMemoryAvailable()) {
    throw new Error('ferroformer: this is the threaded wasm module, but shared memory is not available here ' +
      '(browsers need a cross-origin-isolated page); load build/ferroformer.wasm instead');
  }
  const memory = createSharedMemory();
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const wasm = checkedExports({ ...instance.exports, memory }) as ThreadedExports;
  initThreadLocals(wasm);
  const startWorker = await workerStarter();
  return { wasm, threads: startWorker === null ? null : new WasmThreads(module, memory, wasm, startWorker), relaxedSimd };
}

function checkedExports(exports: WebAssembly.Exports): WasmExports {
  const wasm = exports as unknown as WasmExports;
  const version = typeof wasm.ff_abi_version === 'function' ? wasm.ff_abi_version() : undefined;
  if (version !== ABI_VERSION) {
    throw new BackendError(
      'ferroformer',
      `the wasm module has ABI version ${String(version)}, this code expects ${ABI_VERSION}; ` +
        'rebuild it with `npm run build:wasm`',
    );
  }
  // The kernel exports are generated from the kernel table and not versioned: a module built
  // before a kernel was added would load and fail at that kernel's first call.
  const exported = exports as Record<string, unknown>;
  const missing = kernelExportNames().filter((name) => typeof exported[name] !== 'function');
  if (missing.length > 0) {
    throw new BackendError(
      'ferroformer',
      `the wasm module is older than this code: it lacks ${missing.join(', ')}; rebuild it with \`npm run build:wasm\``,
    );
  }
  return wasm;
}

/** The export of every kernel: each method of the generated `WasmKernels` calls
 * `ff_<its snake_case name>`. */
export function kernelExportNames(): string[] {
  return Object.getOwnPropertyNames(WasmKernels.prototype)
    .filter((name) => name !== 'constructor')
    .map((name) => `ff_${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`);
}
