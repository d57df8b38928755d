// Adam/AdamW state exported beside the weights under parameter names (torch.optim's
// exp_avg / exp_avg_sq / step, the param_groups with names for indices), as
// examples/pytorch-ddp loads it into torch.optim.Adam / AdamW; and read back, so that a run
// continues with its moments instead of restarting them.
import { expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from '../ts/io/safetensors.js';
import * as nn from '../ts/nn/index.js';
import * as ops from '../ts/ops/index.js';
import { Adam, AdamW } from '../ts/optim/adam.js';
import { tensor } from '../ts/tensor/tensor.js';
import { loadModelSafetensors, loadOptimizerSafetensors, modelToSafetensors, optimizerToSafetensors, type OptimizerGroupRecord } from '../ts/train/checkpoint.js';
import { describeEachBackend, relErr } from './helpers/backends.js';

const config = { vocab: 9, dModel: 8, nHeads: 2, numLayers: 1, dFF: 16, dropout: 0, maxLen: 6, tieWeights: true };

describeEachBackend('optimizer state export', (ctx) => {
  const ids = [[1, 2, 3, 4, 5], [6, 7, 8, 0, 2]];
  function trainSteps(model: nn.DecoderLM, optimizer: Adam, steps: number): number[] {
    const losses: number[] = [];
    for (let s = 0; s < steps; s++) {
      const input = tensor(ids.flatMap((r) => r.slice(0, 4)), [2, 4], { dtype: 'i32', backend: ctx.backend });
      const target = tensor(ids.flatMap((r) => r.slice(1)), [2, 4], { dtype: 'i32', backend: ctx.backend });
      optimizer.zeroGrad();
      const loss = ops.crossEntropy(model.forward(input), target);
      loss.backward();
      optimizer.step();
      losses.push(loss.item());
      loss.dispose();
      input.dispose();
      target.dispose();
    }
    return losses;
  }

  it("names every moment after its parameter with the parameter's shape, and lists the groups by name", () => {
    const model = new nn.DecoderLM(config, { backend: ctx.backend, rng: new nn.Rng(3) });
    const optimizer = new AdamW(model, { lr: 1e-2 });
    trainSteps(model, optimizer, 3);
    const { tensors, metadata } = readSafetensors(optimizerToSafetensors(model, optimizer));
    // The names the model file uses (generator.weight is tied to embed.weight and written once).
    const modelNames = [...readSafetensors(modelToSafetensors(model)).tensors.keys()].sort();
    const shapes = new Map(model.namedParameters().map(([k, p]) => [k, p.shape]));
    expect([...tensors.keys()].sort()).toEqual(modelNames.flatMap((n) => [`${n}.exp_avg`, `${n}.exp_avg_sq`]).sort());
    for (const [key, t] of tensors) {
      expect(t.dtype).toBe('F32');
      expect(t.shape, key).toEqual(shapes.get(key.replace(/\.exp_avg(_sq)?$/, '')));
    }
    expect(metadata['optimizer']).toBe('AdamW');
    expect(JSON.parse(metadata['step']!)).toEqual(Object.fromEntries(modelNames.map((n) => [n, 3])));
    const groups = JSON.parse(metadata['param_groups']!) as OptimizerGroupRecord[];
    // AdamW given a model decays matrices only: two groups that together hold every parameter once.
    expect(groups.map((g) => g.weight_decay)).toEqual([0.01, 0]);
    expect(groups.flatMap((g) => g.params).sort()).toEqual(modelNames);
    expect(groups[1]!.params).toContain('blocks.layers.0.norm1.weight');
    expect(groups[0]).toMatchObject({ lr: 1e-2, betas: [0.9, 0.999], eps: 1e-8 });
    optimizer.dispose();
    model.dispose();
  });

  it('state read back continues training exactly as the original optimiser would', () => {
    const original = new nn.DecoderLM(config, { backend: ctx.backend, rng: new nn.Rng(5) });
    const optimizer = new Adam(original.parameters(), { lr: 5e-3, betas: [0.9, 0.98], eps: 1e-9 });
    trainSteps(original, optimizer, 4);
    const weights = modelToSafetensors(original);
    const state = optimizerToSafetensors(original, optimizer);

    const copy = new nn.DecoderLM(config, { backend: ctx.backend, rng: new nn.Rng(99) });
    const restored = new Adam(copy.parameters(), { lr: 1, betas: [0.9, 0.98], eps: 1e-9 });
    loadModelSafetensors(copy, weights);
    loadOptimizerSafetensors(copy, restored, state);
    expect(restored.lr).toBe(5e-3);
    const fresh = new nn.DecoderLM(config, { backend: ctx.backend, rng: new nn.Rng(99) });
    const restarted = new Adam(fresh.parameters(), { lr: 5e-3, betas: [0.9, 0.98], eps: 1e-9 });
    loadModelSafetensors(fresh, weights);

    const want = trainSteps(original, optimizer, 3);
    const got = trainSteps(copy, restored, 3);
    // Bit for bit on the float32 backends; the float64 reference loses the digits the
    // float32 file does not keep.
    if (ctx.name === 'reference') expect(relErr(got, want)).toBeLessThan(1e-6);
    else expect(got).toEqual(want);
    // Restarted moments take a different path (the check above could fail).
    expect(trainSteps(fresh, restarted, 3)[2]).not.toBe(want[2]);
    for (const m of [original, copy, fresh]) m.dispose();
  });

  it('refuses state of another optimiser kind, unknown names and wrong shapes, changing nothing', () => {
    const model = new nn.DecoderLM(config, { backend: ctx.backend, rng: new nn.Rng(7) });
    const adam = new Adam(model.parameters(), { lr: 1e-3 });
    trainSteps(model, adam, 1);
    const state = optimizerToSafetensors(model, adam);
    expect(() => loadOptimizerSafetensors(model, new AdamW(model.parameters()), state)).toThrow(/holds Adam state, the optimiser is AdamW/);
    const { tensors, metadata } = readSafetensors(state);
    const renamed = new Map([...tensors].map(([k, t]) => [k.replace('embed.weight', 'embedding.weight'), t]));
    const steps = metadata['step']!.replace('"embed.weight"', '"embedding.weight"');
    expect(() => loadOptimizerSafetensors(model, adam, writeSafetensors(renamed, { ...metadata, step: steps }))).toThrow(/'embedding\.weight', which is not a parameter/);
    const reshaped = new Map(tensors);
    reshaped.set('generator.bias.exp_avg', { dtype: 'F32', shape: [3, 3], data: new Float32Array(9) });
    expect(() => loadOptimizerSafetensors(model, adam, writeSafetensors(reshaped, metadata))).toThrow(/generator\.bias' are \[3, 3\], the parameter is \[9\]/);
    model.dispose();
  });
});
