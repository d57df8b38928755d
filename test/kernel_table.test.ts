// The kernel table (scripts/kernel-table.mjs) and what is generated from it: the checked-in
// files are up to date (CI fails otherwise: this test runs the generator in --check mode), and
// the built addon and wasm module export every kernel of the table.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import type { Backend } from '../ts/backend/backend.js';
import { loadNativeAddon } from '../ts/backend/native.js';
import { loadWasmBackend } from '../ts/backend/wasm.js';
// @ts-expect-error: a plain .mjs data module without types
import { KERNELS } from '../scripts/kernel-table.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const names = (KERNELS as { name: string }[]).map((k) => k.name);
const camel = (name: string): string => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

it('the generated files are what scripts/gen-kernels.mjs writes from the table', () => {
  const run = spawnSync(process.execPath, ['scripts/gen-kernels.mjs', '--check'], { cwd: root, encoding: 'utf8' });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
});

it('the addon and the wasm module export every kernel of the table', async () => {
  expect(names.length).toBeGreaterThanOrEqual(34);
  const addon = loadNativeAddon() as unknown as Record<string, unknown>;
  const wasm = await loadWasmBackend({ threads: false });
  const exports = (wasm as unknown as { wasm: Record<string, unknown> }).wasm;
  for (const name of names) {
    expect(typeof addon[camel(name)], camel(name)).toBe('function');
    expect(typeof exports[`ff_${name}`], `ff_${name}`).toBe('function');
    expect(typeof (wasm as unknown as Backend as unknown as Record<string, unknown>)[camel(name)]).toBe('function');
  }
});
