// Shared by every runner: the workloads, seeded inputs (identical in every process and in
// the numpy script), float64 oracle checks on sampled outputs, and the timing wrapper; and
// ferroformer's W4-W6 training steps, which its runner and the profiling scripts share.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
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

/** nanoGPT's configurations (examples/nanogpt against Karpathy's model.py in PyTorch), one
 * training iteration each: forward, backward, clip_grad_norm_(1.0), AdamW (lr 1e-3, betas
 * (0.9, 0.99), weight decay 0.1 on the >= 2-D parameters), zero_grad. W5 is the README's CPU
 * "baby GPT" (bias on, as the issue asks); W6 config/train_shakespeare_char.py's model (bias
 * off, train.py's default) with dropout 0 instead of 0.2, so that both implementations
 * compute the same function and their losses can be compared. Vocabulary 65 (Shakespeare's
 * characters). */
export const NANOGPT = {
  W5: { n_layer: 4, n_head: 4, n_embd: 128, block_size: 64, batch_size: 12, vocab_size: 65, bias: true, parameters: 809_856 },
  W6: { n_layer: 6, n_head: 6, n_embd: 384, block_size: 256, batch_size: 8, vocab_size: 65, bias: false, parameters: 10_745_088 },
};
export const NANOGPT_OPTIM = { learningRate: 1e-3, betas: [0.9, 0.99], weightDecay: 0.1, gradClip: 1.0 };

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
  W5: () => nanogptName(NANOGPT.W5),
  W6: () => nanogptName(NANOGPT.W6),
};

function nanogptName(c) {
  return `L${c.n_layer} h${c.n_head} d${c.n_embd} T${c.block_size} B${c.batch_size} V${c.vocab_size}${c.bias ? ' bias' : ''}`;
}

/** Work per call, so that `amount / seconds` is the unit's figure. */
export const work = {
  X: ([m, k, n]) => ({ unit: 'GFLOP/s', amount: (2 * m * k * n) / 1e9 }),
  W1: ([m, k, n]) => ({ unit: 'GFLOP/s', amount: (2 * m * k * n) / 1e9 }),
  W2: () => ({ unit: 'GFLOP/s', amount: (4 * W2.b * W2.h * W2.t * W2.t * W2.d) / 1e9 }),
  W3: () => ({ unit: 'GB/s', amount: (2 * 4 * W3.rows * W3.dim) / 1e9 }),
  W4: () => ({ unit: 'tokens/s', amount: W4.batch * W4.seq }),
  W5: () => ({ unit: 'iterations/s', amount: 1 }),
  W6: () => ({ unit: 'tokens/s', amount: NANOGPT.W6.batch_size * NANOGPT.W6.block_size }),
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
  /** Token rows of block_size + 1 ids: x = row[:-1], y = row[1:] as nanoGPT's get_batch. */
  W5: () => nanogptTokens(NANOGPT.W5, 51),
  W6: () => nanogptTokens(NANOGPT.W6, 61),
};

function nanogptTokens(c, seed) {
  const r = randomFloats(c.batch_size * (c.block_size + 1), seed);
  return Int32Array.from(r, (v) => Math.min(c.vocab_size - 1, Math.floor(((v + 1) / 2) * c.vocab_size)));
}

/** nanoGPT's parameters in named_parameters() order (the tied wte/lm_head matrix once, as
 * transformer.wte.weight), each [name, shape]. */
export function nanogptParameterShapes(c) {
  const C = c.n_embd;
  const linear = (name, out, inp) => [[`${name}.weight`, [out, inp]], ...(c.bias ? [[`${name}.bias`, [out]]] : [])];
  const norm = (name) => [[`${name}.weight`, [C]], ...(c.bias ? [[`${name}.bias`, [C]]] : [])];
  const out = [['transformer.wte.weight', [c.vocab_size, C]], ['transformer.wpe.weight', [c.block_size, C]]];
  for (let l = 0; l < c.n_layer; l++) {
    const h = `transformer.h.${l}`;
    out.push(...norm(`${h}.ln_1`), ...linear(`${h}.attn.c_attn`, 3 * C, C), ...linear(`${h}.attn.c_proj`, C, C),
      ...norm(`${h}.ln_2`), ...linear(`${h}.mlp.c_fc`, 4 * C, C), ...linear(`${h}.mlp.c_proj`, C, 4 * C));
  }
  out.push(...norm('transformer.ln_f'));
  return out;
}

/** The initial weights both implementations load, by nanoGPT's rule (_init_weights: matrices
 * and embeddings std 0.02, every c_proj.weight std 0.02 / sqrt(2 n_layer), biases 0, layer
 * norm gains 1), drawn uniform with that std from the seeded xorshift so that every process
 * makes the same bytes. Map name -> { shape, data }. */
export function nanogptInitialState(c) {
  const state = new Map();
  nanogptParameterShapes(c).forEach(([name, shape], i) => {
    const size = shape.reduce((a, b) => a * b, 1);
    let data;
    if (shape.length === 1) data = new Float32Array(size).fill(name.includes('.ln_') && name.endsWith('.weight') ? 1 : 0);
    else {
      const std = name.endsWith('c_proj.weight') ? 0.02 / Math.sqrt(2 * c.n_layer) : 0.02;
      data = randomFloats(size, 500 + i).map((v) => v * std * Math.sqrt(3));
    }
    state.set(name, { shape, data });
  });
  return state;
}

// ---- ferroformer's training steps (runners/ferroformer.mjs, profile_kernels.mjs, profile_w4.mjs) ----

/** The library as built into dist/ (`npm run build:ts`), imported on first use so that the
 * peers' runners, which share this file, never need it. */
const ferroformer = () => import('../../dist/index.js');

