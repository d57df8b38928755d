#!/usr/bin/env node
// Soak for the threaded wasm backend: hunts rare faults of kernels split across Web Workers
// (a trap such as "memory access out of bounds", a hang, bits that differ from one thread)
// under allocation pressure and machine load. Not part of `npm test`: it runs for minutes.
//
// Each child process runs one configuration (module x threads) for --seconds, in episodes of
// two instances of the same module: the one under test at n threads, and an oracle at one
// thread (results are bit-identical for any thread count by design). An episode repeats, in
// a seeded random order:
// - a kernel call (matmul, fused linear, attention, softmax, layer norm, cross entropy, Adam,
//   the copy and index kernels; random odd shapes) on both instances, compared bit for bit.
//   Before three calls under test of four: ballast allocations of 256 KiB-8 MiB, kept to the
//   end of the episode, until linear memory has grown (else one, in a FIFO of 8); then the
//   inputs, then the outputs, so nearly every call hands workers pages grown microseconds
//   before; in one call of four, one random buffer sits flush against the end of linear
//   memory in pages grown from JS just before the call, so a read or write past any buffer
//   traps. Outputs the kernel overwrites start uninitialised (different garbage in the two
//   instances), so an element left unwritten differs too;
// - a few training steps of a small DecoderLM (random size, dropout) on both, losses
//   compared bit for bit;
// - a change of setThreads (1 to the maximum), awaited or not, so workers of an old epoch
//   retire while new ones start and kernels keep running.
// An episode ends when linear memory passes --memory-mib; the next one loads fresh instances.
//
// The parent runs --jobs children at a time over every configuration, round robin, plus
// --load busy processes, for --minutes; a child that outlives its time by two minutes counts
// as a hang. It prints one row per configuration and exits 1 on any failure, with the seed
// that reproduces the child's sequence (`--child --seed N`; timing still differs).
//
//   node scripts/soak-wasm-threads.mjs                                     10 minutes, all configurations
//   node scripts/soak-wasm-threads.mjs --minutes 60 --threads 2,3,4 --modules threads,threads-relaxed --jobs 2 --load 1
//   node --experimental-wasm-relaxed-simd scripts/soak-wasm-threads.mjs --child --modules threads-relaxed --threads 3 --seconds 30 --seed 7
//
// Needs `npm run build:ts` and `npm run build:wasm` (both threaded modules). Node 20 runs
// the relaxed-SIMD module only with --experimental-wasm-relaxed-simd, which the parent
// passes to its children. Children load dist/ and build/ as they start: where others may
// rebuild them during a long soak, run it from a copy of scripts/, dist/ and build/ (with
// node_modules linked), or a new dist/ meets an old module.
//
//   node scripts/soak-wasm-threads.mjs --engine-check
// shows, with a hand-written module, what crates/wasm/src/lib.rs's WorkerPool guards
// against: a worker that spins on a flag, then memory.fills pages another thread grew just
// before setting it, traps with "memory access out of bounds" on V8 (Node 20: at once); the
// same worker that first compares memory.size with the size published with the flag and
// calls memory.grow(0) when it is behind never does. Exit 1 if that refresh stops helping.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const RELAXED_FLAG = '--experimental-wasm-relaxed-simd';
const lib = await import('../dist/index.js');

// ---- parent ---------------------------------------------------------------------------------

