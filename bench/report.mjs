import { readFileSync } from 'node:fs';
import { median, NANOGPT, W4_FLOPS_PER_TOKEN } from './lib/common.mjs';
import { bestPeak } from './lib/machine.mjs';

// bench/RESULTS.md from the collected records: tables per workload, ratios to every peer
// measured in the same run, and the issue's goals, each met or not with its measured ratio.

const LN_VOCAB = Math.log(1024);

/** W4 has no oracle output; instead: every ferroformer backend starts from the same seeded
 * model, so their first losses must agree (1e-3 relative), every implementation's first
 * loss must be near ln(vocab) (untrained model), and the loss must fall over the steps. */
export function checkTraining(results, failures) {
  const kept = [];
  const ours = results.filter((r) => r.workload === 'W4' && r.implementation === 'ferroformer');
  const anchor = ours.find((r) => r.backend === 'reference') ?? ours[0];
  for (const r of results) {
    if (r.workload === 'W5' || r.workload === 'W6') {
      const reason = nanogptCheck(r, nanogptAnchor(results, r.workload));
      if (reason) failures.push({ kind: 'failure', workload: r.workload, shape: r.shape, implementation: r.implementation, backend: r.backend, threads: r.threads, reason });
      else kept.push(r);
      continue;
    }
    if (r.workload !== 'W4') { kept.push(r); continue; }
    let reason = null;
    if (!(Math.abs(r.firstLoss - LN_VOCAB) < 0.5)) reason = `first loss ${r.firstLoss} is not near ln(1024) = ${LN_VOCAB.toFixed(3)}`;
    else if (!(r.lastLoss < r.firstLoss)) reason = `loss did not fall (${r.firstLoss} -> ${r.lastLoss})`;
    else if (r.implementation === 'ferroformer' && anchor && Math.abs(r.firstLoss - anchor.firstLoss) > 1e-3 * Math.abs(anchor.firstLoss)) {
      reason = `first loss ${r.firstLoss} differs from ${anchor.backend}'s ${anchor.firstLoss}`;
    }
    if (reason) failures.push({ kind: 'failure', workload: 'W4', shape: r.shape, implementation: r.implementation, backend: r.backend, threads: r.threads, reason });
    else kept.push(r);
  }
  return { results: kept, failures };
}

/** A duel (bench/lib/duel.mjs) counts when both sides trained the same model: the same
 * parameter count, and for W5/W6 (same initial weights and batch) the first two losses within
 * NANOGPT_LOSS_TOL of each other; W4 (each side's own seeded init) only starts near ln(1024). */
export function checkDuels(duels) {
  const kept = [];
  const failures = [];
  for (const d of duels) {
    let reason = null;
    if (d.params[0] !== d.params[1]) reason = `parameter counts differ: ours ${d.params[0]}, ${d.peer}'s ${d.params[1]}`;
    else if (d.workload === 'W4') {
      if (![...d.oursLosses, ...d.peerLosses].every((l) => Math.abs(l - LN_VOCAB) < 0.5)) reason = `first losses ${d.oursLosses} / ${d.peerLosses} not near ln(1024)`;
    } else {
      const bad = d.oursLosses.findIndex((l, i) => !(Math.abs(l - d.peerLosses[i]) <= NANOGPT_LOSS_TOL * Math.abs(d.peerLosses[i])));
      if (bad >= 0) reason = `step ${bad + 1}'s loss ${d.oursLosses[bad]} differs from ${d.peer}'s ${d.peerLosses[bad]} by more than ${NANOGPT_LOSS_TOL} relative`;
    }
    if (reason) failures.push({ kind: 'failure', workload: d.workload, shape: 'step by step', implementation: 'duel', backend: `native / ${d.peer}`, threads: d.threads, reason });
    else kept.push(d);
  }
  return { duels: kept, failures };
}

/** W5/W6 start from the same weights and batch everywhere, so the loss of the first
 * iteration (forward only) and of every later one both recorded (after backward, clipping
 * and AdamW; the first 8 are kept) must agree with nanoGPT in PyTorch eager (1 thread; else
 * our native ×1 when PyTorch did not run) within 1e-3 relative, and the loss must fall. */
