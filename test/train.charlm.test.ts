// A character-level decoder-only LM trained on the text the project ships
// (data/ferrous_notes.txt, written for it): its validation loss must beat the unigram
// baseline, and it must generate text.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import * as generate from '../ts/generate/index.js';
import * as nn from '../ts/nn/index.js';
import * as optim from '../ts/optim/index.js';
import { CharTokenizer } from '../ts/tokenizers/index.js';
import { lmBatch, lmLoss, Trainer } from '../ts/train/index.js';
import { dispose } from '../ts/tensor/memory.js';
import { getBackend } from './helpers/backends.js';

const text = readFileSync(new URL('../data/ferrous_notes.txt', import.meta.url), 'utf8');

it('char-level LM beats the unigram baseline on held-out text and generates [native]', async () => {
  const backend = await getBackend('native');
  const tokenizer = CharTokenizer.train(text);
  const ids = tokenizer.encode(text);
  const split = Math.floor(ids.length * 0.9);
  const trainIds = ids.slice(0, split);
  const valIds = ids.slice(split);

  // Unigram baseline: cross-entropy of the validation characters under the training
  // characters' frequencies (add-one smoothed so unseen characters stay finite).
  const counts = new Float64Array(tokenizer.vocabSize).fill(1);
  for (const t of trainIds) counts[t]! += 1;
  const total = counts.reduce((a, b) => a + b, 0);
  const unigram = -valIds.slice(1).reduce((s, t) => s + Math.log(counts[t]! / total), 0) / (valIds.length - 1);

  const context = 48;
  const rng = new nn.Rng(7);
  const model = new nn.DecoderLM({ vocab: tokenizer.vocabSize, dModel: 64, nHeads: 4, numLayers: 2, dFF: 128, dropout: 0.1, maxLen: context }, { backend, rng });
  const optimizer = new optim.AdamW(optim.decayGroups(model, 0.01), { betas: [0.9, 0.98], eps: 1e-9 });
  const steps = 300;
  const trainer = new Trainer({ model, optimizer, loss: lmLoss(), schedule: optim.warmupDecay(3e-3, 30, steps), clipNorm: 1 });
  const windows = (source: number[], count: number, r: nn.Rng) =>
    Array.from({ length: count }, () => {
      const start = Math.floor(r.next() * (source.length - context - 1));
      return source.slice(start, start + context + 1);
    });
  for (let s = 0; s < steps; s++) {
    const batch = lmBatch(windows(trainIds, 16, rng), { backend });
    trainer.trainStep(batch);
    dispose(batch);
  }
  const valBatches = [0, 1, 2, 3].map(() => lmBatch(windows(valIds, 16, new nn.Rng(11)), { backend }));
  const { loss: valLoss } = trainer.evaluate(valBatches);
  dispose(valBatches);
  console.log(`char LM: validation loss ${valLoss.toFixed(3)} nats/char vs unigram ${unigram.toFixed(3)}`);
  expect(valLoss).toBeLessThan(unigram);

  const prompt = tokenizer.encode('The iron ');
  const [sampled] = generate.sample(model, [prompt], { maxTokens: context - prompt.length, temperature: 0.8, topK: 10, seed: 1 });
  const generated = tokenizer.decode(sampled!.tokens);
  console.log(`char LM sample: ${JSON.stringify('The iron ' + generated)}`);
  expect(sampled!.tokens).toHaveLength(context - prompt.length);
  expect(generated.length).toBeGreaterThan(20);
}, 300_000);
