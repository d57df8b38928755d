// `npm run bench [-- --quick] [-- --only=W1,W3,W5] [-- --rounds=N] [-- --no-duel | --duels-only] [-- --report-only]`: runs every
// implementation in its own process (thread settings of onnxruntime-web, OpenBLAS and PyTorch
// are per process), one after the other, collects their records, drops any whose result failed
// the oracle check, and writes bench/results.json and bench/RESULTS.md (bench/report.mjs).
// --rounds=N runs the whole plan N times, interleaved (every implementation once per round),
// so that a burst of load hits all of them alike; a row's figure is then the median over the
// rounds and a ratio the median of the per-round ratios. The machine (CPU model, instruction
// sets, single-core FMA peak) is measured before the first round. --out=DIR writes the two
// files there instead (a partial run that should not replace the committed report);
// --merge=DIR/results.json then puts such a run's workloads into the committed report.
// After the rounds, W4-W6 run once more against PyTorch eager step by step, both processes
// alive and alternating slices of a few steps (bench/lib/duel.mjs); their goals use those
// ratios. --no-duel skips that; --duels-only runs them alone into the last results.json.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { median, parseArgs } from './lib/common.mjs';
import { describeMachine } from './lib/machine.mjs';
import { runDuels } from './lib/duel.mjs';
import { checkDuels, checkTraining, renderReport } from './report.mjs';

const args = parseArgs();
const quick = args.quick;
const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const outDir = args.out ? resolve(String(args.out)) : here('.');

/** [runner file, its arguments, node flags]; --quick trims the slowest baselines to what fits in two minutes. */
const plan = [
  ['ferroformer', ['--backend=native', '--threads=1']],
  ['ferroformer', ['--backend=native', '--threads=2']],
  ['ferroformer', ['--backend=wasm', '--threads=1']],
  ['ferroformer', ['--backend=wasm-relaxed', '--threads=1'], ['--experimental-wasm-relaxed-simd']],
  ['ferroformer', ['--backend=wasm-threads', '--threads=2']],
  ['ferroformer', ['--backend=wasm-threads-relaxed', '--threads=2'], ['--experimental-wasm-relaxed-simd']],
  ['ferroformer', ['--backend=reference', '--threads=1', ...(quick ? ['--only=W1,W3'] : [])]],
  ['numpy', ['--threads=1']],
  ['numpy', ['--threads=2']],
  ['pytorch', ['--threads=1']],
  ['pytorch', ['--threads=2']],
  ['pytorch', ['--mode=compile', '--threads=1']],
  ['pytorch', ['--mode=compile', '--threads=2']],
  ['onnxruntime', ['--runtime=node', '--threads=1']],
  ['onnxruntime', ['--runtime=node', '--threads=2']],
  ['onnxruntime', ['--runtime=web', '--threads=1']],
  ['onnxruntime', ['--runtime=web', '--threads=2']],
  ['tfjs', ['--backend=wasm']],
  ['tfjs', ['--backend=cpu', ...(quick ? ['--only=W1'] : [])]],
];

/** Whether a plan row has anything to do for a workload: numpy is W1 only, onnxruntime
 * W1-W3, tfjs W1, W2 and W4; nanoGPT (W5, W6) runs on ferroformer native and wasm and on
 * PyTorch. */
function runsWorkload(runner, runnerArgs, workload) {
  const only = { numpy: ['W1'], onnxruntime: ['W1', 'W2', 'W3'], tfjs: ['W1', 'W2', 'W4'] }[runner];
  if (only) return only.includes(workload);
  if (runner === 'ferroformer' && (workload === 'W5' || workload === 'W6')) return runnerArgs.includes('--backend=native') || runnerArgs.includes('--backend=wasm');
  return true;
}