const NANOGPT_LOSS_TOL = 1e-3;
export function nanogptAnchor(results, workload) {
  const rows = results.filter((r) => r.workload === workload);
  return rows.find((r) => r.implementation === 'PyTorch' && r.backend === 'eager' && r.threads === 1)
    ?? rows.find((r) => r.implementation === 'PyTorch' && r.backend === 'eager')
    ?? rows.find((r) => r.implementation === 'ferroformer' && r.backend === 'native') ?? null;
}

/** The iterations whose losses both rows recorded. */
const commonLosses = (r, anchor) => (r.losses ?? [r.firstLoss, r.secondLoss]).slice(0, (anchor.losses ?? [anchor.firstLoss, anchor.secondLoss]).length);

function nanogptCheck(r, anchor) {
  const lnVocab = Math.log(NANOGPT[r.workload].vocab_size);
  if (!(Math.abs(r.firstLoss - lnVocab) < 0.5)) return `first loss ${r.firstLoss} is not near ln(${NANOGPT[r.workload].vocab_size}) = ${lnVocab.toFixed(3)}`;
  if (!(r.lastLoss < r.firstLoss)) return `loss did not fall (${r.firstLoss} -> ${r.lastLoss})`;
  if (!anchor) return null;
  const want = anchor.losses ?? [anchor.firstLoss, anchor.secondLoss];
  const bad = commonLosses(r, anchor).findIndex((loss, i) => !(Math.abs(loss - want[i]) <= NANOGPT_LOSS_TOL * Math.abs(want[i])));
  return bad < 0 ? null : `iteration ${bad + 1}'s loss ${commonLosses(r, anchor)[bad]} differs from ${label(anchor)}'s ${want[bad]} by more than ${NANOGPT_LOSS_TOL} relative`;
}

const TITLES = {
  W1: 'W1 sgemm C = A·B (fp32)',
  W2: 'W2 causal attention forward, B=1 H=8 T=512 D=64',
  W3: 'W3 layer norm forward [4096, 512] with gamma and beta',
  W4: 'W4 one training step (forward, backward, Adam), decoder-only LM, 659,968 parameters',
  W5: `W5 nanoGPT "baby GPT" on a CPU, one training iteration (forward, backward, clip 1.0, AdamW), ${NANOGPT.W5.parameters.toLocaleString('en-US')} parameters`,
  W6: `W6 nanoGPT Shakespeare-char model, one training iteration, ${NANOGPT.W6.parameters.toLocaleString('en-US')} parameters`,
};

const label = (r) => `${r.implementation} ${r.backend} ×${r.threads}`;

/** mine / peer: with several interleaved rounds, the median of the per-round ratios (paired:
 * both measured in the same round), else the ratio of the medians. */
export function pairedRatio(mine, peer) {
  if (mine.rounds && peer.rounds) {
    const both = Object.keys(mine.rounds).filter((k) => k in peer.rounds);
    if (both.length) return median(both.map((k) => mine.rounds[k] / peer.rounds[k]));
  }
  return mine.median / peer.median;
}
/** mine / peer in each round both were measured in (empty for a single round). */
function perRoundRatios(mine, peer) {
  if (!mine.rounds || !peer.rounds) return [];
  return Object.keys(mine.rounds).filter((k) => k in peer.rounds).map((k) => mine.rounds[k] / peer.rounds[k]);
}
const fmt = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toPrecision(2));
const ratio = (x) => `${x.toFixed(2)}×`;

function find(results, workload, shape, implementation, backend, threads) {
  return results.find((r) => r.workload === workload && r.shape === shape && r.implementation === implementation &&
    r.backend === backend && r.threads === threads) ?? null;
}

/** Peers a ferroformer row is compared with: same thread count, or the peer's only one. */
function peersFor(results, ours) {
  const peers = results.filter((r) => r.workload === ours.workload && r.shape === ours.shape && r.implementation !== 'ferroformer');
  return peers.filter((p) => p.threads === ours.threads || !peers.some((q) => q.implementation === p.implementation && q.backend === p.backend && q.threads === ours.threads) && p.threads === 1);
}

