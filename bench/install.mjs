#!/usr/bin/env node
// Installs the benchmark peers (bench/package.json: tfjs, onnxruntime-node/web, tinybench)
// into bench/node_modules on first use. They live outside the root package so that a user's
// `npm install` and CI never pull them in: onnxruntime-node's install script downloads a
// CUDA provider unless ONNXRUNTIME_NODE_INSTALL=skip, which only this script sets.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = dirname(fileURLToPath(import.meta.url));
const wanted = Object.keys(JSON.parse(readFileSync(join(benchDir, 'package.json'), 'utf8')).dependencies);
const missing = wanted.filter((name) => !existsSync(join(benchDir, 'node_modules', name, 'package.json')));
if (missing.length === 0) process.exit(0);

console.error(`bench: installing the benchmark peers into bench/node_modules (missing: ${missing.join(', ')})`);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const install = spawnSync(npm, ['install', '--no-audit', '--no-fund'], {
  cwd: benchDir,
  stdio: 'inherit',
  env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
});
if (install.error || install.status !== 0) {
  console.error(`bench: npm install in bench/ failed (${install.error?.message ?? `exit ${install.status}`})`);
  process.exit(1);
}
