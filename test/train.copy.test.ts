// The Annotated Transformer's copy task trained with the paper's recipe (Adam 0.9/0.98/1e-9,
// Noam schedule, label smoothing 0.1, dropout 0.1): greedy decoding must copy at least 99% of
// held-out sequences exactly. Measured: 99.5-100% over seeds 1, 2, 5, 1234 at 1600 steps,
// 100% (seeds 2, 1234) at 2000, and still 100% (seed 1234, loss 0.58 at step 1900 instead of
// 0.54) with dropout on the attention weights too; without dropout the result swung with
// rounding (95-100% at 1000 steps), hence the margin.
import { expect, it } from 'vitest';
import * as generate from '../ts/generate/index.js';
import * as nn from '../ts/nn/index.js';
import * as optim from '../ts/optim/index.js';
import { seq2seqBatch, seq2seqLoss, symbolBatch, symbolTask, Trainer } from '../ts/train/index.js';
import { dispose } from '../ts/tensor/memory.js';
import { getBackend } from './helpers/backends.js';

it('copy task reaches >= 99% exact match under greedy decoding [native]', async () => {
  const backend = await getBackend('native');
  const task = symbolTask(10);
  const length = 10;
  const rng = new nn.Rng(1234);
  const model = new nn.Transformer({
    srcVocab: task.vocab, tgtVocab: task.vocab, dModel: 64, nHeads: 4, numEncoderLayers: 2, numDecoderLayers: 2, dFF: 128,
    dropout: 0.1, padId: task.padId, maxLen: length + 2,
  }, { backend, rng });
  const optimizer = new optim.Adam(model.parameters(), { betas: [0.9, 0.98], eps: 1e-9 });
  const trainer = new Trainer({ model, optimizer, loss: seq2seqLoss({ padId: task.padId, labelSmoothing: 0.1 }), schedule: optim.noam(64, 200, 1), clipNorm: 1 });
  const started = performance.now();
  let steps = 0;
  for (; steps < 2000; steps++) {
    const pairs = symbolBatch(task, rng, 32, length);
    const batch = seq2seqBatch(pairs.src, pairs.tgt, { padId: task.padId, backend });
    const m = trainer.trainStep(batch);
    dispose(batch);
    if (steps % 100 === 0) console.log(`step ${steps} loss ${m.loss.toFixed(4)} lr ${m.lr.toExponential(2)} ${((performance.now() - started) / 1000).toFixed(1)}s`);
  }
  const test = symbolBatch(task, new nn.Rng(99), 200, length);
  const out = generate.greedy(model, test.src, { maxTokens: length + 1, bosId: task.bosId, eosId: task.eosId });
  const exact = out.filter((h, i) => h.tokens.join(',') === [...test.src[i]!, task.eosId].join(',')).length / out.length;
  console.log(`copy task: ${steps} steps, ${((performance.now() - started) / 1000).toFixed(1)} s, exact match ${(exact * 100).toFixed(1)}%`);
  expect(exact).toBeGreaterThanOrEqual(0.99);
}, 300_000);