function workloadSection(results, w) {
  const rows = results.filter((r) => r.workload === w);
  if (rows.length === 0) return '';
  const shapes = [...new Set(rows.map((r) => r.shape))];
  const unit = rows[0].unit;
  const impls = [];
  for (const r of rows) if (!impls.some((x) => label(x) === label(r))) impls.push(r);
  let s = `## ${TITLES[w]}\n\n${unit}, median of the timed calls (higher is better); the range is min–max over the calls.\n\n`;
  s += `| implementation | ${shapes.join(' | ')} |\n|---|${shapes.map(() => '---:').join('|')}|\n`;
  for (const impl of impls) {
    const cells = shapes.map((sh) => {
      const r = find(results, w, sh, impl.implementation, impl.backend, impl.threads);
      return r ? `**${fmt(r.median)}** (${fmt(r.min)}–${fmt(r.max)})` : '—';
    });
    s += `| ${label(impl)} | ${cells.join(' | ')} |\n`;
  }
  // Ratios: every ferroformer row over every peer measured at its thread count (or the
  // peer's single thread where that peer has no threads), and over our float64 reference.
  const ours = impls.filter((r) => r.implementation === 'ferroformer' && r.backend !== 'reference');
  const lines = [];
  for (const o of ours) {
    const peerLabels = new Map();
    for (const sh of shapes) {
      const mine = find(results, w, sh, o.implementation, o.backend, o.threads);
      if (!mine) continue;
      for (const p of peersFor(results, mine)) peerLabels.set(label(p), p);
      const ref = find(results, w, sh, 'ferroformer', 'reference', 1);
      if (ref) peerLabels.set(label(ref), ref);
    }
    for (const p of peerLabels.values()) {
      const cells = shapes.map((sh) => {
        const mine = find(results, w, sh, o.implementation, o.backend, o.threads);
        const peer = find(results, w, sh, p.implementation, p.backend, p.threads);
        return mine && peer ? ratio(pairedRatio(mine, peer)) : '—';
      });
      lines.push(`| ${label(o)} / ${label(p)} | ${cells.join(' | ')} |`);
    }
  }
  if (lines.length) {
    s += `\nRatios of medians (ferroformer / other; above 1 = ferroformer faster):\n\n| ratio | ${shapes.join(' | ')} |\n|---|${shapes.map(() => '---:').join('|')}|\n${lines.join('\n')}\n`;
  }
  return s + '\n';
}

