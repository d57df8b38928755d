// `npm pack` ships the compiled JavaScript and types, both wasm modules and the linux-x64
// addon; installed into an empty project with no Rust toolchain on PATH, the package runs a
// small op on the native and the wasm backend with the same result.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(path.join(tmpdir(), 'ferroformer-pack-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A PATH holding only node, npm and sh: no cargo, rustc or rustup. */
function bareBin(): string {
  const bin = path.join(work, 'bin');
  mkdirSync(bin);
  const npmCli = realpathSync(execFileSync('sh', ['-c', 'command -v npm']).toString().trim());
  symlinkSync(process.execPath, path.join(bin, 'node'));
  symlinkSync(npmCli, path.join(bin, 'npm'));
  symlinkSync('/bin/sh', path.join(bin, 'sh'));
  return bin;
}

it('npm pack installs into an empty project and runs on native and wasm without Rust', () => {
  // --ignore-scripts: `prepare` already built dist/ and build/ (npm install / npm ci).
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: repo }).toString()) as { filename: string; files: { path: string }[] }[];
  const files = packed[0]!.files.map((f) => f.path);
  for (const expected of ['dist/index.js', 'dist/index.d.ts', 'dist/browser.js', 'build/ferroformer.wasm', 'build/ferroformer.linux-x64-gnu.node']) {
    expect(files, `tarball lacks ${expected}`).toContain(expected);
  }
  expect(files.some((f) => f.startsWith('ts/') || f.startsWith('crates/'))).toBe(false);

  const project = path.join(work, 'app');
  mkdirSync(project);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
  const env = { ...process.env, PATH: bareBin(), npm_config_update_notifier: 'false' };
  expect(spawnSync('sh', ['-c', 'command -v cargo || command -v rustc'], { env }).status).not.toBe(0);
  const install = spawnSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', path.join(work, packed[0]!.filename)], { cwd: project, env, encoding: 'utf8' });
  expect(install.status, install.stderr).toBe(0);
  expect(readdirSync(path.join(project, 'node_modules', 'ferroformer', 'build'))).toContain('ferroformer.wasm');

  writeFileSync(path.join(project, 'main.js'), `
    import { init, tensor, ops } from 'ferroformer';
    const out = {};
    for (const name of ['native', 'wasm']) {
      const backend = await init({ backend: name });
      const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
      const b = tensor([1, 0, 0, 1, 1, 1], [3, 2]);
      out[backend.name] = ops.matmul(a, b).toArray();
    }
    console.log(JSON.stringify(out));
  `);
  const run = spawnSync('node', ['main.js'], { cwd: project, env, encoding: 'utf8' });
  expect(run.status, run.stderr).toBe(0);
  const result = JSON.parse(run.stdout) as Record<string, number[]>;
  expect(result['native']).toEqual([4, 5, 10, 11]);
  expect(result['wasm']).toEqual([4, 5, 10, 11]);
}, 180_000);
