// init() for the browser bundle: wasm (or the reference backend for debugging); the
// native addon does not exist there.
import type { Backend } from './backend.js';
import { ReferenceBackend } from './reference.js';
import { ConfigError } from '../tensor/errors.js';
import { backendLoadError, setDefaultBackend, validateInitOptions, type InitOptions } from './registry.js';
import { loadWasmBackend, WasmBackend } from './wasm.js';

export interface BrowserInitOptions extends InitOptions {
  /** Where the .wasm file is served; default: next to this module in the package. */
  wasmUrl?: URL | string;
}

export async function init(options: BrowserInitOptions = {}): Promise<Backend> {
  validateInitOptions(options, ['wasmUrl']);
  if (options.backend === 'native') {
    throw new ConfigError('init', "backend 'native' is not available in the browser; use 'wasm' or 'auto'");
  }
  let backend: Backend;
  try {
    backend = options.backend === 'reference' ? new ReferenceBackend() : await loadWasmBackend({ wasmUrl: options.wasmUrl });
  } catch (e) {
    throw backendLoadError(options.backend === 'reference' ? 'reference' : 'wasm', e);
  }
  if (options.threads !== undefined) {
    backend.setThreads(options.threads);
    // Web Workers start only once this thread returns to its event loop: let them join
    // before the caller's first (synchronous) training loop.
    if (backend instanceof WasmBackend) await backend.threadsReady();
  }
  setDefaultBackend(backend);
  return backend;
}
