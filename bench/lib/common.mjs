// Shared by every runner: the workloads, seeded inputs (identical in every process and in
// the numpy script), float64 oracle checks on sampled outputs, and the timing wrapper.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';

export const W1_SHAPES = [
  [128, 128, 128], [256, 256, 256], [512, 512, 512], [1024, 1024, 1024],
  [512, 512, 2048], [512, 2048, 512], [4096, 512, 512],
];
/** --quick keeps two W1 shapes; every other workload runs in full. */
export const W1_QUICK = [[256, 256, 256], [512, 512, 512]];
export const W2 = { b: 1, h: 8, t: 512, d: 64 };
export const W3 = { rows: 4096, dim: 512, eps: 1e-5 };
export const W4 = { vocab: 1024, dModel: 128, nHeads: 4, numLayers: 2, dFF: 512, seq: 64, batch: 16 };
/** W4's model size in every implementation (checked by the runners). */
export const W4_PARAMETERS = 659_968;
/** Model FLOPs per W4 token: forward and backward of every matmul (6 per weight) plus attention. */
export const W4_FLOPS_PER_TOKEN = 3.35e6;

/** The virtual environment bench/install.mjs makes on first use (torch, numpy). */
export const BENCH_VENV = fileURLToPath(new URL('../.venv', import.meta.url));

/** The Python with PyTorch: FERRO_BENCH_PYTHON (an existing environment), else bench/.venv's;
 * null when neither exists. */
export function benchPython() {
  if (process.env.FERRO_BENCH_PYTHON) return process.env.FERRO_BENCH_PYTHON;
  const venv = `${BENCH_VENV}/bin/python`;
  return existsSync(venv) ? venv : null;
}

/** The thread crossover row (X): square sgemm from far below to far above the size where a
 * second thread starts to pay, at 1 thread and at 2 (every call split, and the default
 * threshold of parallel::for_work). */
export const X_SIZES = [32, 64, 96, 128, 160, 192, 256, 384].map((n) => [n, n, n]);

export const shapeName = {
  X: ([m, k, n]) => `${m}x${k}x${n}`,
  W1: ([m, k, n]) => `${m}x${k}x${n}`,
  W2: () => `B${W2.b} H${W2.h} T${W2.t} D${W2.d} causal`,
  W3: () => `${W3.rows}x${W3.dim}`,
  W4: () => `V${W4.vocab} d${W4.dModel} h${W4.nHeads} L${W4.numLayers} ff${W4.dFF} T${W4.seq} B${W4.batch}`,
};

/** Work per call, so that `amount / seconds` is the unit's figure. */
export const work = {
  X: ([m, k, n]) => ({ unit: 'GFLOP/s', amount: (2 * m * k * n) / 1e9 }),
  W1: ([m, k, n]) => ({ unit: 'GFLOP/s', amount: (2 * m * k * n) / 1e9 }),
  W2: () => ({ unit: 'GFLOP/s', amount: (4 * W2.b * W2.h * W2.t * W2.t * W2.d) / 1e9 }),
  W3: () => ({ unit: 'GB/s', amount: (2 * 4 * W3.rows * W3.dim) / 1e9 }),
  W4: () => ({ unit: 'tokens/s', amount: W4.batch * W4.seq }),
};

/** Uniform [-1, 1) floats from a 32-bit xorshift; `seed` names the tensor. The numpy script
 * reads the same bytes from a file instead of regenerating them. */