async function parent() {
  const minutes = Number(opt('minutes', 10));
  const seconds = Number(opt('seconds', 60));
  const jobs = Number(opt('jobs', 1));
  const load = Number(opt('load', 1));
  const memoryMiB = Number(opt('memory-mib', 1024));
  const configs = opt('modules', 'threads,threads-relaxed').split(',')
    .flatMap((module) => opt('threads', '2,3,4').split(',').map((threads) => ({ module, threads: Number(threads) })));
  const self = fileURLToPath(import.meta.url);
  const burners = Array.from({ length: load }, () => spawn(process.execPath, ['-e', 'for (;;);'], { stdio: 'ignore' }));
  const deadline = Date.now() + minutes * 60_000;
  const rows = new Map(configs.map((c) => [`${c.module} x${c.threads}`, { children: 0, ...zeroCounts(), failures: [] }]));
  let next = 0;
  let seed = Number(opt('seed', 1));

  const runOne = (config, childSeed) => new Promise((resolve) => {
    const childArgs = [RELAXED_FLAG, self, '--child', '--modules', config.module, '--threads', String(config.threads),
      '--seconds', String(seconds), '--seed', String(childSeed), '--memory-mib', String(memoryMiB)];
    const proc = spawn(process.execPath, childArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    const watchdog = setTimeout(() => proc.kill('SIGKILL'), (seconds + 120) * 1000);
    proc.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      const line = (prefix) => stdout.split('\n').find((l) => l.startsWith(prefix));
      const result = line('RESULT ') ? JSON.parse(line('RESULT ').slice(7)) : null;
      const failure = line('FAIL ') ? JSON.parse(line('FAIL ').slice(5))
        : code === 0 && result ? null
          : { error: signal === 'SIGKILL' ? `hang: no exit ${seconds + 120} s after start` : `exit ${code ?? signal}`, stderr: stderr.slice(-4000) };
      resolve({ config, seed: childSeed, result, failure });
    });
  });

  const running = new Set();
  const record = ({ config, seed: childSeed, result, failure }) => {
    const row = rows.get(`${config.module} x${config.threads}`);
    row.children++;
    if (result) for (const key of Object.keys(zeroCounts())) row[key] += result[key];
    if (failure) {
      row.failures.push({ seed: childSeed, ...failure });
      console.log(`FAIL ${config.module} x${config.threads} seed ${childSeed}: ${JSON.stringify(failure, null, 1)}`);
    }
  };
  while (Date.now() < deadline || running.size > 0) {
    while (running.size < jobs && Date.now() < deadline) {
      const run = runOne(configs[next++ % configs.length], seed++).then((r) => {
        running.delete(run);
        record(r);
      });
      running.add(run);
    }
    if (running.size > 0) await Promise.race(running);
  }
  for (const burner of burners) burner.kill();

  console.log(`\nsoak-wasm-threads: ${minutes} min, ${jobs} child(ren) at a time of ${seconds} s each, ${load} busy process(es), episodes up to ${memoryMiB} MiB of linear memory`);
  console.log('configuration          children   kernel calls  after a grow  at the end  train steps  setThreads  episodes  failures');
  for (const [name, r] of rows) {
    console.log(`${name.padEnd(22)} ${String(r.children).padStart(8)} ${String(r.calls).padStart(14)} ${String(r.callsAfterGrow).padStart(13)} ${String(r.placedAtEnd).padStart(11)} ${String(r.trainSteps).padStart(12)} ${String(r.threadChanges).padStart(11)} ${String(r.episodes).padStart(9)} ${String(r.failures.length).padStart(9)}`);
  }
  process.exitCode = [...rows.values()].some((r) => r.failures.length > 0) ? 1 : 0;
}

function zeroCounts() {
  return { calls: 0, callsAfterGrow: 0, placedAtEnd: 0, trainSteps: 0, threadChanges: 0, episodes: 0 };
}

// ---- child ----------------------------------------------------------------------------------