/** The issue's goals: [text, needed ratio, list of [ours, peer] pairs per shape]. */
function goals(results, duels) {
  const pairs = (w, ours, peer) => {
    const out = [];
    for (const r of results.filter((x) => x.workload === w && x.implementation === 'ferroformer' && x.backend === ours[0] && x.threads === ours[1])) {
      const p = find(results, w, r.shape, peer[0], peer[1], peer[2]);
      if (p) out.push({ shape: r.shape, ratio: pairedRatio(r, p), perRound: perRoundRatios(r, p) });
    }
    return out;
  };
  const tfw = ['tfjs', 'wasm', 1];
  const eager = (threads) => ['PyTorch', 'eager', threads];
  /** A step-by-step duel's ratio where one ran, with the plan's rounds' ratio beside it; else
   * the rounds'. */
  const stepByStep = (d, rounds) => {
    if (!d) return rounds;
    const also = rounds.length === 1 ? `; the plan's rounds: ${ratio(rounds[0].ratio)}` : '';
    return [{ shape: 'step by step', ratio: d.ratio, detail: `${ratio(d.ratio)} step by step (${d.pairs.length} pairs ${ratio(d.ratioMin)}-${ratio(d.ratioMax)}${also})` }];
  };
  /** W4-W6 native against PyTorch eager. */
  const versusEager = (w, threads) => stepByStep(
    duels.find((x) => x.workload === w && x.threads === threads && x.peer === 'PyTorch eager'),
    pairs(w, ['native', threads], eager(threads)));
  /** Our own rows against each other: 2 threads over 1 on one backend, every shape. */
  const threadPairs = (w, backend, twoThreadBackend = backend) => stepByStep(
    backend === 'native' ? duels.find((x) => x.workload === w && x.peer === 'ferroformer native ×1') : undefined,
    threadRounds(w, backend, twoThreadBackend));
  /** The plan's rows: 2 threads over 1 on one backend, every shape. */
  const threadRounds = (w, backend, twoThreadBackend) => {
    const out = [];
    for (const two of results.filter((x) => x.workload === w && x.implementation === 'ferroformer' && x.backend === twoThreadBackend && x.threads === 2)) {
      const one = find(results, w, two.shape, 'ferroformer', backend, 1);
      if (one) out.push({ shape: two.shape, ratio: pairedRatio(two, one) });
    }
    return out;
  };
  return [
    ['W4 native ≥ 1.5× PyTorch eager, 1 thread', 1.5, versusEager('W4', 1)],
    ['W4 native ≥ 1.5× PyTorch eager, 2 threads', 1.5, versusEager('W4', 2)],
    ['W4 native, 1 thread: model FLOP/s ≥ 75% of the FMA peak per core', 0.75, peakPairs(results), (x) => `${(100 * x).toFixed(0)}% of peak`],
    ['Two threads never slower than one: W4 native (×2 / ×1)', 1.0, threadPairs('W4', 'native')],
    ['Two threads never slower than one: W4 wasm (wasm-threads ×2 / wasm ×1)', 1.0, threadPairs('W4', 'wasm', 'wasm-threads')],
    ['Two threads never slower than one: W4 wasm with relaxed SIMD (wasm-threads-relaxed ×2 / wasm-relaxed ×1)', 1.0, threadPairs('W4', 'wasm-relaxed', 'wasm-threads-relaxed')],
    ['Two threads never slower than one: W5 native (×2 / ×1)', 1.0, threadPairs('W5', 'native')],
    ['Two threads never slower than one: W5 wasm with relaxed SIMD (wasm-threads-relaxed ×2 / wasm-relaxed ×1)', 1.0, threadPairs('W5', 'wasm-relaxed', 'wasm-threads-relaxed')],
    ['Native sgemm ≥ 1.0× OpenBLAS, 1 thread, every W1 shape', 1.0, pairs('W1', ['native', 1], ['numpy (OpenBLAS)', 'cpu', 1])],
    ['Native sgemm ≥ 1.0× OpenBLAS, 2 threads, every W1 shape', 1.0, pairs('W1', ['native', 2], ['numpy (OpenBLAS)', 'cpu', 2])],
    ['Native attention (W2) ≥ 2× onnxruntime-node, 1 thread', 2.0, pairs('W2', ['native', 1], ['onnxruntime-node', 'cpu', 1])],
    ['Native attention (W2) ≥ 2× onnxruntime-node, 2 threads', 2.0, pairs('W2', ['native', 2], ['onnxruntime-node', 'cpu', 2])],
    ['Native layer norm (W3) ≥ 2× onnxruntime-node, 1 thread', 2.0, pairs('W3', ['native', 1], ['onnxruntime-node', 'cpu', 1])],
    ['Native layer norm (W3) ≥ 2× onnxruntime-node, 2 threads', 2.0, pairs('W3', ['native', 2], ['onnxruntime-node', 'cpu', 2])],
    ['WASM sgemm (simd128, 1 thread) ≥ 1.0× tfjs-backend-wasm, every W1 shape', 1.0, pairs('W1', ['wasm', 1], tfw)],
    ['WASM sgemm with relaxed SIMD (1 thread) ≥ 1.3× tfjs-backend-wasm, every W1 shape', 1.3, pairs('W1', ['wasm-relaxed', 1], tfw)],
    ['WASM sgemm, 2 threads ≥ 1.9× tfjs-backend-wasm, every W1 shape', 1.9, pairs('W1', ['wasm-threads', 2], tfw)],
    ['WASM attention (W2) ≥ 2× onnxruntime-web, 1 thread', 2.0, pairs('W2', ['wasm', 1], ['onnxruntime-web', 'wasm', 1])],
    ['WASM attention (W2) ≥ 2× onnxruntime-web, 2 threads', 2.0, pairs('W2', ['wasm-threads', 2], ['onnxruntime-web', 'wasm', 2])],
    ['W4 native (1 thread) ≥ 30× tfjs-backend-wasm', 30, pairs('W4', ['native', 1], tfw)],
    ['W4 native (2 threads) ≥ 30× tfjs-backend-wasm', 30, pairs('W4', ['native', 2], tfw)],
    ['W4 wasm (1 thread) ≥ 8× tfjs-backend-wasm', 8, pairs('W4', ['wasm', 1], tfw)],
    ['W5 native ≥ 1.5× PyTorch eager (nanoGPT), 1 thread', 1.5, versusEager('W5', 1)],
    ['W5 native ≥ 1.5× PyTorch eager (nanoGPT), 2 threads', 1.5, versusEager('W5', 2)],
    ['W5 wasm (simd128, 1 thread) ≥ 0.5× PyTorch eager, 1 thread', 0.5, pairs('W5', ['wasm', 1], eager(1))],
    ['W5 wasm with relaxed SIMD (1 thread) ≥ 0.5× PyTorch eager, 1 thread', 0.5, pairs('W5', ['wasm-relaxed', 1], eager(1))],
    ['W6 native ≥ 1.2× PyTorch eager tokens/s, 1 thread', 1.2, versusEager('W6', 1)],
    ['W6 native ≥ 1.2× PyTorch eager tokens/s, 2 threads', 1.2, versusEager('W6', 2)],
    ['W6 native peak resident memory ≤ 0.8× PyTorch eager\'s, 1 thread', 0.8, memoryPairs(results, 1), ratio, 'atMost'],
    ['W6 native peak resident memory ≤ 0.8× PyTorch eager\'s, 2 threads', 0.8, memoryPairs(results, 2), ratio, 'atMost'],
  ];
}

