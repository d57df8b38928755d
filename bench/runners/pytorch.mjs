// Every workload in PyTorch at --threads=N (torch.set_num_threads), --mode=eager|compile
// (torch.compile; a workload it cannot compile is reported as a failure with the reason).
// The inputs are written to files so that PyTorch computes on exactly the bytes ferroformer
// does; W1-W3 outputs come back for the same float64 oracle check before their timings count,
// W4 (the same DecoderLM, 659,968 parameters, same token ids) reports its losses for the
// training check in bench/report.mjs; so do W5 and W6 (nanoGPT's model.py from the same
// initial weights and batch as examples/nanogpt), W6 in a Python process of its own so that
// its peak resident memory is its own. Python: bench/.venv (made by bench/install.mjs on first
// use) or FERRO_BENCH_PYTHON.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchPython, CHECK_TOL, check, emit, NANOGPT, parseArgs, rateRecord, shapeName, W4_PARAMETERS } from '../lib/common.mjs';
import { PYTORCH_SCRIPT, pytorchEnv, writePytorchJobs } from '../lib/pytorch_jobs.mjs';

const args = parseArgs();
const threads = args.threads;
const mode = args.mode === 'compile' ? 'compile' : 'eager';
const want = (w) => !args.only || args.only.has(w);
const base = { implementation: 'PyTorch', backend: mode === 'compile' ? 'torch.compile' : 'eager', threads };
const dir = mkdtempSync(join(tmpdir(), 'ferro-bench-torch-'));
const f32 = (name) => new Float32Array(readFileSync(join(dir, name)).buffer.slice(0));

const jobs = writePytorchJobs(dir, { want, quick: args.quick });

try {
  const python = benchPython();
  if (python === null) throw new Error('PyTorch is not installed: run `node bench/install.mjs` (or set FERRO_BENCH_PYTHON)');
  const runPython = (specs) => {
    const run = spawnSync(python, [PYTORCH_SCRIPT, dir, args.quick ? '0.15' : '1.0', mode, String(threads), ...specs],
      { env: pytorchEnv(threads), encoding: 'utf8', maxBuffer: 64 << 20, timeout: 20 * 60_000 });
    if (run.error || (run.status !== 0 && !run.stdout)) throw new Error(`PyTorch script failed (${python}): ${run.error?.message ?? run.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    return { run, records: run.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)) };
  };
  const isolated = jobs.filter((j) => j[1] === 'W6');
  const shared = jobs.filter((j) => j[1] !== 'W6');
  const outcomes = [shared, isolated].filter((group) => group.length).map((group) => ({ group, ...runPython(group.map((j) => j[0])) }));
  for (const { group, run, records } of outcomes) for (const [, workload, shape, data, output] of group) {
    const r = records.find((x) => x.workload === workload && (workload !== 'W1' || x.spec === shapeName.W1(shape)));
    const named = { workload, shape: shapeName[workload](shape), ...base };
    if (!r) { emit({ kind: 'failure', ...named, reason: `no result (exit ${run.status}): ${run.stderr.trim().split('\n').slice(-2).join(' | ')}` }); continue; }
    if (r.failure) { emit({ kind: 'failure', ...named, reason: `${mode === 'compile' ? 'torch.compile skipped: ' : ''}${r.failure}` }); continue; }
    const note = `torch ${r.torch}, CPU capability ${r.capability}`;
    if (workload === 'W5' || workload === 'W6') {
      if (r.params !== NANOGPT[workload].parameters) { emit({ kind: 'failure', ...named, reason: `PyTorch model has ${r.params} parameters, ours ${NANOGPT[workload].parameters}` }); continue; }
      const { firstLoss, secondLoss, lastLoss, steps, losses, params, peakRssMiB, baseRssMiB, memoryMethod } = r;
      emit({ ...rateRecord({ ...base, workload, shape, timing: r, checkError: null, note }), firstLoss, secondLoss, lastLoss, steps, losses, params, peakRssMiB, baseRssMiB, memoryMethod });
      continue;
    }
    if (workload === 'W4') {
      if (r.params !== W4_PARAMETERS) { emit({ kind: 'failure', ...named, reason: `PyTorch model has ${r.params} parameters, ours ${W4_PARAMETERS}` }); continue; }
      emit({ ...rateRecord({ ...base, workload, shape, timing: r, checkError: null, note }), firstLoss: r.firstLoss, lastLoss: r.lastLoss, steps: r.steps });
      continue;
    }
    const err = check[workload](shape, data, f32(output));
    if (!(err <= CHECK_TOL)) { emit({ kind: 'failure', ...named, reason: `result check failed: error ${err}` }); continue; }
    emit(rateRecord({ ...base, workload, shape, timing: r, checkError: err, note }));
  }
} catch (e) {
  emit({ kind: 'failure', workload: '*', ...base, reason: String(e?.message ?? e) });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
