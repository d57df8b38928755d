// Module behaviour: PyTorch names, weight tying, strict loading, train/eval.
import { expect, it } from 'vitest';
import * as nn from '../ts/nn/index.js';
import * as ops from '../ts/ops/index.js';
import { tensor } from '../ts/tensor/tensor.js';
import { describeEachBackend } from './helpers/backends.js';
import { loadFixtures } from './helpers/fixtures.js';

const fx = loadFixtures();

describeEachBackend('nn', (ctx) => {
  it('a Transformer built from a fixture case has exactly its PyTorch parameter names and shapes', () => {
    for (const c of fx.casesOf('transformer')) {
      const model = new nn.Transformer({
        srcVocab: Number(c['src_vocab']), tgtVocab: Number(c['tgt_vocab']), dModel: Number(c['d_model']), nHeads: Number(c['heads']),
        numEncoderLayers: Number(c['layers']), numDecoderLayers: Number(c['layers']), dFF: Number(c['d_ff']), normFirst: c['norm_first'] === true,
        finalNorm: c['final_norm'] === true,
      }, { backend: ctx.backend });
      const want = new Map([...fx.tensors].filter(([k]) => k.startsWith(`${c.name}.param.`)).map(([k, t]) => [k.slice(`${c.name}.param.`.length), t.shape.join('x')]));
      const got = new Map(model.namedParameters().map(([k, p]) => [k, p.shape.join('x')]));
      expect(got).toEqual(want);
      model.dispose();
    }
  });

  it('tied weights are one tensor under two names and receive both gradients', () => {
    const model = new nn.DecoderLM({ vocab: 7, dModel: 8, nHeads: 2, numLayers: 1, dFF: 16, dropout: 0, tieWeights: true, maxLen: 4 }, { backend: ctx.backend });
    const dict = model.stateDict();
    expect(dict.get('generator.weight')).toBe(dict.get('embed.weight'));
    expect(model.parameters().filter((p) => p === dict.get('embed.weight'))).toHaveLength(1);
    const ids = tensor([1, 2, 3, 4], [1, 4], { dtype: 'i32', backend: ctx.backend });
    ops.crossEntropy(model.forward(ids), tensor([2, 3, 4, 5], [1, 4], { dtype: 'i32', backend: ctx.backend })).backward();
    const g = dict.get('embed.weight')!.grad!.toArray();
    // Rows of tokens never seen as input still get the generator's gradient.
    expect(g.slice(6 * 8, 7 * 8).some((v) => v !== 0)).toBe(true);
    model.dispose();
  });

  it('loadStateDict lists missing, unexpected and mis-shaped keys in one error and changes nothing', () => {
    const layer = new nn.Linear(3, 2, { backend: ctx.backend });
    const before = layer.weight.toArray();
    let error: unknown;
    try {
      layer.loadStateDict({ weight: { shape: [3, 2], data: new Float32Array(6) }, extra: { shape: [1], data: [0] } });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(nn.StateDictError);
    const e = error as nn.StateDictError;
    expect(e.missingKeys).toEqual(['bias']);
    expect(e.unexpectedKeys).toEqual(['extra']);
    expect(e.message).toMatch(/weight: expected \[2, 3\], got \[3, 2\]/);
    expect(layer.weight.toArray()).toEqual(before);
    const relaxed = layer.loadStateDict({ weight: { shape: [2, 3], data: [1, 2, 3, 4, 5, 6] } }, { strict: false });
    expect(relaxed.missingKeys).toEqual(['bias']);
    expect(layer.weight.toArray()).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('train() and eval() switch every submodule; dropout is off in eval', () => {
    const model = new nn.DecoderLM({ vocab: 5, dModel: 8, nHeads: 2, numLayers: 1, dFF: 8, dropout: 0.5, maxLen: 4 }, { backend: ctx.backend });
    model.eval();
    expect(model.namedModules().every(([, m]) => !m.training)).toBe(true);
    const ids = tensor([1, 2, 3], [1, 3], { dtype: 'i32', backend: ctx.backend });
    expect(model.forward(ids).toArray()).toEqual(model.forward(ids).toArray());
    model.train();
    expect(model.namedModules().every(([, m]) => m.training)).toBe(true);
    expect(model.forward(ids).toArray()).not.toEqual(model.forward(ids).toArray());
  });
});
