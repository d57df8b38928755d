#!/usr/bin/env node
// Builds the native addon (the root Cargo package, sources in crates/node/src) with
// @napi-rs/cli and leaves it at build/ferroformer.<platform>.node, e.g.
// build/ferroformer.linux-x64-gnu.node; ts/backend/native.ts loads it from there.
//
// napi's JS loader is not generated (--no-js) and no .d.ts either (napi-derive is built
// without "type-def"): native.ts picks the file and declares the addon's type itself.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// The kernel exports are generated from scripts/kernel-table.mjs: bring them up to date first.
import './gen-kernels.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outputDir = join(root, 'build');

function fail(message) {
  console.error(`build-native: ${message}`);
  process.exit(1);
}

const cargo = spawnSync('cargo', ['--version'], { encoding: 'utf8' });
if (cargo.error || cargo.status !== 0) {
  fail(
    'cargo was not found on PATH, so the native addon cannot be built.\n' +
      '  Install Rust from https://rustup.rs and run `npm run build:native` again;\n' +
      '  without the addon, ferroformer falls back to its WebAssembly backend.',
  );
}
console.log(`build-native: using ${cargo.stdout.trim()}`);

// The CLI from devDependencies, run with this node (no npx, no shell).
const require = createRequire(import.meta.url);
let napiCli;
try {
  napiCli = join(dirname(require.resolve('@napi-rs/cli/package.json')), 'dist', 'cli.js');
} catch {
  fail('@napi-rs/cli is not installed; run `npm install` first.');
}

mkdirSync(outputDir, { recursive: true });
const args = ['build', '--release', '--platform', '--no-js', '--output-dir', 'build'];
console.log(`build-native: napi ${args.join(' ')}  (cargo build --release with LTO)`);
// napi warns that it skips the JS and .d.ts bindings: intended, see the note at the top.
const startedAt = Date.now();
const build = spawnSync(process.execPath, [napiCli, ...args], { cwd: root, stdio: 'inherit' });
if (build.error) fail(`could not run @napi-rs/cli: ${build.error.message}`);
if (build.status !== 0) fail(`napi build failed with exit code ${build.status ?? build.signal}`);

// Report the addon this build wrote (napi names it after the platform).
const built = readdirSync(outputDir)
  .filter((name) => name.startsWith('ferroformer.') && name.endsWith('.node'))
  .map((name) => ({ name, stat: statSync(join(outputDir, name)) }))
  .filter(({ stat }) => stat.mtimeMs >= startedAt - 1000);
if (built.length === 0) fail(`napi build succeeded but wrote no ferroformer.*.node into ${outputDir}`);
for (const { name, stat } of built) {
  const path = relative(root, join(outputDir, name));
  console.log(`build-native: wrote ${path} (${(stat.size / 1024).toFixed(0)} KiB) in ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
}
