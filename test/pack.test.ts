// `npm pack` ships the compiled JavaScript and types, both wasm modules and the linux-x64
// addon, and a package.json without the repository's build scripts; installed into an
// empty project with no Rust toolchain on PATH, npm asks to approve no script, the package
// runs a small op on the native and the wasm backend with the same result, and its typings
// compile under a user's `tsc --strict` with lib es2022 and skipLibCheck false.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
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
  // With scripts: prepack strips `scripts` from the packed package.json (so `prepare`, which
  // already built dist/ and build/ at npm install, does not run again) and postpack puts the
  // repository's package.json back.
  const manifestBefore = readFileSync(path.join(repo, 'package.json'), 'utf8');
  // A clone's `npm install` builds everything through the repository's `prepare`.
  expect((JSON.parse(manifestBefore) as { scripts: Record<string, string> }).scripts['prepare']).toBe('npm run build');
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] }).toString()) as { filename: string; files: { path: string }[] }[];
  expect(readFileSync(path.join(repo, 'package.json'), 'utf8')).toBe(manifestBefore);
  expect(existsSync(path.join(repo, '.package.json.unpacked'))).toBe(false);
  const tarball = path.join(work, packed[0]!.filename);
  const published = JSON.parse(execFileSync('tar', ['-xzOf', tarball, 'package/package.json']).toString()) as Record<string, unknown>;
  expect(published['scripts']).toBeUndefined();
  expect(published['repository']).toMatchObject({ type: 'git', url: expect.stringMatching(/^git\+https:\/\/.+\.git$/) });
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
  // Scripts allowed: npm 11 would list a tarball's `prepare` as an install script to approve.
  const install = spawnSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: project, env, encoding: 'utf8' });
  expect(install.status, install.stderr).toBe(0);
  expect(install.stderr).not.toMatch(/install-scripts|ferroformer@/);
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

  // A user's strict typecheck of the installed typings: lib es2022 (no esnext, so no
  // Symbol.dispose of its own), skipLibCheck false; once as a Node project (@types/node, the
  // repository's copy) and once as a browser project (lib dom, no Node types).
  writeFileSync(path.join(project, 'consumer.ts'), `
    import { init, nn, ops, tensor, train } from 'ferroformer';
    await init({ backend: 'wasm' });
    const model = new nn.Transformer({ srcVocab: 5, tgtVocab: 5, dModel: 8, nHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFF: 16 });
    const bytes: Uint8Array = train.modelToSafetensors(model);
    const loaded: nn.LoadResult = train.loadModelSafetensors(model, bytes, { strict: false });
    const product = ops.matmul(tensor([1, 2], [1, 2]), tensor([1, 2], [2, 1]));
    export const result: [number[], number, string[]] = [product.toArray(), bytes.length, loaded.missingKeys];
  `);
  const tsc = path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ ...JSON.parse(readFileSync(path.join(project, 'package.json'), 'utf8')) as object, type: 'module' }));
  const setups = {
    node: { lib: ['es2022'], types: ['node'], typeRoots: [path.join(repo, 'node_modules', '@types')] },
    browser: { lib: ['es2022', 'dom'], types: [] },
  };
  for (const [name, setup] of Object.entries(setups)) {
    const compilerOptions = { strict: true, skipLibCheck: false, target: 'es2022', module: 'node16', moduleResolution: 'node16', noEmit: true, ...setup };
    writeFileSync(path.join(project, `tsconfig.${name}.json`), JSON.stringify({ compilerOptions, files: ['consumer.ts'] }));
    const check = spawnSync('node', [tsc, '-p', `tsconfig.${name}.json`], { cwd: project, env, encoding: 'utf8' });
    expect(check.status, `tsc (${name} project):\n${check.stdout}${check.stderr}`).toBe(0);
  }
}, 180_000);