async function child({ module, threads: maxThreads, seconds, seed, memoryMiB }) {
  const { loadWasmBackend } = await import('../dist/backend/wasm.js');
  const { nn, optim, train, dispose } = lib;
  const relaxed = module === 'threads-relaxed';
  const rng = makeRng(seed);
  const counts = zeroCounts();
  const deadline = Date.now() + seconds * 1000;
  let context = {};

  const fail = (error, extra = {}) => {
    const failure = { module, maxThreads, seed, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      stack: error instanceof Error ? error.stack : undefined, ...context, ...extra, counts };
    process.stdout.write(`FAIL ${JSON.stringify(failure)}\n`);
    process.exit(1);
  };

  try {
    while (Date.now() < deadline) {
      counts.episodes++;
      const tested = await loadWasmBackend({ threads: true, relaxed });
      const oracle = await loadWasmBackend({ threads: true, relaxed });
      if (!tested.capabilities.has('threads') || tested.relaxedSimd !== relaxed) {
        throw new Error(`loaded the wrong module: threads ${tested.capabilities.has('threads')}, relaxed ${tested.relaxedSimd}`);
      }
      const placer = installPlacer(tested);
      let threads = 1 + Math.floor(rng() * maxThreads);
      tested.setThreads(threads);
      await tested.threadsReady();
      const ballast = [];
      const lm = makeModels({ nn, optim, train, dispose }, tested, oracle, rng);
      while (Date.now() < deadline && tested.memoryBytes() < memoryMiB * 2 ** 20) {
        const action = rng();
        if (action < 0.75) {
          tested.setMinParallelFlops(rng() < 0.8 ? 0 : 16e6);
          const name = pick(rng, Object.keys(CASES));
          const plan = CASES[name](rng);
          context = { phase: 'kernel', kernel: name, dims: plan.dims, threads };
          const want = runCase(oracle, plan, { seed: counts.calls });
          const atEnd = rng() < 0.25 ? pick(rng, Object.keys(plan.buffers)) : null;
          context.atEnd = atEnd;
          // In three calls of four, ballast until linear memory has grown.
          const before = tested.memoryBytes();
          const grow = rng() < 0.75;
          for (let i = 0; i < 16 && (grow ? tested.memoryBytes() === before : i < 1); i++) {
            ballast.push(tested.allocUninit('f32', (1 << 16) + Math.floor(rng() * (1 << 21))));
            if (!grow && ballast.length > 8) tested.free(ballast.shift());
          }
          const got = runCase(tested, plan, { seed: counts.calls, placer, atEnd, onCall: () => {
            if (tested.memoryBytes() > before) counts.callsAfterGrow++;
          } });
          counts.calls++;
          if (atEnd !== null) counts.placedAtEnd++;
          for (const [i, [output, out]] of got.entries()) {
            const index = firstDifference(out, want[i][1]);
            if (index >= 0) fail('results differ from one thread', { output, index, got: out[index], want: want[i][1][index] });
          }
        } else if (action < 0.93) {
          context = { phase: 'train', config: lm.config, threads };
          for (let s = 1 + Math.floor(rng() * 4); s > 0; s--) {
            const [a, b] = lm.step();
            counts.trainSteps++;
            if (!Object.is(a, b)) fail('training loss differs from one thread', { got: a, want: b });
          }
        } else {
          threads = 1 + Math.floor(rng() * maxThreads);
          context = { phase: 'setThreads', threads };
          tested.setThreads(threads);
          counts.threadChanges++;
          if (rng() < 0.5) await tested.threadsReady();
        }
      }
      context = { phase: 'end of episode' };
      lm.dispose();
      for (const s of ballast) tested.free(s);
      tested.setThreads(1);
      oracle.setThreads(1);
    }
  } catch (error) {
    fail(error);
  }
  process.stdout.write(`RESULT ${JSON.stringify(counts)}\n`);
  process.exit(0);
}