/** W4: nn.DecoderLM (pre-norm, ReLU, no dropout, seeded) and a Trainer with Adam on `backend`
 * (also made the default backend). step() runs one training step and returns its loss. */
export async function w4Training(backend) {
  const { nn, optim, setDefaultBackend, train } = await ferroformer();
  setDefaultBackend(backend);
  nn.manualSeed(1234);
  const model = new nn.DecoderLM({
    vocab: W4.vocab, dModel: W4.dModel, nHeads: W4.nHeads, numLayers: W4.numLayers, dFF: W4.dFF,
    dropout: 0, activation: 'relu', normFirst: true, maxLen: W4.seq,
  }, { backend });
  const params = model.parameters().reduce((sum, p) => sum + p.size, 0);
  if (params !== W4_PARAMETERS) throw new Error(`W4 model has ${params} parameters, expected ${W4_PARAMETERS}`);
  const trainer = new train.Trainer({ model, optimizer: new optim.Adam(model.parameters(), { lr: 1e-3 }), loss: train.lmLoss() });
  const batch = train.lmBatch(inputs.W4(), { backend, shape: [W4.batch, W4.seq + 1] });
  return { tokens: W4.batch * W4.seq, trainer, step: () => trainer.trainStep(batch).loss };
}

/** examples/nanogpt's model, compiled first (tsc -p examples/nanogpt) when its build is
 * missing or older than model.ts. */
export async function nanogptModule() {
  const source = fileURLToPath(new URL('../../examples/nanogpt/model.ts', import.meta.url));
  const built = fileURLToPath(new URL('../../examples/nanogpt/build/model.js', import.meta.url));
  if (!existsSync(built) || statSync(built).mtimeMs < statSync(source).mtimeMs) {
    const tsc = fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url));
    const build = spawnSync(process.execPath, [tsc, '-p', fileURLToPath(new URL('../../examples/nanogpt', import.meta.url))], { encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`tsc -p examples/nanogpt failed: ${(build.stdout + build.stderr).trim().split('\n').slice(0, 3).join(' | ')}`);
  }
  return import(new URL('../../examples/nanogpt/build/model.js', import.meta.url).href);
}

/** W5 / W6: examples/nanogpt's GPT from nanogptInitialState on `backend` (also made the
 * default backend), trained as train.py's loop does: forward, backward, clip_grad_norm_,
 * AdamW, zero_grad. step() runs one iteration and returns its loss; baseRssMiB is the
 * resident memory just before the model was made. */
export async function nanogptTraining(workload, backend) {
  const { optim, setDefaultBackend, tensor } = await ferroformer();
  const { GPT, GPTConfig } = await nanogptModule();
  setDefaultBackend(backend);
  const c = NANOGPT[workload];
  const baseRssMiB = residentMiB();
  const model = new GPT(GPTConfig({ n_layer: c.n_layer, n_head: c.n_head, n_embd: c.n_embd, block_size: c.block_size, vocab_size: c.vocab_size, bias: c.bias, dropout: 0 }), { backend });
  const params = model.numParameters();
  if (params !== c.parameters) throw new Error(`${workload} model has ${params} parameters, expected ${c.parameters}`);
  model.loadStateDict(nanogptInitialState(c));
  const { learningRate, betas, weightDecay, gradClip } = NANOGPT_OPTIM;
  const optimizer = model.configureOptimizers(weightDecay, learningRate, betas);
  const ids = inputs[workload]();
  const [B, T] = [c.batch_size, c.block_size];
  const rows = (offset) => Int32Array.from({ length: B * T }, (_, i) => ids[Math.floor(i / T) * (T + 1) + (i % T) + offset]);
  const X = tensor(rows(0), [B, T], { backend, dtype: 'i32' });
  const Y = tensor(rows(1), [B, T], { backend, dtype: 'i32' });
  const step = () => {
    const [, loss] = model.forward(X, Y);
    const value = loss.item();
    loss.backward();
    loss.dispose();
    optim.clipGradNorm(model.parameters(), gradClip);
    optimizer.step();
    optimizer.zeroGrad();
    return value;
  };
  return { tokens: B * T, params, baseRssMiB, step };
}

/** Peak resident memory of this process in MiB and how it was read: VmHWM from
 * /proc/self/status where there is one (Linux), else process.resourceUsage().maxRSS. */
export function peakResidentMiB() {
  const hwm = /^VmHWM:\s+(\d+) kB/m.exec(readStatus());
  if (hwm) return { mib: Number(hwm[1]) / 1024, method: 'VmHWM from /proc/self/status' };
  return { mib: process.resourceUsage().maxRSS / 1024, method: 'process.resourceUsage().maxRSS' };
}

/** Resident memory now (VmRSS), MiB; null off Linux. */
export function residentMiB() {
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(readStatus());
  return rss ? Number(rss[1]) / 1024 : null;
}

function readStatus() {
  try {
    return readFileSync('/proc/self/status', 'utf8');
  } catch {
    return '';
  }
}

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
export async function time(fn, { quick = false, slow = false, verySlow = false, iterations = null } = {}) {
  // verySlow (seconds per call): the caller has already run it once; two timed calls.
  // iterations: exactly that many timed calls, the caller having warmed up.
  const bench = new Bench(verySlow || iterations
    ? { time: 0, iterations: iterations ?? 2, warmupTime: 0, warmupIterations: 0, throws: true }
    : {
      // At least 5 timed calls, as the PyTorch runner's `timed` takes (bench/lib/pytorch_bench.py).
      time: quick ? 150 : slow ? 1500 : 1000,
      iterations: 5,
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
/** The median of `xs` (the mean of the middle two for an even count). */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

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
