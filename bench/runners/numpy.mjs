// W1 with numpy's matmul (OpenBLAS) at --threads=N (OPENBLAS_NUM_THREADS): the inputs are
// written to files so that numpy multiplies exactly the bytes ferroformer does; its C comes
// back for the same oracle check before its timings count.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchPython, CHECK_TOL, check, emit, inputs, parseArgs, rateRecord, shapeName, W1_QUICK, W1_SHAPES } from '../lib/common.mjs';

const args = parseArgs();
const threads = args.threads;
const shapes = args.quick ? W1_QUICK : W1_SHAPES;
const dir = mkdtempSync(join(tmpdir(), 'ferro-bench-'));
const base = { implementation: 'numpy (OpenBLAS)', backend: 'cpu', threads };
try {
  const data = new Map();
  for (const shape of shapes) {
    const d = inputs.W1(shape);
    data.set(shapeName.W1(shape), { shape, d });
    writeFileSync(join(dir, `${shapeName.W1(shape)}.a.f32`), d.a);
    writeFileSync(join(dir, `${shapeName.W1(shape)}.b.f32`), d.b);
  }
  // The machine's environment pins OpenBLAS to a core type and L2 size for other tools;
  // unset both here so OpenBLAS detects this CPU itself.
  const env = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const script = fileURLToPath(new URL('../lib/sgemm_numpy.py', import.meta.url));
  // bench/.venv (or FERRO_BENCH_PYTHON) has numpy; PYTHON overrides both.
  const python = process.env.PYTHON ?? benchPython() ?? 'python3';
  const run = spawnSync(python, [script, dir, args.quick ? '0.15' : '1.0', ...data.keys()], { env, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`numpy script failed (${python}): ${run.stderr || run.error}`);
  for (const line of run.stdout.trim().split('\n')) {
    const r = JSON.parse(line);
    const { shape, d } = data.get(r.shape);
    const c = new Float32Array(readFileSync(join(dir, `${r.shape}.c.f32`)).buffer.slice(0));
    const err = check.W1(shape, d, c);
    if (!(err <= CHECK_TOL)) {
      emit({ kind: 'failure', workload: 'W1', shape: r.shape, ...base, reason: `result check failed: error ${err}` });
      continue;
    }
    emit({ ...rateRecord({ ...base, workload: 'W1', shape, timing: r, checkError: err }), note: `numpy ${r.numpy}` });
  }
} catch (e) {
  emit({ kind: 'failure', workload: 'W1', ...base, reason: String(e?.message ?? e) });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
