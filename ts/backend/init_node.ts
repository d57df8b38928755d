// init() for Node: native addon when it loads, else the wasm module.
import type { Backend, BackendName } from './backend.js';
import { setDefaultBackend, validateInitOptions, type InitOptions } from './registry.js';

/** Loads one backend by name (no fallback). Imports are lazy so that loading one backend
 * never requires the files of another. */
export async function loadBackend(name: BackendName): Promise<Backend> {
  switch (name) {
    case 'native':
      return (await import('./native.js')).loadNativeBackend();
    case 'wasm':
      return (await import('./wasm.js')).loadWasmBackend();
    case 'reference':
      return new (await import('./reference.js')).ReferenceBackend();
  }
}

export async function init(options: InitOptions = {}): Promise<Backend> {
  validateInitOptions(options);
  const wanted = options.backend ?? 'auto';
  let backend: Backend;
  if (wanted === 'auto') {
    try {
      backend = await loadBackend('native');
    } catch {
      // The addon is optional (no binary for this platform): wasm runs everywhere.
      backend = await loadBackend('wasm');
    }
  } else {
    backend = await loadBackend(wanted);
  }
  if (options.threads !== undefined) backend.setThreads(options.threads);
  setDefaultBackend(backend);
  return backend;
}
