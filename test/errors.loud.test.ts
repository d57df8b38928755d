// Calls that fail loudly: misspelt or PyTorch-spelt option keys are ConfigErrors naming the
// key meant, positional values where an options object goes are refused, errors before and
// from init() are the library's own, absurd sizes are refused before any allocation, a
// Trainer's non-scalar loss is named; and NaN propagates as in PyTorch on every backend
// (relu, the fused linear + ReLU, causal attention), with the Trainer naming where it was.
import { expect, it } from 'vitest';
import type { Backend } from '../ts/backend/backend.js';
import { init } from '../ts/backend/init_node.js';
import { getDefaultBackend, hasDefaultBackend } from '../ts/backend/registry.js';
import * as generate from '../ts/generate/index.js';
import * as nn from '../ts/nn/index.js';
import { StateDictError } from '../ts/nn/module.js';
import * as ops from '../ts/ops/index.js';
import * as optim from '../ts/optim/index.js';
import { BackendError, ConfigError, NumericsError, ShapeError, checkOptions, suggestKey } from '../ts/tensor/errors.js';
import { dispose } from '../ts/tensor/memory.js';
import { tensor, zeros, type Shape, type Tensor } from '../ts/tensor/tensor.js';
import { lmBatch, lmLoss, loadModelSafetensors, modelToSafetensors, seq2seqBatch, seq2seqLoss, Trainer } from '../ts/train/index.js';
import { describeEachBackend } from './helpers/backends.js';

const f32 = (b: Backend, shape: Shape, fill = 0.5): Tensor => tensor(new Float32Array(shape.reduce((n, d) => n * d, 1)).fill(fill), shape, { backend: b });
const tinyLM = (b: Backend): nn.DecoderLM => new nn.DecoderLM({ vocab: 11, dModel: 8, nHeads: 2, numLayers: 1, dFF: 16, dropout: 0, maxLen: 16 }, { backend: b, rng: new nn.Rng(7) });
const tinySeq2Seq = (b: Backend): nn.Transformer =>
  new nn.Transformer({ srcVocab: 11, tgtVocab: 11, dModel: 8, nHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFF: 16, dropout: 0, maxLen: 16, padId: 0, normFirst: true }, { backend: b, rng: new nn.Rng(7) });

/** A pre-LN encoder-decoder with a NaN in parameter `name`, its Trainer and one batch. */
function poisonedSeq2Seq(b: Backend, name: string) {
  const model = tinySeq2Seq(b);
  const [, p] = model.namedParameters().find(([n]) => n === name)!;
  const v = Float32Array.from(p.data());
  v[Math.min(2, v.length - 1)] = NaN;
  b.write(p.storage, v);
  const trainer = new Trainer({ model, optimizer: new optim.Adam(model.parameters()), loss: seq2seqLoss({ padId: 0 }) });
  const batch = seq2seqBatch([[3, 4, 5]], [[1, 3, 4, 5, 2]], { padId: 0, backend: b });
  return { model, trainer, batch };
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw');
}

it('before init(): creating a tensor is a BackendError that says to call init()', () => {
  expect(hasDefaultBackend()).toBe(false);
  const e = thrown(() => zeros([2]));
  expect(e).toBeInstanceOf(BackendError);
  expect(e.name).toBe('BackendError');
  expect(e.message).toContain('init()');
  expect(() => getDefaultBackend()).toThrow(BackendError);
});

it('init(): unknown keys, bad values and unknown backends are ConfigErrors', async () => {
  await expect(init({ backnd: 'wasm' } as never)).rejects.toThrow(/unknown option 'backnd'; did you mean 'backend'/);
  await expect(init({ backend: 'gpu' } as never)).rejects.toBeInstanceOf(ConfigError);
  await expect(init({ threads: 0 })).rejects.toThrow(/threads must be a positive integer/);
  await expect(init('wasm' as never)).rejects.toThrow(/options are passed by name/);
  expect(hasDefaultBackend()).toBe(false);
});

it('suggestKey maps snake_case to camelCase and typos to the nearest key', () => {
  expect(suggestKey('ignore_index', ['ignoreIndex', 'labelSmoothing'])).toBe('ignoreIndex');
  expect(suggestKey('label_smoothing', ['ignoreIndex', 'labelSmoothing'])).toBe('labelSmoothing');
  expect(suggestKey('casual', ['keyMask', 'causal', 'scale'])).toBe('causal');
  expect(suggestKey('LR', ['lr', 'betas'])).toBe('lr');
  expect(suggestKey('completelyDifferent', ['lr', 'betas'])).toBeNull();
  expect(() => checkOptions('op', { a: 1 }, ['a'], ['b'])).toThrow(/missing option b/);
  expect(() => checkOptions('op', undefined, ['a'])).not.toThrow();
});

it('StateDictError is named StateDictError', () => {
  expect(new StateDictError([], ['x'], []).name).toBe('StateDictError');
});

