// init() for the browser bundle: wasm (or the reference backend for debugging); the
// native addon does not exist there.
import type { Backend } from './backend.js';
import { ReferenceBackend } from './reference.js';
import { setDefaultBackend, validateInitOptions, type InitOptions } from './registry.js';
import { loadWasmBackend } from './wasm.js';

export interface BrowserInitOptions extends InitOptions {
  /** Where the .wasm file is served; default: next to this module in the package. */
  wasmUrl?: URL | string;
}

export async function init(options: BrowserInitOptions = {}): Promise<Backend> {
  validateInitOptions(options);
  if (options.backend === 'native') {
    throw new RangeError("init: backend 'native' is not available in the browser; use 'wasm' or 'auto'");
  }
  const backend: Backend =
    options.backend === 'reference' ? new ReferenceBackend() : await loadWasmBackend({ wasmUrl: options.wasmUrl });
  if (options.threads !== undefined) backend.setThreads(options.threads);
  setDefaultBackend(backend);
  return backend;
}
