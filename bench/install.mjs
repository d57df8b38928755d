#!/usr/bin/env node
// Installs the benchmark peers on first use: the JS ones (bench/package.json: tfjs,
// onnxruntime-node/web, tinybench) into bench/node_modules, and PyTorch with numpy from PyPI
// into the virtual environment bench/.venv (about 5 GB with torch's CUDA libraries, a few
// minutes; FERRO_BENCH_PYTHON names an existing Python with both instead). They live outside
// the root package so that a user's `npm install` and CI never pull them in: onnxruntime-node's
// install script downloads a CUDA provider unless ONNXRUNTIME_NODE_INSTALL=skip, which only
// this script sets. A failed PyTorch install does not stop the benchmark: its rows are then
// reported as failures with the reason.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = dirname(fileURLToPath(import.meta.url));
const wanted = Object.keys(JSON.parse(readFileSync(join(benchDir, 'package.json'), 'utf8')).dependencies);
const missing = wanted.filter((name) => !existsSync(join(benchDir, 'node_modules', name, 'package.json')));
if (missing.length > 0) {
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
}

// ---- PyTorch ----------------------------------------------------------------------------------

const hasTorch = (python) => spawnSync(python, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;

/** Runs a step of the install, echoing it; false (with the reason printed) if it failed. */
function step(command, commandArgs) {
  console.error(`bench: $ ${command} ${commandArgs.join(' ')}`);
  const r = spawnSync(command, commandArgs, { stdio: 'inherit' });
  if (r.error || r.status !== 0) {
    console.error(`bench: that failed (${r.error?.message ?? `exit ${r.status}`}); the PyTorch rows will say so`);
    return false;
  }
  return true;
}

const venv = join(benchDir, '.venv');
const venvPython = join(venv, process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python');
if (process.env.FERRO_BENCH_PYTHON) {
  if (!hasTorch(process.env.FERRO_BENCH_PYTHON)) {
    console.error(`bench: FERRO_BENCH_PYTHON=${process.env.FERRO_BENCH_PYTHON} cannot import torch and numpy; the PyTorch rows will say so`);
  }
} else if (!(existsSync(venvPython) && hasTorch(venvPython))) {
  console.error('bench: installing PyTorch and numpy from PyPI into bench/.venv (first use only; about 5 GB, a few minutes)');
  const python = process.platform === 'win32' ? 'python' : 'python3';
  if (existsSync(venvPython) || step(python, ['-m', 'venv', venv])) {
    step(venvPython, ['-m', 'pip', 'install', '--disable-pip-version-check', 'torch', 'numpy']);
  }
}