function runOne(runner, runnerArgs, nodeFlags = []) {
  // The plan's --only (set for --quick) and the command line's intersect.
  const own = runnerArgs.find((a) => a.startsWith('--only='))?.slice(7).split(',');
  const only = own && args.only ? own.filter((w) => args.only.has(w)) : own ?? (args.only ? [...args.only] : null);
  const argv = [...nodeFlags, here(`./runners/${runner}.mjs`), ...runnerArgs.filter((a) => !a.startsWith('--only=')),
    ...(quick ? ['--quick'] : []), ...(only ? [`--only=${only.join(',') || 'none'}`] : [])];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const records = [];
    let buffered = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!line.startsWith('@@bench ')) continue;
        const record = JSON.parse(line.slice(8));
        records.push(record);
        if (record.kind === 'result') {
          process.stderr.write(`  ${record.workload} ${record.shape} ${record.implementation}/${record.backend} x${record.threads}${record.split ? ` (split: ${record.split})` : ''}: ${record.median.toFixed(2)} ${record.unit}\n`);
        } else if (record.kind === 'failure') {
          process.stderr.write(`  FAILED ${record.workload} ${record.implementation}/${record.backend} x${record.threads}: ${record.reason}\n`);
        }
      }
    });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    child.on('close', (code) => {
      if (code !== 0) records.push({ kind: 'failure', workload: '*', implementation: runner, backend: runnerArgs.join(' '), threads: null, reason: `exit ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}` });
      resolve(records);
    });
  });
}

// --merge=FILE: a results.json of a run limited with --only (e.g. W5,W6 written with --out)
// replaces those workloads' rows in outDir's results.json; the other rows, and the header's
// machine line, stay those of their own run, and the merged run is named in the header.
if (args.merge) {
  const { readFileSync } = await import('node:fs');
  const target = join(outDir, 'results.json');
  const merged = mergeResults(JSON.parse(readFileSync(target, 'utf8')), JSON.parse(readFileSync(resolve(String(args.merge)), 'utf8')));
  writeFileSync(target, JSON.stringify(merged, null, 2) + '\n');
  writeFileSync(join(outDir, 'RESULTS.md'), renderReport(merged));
  process.exit(0);
}

/** `base` with `part`'s workloads (meta.only) taken from `part`; part's meta is kept in
 * meta.parts, replacing an earlier part of the same workloads. */
function mergeResults(base, part) {
  const workloads = part.meta.only;
  if (!workloads?.length) throw new Error('--merge: the merged run has no meta.only (run it with --only=...)');
  const keep = (r) => !workloads.includes(r.workload);
  const { info: _info, ...partMeta } = part.meta;
  return {
    meta: { ...base.meta, parts: [...(base.meta.parts ?? []).filter((m) => m.only.join() !== workloads.join()), partMeta] },
    results: [...base.results.filter(keep), ...part.results],
    failures: [...base.failures.filter(keep), ...part.failures],
    duels: [...(base.duels ?? []).filter(keep), ...(part.duels ?? [])],
  };
}

// --report-only: re-render RESULTS.md from the last results.json (after editing notes.md).
if (args['report-only']) {
  const { readFileSync } = await import('node:fs');
  writeFileSync(join(outDir, 'RESULTS.md'), renderReport(JSON.parse(readFileSync(join(outDir, 'results.json'), 'utf8'))));
  process.exit(0);
}

/** The W4-W6 workloads this run covers, and their step-by-step duels (bench/lib/duel.mjs), the
 * checked ones and the failures (those that could not run or did not check). */
const duelWorkloads = ['W4', 'W5', 'W6'].filter((w) => !args.only || args.only.has(w));
async function stepByStep(duelQuick) {
  const records = await runDuels(duelWorkloads, { quick: duelQuick, log: (line) => process.stderr.write(line) });
  const checked = checkDuels(records.filter((r) => r.kind === 'duel'));
  return { duels: checked.duels, failures: [...records.filter((r) => r.kind === 'failure'), ...checked.failures] };
}

