// init() for Node: native addon when it loads, else the wasm module.
import type { Backend, BackendName } from './backend.js';
import { ConfigError } from '../tensor/errors.js';
import { backendLoadError, setDefaultBackend, validateInitOptions, type InitOptions } from './registry.js';

/** Loads one backend by name (no fallback). Imports are lazy so that loading one backend
 * never requires the files of another. */
export async function loadBackend(name: BackendName): Promise<Backend> {
  try {
    switch (name) {
      case 'native':
        return (await import('./native.js')).loadNativeBackend();
      case 'wasm':
        return (await import('./wasm.js')).loadWasmBackend();
      case 'reference':
        return new (await import('./reference.js')).ReferenceBackend();
    }
  } catch (e) {
    throw backendLoadError(name, e);
  }
  throw new ConfigError('loadBackend', `backend must be 'native', 'wasm' or 'reference', got ${String(name)}`);
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
  if (options.threads !== undefined) {
    try {
      backend.setThreads(options.threads);
    } catch (e) {
      throw backendLoadError(backend.name, e);
    }
  }
  setDefaultBackend(backend);
  return backend;
}
