// The process-wide default backend, chosen once by `init()` (see init_node.ts and
// init_browser.ts). Tensors created without an explicit backend land here.
import type { Backend, BackendName } from './backend.js';
// errors.ts imports nothing, so the lowest layer may throw the library's typed errors too.
import { BackendError, ConfigError, checkOptions } from '../tensor/errors.js';

let current: Backend | null = null;

export function setDefaultBackend(backend: Backend): void {
  current = backend;
}

export function getDefaultBackend(): Backend {
  if (current === null) {
    throw new BackendError('ferroformer', "no backend initialised; call `await init()` first (backend 'auto', 'native', 'wasm' or 'reference')");
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

/** Checks init()'s options; `extraKeys` are an entry's own (the browser's wasmUrl). */
export function validateInitOptions(options: InitOptions, extraKeys: readonly string[] = []): void {
  checkOptions('init', options, ['backend', 'threads', ...extraKeys]);
  const allowed = ['auto', 'native', 'wasm', 'reference'];
  if (options.backend !== undefined && !allowed.includes(options.backend)) {
    throw new ConfigError('init', `backend must be one of ${allowed.join(', ')}, got ${String(options.backend)}`);
  }
  if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 1)) {
    throw new ConfigError('init', `threads must be a positive integer, got ${String(options.threads)}`);
  }
}

/** init()'s failure to load a backend, as the library's BackendError (the cause kept). */
export function backendLoadError(name: string, cause: unknown): BackendError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new BackendError('init', `the ${name} backend failed to load: ${reason}`, { cause });
}
