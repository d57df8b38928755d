// Node's built-in modules for code that both entries share (the wasm loader, checkpoint
// files): fetched when called, with process.getBuiltinModule (Node >= 20.16), never imported.
// The browser entry imports those modules too, and a bundler that meets an `import('node:…')`
// there warns and swaps in an empty stub; a call that only runs in Node leaves nothing for it
// to resolve, so a browser bundle has no reference to a Node module at all.
import type * as crypto from 'node:crypto';
import type * as fs from 'node:fs';
import type * as fsPromises from 'node:fs/promises';
import type * as os from 'node:os';
import type * as path from 'node:path';
import type * as workerThreads from 'node:worker_threads';

/** Named without the `node:` prefix (getBuiltinModule takes both), so that not even a string
 * in a browser bundle looks like a reference to a Node module. */
interface Builtins {
  crypto: typeof crypto;
  fs: typeof fs;
  'fs/promises': typeof fsPromises;
  os: typeof os;
  path: typeof path;
  worker_threads: typeof workerThreads;
}

/** The built-in module `name`; `user` (e.g. "saveCheckpoint") names the caller in the error
 * thrown where there is none (a browser, or a Node older than 20.16). */
export function nodeBuiltin<K extends keyof Builtins>(name: K, user: string): Builtins[K] {
  const host = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  if (typeof host?.getBuiltinModule !== 'function') {
    throw new Error(`${user}: needs Node's ${name} (Node >= 20.16); it is not available here`);
  }
  return host.getBuiltinModule(name) as Builtins[K];
}
