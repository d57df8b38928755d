// ferroformer on one backend and thread count: --backend=native|wasm|wasm-relaxed|wasm-threads|wasm-threads-relaxed|reference
// (wasm-relaxed: build/ferroformer-relaxed.wasm, wasm-threads-relaxed: build/ferroformer-threads-relaxed.wasm;
// Node 20 needs --experimental-wasm-relaxed-simd for both)
// --threads=N [--quick] [--only=W1,W2,...]. W1-W3 call the backend's kernels on storages
// allocated once (what the ops layer runs underneath); W4 is one Trainer step of nn.DecoderLM
// with optim.Adam, W5 and W6 one training iteration of examples/nanogpt's GPT from fixed
// initial weights (all three made in lib/common.mjs, which compiles examples/nanogpt/build/
// when missing or older than its source). W6 runs in a process of its own (this file again
// with --only=W6) so that its peak resident memory is its own. --serve=W4|W5|W6 keeps one of
// them ready for the step-by-step comparison with PyTorch (bench/lib/duel.mjs).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadBackend } from '../../dist/backend/init_node.js';
import { loadWasmBackend } from '../../dist/backend/wasm.js';
import { emit, inputs, measure, nanogptTraining, parseArgs, peakResidentMiB, rateRecord, time, W1_QUICK, W1_SHAPES, W2, W3, W4_PARAMETERS, w4Training, X_SIZES } from '../lib/common.mjs';
import { serveSteps } from '../lib/duel.mjs';

const args = parseArgs();
const which = args.backend;
const threads = args.threads;
const want = (w) => !args.only || args.only.has(w);

const backend =
  which === 'wasm' ? await loadWasmBackend({ threads: false, relaxed: false })
    : which === 'wasm-relaxed' ? await loadWasmBackend({ threads: false, relaxed: true })
    : which === 'wasm-threads' ? await loadWasmBackend({ threads: true, relaxed: false })
    : which === 'wasm-threads-relaxed' ? await loadWasmBackend({ threads: true, relaxed: true })
      : await loadBackend(which);
if (which.startsWith('wasm-threads') && !backend.capabilities.has('threads')) throw new Error('threaded wasm module not available');
backend.setThreads(threads);
if (threads > 1) await new Promise((r) => setTimeout(r, 300)); // let workers start
// --serve=W4|W5|W6: one training workload kept ready for bench/lib/duel.mjs (steps on request).
if (args.serve) {
  const { params, step } = args.serve === 'W4' ? { params: W4_PARAMETERS, ...await w4Training(backend) } : await nanogptTraining(args.serve, backend);
  const losses = [step(), step()];
  await serveSteps(step, { losses, params });
  process.exit(0);
}
const implementation = 'ferroformer';
const label = which;
const isRef = which === 'reference';
const base = { implementation, backend: label, threads, quick: args.quick };
const f32 = (a) => (a instanceof Float32Array ? a : Float32Array.from(a));

// W1 -----------------------------------------------------------------------------------------
if (want('W1')) {
  for (const shape of args.quick ? W1_QUICK : W1_SHAPES) {
    const [m, k, n] = shape;
    // The float64 reference takes seconds per call beyond 512^3: baseline rows stop there.
    if (isRef && m * k * n > 512 ** 3) continue;
    const data = inputs.W1(shape);
    const a = backend.fromArray('f32', data.a);
    const b = backend.fromArray('f32', data.b);
    const c = backend.alloc('f32', m * n);
    await measure({
      ...base, workload: 'W1', shape, data, slow: isRef,
      run: () => backend.matmulForward(c, a, b, 1, m, k, n, false, false, false),
      output: () => f32(backend.read(c)),
    });
    for (const s of [a, b, c]) backend.free(s);
  }
}

// W2 -----------------------------------------------------------------------------------------
if (want('W2')) {
  const { b, h, t, d } = W2;
  const data = inputs.W2();
  const q = backend.fromArray('f32', data.q);
  const k = backend.fromArray('f32', data.k);
  const v = backend.fromArray('f32', data.v);
  const out = backend.alloc('f32', b * h * t * d);
  const lse = backend.alloc('f32', b * h * t);
  await measure({
    ...base, workload: 'W2', shape: null, data, slow: isRef,
    run: () => backend.attentionForward(out, lse, q, k, v, null, b, h, t, t, d, true, 1 / Math.sqrt(d), 0, 0, 0),
    output: () => f32(backend.read(out)),
  });
  for (const s of [q, k, v, out, lse]) backend.free(s);
}