/** W6 peak resident memory, ours over PyTorch eager's at the same thread count. */
function memoryPairs(results, threads) {
  const mine = find(results, 'W6', shapeOf(results, 'W6'), 'ferroformer', 'native', threads);
  const peer = find(results, 'W6', shapeOf(results, 'W6'), 'PyTorch', 'eager', threads);
  return mine?.peakRssMiB && peer?.peakRssMiB ? [{ shape: mine.shape, ratio: mine.peakRssMiB / peer.peakRssMiB }] : [];
}
const shapeOf = (results, w) => results.find((r) => r.workload === w)?.shape;

/** W5/W6: the loss check and, per implementation, the peak resident memory of its process. */
function nanogptLines(results, w) {
  const rows = results.filter((r) => r.workload === w);
  if (!rows.length) return '';
  const anchor = nanogptAnchor(rows, w);
  let s = `${w} check: every row starts from the same initial weights (nanoGPT's init rule, drawn once from a seeded generator and loaded by both) and the same batch, repeated; ` +
    `the loss of each iteration both recorded agrees with ${anchor ? label(anchor) : '—'}'s within ${NANOGPT_LOSS_TOL} relative (a row that does not is listed under Failures). ` +
    `Losses of the iterations compared: ${rows.map((r) => `${label(r)} ${(anchor ? commonLosses(r, anchor) : [r.firstLoss]).map((l) => l.toFixed(5)).join(', ')}`).join('; ')}. ` +
    `Parameters: ${[...new Set(rows.map((r) => r.params))].map((n) => n.toLocaleString('en-US')).join(' / ')} in both.\n\n`;
  const withMemory = rows.filter((r) => r.peakRssMiB);
  if (w === 'W6' && withMemory.length) {
    s += `Peak resident memory of each process (${[...new Set(withMemory.map((r) => r.memoryMethod))].join('; ')}, read at the end of the run; W6 runs in a process of its own), ` +
      `and its resident memory just before the model was built (runtime and library loaded):\n\n| implementation | peak MiB | before the model, MiB | peak − before |\n|---|---:|---:|---:|\n` +
      withMemory.map((r) => `| ${label(r)} | ${r.peakRssMiB.toFixed(0)} | ${r.baseRssMiB?.toFixed(0) ?? '—'} | ${r.baseRssMiB ? (r.peakRssMiB - r.baseRssMiB).toFixed(0) : '—'} |`).join('\n') + '\n\n';
  }
  return s;
}

