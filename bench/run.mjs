// `npm run bench [-- --quick] [-- --only=W1,W3] [-- --report-only]`: runs every implementation in its own
// process (thread settings of onnxruntime-web and OpenBLAS are per process), one after the
// other, collects their records, drops any whose result failed the oracle check, and writes
// bench/results.json and bench/RESULTS.md (bench/report.mjs).
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from './lib/common.mjs';
import { checkTraining, renderReport } from './report.mjs';

const args = parseArgs();
const quick = args.quick;
const here = (p) => fileURLToPath(new URL(p, import.meta.url));

/** [runner file, its arguments, node flags]; --quick trims the slowest baselines to what fits in two minutes. */
const plan = [
  ['ferroformer', ['--backend=native', '--threads=1']],
  ['ferroformer', ['--backend=native', '--threads=2']],
  ['ferroformer', ['--backend=wasm', '--threads=1']],
  ['ferroformer', ['--backend=wasm-relaxed', '--threads=1'], ['--experimental-wasm-relaxed-simd']],
  ['ferroformer', ['--backend=wasm-threads', '--threads=2']],
  ['ferroformer', ['--backend=reference', '--threads=1', ...(quick ? ['--only=W1,W3'] : [])]],
  ['numpy', ['--threads=1']],
  ['numpy', ['--threads=2']],
  ['onnxruntime', ['--runtime=node', '--threads=1']],
  ['onnxruntime', ['--runtime=node', '--threads=2']],
  ['onnxruntime', ['--runtime=web', '--threads=1']],
  ['onnxruntime', ['--runtime=web', '--threads=2']],
  ['tfjs', ['--backend=wasm']],
  ['tfjs', ['--backend=cpu', ...(quick ? ['--only=W1'] : [])]],
];

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
          process.stderr.write(`  ${record.workload} ${record.shape} ${record.implementation}/${record.backend} x${record.threads}: ${record.median.toFixed(2)} ${record.unit}\n`);
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

// --report-only: re-render RESULTS.md from the last results.json (after editing notes.md).
if (args['report-only']) {
  const { readFileSync } = await import('node:fs');
  writeFileSync(here('./RESULTS.md'), renderReport(JSON.parse(readFileSync(here('./results.json'), 'utf8'))));
  process.exit(0);
}

const started = new Date();
const loadBefore = loadavg();
const all = [];
for (const [runner, runnerArgs, nodeFlags] of plan) {
  // With --only, skip runners that have nothing to do (numpy is W1 only).
  if (args.only && runner === 'numpy' && !args.only.has('W1')) continue;
  process.stderr.write(`${runner} ${runnerArgs.join(' ')}\n`);
  all.push(...await runOne(runner, runnerArgs, nodeFlags));
}
const loadAfter = loadavg();
const { results, failures } = checkTraining(all.filter((r) => r.kind === 'result'), all.filter((r) => r.kind === 'failure'));
const meta = {
  date: started.toISOString(), mode: quick ? 'quick' : 'full', node: process.version,
  cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, loadBefore, loadAfter,
  seconds: (Date.now() - started.getTime()) / 1000,
  info: all.filter((r) => r.kind === 'info'),
};
const fields = ['workload', 'shape', 'implementation', 'backend', 'threads', 'median', 'min', 'max', 'unit'];
const json = {
  meta,
  results: results.map((r) => ({ ...Object.fromEntries(fields.map((f) => [f, r[f]])), medianMs: r.medianMs, samples: r.samples, checkError: r.checkError, ...(r.firstLoss !== undefined ? { firstLoss: r.firstLoss, lastLoss: r.lastLoss } : {}), ...(r.note ? { note: r.note } : {}) })),
  failures,
};
writeFileSync(here('./results.json'), JSON.stringify(json, null, 2) + '\n');
writeFileSync(here('./RESULTS.md'), renderReport(json));
process.stderr.write(`wrote bench/results.json and bench/RESULTS.md in ${meta.seconds.toFixed(0)} s\n`);
