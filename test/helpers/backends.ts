// One test body on every backend (as candle's test_device!). FERRO_BACKEND=native|wasm|reference
// restricts the run. A backend that fails to load fails its tests: it is never skipped.
import { describe, beforeAll } from 'vitest';
import type { Backend, BackendName } from '../../ts/backend/backend.js';
import { loadBackend } from '../../ts/backend/init_node.js';

const ALL: BackendName[] = ['native', 'wasm', 'reference'];

export function selectedBackends(): BackendName[] {
  const env = process.env['FERRO_BACKEND'];
  if (!env) return ALL;
  const names = env.split(',').map((s) => s.trim()) as BackendName[];
  for (const n of names) if (!ALL.includes(n)) throw new Error(`FERRO_BACKEND: unknown backend ${n}`);
  return names;
}

const loaded = new Map<BackendName, Promise<Backend>>();

export function getBackend(name: BackendName): Promise<Backend> {
  let p = loaded.get(name);
  if (!p) {
    p = loadBackend(name);
    loaded.set(name, p);
  }
  return p;
}

export interface BackendContext {
  readonly name: BackendName;
  /** The loaded backend (available inside tests and hooks). */
  readonly backend: Backend;
}

/** describe(`<title> [<backend>]`) per selected backend; tests read ctx.backend. */
export function describeEachBackend(title: string, body: (ctx: BackendContext) => void): void {
  for (const name of selectedBackends()) {
    const ctx = { name, backend: null as unknown as Backend };
    describe(`${title} [${name}]`, () => {
      beforeAll(async () => {
        ctx.backend = await getBackend(name);
      });
      body(ctx);
    });
  }
}

/** max|got - want| / (max|want| + 1e-6), DESIGN.md's error measure. */
export function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`relErr: length ${got.length} vs ${want.length}`);
  let maxDiff = 0;
  let maxWant = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    // NaN must fail the comparison, not vanish in Math.max.
    maxDiff = Number.isNaN(d) ? Infinity : Math.max(maxDiff, d);
    maxWant = Math.max(maxWant, Math.abs(want[i]!));
  }
  return maxDiff / (maxWant + 1e-6);
}
