// Two models training at once in two worker_threads do not interfere: each worker's loss
// curve equals, to the bit, the curve the same model gives alone on the main thread. On
// native both workers share the one addon (and its thread pool); on wasm each has its own
// instance.
import { Worker } from 'node:worker_threads';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import * as nn from '../ts/nn/index.js';
import * as optim from '../ts/optim/index.js';
import { dispose } from '../ts/tensor/memory.js';
import * as train from '../ts/train/index.js';
import { getBackend } from './helpers/backends.js';
import { removeTranspiledLibrary, transpiledLibrary } from './helpers/transpile.js';

const STEPS = 25;

/** The whole run, free of imports: its source is also what each worker executes. */
function trainCurve(lib: { nn: typeof nn; optim: typeof optim; train: typeof train; dispose: typeof dispose }, backend: never, seed: number, steps: number): number[] {
  const model = new lib.nn.DecoderLM({ vocab: 23, dModel: 32, nHeads: 4, numLayers: 2, dFF: 64, dropout: 0.1, maxLen: 32 }, { backend, rng: new lib.nn.Rng(seed) });
  const optimizer = new lib.optim.Adam(model.parameters(), { lr: 3e-3 });
  const trainer = new lib.train.Trainer({ model, optimizer, loss: lib.train.lmLoss(), clipNorm: 1 });
  const rng = new lib.nn.Rng(seed + 1000);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const ids = rng.uniform(8 * 21, 0, 23);
    const rows = Array.from({ length: 8 }, (_, r) => Array.from(ids.subarray(r * 21, r * 21 + 21), (x: number) => Math.min(22, Math.floor(x))));
    const batch = lib.train.lmBatch(rows, { backend });
    losses.push(trainer.trainStep(batch).loss);
    lib.dispose(batch);
  }
  model.dispose();
  optimizer.dispose();
  return losses;
}

afterAll(() => removeTranspiledLibrary());

function workerScript(libDir: string): string {
  const path = join(libDir, 'train_worker.mjs');
  writeFileSync(path, `
import { parentPort, workerData } from 'node:worker_threads';
const lib = await import(${JSON.stringify(`${libDir}/ts/index.js`)});
const trainCurve = ${trainCurve.toString()};
const backend = await lib.loadBackend(workerData.backend);
// Barrier: both workers start training at the same moment, so the runs truly overlap.
const gate = new Int32Array(workerData.gate);
Atomics.add(gate, 0, 1);
Atomics.notify(gate, 0);
while (Atomics.load(gate, 0) < 2) Atomics.wait(gate, 0, Atomics.load(gate, 0), 50);
const started = Date.now();
const losses = trainCurve(lib, backend, workerData.seed, workerData.steps);
parentPort.postMessage({ losses, started, ended: Date.now() });
`);
  return path;
}

interface WorkerResult {
  losses: number[];
  started: number;
  ended: number;
}

function inWorker(script: string, backend: string, seed: number, gate: SharedArrayBuffer): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(script, { workerData: { backend, seed, steps: STEPS, gate } });
    worker.once('message', (result: WorkerResult) => {
      resolve(result);
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0 && code !== 1) reject(new Error(`worker exited with ${code}`));
    });
  });
}

for (const name of ['native', 'wasm'] as const) {
  it(`${name}: two models training at once in two worker threads each reproduce their single-thread loss curve`, async () => {
    const backend = await getBackend(name);
    const lib = { nn, optim, train, dispose };
    const alone = [11, 12].map((seed) => trainCurve(lib, backend as never, seed, STEPS));
    expect(alone[0]).not.toEqual(alone[1]);
    const script = workerScript(transpiledLibrary());
    const gate = new SharedArrayBuffer(4);
    const results = await Promise.all([inWorker(script, name, 11, gate), inWorker(script, name, 12, gate)]);
    // The two runs overlapped in time.
    expect(Math.max(results[0]!.started, results[1]!.started)).toBeLessThan(Math.min(results[0]!.ended, results[1]!.ended));
    const together = results.map((r) => r.losses);
    expect(together[0]).toEqual(alone[0]);
    expect(together[1]).toEqual(alone[1]);
    expect(together.flat().every((l, i) => Object.is(l, alone.flat()[i]))).toBe(true);
  }, 120_000);
}
