// Threads never make the browser demo slower: below a measured amount of work per call
// (parallel::for_work in the kernels crate, the same decision for native and wasm), kernels
// run on the calling thread. Counted, not timed: with 2 threads, a training step, held-out
// evaluation and greedy decoding of the demo's model hand no task to another thread, while a
// large matmul does, and so does the same demo step once the threshold is lowered to 0.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Backend } from '../ts/backend/backend.js';
import { loadWasmBackend } from '../ts/backend/wasm.js';
import * as generate from '../ts/generate/index.js';
import * as nn from '../ts/nn/index.js';
import * as optim from '../ts/optim/index.js';
import { dispose } from '../ts/tensor/memory.js';
import * as train from '../ts/train/index.js';
import { getBackend } from './helpers/backends.js';

/** The demo's defaults, read from web/main.ts (`int('dModel', 64)`), so this follows the demo. */
function demoConfig(): Record<string, number> {
  const source = readFileSync(new URL('../web/main.ts', import.meta.url), 'utf8');
  const config: Record<string, number> = {};
  for (const [, key, value] of source.matchAll(/int\('(\w+)', (\d+)\)/g)) config[key!] = Number(value);
  return config;
}

interface Threaded extends Backend {
  workerTasks(): number;
  getMinParallelFlops(): number;
  setMinParallelFlops(flops: number): void;
  threadsReady?(): Promise<void>;
}

/** What web/worker.ts does per step and per evaluation, on `backend`. */
function demoRun(backend: Backend, steps: number): void {
  const c = demoConfig();
  const task = train.symbolTask(10);
  const rng = new nn.Rng(c['seed']!);
  const model = new nn.Transformer({
    srcVocab: task.vocab, tgtVocab: task.vocab, dModel: c['dModel']!, nHeads: c['heads']!,
    numEncoderLayers: c['layers']!, numDecoderLayers: c['layers']!, dFF: c['dFF']!, dropout: 0,
    padId: task.padId, maxLen: c['length']! + 2,
  }, { backend, rng });
  const optimizer = new optim.Adam(model.parameters(), { betas: [0.9, 0.98], eps: 1e-9 });
  const trainer = new train.Trainer({
    model, optimizer, schedule: optim.noam(c['dModel']!, c['warmup']!, 0.3), clipNorm: 1,
    loss: train.seq2seqLoss({ padId: task.padId, labelSmoothing: 0.1 }),
    tokens: (b: train.Seq2SeqBatch) => b.tokens,
  });
  for (let step = 0; step < steps; step++) {
    const pairs = train.symbolBatch(task, rng, c['batch']!, c['length']!, train.reverse);
    const batch = train.seq2seqBatch(pairs.src, pairs.tgt, { padId: task.padId, backend });
    expect(Number.isFinite(trainer.trainStep(batch).loss)).toBe(true);
    dispose(batch);
  }
  const heldOut = train.symbolBatch(task, new nn.Rng(1), 64, c['length']!, train.reverse);
  const batch = train.seq2seqBatch(heldOut.src, heldOut.tgt, { padId: task.padId, backend });
  trainer.evaluate([batch]);
  dispose(batch);
  model.eval();
  generate.greedy(model, heldOut.src, { maxTokens: c['length']! + 1, bosId: task.bosId, eosId: task.eosId });
  model.dispose();
  optimizer.dispose();
}

/** Repeats `f` until workers took part (a wasm worker joins asynchronously); the tasks they ran. */
async function tasksOffThread(backend: Threaded, f: () => void): Promise<number> {
  const before = backend.workerTasks();
  for (let i = 0; i < 200; i++) {
    f();
    if (backend.workerTasks() > before) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return backend.workerTasks() - before;
}

const threadedWasmBuilt = existsSync(new URL('../build/ferroformer-threads.wasm', import.meta.url));
const cases: [string, () => Promise<Threaded>][] = [
  ['native', async () => (await getBackend('native')) as Threaded],
  ['wasm, threaded module', async () => (await loadWasmBackend({ threads: true })) as unknown as Threaded],
];

describe.each(cases)('threads at the browser demo size [%s]', (name, load) => {
  it('2 threads: the demo stays on the calling thread, a large matmul does not', async (context) => {
    if (name.startsWith('wasm') && !threadedWasmBuilt) context.skip('build/ferroformer-threads.wasm was not built');
    const backend = await load();
    const [threads, threshold] = [backend.getThreads(), backend.getMinParallelFlops()];
    try {
      backend.setThreads(2);
      await backend.threadsReady?.();
      const large = 256;
      const a = backend.fromArray('f32', new Float32Array(large * large).fill(0.5));
      const c = backend.alloc('f32', large * large);
      const matmul = (): void => backend.matmulForward(c, a, a, 1, large, large, large, false, false, false);
      expect(await tasksOffThread(backend, matmul)).toBeGreaterThan(0);
      expect((backend.read(c) as Float32Array)[0]).toBe(0.25 * large);
      backend.free(a);
      backend.free(c);

      // The wasm default keeps every demo call (the largest 10.5 MFLOP) on the calling
      // thread. Natively, where the workers spin between calls and a hand-off costs a few µs,
      // the default is lower and the demo's larger calls split; at the wasm default they stay.
      if (!name.startsWith('wasm')) {
        expect(threshold).toBeLessThan(10_500_000);
        backend.setMinParallelFlops(16_000_000);
      }
      const before = backend.workerTasks();
      demoRun(backend, 3);
      expect(backend.workerTasks() - before).toBe(0);

      // The count does see the demo's calls when they are split.
      backend.setMinParallelFlops(0);
      expect(await tasksOffThread(backend, () => demoRun(backend, 1))).toBeGreaterThan(0);
    } finally {
      backend.setMinParallelFlops(threshold);
      backend.setThreads(threads);
    }
  });

  it('the threshold takes a whole number of flops, 0 or more, and says so otherwise', async (context) => {
    if (name.startsWith('wasm') && !threadedWasmBuilt) context.skip('build/ferroformer-threads.wasm was not built');
    const backend = await load();
    const threshold = backend.getMinParallelFlops();
    for (const bad of [-1, 1.5, Number.NaN, Infinity]) {
      expect(() => backend.setMinParallelFlops(bad)).toThrow(/setMinParallelFlops: flops must be an integer >= 0, got/);
      expect(() => backend.setMinParallelFlops(bad)).toThrow(RangeError);
    }
    expect(backend.getMinParallelFlops()).toBe(threshold);
    backend.setMinParallelFlops(12_345);
    expect(backend.getMinParallelFlops()).toBe(12_345);
    backend.setMinParallelFlops(threshold);
  });
});
