// The process-wide default backend, chosen once by `init()` (see init_node.ts and
// init_browser.ts). Tensors created without an explicit backend land here.
import type { Backend, BackendName } from './backend.js';

let current: Backend | null = null;

export function setDefaultBackend(backend: Backend): void {
  current = backend;
}

export function getDefaultBackend(): Backend {
  if (current === null) {
    throw new Error("ferroformer: no backend initialised; call `await init()` first (backend 'auto', 'native', 'wasm' or 'reference')");
  }
  return current;
}

export function hasDefaultBackend(): boolean {
  return current !== null;
}

export interface InitOptions {
  /** 'auto' picks native in Node when the addon loads, else wasm. Default 'auto'. */
  backend?: BackendName | 'auto';
  /** Worker threads for matmul and attention (native). Default: the backend's default. */
  threads?: number;
}

export function validateInitOptions(options: InitOptions): void {
  const allowed = ['auto', 'native', 'wasm', 'reference'];
  if (options.backend !== undefined && !allowed.includes(options.backend)) {
    throw new RangeError(`init: backend must be one of ${allowed.join(', ')}, got ${String(options.backend)}`);
  }
  if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 1)) {
    throw new RangeError(`init: threads must be a positive integer, got ${String(options.threads)}`);
  }
}
