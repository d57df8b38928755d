// A run saved at step N and resumed into a fresh model, optimiser and Trainer continues with
// the same losses as the uninterrupted run, to the bit on the same backend, with dropout on
// (its RNG position is restored from the checkpoint) and a schedule and clipping. (On the
// float64 reference backend: up to the float32 rounding of the file.)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { Backend } from '../ts/backend/backend.js';
import * as nn from '../ts/nn/index.js';
import * as optim from '../ts/optim/index.js';
import { dispose } from '../ts/tensor/memory.js';
import { lmBatch, lmLoss, loadCheckpoint, saveCheckpoint, Trainer, type LMBatch } from '../ts/train/index.js';
import { describeEachBackend } from './helpers/backends.js';

const SAVE_AT = 4;
const TOTAL = 9;
const dir = mkdtempSync(join(tmpdir(), 'ferro-resume-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function makeRun(backend: Backend, seed: number) {
  const model = new nn.DecoderLM({ vocab: 17, dModel: 16, nHeads: 2, numLayers: 2, dFF: 32, dropout: 0.2, maxLen: 16 }, { backend, rng: new nn.Rng(seed) });
  const optimizer = new optim.AdamW(model.parameters(), { betas: [0.9, 0.98], eps: 1e-9 });
  const trainer = new Trainer<LMBatch>({ model, optimizer, loss: lmLoss({ labelSmoothing: 0.1 }), schedule: optim.noam(16, 3, 2), clipNorm: 0.5 });
  return { model, optimizer, trainer };
}

function batchFor(backend: Backend, step: number): LMBatch {
  const ids = new nn.Rng(500 + step).uniform(4 * 11, 0, 17);
  const rows = Array.from({ length: 4 }, (_, r) => Array.from(ids.subarray(r * 11, r * 11 + 11), (x) => Math.min(16, Math.floor(x))));
  return lmBatch(rows, { backend });
}

function trainSteps(run: ReturnType<typeof makeRun>, backend: Backend, from: number, to: number): number[] {
  const losses: number[] = [];
  for (let s = from; s <= to; s++) {
    const batch = batchFor(backend, s);
    losses.push(run.trainer.trainStep(batch).loss);
    dispose(batch);
  }
  return losses;
}

const weights = (m: nn.Module): number[][] => m.parameters().map((p) => Array.from(p.data()));

describeEachBackend('resume from a checkpoint', (ctx) => {
  it(`saved at step ${SAVE_AT} and resumed: steps ${SAVE_AT + 1}..${TOTAL} give the same losses and weights, to the bit`, async () => {
    const b = ctx.backend;
    const path = join(dir, `${ctx.name}.safetensors`);
    const straight = makeRun(b, 1);
    const first = trainSteps(straight, b, 1, SAVE_AT);
    await saveCheckpoint(path, { model: straight.model, optimizer: straight.optimizer, step: straight.trainer.step, extra: { data: 'batchFor' } });
    const rest = trainSteps(straight, b, SAVE_AT + 1, TOTAL);
    expect(first.concat(rest).every(Number.isFinite)).toBe(true);

    const resumed = makeRun(b, 2); // other initial weights and dropout seeds: all must come from the file
    const { step, extra } = await loadCheckpoint(path, { model: resumed.model, optimizer: resumed.optimizer });
    expect(step).toBe(SAVE_AT);
    expect(extra).toEqual({ data: 'batchFor' });
    resumed.trainer.step = step;
    const again = trainSteps(resumed, b, SAVE_AT + 1, TOTAL);
    if (ctx.name === 'reference') {
      // The float64 oracle: checkpoints hold float32 (as PyTorch's), so a resume is exact only
      // up to that rounding of weights and moments.
      again.forEach((l, i) => expect(Math.abs(l - rest[i]!)).toBeLessThan(1e-6));
    } else {
      expect(again.map((l, i) => Object.is(l, rest[i]))).toEqual(rest.map(() => true));
      expect(weights(resumed.model)).toEqual(weights(straight.model));
    }
    expect(resumed.trainer.history.map((h) => h.lr)).toEqual(straight.trainer.history.slice(SAVE_AT).map((h) => h.lr));
  });

  it('control: the same resume without the dropout RNG state gives different losses (the test can fail)', async () => {
    const b = ctx.backend;
    const path = join(dir, `${ctx.name}.control.safetensors`);
    const straight = makeRun(b, 1);
    trainSteps(straight, b, 1, SAVE_AT);
    await saveCheckpoint(path, { model: straight.model, optimizer: straight.optimizer, step: straight.trainer.step });
    const rest = trainSteps(straight, b, SAVE_AT + 1, SAVE_AT + 2);
    const resumed = makeRun(b, 2);
    const fresh = resumed.model.namedModules().filter(([, m]) => m instanceof nn.Dropout).map(([, m]) => (m as nn.Dropout).rngState);
    resumed.trainer.step = (await loadCheckpoint(path, { model: resumed.model, optimizer: resumed.optimizer })).step;
    resumed.model.namedModules().filter(([, m]) => m instanceof nn.Dropout).forEach(([, m], i) => ((m as nn.Dropout).rngState = fresh[i]!));
    expect(trainSteps(resumed, b, SAVE_AT + 1, SAVE_AT + 2)).not.toEqual(rest);
  });
});
