#!/usr/bin/env node
// `npm start` for now: trains the encoder-decoder on the copy task with the paper's recipe
// (Adam 0.9/0.98/1e-9, Noam schedule, label smoothing 0.1) on the fastest backend, then
// prints held-out inputs with greedy and beam-search outputs. The full CLI replaces this.
import { generate, init, nn, optim, train, dispose } from '../index.js';

const STEPS = Number(process.env['FERRO_DEMO_STEPS'] ?? 1000);

async function main(): Promise<void> {
  const backend = await init({ backend: 'auto' });
  console.log(`ferroformer demo: copy task on the ${backend.name} backend (${backend.getThreads()} thread(s))`);
  const task = train.symbolTask(10);
  const length = 10;
  const rng = new nn.Rng(1234);
  const model = new nn.Transformer({
    srcVocab: task.vocab, tgtVocab: task.vocab, dModel: 64, nHeads: 4, numEncoderLayers: 2, numDecoderLayers: 2, dFF: 128,
    dropout: 0, padId: task.padId, maxLen: length + 2,
  }, { rng });
  const optimizer = new optim.Adam(model.parameters(), { betas: [0.9, 0.98], eps: 1e-9 });
  const trainer = new train.Trainer({
    model, optimizer, schedule: optim.noam(64, 200, 1), clipNorm: 1,
    loss: train.seq2seqLoss({ padId: task.padId, labelSmoothing: 0.1 }),
    tokens: (b: train.Seq2SeqBatch) => b.tokens,
  });
  for (let step = 1; step <= STEPS; step++) {
    const pairs = train.symbolBatch(task, rng, 32, length);
    const batch = train.seq2seqBatch(pairs.src, pairs.tgt, { padId: task.padId });
    const m = trainer.trainStep(batch);
    dispose(batch);
    if (step % 100 === 0 || step === 1) {
      console.log(`step ${String(step).padStart(5)}  loss ${m.loss.toFixed(4)}  lr ${m.lr.toExponential(2)}  grad norm ${m.gradNorm.toFixed(3)}  ${Math.round(m.tokensPerSecond)} tokens/s`);
    }
  }
  const test = train.symbolBatch(task, new nn.Rng(99), 200, length);
  const greedy = generate.greedy(model, test.src, { maxTokens: length + 1, bosId: task.bosId, eosId: task.eosId });
  const exact = greedy.filter((h, i) => h.tokens.join() === [...test.src[i]!, task.eosId].join()).length / greedy.length;
  console.log(`held-out exact match (greedy): ${(exact * 100).toFixed(1)}% of ${greedy.length}`);
  const beams = generate.beamSearch(model, test.src.slice(0, 3), { maxTokens: length + 1, bosId: task.bosId, eosId: task.eosId, beamSize: 4, lengthPenalty: 0.6 });
  for (let i = 0; i < 3; i++) {
    const show = (ids: number[]) => ids.filter((t) => t !== task.eosId).join(' ');
    console.log(`input  ${show(test.src[i]!)}\ngreedy ${show(greedy[i]!.tokens)}\nbeam   ${show(beams[i]!.tokens)}\n`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