export function randomFloats(n, seed) {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

export const inputs = {
  X: ([m, k, n]) => ({ a: randomFloats(m * k, 11), b: randomFloats(k * n, 12) }),
  W1: ([m, k, n]) => ({ a: randomFloats(m * k, 11), b: randomFloats(k * n, 12) }),
  W2: () => {
    const n = W2.b * W2.h * W2.t * W2.d;
    return { q: randomFloats(n, 21), k: randomFloats(n, 22), v: randomFloats(n, 23) };
  },
  W3: () => ({
    x: randomFloats(W3.rows * W3.dim, 31).map((v) => 3 * v + 0.5),
    gamma: randomFloats(W3.dim, 32).map((v) => 1 + 0.5 * v),
    beta: randomFloats(W3.dim, 33),
  }),
  /** Token rows of seq + 1 ids (input and next-token target). */
  W4: () => {
    const r = randomFloats(W4.batch * (W4.seq + 1), 41);
    return Int32Array.from(r, (v) => Math.min(W4.vocab - 1, Math.floor(((v + 1) / 2) * W4.vocab)));
  },
};

// ---- oracle checks: float64 on sampled outputs, error max|got - want| / (max|want| + 1e-6) ----

const TOL = 1e-3;

function relErr(pairs) {
  let err = 0;
  let scale = 0;
  for (const [got, want] of pairs) {
    err = Math.max(err, Number.isFinite(got) ? Math.abs(got - want) : Infinity);
    scale = Math.max(scale, Math.abs(want));
  }
  return err / (scale + 1e-6);
}

function samples(count, limit, seed) {
  const r = randomFloats(count, seed);
  return Array.from(r, (v) => Math.min(limit - 1, Math.floor(((v + 1) / 2) * limit)));
}

export const check = {
  W1([m, k, n], { a, b }, c) {
    const rows = samples(48, m, 91);
    const cols = samples(48, n, 92);
    const pairs = rows.map((i, s) => {
      const j = cols[s];
      let want = 0;
      for (let p = 0; p < k; p++) want += a[i * k + p] * b[p * n + j];
      return [c[i * n + j], want];
    });
    return relErr(pairs);
  },
  W2(_shape, { q, k, v }, out) {
    const { b, h, t, d } = W2;
    const scale = 1 / Math.sqrt(d);
    const bhs = samples(12, b * h, 93);
    const is = samples(12, t, 94);
    const pairs = [];
    bhs.forEach((bh, s) => {
      const i = is[s];
      const base = bh * t * d;
      const scores = [];
      for (let j = 0; j <= i; j++) {
        let dot = 0;
        for (let x = 0; x < d; x++) dot += q[base + i * d + x] * k[base + j * d + x];
        scores.push(dot * scale);
      }
      const max = Math.max(...scores);
      const e = scores.map((sc) => Math.exp(sc - max));
      const sum = e.reduce((x, y) => x + y, 0);
      for (let x = 0; x < d; x++) {
        let want = 0;
        for (let j = 0; j <= i; j++) want += (e[j] / sum) * v[base + j * d + x];
        pairs.push([out[base + i * d + x], want]);
      }
    });
    return relErr(pairs);
  },
  W3(_shape, { x, gamma, beta }, y) {
    const { dim, eps } = W3;
    const pairs = [];
    for (const r of samples(24, W3.rows, 95)) {
      let mu = 0;
      for (let i = 0; i < dim; i++) mu += x[r * dim + i];
      mu /= dim;
      let vr = 0;
      for (let i = 0; i < dim; i++) vr += (x[r * dim + i] - mu) ** 2;
      const rs = 1 / Math.sqrt(vr / dim + eps);
      for (let i = 0; i < dim; i++) pairs.push([y[r * dim + i], (x[r * dim + i] - mu) * rs * gamma[i] + beta[i]]);
    }
    return relErr(pairs);
  },
};
check.X = check.W1;
export const CHECK_TOL = TOL;

// ---- timing --------------------------------------------------------------------------------------

export function parseArgs(argv = process.argv.slice(2)) {
  const args = { quick: false, threads: 1, only: null };
  for (const a of argv) {
    if (a === '--quick') args.quick = true;
    else if (a.startsWith('--threads=')) args.threads = Number(a.slice(10));
    else if (a.startsWith('--only=')) args.only = new Set(a.slice(7).split(','));
    else if (a.startsWith('--')) args[a.slice(2).split('=')[0]] = a.includes('=') ? a.split('=')[1] : true;
  }
  return args;
}

/** Times `fn` (sync or async) with tinybench after a warm-up; returns latency in ms. Long
 * tasks get fewer iterations: at least `minIterations`, else as many as fit in the budget. */
export async function time(fn, { quick = false, slow = false, verySlow = false } = {}) {
  // verySlow (seconds per call): the caller has already run it once; two timed calls.
  const bench = new Bench(verySlow
    ? { time: 0, iterations: 2, warmupTime: 0, warmupIterations: 0, throws: true }
    : {
      time: quick ? 150 : slow ? 1500 : 1000,
      iterations: quick ? 3 : 5,
      warmupTime: quick ? 30 : 200,
      warmupIterations: quick ? 1 : 2,
      throws: true,
    });
  bench.add('task', fn);
  await bench.run();
  const result = bench.tasks[0].result;
  if (result.state !== 'completed') throw result.error ?? new Error(`task ${result.state}`);
  const { p50, min, max } = result.latency;
  return { medianMs: p50, minMs: min, maxMs: max, samples: result.latency.samplesCount ?? null };
}

/** One JSON line per record on stdout; the orchestrator (bench/run.mjs) collects them. */
export function emit(record) {
  process.stdout.write(`@@bench ${JSON.stringify(record)}\n`);
}

/** A timed record in the workload's unit (median of rates = rate of the median latency;
 * the min latency gives the max rate). */
export function rateRecord({ workload, shape, implementation, backend, threads, timing, checkError, note }) {
  const { unit, amount } = work[workload](shape);
  const rate = (ms) => amount / (ms / 1000);
  return {
    kind: 'result', workload, shape: shapeName[workload](shape), implementation, backend, threads,
    median: rate(timing.medianMs), min: rate(timing.maxMs), max: rate(timing.minMs), unit,
    medianMs: timing.medianMs, samples: timing.samples, checkError, ...(note ? { note } : {}),
  };
}

/** Runs one measurement: computes once, checks against the oracle, then times. A result
 * that fails the check is reported as a failure, never timed. */
export async function measure({ workload, shape, implementation, backend, threads, quick, slow, verySlow, run, output, data, note, extra }) {
  try {
    await run();
    const out = await output();
    let checkError = null;
    if (check[workload]) {
      checkError = check[workload](shape, data, out);
      if (!(checkError <= TOL)) {
        emit({ kind: 'failure', workload, shape: shapeName[workload](shape), implementation, backend, threads, reason: `result check failed: error ${checkError}` });
        return;
      }
    }
    const timing = await time(run, { quick, slow, verySlow });
    emit({ ...rateRecord({ workload, shape, implementation, backend, threads, timing, checkError, note }), ...extra?.() });
  } catch (e) {
    emit({ kind: 'failure', workload, shape: shapeName[workload](shape), implementation, backend, threads, reason: String(e?.stack ?? e).split('\n').slice(0, 3).join(' | ') });
  }
}