describeEachBackend('loud errors', (ctx) => {
  it("crossEntropy's PyTorch spellings are refused with the key meant", () => {
    const b = ctx.backend;
    const logits = f32(b, [2, 3]);
    const targets = tensor([0, 1], [2], { dtype: 'i32', backend: b });
    const e = thrown(() => ops.crossEntropy(logits, targets, { ignore_index: 0 } as never));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toContain("'ignore_index'");
    expect(e.message).toContain("did you mean 'ignoreIndex'");
    expect(() => ops.crossEntropy(logits, targets, { label_smoothing: 0.1 } as never)).toThrow(/did you mean 'labelSmoothing'/);
    expect(ops.crossEntropy(logits, targets, { ignoreIndex: 0, labelSmoothing: 0.1 }).item()).toBeCloseTo(Math.log(3), 5);
  });

  it('positional values where an options object goes are refused', () => {
    const b = ctx.backend;
    expect(() => ops.matmul(f32(b, [2, 2]), f32(b, [2, 2]), true as never)).toThrow(/matmul: expected an options object/);
    expect(() => ops.linear(f32(b, [1, 2]), f32(b, [3, 2]), null, 'relu' as never)).toThrow(ConfigError);
    expect(() => ops.attention(f32(b, [1, 1, 2, 2]), f32(b, [1, 1, 2, 2]), f32(b, [1, 1, 2, 2]), { casual: true } as never)).toThrow(/did you mean 'causal'/);
    expect(() => ops.dropout(f32(b, [2]), 0.1, undefined as never)).toThrow(/seed, offset/);
  });

  it('generation options: unknown keys named, maxTokens required', () => {
    const model = tinyLM(ctx.backend);
    expect(() => generate.greedy(model, [[1, 2]], { max_tokens: 3 } as never)).toThrow(/did you mean 'maxTokens'/);
    expect(() => generate.greedy(model, [[1, 2]], undefined as never)).toThrow(/maxTokens/);
    expect(() => generate.sample(model, [[1, 2]], { maxTokens: 2, top_k: 3 } as never)).toThrow(/did you mean 'topK'/);
    expect(() => generate.beamSearch(model, [[1, 2]], { maxTokens: 2 } as never)).toThrow(/missing option beamSize/);
    expect(generate.greedy(model, [[1, 2]], { maxTokens: 2 })[0]!.tokens.length).toBeGreaterThan(0);
    model.dispose();
  });

  it('Trainer: unknown keys named; a non-scalar loss is told so', () => {
    const b = ctx.backend;
    const model = tinyLM(b);
    const optimizer = new optim.Adam(model.parameters());
    expect(() => new Trainer({ model, optimizer, loss: lmLoss(), clip_norm: 1 } as never)).toThrow(/did you mean 'clipNorm'/);
    const trainer = new Trainer({ model, optimizer, loss: (m, batch: ReturnType<typeof lmBatch>) => (m as nn.DecoderLM).forward(batch.input) });
    const batch = lmBatch([[1, 2, 3]], { backend: b });
    const e = thrown(() => trainer.trainStep(batch));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toMatch(/scalar.*\[1, 2, 11\]/);
    dispose(batch);
    model.dispose();
  });

  it('train helpers: batch, loss and checkpoint options are checked by name', () => {
    const b = ctx.backend;
    expect(() => lmLoss({ ignore_index: 0 } as never)).toThrow(/did you mean 'ignoreIndex'/);
    expect(() => seq2seqLoss({ pad_id: 0 } as never)).toThrow(/did you mean 'padId'/);
    expect(() => seq2seqBatch([[1]], [[1, 2]], { backend: b } as never)).toThrow(/missing option padId/);
    expect(() => lmBatch([[1, 2]], { backend: b, pad_id: 0 } as never)).toThrow(/did you mean 'padId'/);
    const model = tinyLM(b);
    expect(() => loadModelSafetensors(model, modelToSafetensors(model), { strip_prefix: 'module.' } as never)).toThrow(/did you mean 'stripPrefix'/);
    model.dispose();
  });

  it('model configs: unknown keys are named with the key meant', () => {
    const b = ctx.backend;
    expect(() => new nn.DecoderLM({ vocab: 11, dModel: 8, nHeads: 2, numLayers: 1, dFF: 16, n_embd: 8 } as never, { backend: b })).toThrow(/DecoderLM: unknown option 'n_embd'/);
    expect(() => new nn.DecoderLM({ vocab: 11, dModel: 8, nHeads: 2, numLayers: 1, dFF: 16, norm_first: true } as never, { backend: b })).toThrow(/did you mean 'normFirst'/);
    expect(() => new nn.Transformer({ srcVocab: 5, tgtVocab: 5, dModel: 8, nHeads: 2, dFF: 16, numEncoderLayers: 1, numDecoderLayers: 1, dim_feedforward: 16 } as never, { backend: b })).toThrow(/unknown option 'dim_feedforward'/);
    expect(() => new nn.DecoderLM({ vocab: 11, dModel: 8, nHeads: 2, numLayers: 1, dFF: 16 }, { backend: b, seed: 1 } as never)).toThrow(/unknown option 'seed'/);
    const model = tinyLM(b);
    expect(() => model.loadStateDict(model.stateDict(), { strip_prefix: 'module.' } as never)).toThrow(/did you mean 'stripPrefix'/);
    expect(() => nn.init.normal_(model.embed.weight, { stdev: 0.02 } as never)).toThrow(/did you mean 'std'/);
    expect(() => new nn.ModuleList([model], { device: 'cpu' } as never)).toThrow(/ModuleList: unknown option 'device'/);
    expect(() => new nn.Linear(4, 3, { bais: false } as never)).toThrow(/Linear: unknown option 'bais'; did you mean 'bias'/);
    expect(() => new nn.LayerNorm(4, 1e-5, { elementwise_affine: false } as never)).toThrow(/LayerNorm: unknown option 'elementwise_affine'/);
    expect(() => new nn.Embedding(5, 4, { padding_idx: 0 } as never)).toThrow(/Embedding: unknown option 'padding_idx'/);
    expect(() => new nn.MultiheadAttention(4, 2, { batch_first: true } as never)).toThrow(/MultiheadAttention: unknown option 'batch_first'/);
    model.dispose();
  });

  it('absurd sizes are refused, naming the size, before any allocation', () => {
    const b = ctx.backend;
    const e = thrown(() => zeros([1e6, 1e6], { backend: b }));
    expect(e).toBeInstanceOf(ShapeError);
    expect(e.message).toContain('1.000e+12');
    // An op whose output would be 1e12 elements: refused before its output is allocated.
    expect(() => ops.matmul(f32(b, [1e6, 1]), f32(b, [1, 1e6]))).toThrow(/1\.000e\+12 elements/);
  });

  it('relu(NaN) is NaN, and its gradient passes on', () => {
    const b = ctx.backend;
    const x = tensor([NaN, -1, 2, 0], [4], { backend: b, requiresGrad: true });
    const y = ops.relu(x);
    const out = Array.from(y.data());
    expect(Number.isNaN(out[0])).toBe(true);
    expect(out.slice(1)).toEqual([0, 2, 0]);
    y.backward(tensor([1, 1, 1, 1], [4], { backend: b }));
    expect(Array.from(x.grad!.data())).toEqual([1, 0, 1, 0]);
  });

  it('fused linear + ReLU keeps a NaN weight in its output and gradients', () => {
    const b = ctx.backend;
    const w = tensor([1, 0, NaN, 1, -1, -1], [3, 2], { backend: b, requiresGrad: true });
    const x = tensor([1, 2, -1, 0.5], [2, 2], { backend: b, requiresGrad: true });
    const y = ops.linear(x, w, null, { activation: 'relu' });
    const out = Array.from(y.data());
    expect(Number.isNaN(out[1]) && Number.isNaN(out[4])).toBe(true);
    expect([out[0], out[2], out[3], out[5]]).toEqual([1, 0, 0, 0.5]);
    y.backward(tensor([1, 1, 1, 1, 1, 1], [2, 3], { backend: b }));
    const dx = Array.from(x.grad!.data());
    expect(Number.isNaN(dx[0]) && Number.isNaN(dx[2])).toBe(true);
  });

  it('causal attention: a NaN query makes its row NaN, not 0; other rows stay finite', () => {
    const b = ctx.backend;
    const q = tensor([0.1, 0.2, NaN, 0.4, 0.5, 0.6], [1, 1, 3, 2], { backend: b, requiresGrad: true });
    const k = tensor([0.3, -0.2, 0.1, 0.7, -0.5, 0.2], [1, 1, 3, 2], { backend: b });
    const v = tensor([1, 2, 3, 4, 5, 6], [1, 1, 3, 2], { backend: b });
    for (const causal of [true, false]) {
      const out = Array.from(ops.attention(q, k, v, { causal }).data());
      expect(Number.isNaN(out[2]) && Number.isNaN(out[3])).toBe(true);
      expect([out[0], out[1], out[4], out[5]].every(Number.isFinite)).toBe(true);
    }
  });

  it('a NaN in norm1.weight makes the held-out loss NaN (pre-LN encoder-decoder)', () => {
    const { model, trainer, batch } = poisonedSeq2Seq(ctx.backend, 'encoder.layers.0.norm1.weight');
    expect(trainer.evaluate([batch]).loss).toBeNaN();
    dispose(batch);
    model.dispose();
  });

  it("the Trainer's NumericsError names the parameter where the NaN is (generator.bias), not the first one", () => {
    const { model, trainer, batch } = poisonedSeq2Seq(ctx.backend, 'generator.bias');
    const e = thrown(() => trainer.trainStep(batch));
    expect(e).toBeInstanceOf(NumericsError);
    expect(e.message).toContain('generator.bias');
    expect(e.message).not.toContain('src_embed');
    dispose(batch);
    model.dispose();
  });
});