/** Two identical models (same seed) on the instance under test and on the oracle. */
function makeModels({ nn, optim, train, dispose }, tested, oracle, rng) {
  const config = {
    vocab: pick(rng, [17, 32, 65]), dModel: pick(rng, [24, 32, 48, 64]), nHeads: pick(rng, [2, 4]),
    numLayers: 1 + Math.floor(rng() * 2), dFF: pick(rng, [64, 96, 128]), dropout: pick(rng, [0, 0.1]), maxLen: 48,
  };
  const [batch, length] = [2 + Math.floor(rng() * 8), 8 + Math.floor(rng() * 33)];
  const dataSeed = Math.floor(rng() * 2 ** 31);
  const make = (backend) => {
    const model = new nn.DecoderLM(config, { backend, rng: new nn.Rng(dataSeed) });
    const optimizer = new optim.AdamW(model.parameters(), { lr: 1e-3 });
    const trainer = new train.Trainer({ model, optimizer, loss: train.lmLoss(), clipNorm: 1 });
    return { backend, model, optimizer, trainer, data: new nn.Rng(dataSeed + 1) };
  };
  const pair = [make(tested), make(oracle)];
  const stepOn = ({ backend, trainer, data }) => {
    const offsets = data.uniform(batch, 0, config.vocab);
    const rows = Array.from(offsets, (o) => Array.from({ length: length + 1 }, (_, t) => (Math.floor(o) + 3 * t) % config.vocab));
    const batchTensors = train.lmBatch(rows, { backend });
    const metrics = trainer.trainStep(batchTensors);
    dispose(batchTensors);
    trainer.history.length = 0;
    return metrics.loss;
  };
  return {
    config: { ...config, batch, length },
    step: () => pair.map(stepOn),
    dispose() {
      for (const p of pair) {
        p.model.dispose();
        p.optimizer.dispose();
      }
    },
  };
}

// ---- kernel cases ---------------------------------------------------------------------------

// Buffer kinds: 'in' (random data), 'out' (overwritten: starts uninitialised), 'acc'
// (accumulated: starts at 0), 'int' (integer contents from `fill`).
const buf = (kind, dtype, length, fill) => ({ kind, dtype, length, fill });
const IN = (n) => buf('in', 'f32', n);
const OUT = (n) => buf('out', 'f32', n);
const ACC = (n) => buf('acc', 'f32', n);
const INT = (n, fill) => buf('int', 'i32', n, fill);
const ACTIVATIONS = ['identity', 'relu', 'gelu', 'gelu_tanh'];