/** Model FLOP/s of W4 native ×1 (3.35 MFLOP per token) as a fraction of the measured peak. */
let machinePeak = null;
function peakPairs(results) {
  if (!machinePeak) return [];
  return results.filter((r) => r.workload === 'W4' && r.implementation === 'ferroformer' && r.backend === 'native' && r.threads === 1)
    .map((r) => ({ shape: r.shape, ratio: (r.median * W4_FLOPS_PER_TOKEN / 1e9) / machinePeak }));
}

/** W4 rows in model GFLOP/s and as a share of one core's FMA peak (× threads). */
function w4PeakLine(results) {
  const w4 = results.filter((r) => r.workload === 'W4');
  if (!w4.length || !machinePeak) return '';
  return `Model FLOP/s (${(W4_FLOPS_PER_TOKEN / 1e6).toFixed(2)} MFLOP per token: every matmul forward and backward plus attention) against the measured FMA peak of ${fmt(machinePeak)} GFLOP/s per core: ` +
    w4.map((r) => { const g = r.median * W4_FLOPS_PER_TOKEN / 1e9; return `${label(r)} ${fmt(g)} GFLOP/s (${(100 * g / (machinePeak * r.threads)).toFixed(0)}% of ${r.threads} core${r.threads > 1 ? 's' : ''})`; }).join('; ') + '.\n\n';
}

/** The crossover row: sgemm from small to large at 1 thread and at 2, every call split or
 * split only above the threshold of parallel::for_work. */
function crossoverSection(results, info) {
  const rows = results.filter((r) => r.workload === 'X');
  if (!rows.length) return '';
  const shapes = [...new Set(rows.map((r) => r.shape))];
  const mflop = (sh) => (2 * sh.split('x').reduce((a, b) => a * Number(b), 1) / 1e6);
  const names = { 1: '1 thread (the calling one)', always: '2 threads, every call split', default: '2 threads, default threshold' };
  let s = `## Thread crossover: sgemm n×n×n, 1 thread against 2\n\n` +
    `GFLOP/s, median (higher is better); in brackets, tasks run by other threads during the measurement. ` +
    `Kernels hand a call to other threads only above a threshold of estimated work (parallel::for_work in the kernels crate, the same for native and wasm); ` +
    `"every call split" sets it to 0 to show where a second thread starts to pay; the three variants alternate at each size in one process.\n\n`;
  for (const backend of [...new Set(rows.map((r) => r.backend))]) {
    const threshold = info.find((i) => i.backend === backend && i.minParallelFlops !== undefined)?.minParallelFlops;
    s += `**${backend}**${threshold !== undefined ? ` (threshold ${fmt(threshold / 1e6)} MFLOP)` : ''}\n\n| | ${shapes.map((sh) => `${sh} (${fmt(mflop(sh))} MFLOP)`).join(' | ')} |\n|---|${shapes.map(() => '---:').join('|')}|\n`;
    for (const split of ['1', 'always', 'default']) {
      const cells = shapes.map((sh) => {
        const r = rows.find((x) => x.backend === backend && x.shape === sh && x.split === split);
        return r ? `${fmt(r.median)} (${r.workerTasks})` : '—';
      });
      s += `| ${names[split]} | ${cells.join(' | ')} |\n`;
    }
    const one = (sh) => rows.find((x) => x.backend === backend && x.shape === sh && x.split === '1');
    const ratios = shapes.map((sh) => {
      const [a, b] = [rows.find((x) => x.backend === backend && x.shape === sh && x.split === 'always'), one(sh)];
      return a && b ? ratio(pairedRatio(a, b)) : '—';
    });
    const defaults = shapes.map((sh) => {
      const [a, b] = [rows.find((x) => x.backend === backend && x.shape === sh && x.split === 'default'), one(sh)];
      return a && b ? ratio(pairedRatio(a, b)) : '—';
    });
    s += `| every call split / 1 thread | ${ratios.join(' | ')} |\n| default threshold / 1 thread | ${defaults.join(' | ')} |\n\n`;
  }
  return s;
}

