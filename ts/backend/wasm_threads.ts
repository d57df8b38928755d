// Threads for the wasm backend: build/ferroformer-threads.wasm imports one shared
// WebAssembly.Memory; each worker (worker_threads in Node, a Web Worker in the browser)
// instantiates the same module over that memory with its own stack and thread-local block,
// then parks in `ff_worker_run` until a kernel hands out tasks (crates/wasm/src/pool.rs).
// The calling thread always works too and never waits for a worker to start, so a kernel
// finishes even if a worker is slow to start or never does; it blocks only to wait for the
// last task a worker has already taken, and only where blocking is allowed (not on a
// browser's main thread, where it spins).
//
// Shared memory needs a cross-origin-isolated page in browsers (COOP/COEP headers); where
// it is not available the loader uses the single-threaded module instead.

import { nodeBuiltin } from './node_builtin.js';
import type { WasmExports } from './wasm_load.js';

/** Must match THREADS_INITIAL_MEMORY / THREADS_MAX_MEMORY in scripts/build-wasm.mjs: an
 * imported memory must satisfy the limits the module declares. */
export const THREADS_INITIAL_PAGES = 64;
export const THREADS_MAXIMUM_PAGES = 65536;

/** Per worker; the kernels need little, but Rust's default for a thread is this much. */
const WORKER_STACK_BYTES = 1 << 20;
const STACK_ALIGN = 16;
export const MAX_THREADS = 256;

/** The threaded module's extra exports. */
export interface ThreadedExports extends WasmExports {
  ff_set_workers(workers: number): number;
  ff_worker_run(id: number, epoch: number): void;
  ff_worker_tasks(): number;
  ff_set_caller_may_block(mayBlock: number): void;
  readonly __stack_pointer: WebAssembly.Global;
  readonly __tls_size: WebAssembly.Global;
  readonly __tls_align: WebAssembly.Global;
  __wasm_init_tls(tls: number): void;
}

/** What a worker needs to join. */
interface WorkerStart {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  id: number;
  epoch: number;
  stackTop: number;
  tls: number;
}

/** Starts one worker; `onStarted` runs when it has joined the pool, `onGone` once it has
 * left wasm for good (retired or failed). */
export type StartWorker = (start: WorkerStart, onGone: () => void, onStarted: () => void) => void;

/** Runs inside each worker, as plain JS (no file to ship or resolve): Node's eval workers
 * have `process.getBuiltinModule`, browsers' have `self`. */
const WORKER_SOURCE = `'use strict';
const port = typeof self === 'object' ? null : process.getBuiltinModule('worker_threads').parentPort;
const post = (message) => (port ? port.postMessage(message) : self.postMessage(message));
// A trap leaves the task this worker took unfinished, and the thread that handed it out
// waits for it for good, blocked or spinning, so that no error event can reach it: say so
// at once, from here (synchronously on Node's stderr).
function report(error) {
  const message = 'ferroformer: a wasm worker stopped with ' + String(error && error.stack || error) +
    '\\nThe kernel call that gave it a task cannot finish; its thread waits for it.\\n';
  if (port) process.getBuiltinModule('fs').writeSync(2, message); else console.error(message);
}
function run({ module, memory, id, epoch, stackTop, tls }) {
  const wasm = new WebAssembly.Instance(module, { env: { memory } }).exports;
  wasm.__stack_pointer.value = stackTop;
  wasm.__wasm_init_tls(tls);
  post('started');
  try {
    wasm.ff_worker_run(id, epoch);
  } catch (error) {
    report(error);
    throw error;
  }
  post('retired');
}
if (port) port.once('message', run); else self.onmessage = (event) => run(event.data);
`;

const isNode = (): boolean => typeof process === 'object' && typeof process.versions?.node === 'string';

/** Whether this thread may block in `Atomics.wait` (memory.atomic.wait): everywhere but a
 * browser's main thread (Node's main thread may). */
function mayBlock(): boolean {
  if (isNode()) return true;
  const workerScope = (globalThis as { WorkerGlobalScope?: new () => unknown }).WorkerGlobalScope;
  return typeof workerScope === 'function' && globalThis instanceof workerScope;
}

/** Node always has SharedArrayBuffer; a browser only on a cross-origin-isolated page. */
export function sharedMemoryAvailable(): boolean {
  if (typeof SharedArrayBuffer !== 'function') return false;
  return isNode() || (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
}

export function isThreadedModule(module: WebAssembly.Module): boolean {
  return WebAssembly.Module.imports(module).some((i) => i.module === 'env' && i.name === 'memory' && i.kind === 'memory');
}

/** Gives the thread that instantiated a threaded module its own thread-local block; call it
 * before anything else runs there. Each thread's thread-locals live at its `__tls_base`,
 * which `__wasm_init_tls` sets and fills with their initial values (workers call it in
 * WORKER_SOURCE). The linker sets up none for the instantiating thread: without this its
 * thread-locals would sit at address 0, the bottom of its own stack, holding zeros where
 * Rust's initial values differ (a String's dangling pointer). */
export function initThreadLocals(wasm: ThreadedExports): void {
  const tls = wasm.ff_alloc(wasm.__tls_size.value as number, wasm.__tls_align.value as number);
  if (tls === 0) throw new RangeError('ferroformer: out of wasm memory for the thread-local block');
  wasm.__wasm_init_tls(tls);
}

export function createSharedMemory(): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: THREADS_INITIAL_PAGES, maximum: THREADS_MAXIMUM_PAGES, shared: true });
}

