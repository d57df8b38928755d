#!/usr/bin/env node
// Soak: trains a small decoder-only LM for many steps on each backend and reports resident
// memory (process.memoryUsage().rss) and, on wasm, the size of linear memory, at the end of
// warm-up and every 1,000 steps after. Each backend runs in its own child process. Memory must
// stay flat after warm-up: rss at the end within RSS_TOLERANCE_MIB of warm-up and its fitted
// slope under SLOPE_TOLERANCE_MIB per 1,000 steps (a leak grows steadily, GC noise does not),
// the wasm heap not grown at all. Exit 1 otherwise (or on a non-finite or non-falling loss).
//
//   npm run soak                                      10,000 steps on native and wasm
//   node --expose-gc scripts/soak.mjs --steps 20000 --backends native,wasm,reference
// (the float64 reference backend takes ~50 s per 1,000 steps here, so it is opt-in)
import { performance } from 'node:perf_hooks';

const RSS_TOLERANCE_MIB = 32;
const SLOPE_TOLERANCE_MIB = 2;
const WARMUP = 1000;

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const steps = Number(opt('steps', 10_000));
const backends = opt('backends', 'native,wasm').split(',');

const lib = await import('../dist/index.js');
const { nn, optim, train, dispose } = lib;
const mib = (bytes) => (bytes / 2 ** 20).toFixed(1);
const collect = () => globalThis.gc?.();

function soak(backend) {
  const vocab = 32;
  const model = new nn.DecoderLM({ vocab, dModel: 32, nHeads: 4, numLayers: 2, dFF: 64, dropout: 0.1, maxLen: 32 }, { backend, rng: new nn.Rng(1) });
  const optimizer = new optim.AdamW(model.parameters(), { lr: 1e-3 });
  const trainer = new train.Trainer({ model, optimizer, loss: train.lmLoss(), schedule: optim.warmupDecay(3e-3, 200, steps), clipNorm: 1 });
  // Fixed pool of batches built once per step from a seeded stream (a repeating pattern the
  // model can learn, so the loss falls).
  const rng = new nn.Rng(2);
  const samples = [];
  const heap = () => (typeof backend.memoryBytes === 'function' ? backend.memoryBytes() : null);
  let warm = null;
  const started = performance.now();
  let lastLoss = NaN;
  let firstLoss = NaN;
  for (let s = 1; s <= steps; s++) {
    const offsets = rng.uniform(8, 0, vocab);
    const rows = Array.from(offsets, (o) => Array.from({ length: 17 }, (_, t) => (Math.floor(o) + 3 * t) % vocab));
    const batch = train.lmBatch(rows, { backend });
    const m = trainer.trainStep(batch);
    dispose(batch);
    if (!Number.isFinite(m.loss)) throw new Error(`${backend.name}: non-finite loss at step ${s}`);
    if (s === 1) firstLoss = m.loss;
    lastLoss = m.loss;
    trainer.history.length = 0; // the metrics history is the caller's to keep; here it would grow by design
    if (s % 1000 === 0 || s === WARMUP) {
      collect();
      const usage = process.memoryUsage();
      const sample = { step: s, rss: usage.rss, jsHeap: usage.heapUsed, heap: heap(), seconds: (performance.now() - started) / 1000, loss: m.loss };
      samples.push(sample);
      if (s === WARMUP) warm = sample;
      process.stderr.write(`${backend.name} step ${s}: loss ${m.loss.toFixed(4)} rss ${mib(sample.rss)} MiB, JS heap ${mib(sample.jsHeap)} MiB${sample.heap === null ? '' : ` wasm heap ${mib(sample.heap)} MiB`} ${sample.seconds.toFixed(1)} s\n`);
    }
  }
  const end = samples[samples.length - 1];
  model.dispose();
  optimizer.dispose();
  const rssGrowth = end.rss - warm.rss;
  const heapGrowth = end.heap === null ? null : end.heap - warm.heap;
  // Least-squares slope of rss over the samples after warm-up, in bytes per 1,000 steps.
  const after = samples.filter((x) => x.step >= WARMUP);
  const mx = after.reduce((a, x) => a + x.step, 0) / after.length;
  const my = after.reduce((a, x) => a + x.rss, 0) / after.length;
  const sxx = after.reduce((a, x) => a + (x.step - mx) ** 2, 0);
  const slope = sxx > 0 ? (after.reduce((a, x) => a + (x.step - mx) * (x.rss - my), 0) / sxx) * 1000 : 0;
  const rssMax = Math.max(...after.map((x) => x.rss));
  const ok = rssGrowth <= RSS_TOLERANCE_MIB * 2 ** 20 && slope <= SLOPE_TOLERANCE_MIB * 2 ** 20 && (heapGrowth === null || heapGrowth === 0) && lastLoss < firstLoss;
  return { backend: backend.name, steps, seconds: end.seconds, firstLoss, lastLoss, warm, end, rssGrowth, rssMax, slope, heapGrowth, ok };
}

if (args.includes('--child')) {
  const backend = await lib.loadBackend(backends[0]);
  const result = soak(backend);
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
} else {
  const { spawnSync } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const results = [];
  for (const name of backends) {
    const run = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', '--steps', String(steps), '--backends', name], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 2 ** 24 });
    const line = run.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) throw new Error(`soak child for ${name} failed (status ${run.status}): ${run.stdout}`);
    results.push(JSON.parse(line.slice(7)));
  }
  console.log(`\nsoak: ${steps} steps per backend, each in its own process (DecoderLM 2 layers, d 32, batch 8 x 16 tokens); memory after ${WARMUP} warm-up steps -> end`);
  console.log('backend     seconds  loss first -> last   rss warm -> end, max (MiB)        rss slope (MiB/1k steps)   JS heap (MiB)    wasm heap warm -> end (MiB)   flat');
  for (const r of results) {
    const heap = r.end.heap === null ? '-' : `${mib(r.warm.heap)} -> ${mib(r.end.heap)}`;
    const rss = `${mib(r.warm.rss)} -> ${mib(r.end.rss)} (${r.rssGrowth >= 0 ? '+' : ''}${mib(r.rssGrowth)}), max ${mib(r.rssMax)}`;
    console.log(`${r.backend.padEnd(10)} ${r.seconds.toFixed(1).padStart(8)}   ${r.firstLoss.toFixed(3)} -> ${r.lastLoss.toFixed(4)}    ${rss.padEnd(34)}${(r.slope / 2 ** 20).toFixed(2).padStart(8)}                   ${`${mib(r.warm.jsHeap)} -> ${mib(r.end.jsHeap)}`.padEnd(17)}${heap.padEnd(20)}          ${r.ok ? 'yes' : 'NO'}`);
  }
  console.log(`tolerance: rss end - warm-up <= ${RSS_TOLERANCE_MIB} MiB and slope <= ${SLOPE_TOLERANCE_MIB} MiB per 1,000 steps; wasm heap growth 0; loss falls`);
  process.exitCode = results.every((r) => r.ok) ? 0 : 1;
}