// W3 -----------------------------------------------------------------------------------------
if (want('W3')) {
  const { rows, dim, eps } = W3;
  const data = inputs.W3();
  const x = backend.fromArray('f32', data.x);
  const gamma = backend.fromArray('f32', data.gamma);
  const beta = backend.fromArray('f32', data.beta);
  const y = backend.alloc('f32', rows * dim);
  const mean = backend.alloc('f32', rows);
  const rstd = backend.alloc('f32', rows);
  await measure({
    ...base, workload: 'W3', shape: null, data,
    run: () => backend.layernormForward(y, mean, rstd, x, gamma, beta, rows, dim, eps),
    output: () => f32(backend.read(y)),
  });
  for (const s of [x, gamma, beta, y, mean, rstd]) backend.free(s);
}

// W4 -----------------------------------------------------------------------------------------
if (want('W4')) {
  try {
    const { trainer, step } = await w4Training(backend);
    const losses = [step()];
    const timing = await time(() => { losses.push(step()); }, { quick: args.quick, slow: isRef, verySlow: isRef });
    const [firstLoss, lastLoss] = [losses[0], losses.at(-1)];
    emit({ ...rateRecord({ ...base, workload: 'W4', shape: null, timing, checkError: null }), firstLoss, lastLoss, steps: trainer.step });
  } catch (e) {
    emit({ kind: 'failure', workload: 'W4', implementation, backend: label, threads, reason: String(e?.stack ?? e).split('\n').slice(0, 3).join(' | ') });
  }
}
// W5, W6: nanoGPT ------------------------------------------------------------------------------
// native (1 and 2 threads) and the simd128 wasm module (W5 only: W6 takes seconds per
// iteration there).
const nanogptBackends = { W5: ['native', 'wasm', 'wasm-relaxed', 'wasm-threads-relaxed'], W6: ['native'] };
if (want('W5') && nanogptBackends.W5.includes(which)) await nanogpt('W5');
if (want('W6') && nanogptBackends.W6.includes(which)) {
  if (args.only?.size === 1) await nanogpt('W6');
  else {
    const argv = [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2).filter((a) => !a.startsWith('--only=')), '--only=W6'];
    const child = spawnSync(process.execPath, argv, { stdio: ['ignore', 'inherit', 'inherit'] });
    if (child.status !== 0) emit({ kind: 'failure', workload: 'W6', implementation, backend: label, threads, reason: `W6 process exited ${child.status ?? child.signal}` });
  }
}

/** One nanoGPT training iteration as train.py runs it, timed; the first two iterations'
 * losses go into the record for the check against PyTorch in bench/report.mjs. */
async function nanogpt(workload) {
  try {
    const { params, baseRssMiB, step } = await nanogptTraining(workload, backend);
    const losses = [step(), step()];
    const timing = await time(() => { losses.push(step()); }, workload === 'W6' ? { iterations: args.quick ? 2 : 5 } : { quick: args.quick });
    const peak = peakResidentMiB();
    emit({
      ...rateRecord({ ...base, workload, shape: null, timing, checkError: null }),
      firstLoss: losses[0], secondLoss: losses[1], lastLoss: losses.at(-1), steps: losses.length, losses: losses.slice(0, 8), params,
      peakRssMiB: peak.mib, baseRssMiB, memoryMethod: peak.method,
    });
  } catch (e) {
    emit({ kind: 'failure', workload, implementation, backend: label, threads, reason: String(e?.stack ?? e).split('\n').slice(0, 3).join(' | ') });
  }
}

// X: the thread crossover (2-thread processes of the threaded backends only) --------------------
// With 2 threads set, a threshold above any call's work runs everything on the calling thread:
// the same code path as 1 thread, so the three variants alternate per size with no pool restart.
if (want('X') && threads === 2 && backend.setMinParallelFlops) {
  const threshold = backend.getMinParallelFlops();
  const variants = [['1', Number.MAX_SAFE_INTEGER], ['always', 0], ['default', threshold]];
  for (const shape of X_SIZES) {
    const [m, k, n] = shape;
    const data = inputs.X(shape);
    const a = backend.fromArray('f32', data.a);
    const b = backend.fromArray('f32', data.b);
    const c = backend.alloc('f32', m * n);
    for (const [split, minFlops] of variants) {
      backend.setMinParallelFlops(minFlops);
      const before = backend.workerTasks();
      await measure({
        ...base, threads: split === '1' ? 1 : 2, workload: 'X', shape, data,
        run: () => backend.matmulForward(c, a, b, 1, m, k, n, false, false, false),
        output: () => f32(backend.read(c)),
        extra: () => ({ split, workerTasks: backend.workerTasks() - before }),
      });
    }
    for (const s of [a, b, c]) backend.free(s);
  }
  backend.setMinParallelFlops(threshold);
  emit({ kind: 'info', backend: label, minParallelFlops: threshold });
}
if (backend.workerTasks) emit({ kind: 'info', backend: label, threads, workerTasks: backend.workerTasks() });
process.exit(0);