/** How to start a worker here, or null where there are no workers. */
export async function workerStarter(): Promise<StartWorker | null> {
  if (isNode()) {
    const { Worker } = nodeBuiltin('worker_threads', 'ferroformer: wasm threads');
    return (start, onGone, onStarted) => {
      const worker = new Worker(WORKER_SOURCE, { eval: true });
      worker.once('exit', onGone);
      // Its first message is 'started' ('retired' comes with the exit). Referenced until then,
      // so that awaiting `ready` keeps the process alive; a parked worker must not.
      worker.once('message', () => {
        worker.unref();
        onStarted();
      });
      worker.postMessage(start);
    };
  }
  if (typeof Worker !== 'function' || typeof Blob !== 'function') return null;
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
  return (start, onGone, onStarted) => {
    const worker = new Worker(url);
    const gone = (): void => {
      worker.terminate();
      onGone();
    };
    worker.onmessage = (event: MessageEvent) => (event.data === 'started' ? onStarted() : gone()); // else 'retired'
    worker.onerror = gone;
    worker.postMessage(start);
  };
}

/** The worker set of one threaded instance. */
export class WasmThreads {
  private count = 1;
  private started: Promise<void> = Promise.resolve();

  constructor(
    private readonly module: WebAssembly.Module,
    private readonly memory: WebAssembly.Memory,
    private readonly wasm: ThreadedExports,
    private readonly startWorker: StartWorker,
  ) {
    // This instance's kernels are called from this thread: where it may block, it sleeps
    // while waiting for a straggling worker rather than spinning on the core that worker
    // may need (crates/wasm/src/pool.rs).
    wasm.ff_set_caller_may_block(mayBlock() ? 1 : 0);
  }

  get threads(): number {
    return this.count;
  }

  /** Tasks the workers (not the calling thread) have run so far. */
  get workerTasks(): number {
    return this.wasm.ff_worker_tasks();
  }

  /** Settles once every worker of the last `set` has joined the pool or failed to start.
   * A browser starts a Web Worker only when the thread that created it returns to its event
   * loop, so a synchronous loop right after `set` would run without them: await this first. */
  get ready(): Promise<void> {
    return this.started;
  }

  /** n - 1 workers plus the calling thread. Workers of the previous setting retire by
   * themselves (and free their stacks when gone); fresh ones start for this one. */
  set(n: number): void {
    if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) {
      throw new RangeError(`setThreads: threads must be an integer from 1 to ${MAX_THREADS}, got ${n}`);
    }
    if (n === this.count) return;
    const blocks = this.allocateWorkerMemory(n - 1);
    const epoch = this.wasm.ff_set_workers(n - 1);
    this.started = Promise.all(blocks.map(({ stack, tls }, id) => new Promise<void>((joined) => {
      const start = { module: this.module, memory: this.memory, id, epoch, stackTop: stack + WORKER_STACK_BYTES, tls };
      this.startWorker(start, () => {
        joined(); // a worker that failed to start counts as settled
        this.wasm.ff_free(stack, WORKER_STACK_BYTES, STACK_ALIGN);
        this.wasm.ff_free(tls, this.tlsSize, this.tlsAlign);
      }, joined);
    }))).then(() => undefined);
    this.count = n;
  }

  private get tlsSize(): number {
    return this.wasm.__tls_size.value as number;
  }

  private get tlsAlign(): number {
    return this.wasm.__tls_align.value as number;
  }

  /** A stack and a thread-local block per worker; all or nothing. */
  private allocateWorkerMemory(workers: number): { stack: number; tls: number }[] {
    const blocks: { stack: number; tls: number }[] = [];
    const release = (block: { stack: number; tls: number }): void => {
      if (block.stack !== 0) this.wasm.ff_free(block.stack, WORKER_STACK_BYTES, STACK_ALIGN);
      if (block.tls !== 0) this.wasm.ff_free(block.tls, this.tlsSize, this.tlsAlign);
    };
    for (let i = 0; i < workers; i++) {
      const block = { stack: this.wasm.ff_alloc(WORKER_STACK_BYTES, STACK_ALIGN), tls: this.wasm.ff_alloc(this.tlsSize, this.tlsAlign) };
      if (block.stack === 0 || block.tls === 0) {
        [...blocks, block].forEach(release);
        throw new RangeError(`setThreads: out of wasm memory for ${workers} worker stacks`);
      }
      blocks.push(block);
    }
    return blocks;
  }
}