/** The step-by-step duels: per workload and thread count, both sides' median step and the
 * ratio over the pairs of adjacent slices. */
function duelSection(duels) {
  if (!duels.length) return '';
  let s = `## W4-W6 step by step against PyTorch eager (and 2 threads against 1)\n\n` +
    `Both processes set up once and stay alive; the runner alternates slices of a few training steps between them (ours first, then PyTorch first, ...), ` +
    `so the two halves of a pair run within a second or two of each other on the same machine (bench/lib/duel.mjs). ` +
    `Before the pairs each side runs the untimed warm-up steps of the table's column (besides its own two): V8 optimizes the step's JavaScript only after tens to hundreds of steps, and training runs thousands. ` +
    `A slice's figure is the median of its steps; the ratio is the median over pairs of the other side's ms per step over ours (above 1 = ours faster), with the lowest and highest pair. ` +
    `The goals above use these ratios. W5/W6: both sides' first two losses agree within ${NANOGPT_LOSS_TOL} relative (same weights and batch).\n\n` +
    `The same runs our native backend at 2 threads against 1 (W4, W5) for the goal that two threads never lose.\n\n` +
    `| workload | ferroformer native, threads | against | warm-up steps | pairs × steps | ours ms/step | theirs ms/step | ratio (median of pairs) | lowest-highest pair | first losses (ours / theirs) | finished (UTC), load |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|\n`;
  for (const d of duels) {
    const when = d.date ? `${d.date.slice(11, 16)}, ${d.load.toFixed(2)}` : '—';
    s += `| ${d.workload} | ${d.threads} | ${d.peer} | ${d.warmup ?? 0} | ${d.pairs.length} × ${d.steps} | ${fmt(d.oursMs)} | ${fmt(d.peerMs)} | ${ratio(d.ratio)} | ${ratio(d.ratioMin)}-${ratio(d.ratioMax)} | ${d.oursLosses.map((l) => l.toFixed(4)).join(', ')} / ${d.peerLosses.map((l) => l.toFixed(4)).join(', ')} | ${when} |\n`;
  }
  return s + '\n';
}

/** Hand-written analysis kept beside the generator (bench/notes.md), placed under the header. */
function notes() {
  try {
    return readFileSync(new URL('./notes.md', import.meta.url), 'utf8').trim() + '\n\n';
  } catch {
    return '';
  }
}

