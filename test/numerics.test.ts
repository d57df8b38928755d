// A step whose loss or gradients are not finite is reported with the parameter where the
// non-finite gradient appeared, and, by configuration, skipped (weights and optimiser state
// bit-identical, and the run continues exactly as if the step had never been offered) or
// stopped with a NumericsError (nothing changed, the trainer usable afterwards).
import { expect, it } from 'vitest';
import type { Backend } from '../ts/backend/backend.js';
import * as nn from '../ts/nn/index.js';
import * as ops from '../ts/ops/index.js';
import * as optim from '../ts/optim/index.js';
import { NumericsError } from '../ts/tensor/errors.js';
import { dispose } from '../ts/tensor/memory.js';
import { tensor, type Tensor } from '../ts/tensor/tensor.js';
import { lmBatch, lmLoss, Trainer, type LMBatch } from '../ts/train/index.js';
import { describeEachBackend } from './helpers/backends.js';

/** Which parameter the poisoned loss blows up (not the first in order, so "the first
 * parameter with a gradient" would be the wrong answer). */
const POISON_INDEX = 5;

interface Run {
  model: nn.DecoderLM;
  optimizer: optim.Adam;
  trainer: Trainer<LMBatch>;
  poisonName: string;
  poison: { on: boolean };
}

function makeRun(backend: Backend, onNonFinite: 'throw' | 'skip'): Run {
  const model = new nn.DecoderLM({ vocab: 13, dModel: 16, nHeads: 2, numLayers: 1, dFF: 32, dropout: 0, maxLen: 16 }, { backend, rng: new nn.Rng(42) });
  const optimizer = new optim.Adam(model.parameters(), { lr: 3e-3 });
  const [poisonName, target] = model.namedParameters()[POISON_INDEX]!;
  const poison = { on: false };
  const base = lmLoss();
  const loss = (m: nn.Module, batch: LMBatch): Tensor => {
    const ce = base(m, batch);
    if (!poison.on) return ce;
    // ce + 1e300 * 1e300 * sum(target): infinite in float32 and float64; the gradient is
    // non-finite for `target` only.
    const ones = tensor(new Float32Array(target.size).fill(1), [target.size, 1], { backend });
    const sum = ops.reshape(ops.matmul(ops.reshape(target, [1, target.size]), ones), [1]);
    return ops.add(ce, ops.scale(ops.scale(sum, 1e300), 1e300));
  };
  const trainer = new Trainer({ model, optimizer, loss, clipNorm: 1, onNonFinite });
  return { model, optimizer, trainer, poisonName, poison };
}

function batchFor(backend: Backend, step: number): LMBatch {
  const rng = new nn.Rng(1000 + step);
  const ids = rng.uniform(36, 1, 13);
  const rows = Array.from({ length: 4 }, (_, r) => Array.from(ids.subarray(r * 9, r * 9 + 9), (x) => Math.min(12, Math.floor(x))));
  return lmBatch(rows, { backend });
}

function snapshot(run: Run): Uint8Array[] {
  const backend = run.model.backend;
  const params = run.model.parameters().map((p) => new Uint8Array(Float32Array.from(p.data()).buffer));
  const moments = run.optimizer.stateEntries().flatMap((e) => [e.m, e.v].map((s) => new Uint8Array(Float32Array.from(backend.read(s)).buffer)));
  const steps = new Uint8Array(Float64Array.from(run.optimizer.stateEntries().map((e) => e.step)).buffer);
  return [...params, ...moments, steps];
}

function step(run: Run, backend: Backend, i: number, poisoned = false) {
  run.poison.on = poisoned;
  const batch = batchFor(backend, i);
  try {
    return run.trainer.trainStep(batch);
  } finally {
    run.poison.on = false;
    dispose(batch);
  }
}

describeEachBackend('non-finite steps', (ctx) => {
  it('skip: reported with the parameter, weights and optimiser state bit-identical, the run continues as if the step never happened', () => {
    const b = ctx.backend;
    const clean = makeRun(b, 'skip');
    const cleanLosses = [1, 2, 3, 4, 5, 6].map((i) => step(clean, b, i).loss);

    const run = makeRun(b, 'skip');
    const losses: number[] = [];
    for (const i of [1, 2, 3]) losses.push(step(run, b, i).loss);
    const before = snapshot(run);
    const bad = step(run, b, 99, true);
    expect(bad.skipped).toBe(true);
    expect(Number.isFinite(bad.loss) && Number.isFinite(bad.gradNorm)).toBe(false);
    expect(snapshot(run)).toEqual(before);
    expect(bad.nonFinite).toContain(`first non-finite gradient in ${run.poisonName}`);
    expect(bad.nonFinite).toContain('step 4');
    expect(run.trainer.history[3]!.skipped).toBe(true);
    for (const i of [4, 5, 6]) losses.push(step(run, b, i).loss);
    // Bit-identical to the run that never saw the bad step (constant lr, no dropout).
    expect(losses).toEqual(cleanLosses);
    expect(losses.every((l) => Number.isFinite(l))).toBe(true);
  });

  it('throw: NumericsError naming the step and the first parameter with a non-finite gradient; nothing changed; the trainer still trains', () => {
    const b = ctx.backend;
    const clean = makeRun(b, 'throw');
    const cleanLosses = [1, 2, 3, 4].map((i) => step(clean, b, i).loss);

    const run = makeRun(b, 'throw');
    for (const i of [1, 2, 3]) step(run, b, i);
    const before = snapshot(run);
    let error: unknown = null;
    try {
      step(run, b, 99, true);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NumericsError);
    const message = (error as Error).message;
    expect(message).toContain('Trainer');
    expect(message).toContain('step 4');
    expect(message).toContain(`first non-finite gradient in ${run.poisonName}`);
    expect(message).toMatch(/loss (NaN|Infinity)/);
    expect(run.poisonName).not.toBe(run.model.namedParameters()[0]![0]);
    expect(snapshot(run)).toEqual(before);
    expect(run.trainer.step).toBe(3);
    expect(step(run, b, 4).loss).toBe(cleanLosses[3]);
  });
});

it('setCheckNumerics is exported from the public API', async () => {
  const api = await import('../ts/api.js');
  expect(typeof api.setCheckNumerics).toBe('function');
  expect(api.getCheckNumerics()).toBe(false);
});
