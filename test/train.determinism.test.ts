// Training is reproducible: the same seed on the same backend gives the same loss curve to
// the bit, whatever the thread count (kernels split work over independent outputs), and
// gradient accumulation over two halves equals one step on the whole batch.
import { expect, it } from 'vitest';
import type { Backend } from '../ts/backend/backend.js';
import * as nn from '../ts/nn/index.js';
import * as optim from '../ts/optim/index.js';
import { seq2seqBatch, seq2seqLoss, symbolBatch, symbolTask, Trainer, type Seq2SeqBatch } from '../ts/train/index.js';
import { dispose } from '../ts/tensor/memory.js';
import { describeEachBackend } from './helpers/backends.js';

const task = symbolTask(6);

function run(backend: Backend, seed: number, steps: number, accumulate: boolean): number[] {
  const rng = new nn.Rng(seed);
  const model = new nn.Transformer({ srcVocab: task.vocab, tgtVocab: task.vocab, dModel: 16, nHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFF: 32, dropout: 0.1, padId: 0, maxLen: 8 }, { backend, rng });
  const trainer = new Trainer<Seq2SeqBatch>({ model, optimizer: new optim.AdamW(model, { lr: 1e-3 }), loss: seq2seqLoss({ padId: 0, labelSmoothing: 0.1 }), clipNorm: 1 });
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const pairs = symbolBatch(task, rng, 8, 5);
    if (accumulate) {
      const halves = [0, 4].map((o) => seq2seqBatch(pairs.src.slice(o, o + 4), pairs.tgt.slice(o, o + 4), { padId: 0, backend }));
      losses.push(trainer.trainStep(halves).loss);
      dispose(halves);
    } else {
      const batch = seq2seqBatch(pairs.src, pairs.tgt, { padId: 0, backend });
      losses.push(trainer.trainStep(batch).loss);
      dispose(batch);
    }
  }
  model.dispose();
  return losses;
}

describeEachBackend('training determinism', (ctx) => {
  it('same seed, same loss curve to the bit; another seed differs', () => {
    const a = run(ctx.backend, 3, 6, false);
    const b = run(ctx.backend, 3, 6, false);
    expect(b).toEqual(a);
    expect(run(ctx.backend, 4, 6, false)).not.toEqual(a);
  });

  it('thread count does not change the result', () => {
    if (!ctx.backend.capabilities.has('threads')) {
      expect(ctx.backend.getThreads()).toBe(1);
      return;
    }
    const before = ctx.backend.getThreads();
    // This model's calls are all below the size where threads pay, so they would stay on
    // the calling thread: split every call, so that the split is what is compared.
    const tuning = ctx.backend as Partial<{ getMinParallelFlops(): number; setMinParallelFlops(f: number): void }>;
    const threshold = tuning.getMinParallelFlops?.();
    try {
      ctx.backend.setThreads(1);
      const one = run(ctx.backend, 5, 4, false);
      ctx.backend.setThreads(2);
      tuning.setMinParallelFlops?.(0);
      expect(run(ctx.backend, 5, 4, false)).toEqual(one);
    } finally {
      ctx.backend.setThreads(before);
      if (threshold !== undefined) tuning.setMinParallelFlops?.(threshold);
    }
  });

  it('gradient accumulation over two halves matches one step on the whole batch', () => {
    // Equal-length targets (no padding), so the mean of the halves' means is the batch mean.
    const whole = run(ctx.backend, 8, 3, false);
    const halves = run(ctx.backend, 8, 3, true);
    for (let i = 0; i < whole.length; i++) expect(Math.abs(halves[i]! - whole[i]!)).toBeLessThan(1e-5 * Math.max(1, whole[i]!));
  });
});