export function renderReport({ meta, results, failures, duels = [] }) {
  const load = (l) => l.map((x) => x.toFixed(2)).join(', ');
  machinePeak = bestPeak(meta.fmaPeak);
  const peak = meta.fmaPeak
    ? (meta.fmaPeak.error ? `FMA peak not measured (${meta.fmaPeak.error})`
      : `measured single-core FMA peak ${[['AVX2', meta.fmaPeak.avx2], ['AVX-512', meta.fmaPeak.avx512]].filter(([, g]) => g).map(([n, g]) => `${n} ${fmt(g)}`).join(', ')} GFLOP/s (12 independent FMA chains, bench/lib/fma_peak.rs)`)
    : 'FMA peak not measured';
  let s = `# Benchmark results\n\n`;
  s += `Written by \`npm run bench${meta.mode === 'quick' ? ' -- --quick' : ''}\` on ${meta.date} (${meta.mode} mode, ${meta.seconds.toFixed(0)} s): ` +
    `${meta.cpu}, ${meta.cores} cores${meta.isa ? ` (instruction sets: ${meta.isa.join(', ') || 'none named'})` : ''}, ${peak}; Node ${meta.node}. Load average (1, 5, 15 min) ${load(meta.loadBefore)} before and ${load(meta.loadAfter)} after the run. ` +
    `Every implementation runs in its own process, one after the other, on the same inputs (seeded; numpy and PyTorch read the same bytes from files)` +
    `${meta.rounds > 1 ? `, in ${meta.rounds} interleaved rounds (each figure is the median of its rounds' medians, each ratio the median of the per-round ratios)` : ''}. ` +
    `Each result was checked against a float64 oracle on sampled outputs (error ≤ 1e-3 of the largest value) before it was timed (W4-W6: see their sections); a failed check removes the row.\n\n`;
  for (const part of meta.parts ?? []) {
    s += `**${part.only.join(', ')} come from a separate run** (\`npm run bench -- --only=${part.only.join(',')}${part.mode === 'quick' ? ' --quick' : ''}${part.rounds > 1 ? ` --rounds=${part.rounds}` : ''}\`, merged with \`--merge\`) on ${part.date} (${part.seconds.toFixed(0)} s): ${part.cpu}, ${part.cores} cores${part.isa ? ` (${part.isa.join(', ')})` : ''}; ` +
      `load average ${load(part.loadBefore)} before and ${load(part.loadAfter)} after${part.rounds > 1 ? `, ${part.rounds} interleaved rounds` : ''}.\n\n`;
  }
  s += notes();
  s += `## Goals\n\n| goal | measured (ferroformer / peer, median) | met |\n|---|---|---|\n`;
  for (const [text, need, ps, show = ratio, bound = 'atLeast'] of goals(results, duels)) {
    if (ps === null) { s += `| ${text} | not measured: no relaxed-SIMD build yet | no |\n`; continue; }
    if (ps.length === 0) { s += `| ${text} | not measured in this run | — |\n`; continue; }
    const atMost = bound === 'atMost';
    const worst = ps.reduce((a, b) => ((atMost ? b.ratio > a.ratio : b.ratio < a.ratio) ? b : a));
    // One shape over several rounds: each round's ratio too, so that a verdict carried by a
    // round in which the peer collapsed under load can be seen.
    const rounds = ps.length === 1 && ps[0].perRound?.length > 1 ? ` (rounds: ${ps[0].perRound.map(show).join(', ')})` : '';
    const detail = ps.length === 1 && ps[0].detail ? ps[0].detail : ps.length > 1 ? `${show(worst.ratio)} at worst (${worst.shape}); ${ps.map((p) => `${p.shape}: ${show(p.ratio)}`).join(', ')}` : show(worst.ratio) + rounds;
    s += `| ${text} | ${detail} | ${(atMost ? worst.ratio <= need : worst.ratio >= need) ? '**yes**' : 'no'} |\n`;
  }
  s += '\n';
  for (const w of ['W1', 'W2', 'W3', 'W4']) s += workloadSection(results, w);
  const w4 = results.filter((r) => r.workload === 'W4');
  s += w4PeakLine(results);
  if (w4.length) {
    s += `W4 check (no oracle output for a training step): the ferroformer backends start from the same seeded model and their first losses agree within 1e-3; every implementation starts near ln(1024) = ${LN_VOCAB.toFixed(3)} and its loss falls. ` +
      `First → last loss: ${w4.map((r) => `${label(r)} ${r.firstLoss.toFixed(4)} → ${r.lastLoss.toFixed(4)}`).join('; ')}.\n` +
      `${w4.filter((r) => r.note).map((r) => `${label(r)}: ${r.note}.`).join(' ')}\n\n`;
  }
  for (const w of ['W5', 'W6']) s += workloadSection(results, w) + nanogptLines(results, w);
  s += duelSection(duels);
  s += crossoverSection(results, meta.info ?? []);
  if (failures.length) {
    s += `## Failures (not in the tables)\n\n${failures.map((f) => `- ${f.workload} ${f.shape ?? ''} ${f.implementation} ${f.backend} ×${f.threads}: ${f.reason}`).join('\n')}\n`;
  }
  return s;
}
