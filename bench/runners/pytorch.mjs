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
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchPython, CHECK_TOL, check, emit, inputs, NANOGPT, NANOGPT_OPTIM, nanogptInitialState, parseArgs, rateRecord, shapeName, W1_QUICK, W1_SHAPES, W2, W3, W4, W4_PARAMETERS } from '../lib/common.mjs';

const args = parseArgs();
const threads = args.threads;
const mode = args.mode === 'compile' ? 'compile' : 'eager';
const want = (w) => !args.only || args.only.has(w);
const base = { implementation: 'PyTorch', backend: mode === 'compile' ? 'torch.compile' : 'eager', threads };
const dir = mkdtempSync(join(tmpdir(), 'ferro-bench-torch-'));
const f32 = (name) => new Float32Array(readFileSync(join(dir, name)).buffer.slice(0));

/** [spec for the script, workload, shape, data, output file]. */
const jobs = [];
if (want('W1')) {
  for (const shape of args.quick ? W1_QUICK : W1_SHAPES) {
    const name = shapeName.W1(shape);
    const data = inputs.W1(shape);
    writeFileSync(join(dir, `W1-${name}.a.f32`), data.a);
    writeFileSync(join(dir, `W1-${name}.b.f32`), data.b);
    jobs.push([`W1:${name}`, 'W1', shape, data, `W1-${name}.c.f32`]);
  }
}
if (want('W2')) {
  const data = inputs.W2();
  for (const x of ['q', 'k', 'v']) writeFileSync(join(dir, `W2.${x}.f32`), data[x]);
  jobs.push([`W2:${W2.b},${W2.h},${W2.t},${W2.d}`, 'W2', null, data, 'W2.out.f32']);
}
if (want('W3')) {
  const data = inputs.W3();
  for (const x of ['x', 'gamma', 'beta']) writeFileSync(join(dir, `W3.${x}.f32`), data[x]);
  jobs.push([`W3:${W3.rows},${W3.dim},${W3.eps}`, 'W3', null, data, 'W3.y.f32']);
}
if (want('W4')) {
  writeFileSync(join(dir, 'W4.ids.i32'), inputs.W4());
  jobs.push([`W4:${[W4.vocab, W4.dModel, W4.nHeads, W4.numLayers, W4.dFF, W4.seq, W4.batch].join(',')}`, 'W4', null, null, null]);
}

for (const workload of ['W5', 'W6']) {
  if (!want(workload)) continue;
  const c = NANOGPT[workload];
  const state = nanogptInitialState(c);
  for (const [name, { data }] of state) writeFileSync(join(dir, `${workload}.param.${name}.f32`), data);
  writeFileSync(join(dir, `${workload}.ids.i32`), inputs[workload]());
  // W5 as many iterations as fit in the time budget; W6 (seconds each) a fixed few.
  const iterations = workload === 'W6' ? (args.quick ? 2 : 5) : 0;
  writeFileSync(join(dir, `${workload}.json`), JSON.stringify({ workload, config: c, parameters: [...state].map(([n, e]) => [n, e.shape]), ...NANOGPT_OPTIM, iterations }));
  jobs.push([`${workload}:${workload}.json`, workload, null, null, null]);
}

try {
  const python = benchPython();
  if (python === null) throw new Error('PyTorch is not installed: run `node bench/install.mjs` (or set FERRO_BENCH_PYTHON)');
  const script = fileURLToPath(new URL('../lib/pytorch_bench.py', import.meta.url));
  // torch.compile's C++ compiler and OpenMP follow the thread setting too.
  const env = { ...process.env, OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
  const runPython = (specs) => {
    const run = spawnSync(python, [script, dir, args.quick ? '0.15' : '1.0', mode, String(threads), ...specs],
      { env, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 20 * 60_000 });
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