// --duels-only: only the step-by-step comparisons (full length even with --quick), replacing
// those of outDir's results.json; the plan's rows stay those of their own run.
if (args['duels-only']) {
  const { readFileSync } = await import('node:fs');
  const target = join(outDir, 'results.json');
  const report = JSON.parse(readFileSync(target, 'utf8'));
  const { duels, failures } = await stepByStep(false);
  const redone = (x) => duelWorkloads.includes(x.workload);
  report.duels = [...(report.duels ?? []).filter((d) => !redone(d)), ...duels];
  report.failures = [...report.failures.filter((f) => !(redone(f) && f.implementation === 'duel')), ...failures];
  writeFileSync(target, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(join(outDir, 'RESULTS.md'), renderReport(report));
  process.exit(0);
}

const started = new Date();
const loadBefore = loadavg();
const machine = describeMachine();
process.stderr.write(`${machine.cpu}, ${machine.cores} cores, ${machine.isa.join(' ')}; FMA peak per core ${JSON.stringify(machine.fmaPeak)} GFLOP/s\n`);
const rounds = Math.max(1, Number(args.rounds ?? 1));
const all = [];
for (let round = 0; round < rounds; round++) {
  for (const [runner, runnerArgs, nodeFlags] of plan) {
    // With --only, skip runners that have nothing to do.
    if (args.only && ![...args.only].some((w) => runsWorkload(runner, runnerArgs, w))) continue;
    process.stderr.write(`${rounds > 1 ? `round ${round + 1}/${rounds}: ` : ''}${runner} ${runnerArgs.join(' ')}\n`);
    for (const record of await runOne(runner, runnerArgs, nodeFlags)) all.push({ ...record, round });
  }
}
const duels = args['no-duel'] ? { duels: [], failures: [] } : await stepByStep(quick);
const loadAfter = loadavg();
const checked = checkTraining(all.filter((r) => r.kind === 'result'), [...all.filter((r) => r.kind === 'failure'), ...duels.failures]);
const results = combineRounds(checked.results);
const failures = checked.failures;
const meta = {
  date: started.toISOString(), mode: quick ? 'quick' : 'full', node: process.version,
  cpu: machine.cpu, cores: machine.cores, isa: machine.isa, fmaPeak: machine.fmaPeak, rounds, loadBefore, loadAfter,
  ...(args.only ? { only: [...args.only] } : {}),
  seconds: (Date.now() - started.getTime()) / 1000,
  info: all.filter((r) => r.kind === 'info'),
};
/** One row per measurement across rounds: the median of its rounds' medians, the extremes of
 * their ranges, and `rounds` (each round's median, by round index) for paired ratios. */
function combineRounds(records) {
  const key = (r) => [r.workload, r.shape, r.implementation, r.backend, r.threads, r.split ?? ''].join('|');
  const groups = new Map();
  for (const r of records) groups.set(key(r), [...(groups.get(key(r)) ?? []), r]);
  return [...groups.values()].map((rs) => {
    if (rs.length === 1) return rs[0];
    const mid = median(rs.map((r) => r.median));
    return {
      ...rs[0], median: mid, min: Math.min(...rs.map((r) => r.min)), max: Math.max(...rs.map((r) => r.max)),
      medianMs: rs[0].medianMs * rs[0].median / mid, samples: rs.reduce((n, r) => n + (r.samples ?? 0), 0),
      checkError: rs.some((r) => r.checkError === null) ? null : Math.max(...rs.map((r) => r.checkError)),
      rounds: Object.fromEntries(rs.map((r) => [r.round, r.median])),
      ...(rs[0].firstLoss !== undefined ? { lastLoss: rs.at(-1).lastLoss } : {}),
      ...(rs[0].peakRssMiB !== undefined ? { peakRssMiB: Math.max(...rs.map((r) => r.peakRssMiB)) } : {}),
    };
  });
}

/** W5/W6 extras: the losses of the first iterations (checked), the parameter count and the peak
 * resident memory (the largest over the rounds) with how it was read. */
const nanogptFields = (r) => Object.fromEntries(['secondLoss', 'losses', 'params', 'peakRssMiB', 'baseRssMiB', 'memoryMethod'].filter((f) => r[f] !== undefined).map((f) => [f, r[f]]));
const fields = ['workload', 'shape', 'implementation', 'backend', 'threads', 'median', 'min', 'max', 'unit'];
const json = {
  meta,
  results: results.map((r) => ({ ...Object.fromEntries(fields.map((f) => [f, r[f]])), medianMs: r.medianMs, samples: r.samples, checkError: r.checkError, ...(r.firstLoss !== undefined ? { firstLoss: r.firstLoss, lastLoss: r.lastLoss } : {}), ...nanogptFields(r), ...(r.note ? { note: r.note } : {}), ...(r.split ? { split: r.split, workerTasks: r.workerTasks } : {}), ...(r.rounds ? { rounds: r.rounds } : {}) })),
  failures,
  duels: duels.duels,
};
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'results.json'), JSON.stringify(json, null, 2) + '\n');
writeFileSync(join(outDir, 'RESULTS.md'), renderReport(json));
process.stderr.write(`wrote ${join(outDir, 'results.json')} and RESULTS.md beside it in ${meta.seconds.toFixed(0)} s\n`);