/** name -> (rng) -> { dims, buffers, call(backend, storages) }, shapes drawn at random. */
const CASES = {
  matmulForward(rng) {
    const [batch, m, k, n] = [int(rng, 1, 3), int(rng, 1, 200), int(rng, 1, 200), int(rng, 1, 200)];
    const [transA, transB] = [rng() < 0.5, rng() < 0.5];
    return {
      dims: { batch, m, k, n, transA, transB },
      buffers: { out: OUT(batch * m * n), a: IN(batch * m * k), b: IN(batch * k * n) },
      call: (be, s) => be.matmulForward(s.out, s.a, s.b, batch, m, k, n, transA, transB, false),
    };
  },
  matmulBackward(rng) {
    const [batch, m, k, n] = [int(rng, 1, 3), int(rng, 1, 160), int(rng, 1, 160), int(rng, 1, 160)];
    const [transA, transB] = [rng() < 0.5, rng() < 0.5];
    return {
      dims: { batch, m, k, n, transA, transB },
      buffers: { da: ACC(batch * m * k), db: ACC(batch * k * n), dout: IN(batch * m * n), a: IN(batch * m * k), b: IN(batch * k * n) },
      call: (be, s) => be.matmulBackward(s.da, s.db, s.dout, s.a, s.b, batch, m, k, n, transA, transB),
    };
  },
  linearForward(rng) {
    const [rows, inF, outF, activation] = [int(rng, 1, 300), int(rng, 1, 200), int(rng, 1, 200), pick(rng, ACTIVATIONS)];
    const savesActGrad = activation.startsWith('gelu');
    return {
      dims: { rows, inF, outF, activation },
      buffers: { out: OUT(rows * outF), ...(savesActGrad ? { actGrad: OUT(rows * outF) } : {}), x: IN(rows * inF), weight: IN(outF * inF), bias: IN(outF) },
      call: (be, s) => be.linearForward(s.out, s.actGrad ?? null, s.x, s.weight, s.bias, rows, inF, outF, activation),
    };
  },
  linearBackward(rng) {
    const [rows, inF, outF, activation] = [int(rng, 1, 300), int(rng, 1, 200), int(rng, 1, 200), pick(rng, ACTIVATIONS)];
    const act = activation !== 'identity';
    return {
      dims: { rows, inF, outF, activation },
      buffers: {
        dx: ACC(rows * inF), dweight: ACC(outF * inF), dbias: ACC(outF), ...(act ? { dpre: OUT(rows * outF), saved: IN(rows * outF) } : {}),
        dout: IN(rows * outF), x: IN(rows * inF), weight: IN(outF * inF),
      },
      call: (be, s) => be.linearBackward(s.dx, s.dweight, s.dbias, s.dpre ?? null, s.dout, s.x, s.weight, s.saved ?? null, rows, inF, outF, activation, true, true),
    };
  },
  attentionForward(rng) {
    const [b, h, tq, tk, d] = [int(rng, 1, 3), int(rng, 1, 4), int(rng, 1, 140), int(rng, 1, 140), pick(rng, [8, 13, 16, 32, 64])];
    const [causal, p, mask] = [rng() < 0.5, rng() < 0.3 ? 0.1 : 0, rng() < 0.3];
    return {
      dims: { b, h, tq, tk, d, causal, p, mask },
      buffers: {
        out: OUT(b * h * tq * d), lse: OUT(b * h * tq), q: IN(b * h * tq * d), k: IN(b * h * tk * d), v: IN(b * h * tk * d),
        ...(mask ? { keyMask: buf('int', 'u8', b * tk, (i) => (i % 5 === 1 ? 0 : 1)) } : {}),
      },
      call: (be, s) => be.attentionForward(s.out, s.lse, s.q, s.k, s.v, s.keyMask ?? null, b, h, tq, tk, d, causal, 1 / Math.sqrt(d), p, 11, 0),
    };
  },
  attentionBackward(rng) {
    const [b, h, tq, tk, d] = [int(rng, 1, 3), int(rng, 1, 4), int(rng, 1, 120), int(rng, 1, 120), pick(rng, [8, 13, 16, 32, 64])];
    const [causal, p] = [rng() < 0.5, rng() < 0.3 ? 0.1 : 0];
    return {
      dims: { b, h, tq, tk, d, causal, p },
      buffers: {
        dq: ACC(b * h * tq * d), dk: ACC(b * h * tk * d), dv: ACC(b * h * tk * d), dout: IN(b * h * tq * d),
        q: IN(b * h * tq * d), k: IN(b * h * tk * d), v: IN(b * h * tk * d), out: IN(b * h * tq * d), lse: IN(b * h * tq),
      },
      // lse of random numbers: any finite values do for a comparison of bits.
      call: (be, s) => be.attentionBackward(s.dq, s.dk, s.dv, s.dout, s.q, s.k, s.v, s.out, s.lse, null, b, h, tq, tk, d, causal, 1 / Math.sqrt(d), p, 11, 0),
    };
  },
  softmaxForward(rng) {
    const [rows, cols] = [int(rng, 1, 400), int(rng, 1, 700)];
    return { dims: { rows, cols }, buffers: { out: OUT(rows * cols), inp: IN(rows * cols) }, call: (be, s) => be.softmaxForward(s.out, s.inp, null, rows, cols) };
  },
  layernormForward(rng) {
    const [rows, dim] = [int(rng, 1, 600), int(rng, 1, 400)];
    return {
      dims: { rows, dim },
      buffers: { out: OUT(rows * dim), mean: OUT(rows), rstd: OUT(rows), inp: IN(rows * dim), weight: IN(dim), bias: IN(dim) },
      call: (be, s) => be.layernormForward(s.out, s.mean, s.rstd, s.inp, s.weight, s.bias, rows, dim, 1e-5),
    };
  },
  layernormBackward(rng) {
    const [rows, dim] = [int(rng, 1, 600), int(rng, 1, 400)];
    return {
      dims: { rows, dim },
      buffers: { dinp: ACC(rows * dim), dweight: ACC(dim), dbias: ACC(dim), dout: IN(rows * dim), inp: IN(rows * dim), weight: IN(dim), mean: IN(rows), rstd: IN(rows) },
      call: (be, s) => be.layernormBackward(s.dinp, s.dweight, s.dbias, s.dout, s.inp, s.weight, s.mean, s.rstd, rows, dim),
    };
  },
  crossEntropyBackward(rng) {
    const [rows, vocab] = [int(rng, 1, 500), int(rng, 2, 900)];
    return {
      dims: { rows, vocab },
      buffers: { dlogits: ACC(rows * vocab), dloss: IN(1), logits: IN(rows * vocab), lse: IN(rows), targets: INT(rows, (i) => (i * 7919) % vocab) },
      call: (be, s) => be.crossEntropyBackward(s.dlogits, s.dloss, s.logits, s.lse, s.targets, rows, vocab, -100, 0.1, true),
    };
  },
  adamUpdate(rng) {
    const n = int(rng, 1, 600_000);
    return {
      dims: { n },
      buffers: { param: IN(n), m: IN(n), v: buf('int', 'f32', n, (i) => (i % 13) / 13), grad: IN(n) },
      inout: ['param', 'm', 'v'],
      call: (be, s) => be.adamUpdate(s.param, s.m, s.v, s.grad, 1e-3, 0.9, 0.999, 1e-8, 0.01, 3, true),
    };
  },
  transpose12Forward(rng) {
    const [a, b, c, d] = [int(rng, 1, 8), int(rng, 1, 64), int(rng, 1, 12), int(rng, 1, 64)];
    return { dims: { a, b, c, d }, buffers: { out: OUT(a * b * c * d), inp: IN(a * b * c * d) }, call: (be, s) => be.transpose12Forward(s.out, s.inp, a, b, c, d) };
  },
  narrowForward(rng) {
    const [outer, dim, inner] = [int(rng, 1, 64), int(rng, 1, 40), int(rng, 1, 512)];
    const start = int(rng, 0, dim - 1);
    const len = int(rng, 1, dim - start);
    return {
      dims: { outer, dim, inner, start, len },
      buffers: { out: OUT(outer * len * inner), inp: IN(outer * dim * inner) },
      call: (be, s) => be.narrowForward(s.out, s.inp, outer, dim, inner, start, len),
    };
  },
  stridedCopyForward(rng) {
    // A permuted view [d2, d0, d1] of a contiguous [d0, d1, d2] buffer, or the identity view.
    const [d0, d1, d2] = [int(rng, 1, 40), int(rng, 1, 40), int(rng, 1, 200)];
    const permuted = rng() < 0.5;
    const [shape, strides] = permuted ? [[d2, d0, d1], [1, d1 * d2, d2]] : [[d0, d1, d2], [d1 * d2, d2, 1]];
    return {
      dims: { d0, d1, d2, permuted },
      buffers: { out: OUT(d0 * d1 * d2), inp: IN(d0 * d1 * d2), shape: INT(3, (i) => shape[i]), strides: INT(3, (i) => strides[i]) },
      call: (be, s) => be.stridedCopyForward(s.out, s.inp, s.shape, s.strides, 0),
    };
  },
  indexSelectForward(rng) {
    const [outer, n, k, inner] = [int(rng, 1, 16), int(rng, 1, 64), int(rng, 1, 64), int(rng, 1, 300)];
    return {
      dims: { outer, n, k, inner },
      buffers: { out: OUT(outer * k * inner), inp: IN(outer * n * inner), index: INT(k, (i) => (i * 31) % n) },
      call: (be, s) => be.indexSelectForward(s.out, s.inp, s.index, outer, n, k, inner),
    };
  },
  reduceForward(rng) {
    const [outer, n, inner, code] = [int(rng, 1, 64), int(rng, 1, 300), int(rng, 1, 64), int(rng, 0, 5)];
    return {
      dims: { outer, n, inner, code },
      buffers: { out: OUT(outer * inner), inp: IN(outer * n * inner) },
      call: (be, s) => be.reduceForward(s.out, s.inp, outer, n, inner, code, 1),
    };
  },
  geluForward(rng) {
    const n = int(rng, 1, 700_000);
    return { dims: { n }, buffers: { out: OUT(n), inp: IN(n) }, call: (be, s) => be.geluForward(s.out, s.inp) };
  },
};

/** Runs `plan` on `backend`: inputs first, outputs last (just before the call), one buffer
 * placed at the end of memory when `atEnd` names it. Returns [name, contents] per output. */
function runCase(backend, plan, { seed, placer = null, atEnd = null, onCall = () => {} }) {
  const storages = {};
  const outputs = [];
  const names = Object.keys(plan.buffers);
  const order = [...names.filter((n) => plan.buffers[n].kind === 'in' || plan.buffers[n].kind === 'int'),
    ...names.filter((n) => plan.buffers[n].kind === 'out' || plan.buffers[n].kind === 'acc')];
  for (const name of order) {
    const spec = plan.buffers[name];
    const data = contents(spec, seed + name.length * 7919);
    if (name === atEnd) storages[name] = placer.place(spec.dtype, data ?? new Float32Array(spec.length).fill(Number.NaN));
    else if (spec.kind === 'out') storages[name] = backend.allocUninit(spec.dtype, spec.length);
    else if (spec.kind === 'acc') storages[name] = backend.alloc(spec.dtype, spec.length);
    else storages[name] = backend.fromArray(spec.dtype, data);
    if (spec.kind === 'out' || spec.kind === 'acc' || plan.inout?.includes(name)) outputs.push([name, storages[name]]);
  }
  onCall();
  plan.call(backend, storages);
  const results = outputs.map(([name, s]) => [name, placer?.isPlaced(s) ? placer.read(s) : backend.read(s)]);
  for (const s of Object.values(storages)) if (!placer?.isPlaced(s)) backend.free(s);
  return results;
}

function contents(spec, seed) {
  if (spec.kind === 'out') return null;
  if (spec.kind === 'acc') return new Float32Array(spec.length);
  if (spec.kind === 'int') return Array.from({ length: spec.length }, (_, i) => spec.fill(i));
  const start = Math.floor(makeRng(seed + spec.length)() * (NOISE.length - spec.length));
  return NOISE.subarray(start, start + spec.length);
}

/** Random inputs are windows of one block of noise in [-1, 1) (drawing each element anew
 * would take longer than the kernels). */
const NOISE = (() => {
  const rng = makeRng(12345);
  return Float32Array.from({ length: 1 << 21 }, () => rng() * 2 - 1);
})();

/** Places buffers flush against the end of linear memory, in pages grown from JS (the
 * module's allocator never hands them out), and lets the backend's kernel methods take them:
 * the generated WasmKernels read only `ptr` and `length` of a checked storage. */
function installPlacer(backend) {
  const memory = backend.wasm.memory;
  const placed = new WeakSet();
  const checked = backend.buffer.bind(backend);
  backend.buffer = (s, op, name, dtype) => (placed.has(s) ? s : checked(s, op, name, dtype));
  const view = (p) => new (p.dtype === 'f32' ? Float32Array : p.dtype === 'i32' ? Int32Array : Uint8Array)(memory.buffer, p.ptr, p.length);
  return {
    place(dtype, data) {
      const bytes = data.length * (dtype === 'u8' ? 1 : 4);
      memory.grow(Math.max(1, Math.ceil(bytes / 65536)));
      const p = { ptr: memory.buffer.byteLength - bytes, length: data.length, dtype };
      view(p).set(data);
      placed.add(p);
      return p;
    },
    isPlaced: (s) => placed.has(s),
    read: (s) => view(s).slice(),
  };
}

/** Index of the first element whose bits differ, or -1. */
function firstDifference(a, b) {
  const [x, y] = [new Uint8Array(a.buffer, a.byteOffset, a.byteLength), new Uint8Array(b.buffer, b.byteOffset, b.byteLength)];
  if (x.length !== y.length) return 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return Math.floor(i / a.BYTES_PER_ELEMENT);
  return -1;
}

/** A seeded generator of numbers in [0, 1): the library's own. */
function makeRng(seed) {
  const rng = new lib.nn.Rng(seed);
  return () => rng.next();
}

const int = (rng, lo, hi) => lo + Math.floor(rng() * (hi - lo + 1));
const pick = (rng, list) => list[Math.floor(rng() * list.length)];

// ---- engine check ---------------------------------------------------------------------------

// Memory: [0] job number, [4] address to fill, [8] job done, [12] pages the publisher saw.
// worker(rounds, refresh) waits for each job by spinning, then fills 64 KiB at the address.
const ENGINE_CHECK_WAT = `(module
  (import "env" "memory" (memory 1 65536 shared))
  (func (export "worker") (param $rounds i32) (param $refresh i32)
    (local $job i32)
    (loop $next
      (local.set $job (i32.add (local.get $job) (i32.const 1)))
      (loop $wait
        (br_if $wait (i32.ne (i32.atomic.load (i32.const 0)) (local.get $job))))
      (if (i32.and (local.get $refresh) (i32.lt_u (memory.size) (i32.atomic.load (i32.const 12))))
        (then (drop (memory.grow (i32.const 0)))))
      (memory.fill (i32.load (i32.const 4)) (i32.const 7) (i32.const 65536))
      (i32.atomic.store (i32.const 8) (local.get $job))
      (br_if $next (i32.lt_u (local.get $job) (local.get $rounds))))))`;

async function engineCheck() {
  const { default: binaryen } = await import('binaryen');
  const assembled = binaryen.parseText(ENGINE_CHECK_WAT);
  assembled.setFeatures(binaryen.Features.Threads | binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt);
  const module = new WebAssembly.Module(assembled.emitBinary());
  assembled.dispose();
  const { Worker } = await import('node:worker_threads');
  const rounds = 200;
  const run = async (refresh) => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
    const worker = new Worker(`const { parentPort } = require('node:worker_threads');
      parentPort.once('message', ({ module, memory, rounds, refresh }) => {
        const { worker } = new WebAssembly.Instance(module, { env: { memory } }).exports;
        try { worker(rounds, refresh); parentPort.postMessage('done'); } catch (e) { parentPort.postMessage(String(e.message)); }
      });`, { eval: true });
    const outcome = new Promise((resolve) => worker.once('message', resolve));
    worker.postMessage({ module, memory, rounds, refresh: refresh ? 1 : 0 });
    await new Promise((resolve) => setTimeout(resolve, 100)); // let it start spinning
    for (let job = 1; job <= rounds; job++) {
      const pages = memory.grow(1) + 1;
      const words = new Int32Array(memory.buffer);
      words[1] = (pages - 1) * 65536;
      Atomics.store(words, 3, pages);
      Atomics.store(words, 0, job);
      const start = Date.now();
      while (Atomics.load(words, 2) !== job) {
        if (Date.now() - start > 1000) {
          const message = await outcome;
          await worker.terminate();
          return `trapped at job ${job} of ${rounds}: ${message}`;
        }
      }
    }
    const message = await outcome;
    await worker.terminate();
    return message === 'done' ? `${rounds} jobs, no trap` : message;
  };
  const stale = await run(false);
  const refreshed = await run(true);
  console.log(`${process.version} (V8 ${process.versions.v8}), a worker filling pages grown by another thread just before:`);
  console.log(`  right after spinning:                        ${stale}`);
  console.log(`  after memory.grow(0) when memory.size lags:  ${refreshed}`);
  process.exitCode = refreshed.includes('no trap') ? 0 : 1;
}

// Last, so that every const above is initialised.
if (args.includes('--engine-check')) {
  await engineCheck();
} else if (args.includes('--child')) {
  await child({
    module: opt('modules', 'threads').split(',')[0],
    threads: Number(opt('threads', '3').split(',')[0]),
    seconds: Number(opt('seconds', 60)),
    seed: Number(opt('seed', 1)),
    memoryMiB: Number(opt('memory-mib', 1024)),
  });
} else {
  await parent();
}
