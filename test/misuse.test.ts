// The misuse table: every public entry point refuses bad input with a typed error that
// names the op (or parameter) and the values, before anything reaches Rust, and the library
// stays usable afterwards (a small correct op runs after every failure). Every case runs on
// every backend.
import { afterEach, expect, it } from 'vitest';
import type { Backend } from '../ts/backend/backend.js';
import * as nn from '../ts/nn/index.js';
import * as ops from '../ts/ops/index.js';
import * as optim from '../ts/optim/index.js';
import { ConfigError, DisposedError, DTypeError, FormatError, NumericsError, ShapeError } from '../ts/tensor/errors.js';
import { setCheckNumerics } from '../ts/tensor/numerics.js';
import { tensor, zeros, type Shape, type Tensor } from '../ts/tensor/tensor.js';
import { checkpointToBytes, loadCheckpointBytes, lmBatch, lmLoss, Trainer } from '../ts/train/index.js';
import { describeEachBackend, getBackend } from './helpers/backends.js';

type ErrorClass = new (...args: never[]) => Error;

interface Case {
  name: string;
  error: ErrorClass;
  /** Every one must occur in the message: the op or parameter, and the values. */
  mentions: (string | RegExp)[];
  run(b: Backend): unknown;
}

const f32 = (b: Backend, shape: Shape, fill = 0.5): Tensor => tensor(new Float32Array(shape.reduce((n, d) => n * d, 1)).fill(fill), shape, { backend: b });
const i32 = (b: Backend, values: number[], shape: Shape = [values.length]): Tensor => tensor(values, shape, { dtype: 'i32', backend: b });
const u8 = (b: Backend, shape: Shape): Tensor => tensor(new Uint8Array(shape.reduce((n, d) => n * d, 1)).fill(1), shape, { dtype: 'u8', backend: b });
const rng = (): nn.Rng => new nn.Rng(7);
const tinyLM = (b: Backend, dropout = 0): nn.DecoderLM =>
  new nn.DecoderLM({ vocab: 11, dModel: 8, nHeads: 2, numLayers: 1, dFF: 16, dropout, maxLen: 16 }, { backend: b, rng: rng() });

const CASES: Case[] = [
  // ---- shapes, one or more per op family ----
  { name: 'matmul: inner dimensions differ', error: ShapeError, mentions: ['matmul', '[2, 3]', '[4, 5]'], run: (b) => ops.matmul(f32(b, [2, 3]), f32(b, [4, 5])) },
  { name: 'matmul: 1-D operand of the wrong length', error: ShapeError, mentions: ['matmul', 'inner dimensions', '[5]', '[6, 2]'], run: (b) => ops.matmul(f32(b, [5]), f32(b, [6, 2])) },
  { name: 'matmul: batch sizes differ', error: ShapeError, mentions: ['matmul', 'batch', '[2, 3, 4]', '[3, 4, 5]'], run: (b) => ops.matmul(f32(b, [2, 3, 4]), f32(b, [3, 4, 5])) },
  { name: 'matmul: transposed inner dimensions differ', error: ShapeError, mentions: ['matmul', '[3, 2]', '[3, 4]'], run: (b) => ops.matmul(f32(b, [3, 2]), f32(b, [3, 4]), { transB: true }) },
  { name: 'linear: features do not match the weight', error: ShapeError, mentions: ['linear', '[4, 5]', '3'], run: (b) => ops.linear(f32(b, [4, 5]), f32(b, [2, 3])) },
  { name: 'linear: bias of the wrong length', error: ShapeError, mentions: ['linear', 'bias', '[3]', '[2]'], run: (b) => ops.linear(f32(b, [4, 3]), f32(b, [2, 3]), f32(b, [3])) },
  { name: 'linear: unknown activation', error: ConfigError, mentions: ['linear', 'activation', 'tanh'], run: (b) => ops.linear(f32(b, [4, 3]), f32(b, [2, 3]), null, { activation: 'tanh' as 'relu' }) },
  { name: 'nn.Linear: input of the wrong width', error: ShapeError, mentions: ['linear', '[2, 7]', '4'], run: (b) => new nn.Linear(4, 3, { backend: b, rng: rng() }).forward(f32(b, [2, 7])) },
  { name: 'softmax: mask shape differs', error: ShapeError, mentions: ['softmax', 'mask', '[2, 3]', '[3, 2]'], run: (b) => ops.softmax(f32(b, [2, 3]), u8(b, [3, 2])) },
  { name: 'layerNorm: weight of the wrong size', error: ShapeError, mentions: ['layerNorm', 'weight', '[4]', '[5]'], run: (b) => ops.layerNorm(f32(b, [2, 4]), f32(b, [5]), f32(b, [4])) },
  { name: 'attention: k does not match q', error: ShapeError, mentions: ['attention', 'k', '[1, 2, 3, 4]', '[1, 2, 3, 8]'], run: (b) => ops.attention(f32(b, [1, 2, 3, 4]), f32(b, [1, 2, 3, 8]), f32(b, [1, 2, 3, 8])) },
  { name: 'attention: 3-D q', error: ShapeError, mentions: ['attention', 'q', '[2, 3, 4]'], run: (b) => ops.attention(f32(b, [2, 3, 4]), f32(b, [2, 3, 4]), f32(b, [2, 3, 4])) },
  { name: 'attention: key mask of the wrong shape', error: ShapeError, mentions: ['attention', 'keyMask', '[1, 3]', '[1, 5]'], run: (b) => ops.attention(f32(b, [1, 2, 3, 4]), f32(b, [1, 2, 3, 4]), f32(b, [1, 2, 3, 4]), { keyMask: u8(b, [1, 5]) }) },
  { name: 'MultiheadAttention: query of the wrong width', error: ShapeError, mentions: ['MultiheadAttention', 'query', '[1, 3, 6]', '8'], run: (b) => { const x = f32(b, [1, 3, 6]); return new nn.MultiheadAttention(8, 2, { backend: b, rng: rng() }).forward(x, x, x); } },
  { name: 'add: shapes differ', error: ShapeError, mentions: ['add', '[2, 3]', '[3, 2]'], run: (b) => ops.add(f32(b, [2, 3]), f32(b, [3, 2])) },
  { name: 'mul: shapes differ', error: ShapeError, mentions: ['mul', '[4]', '[5]'], run: (b) => ops.mul(f32(b, [4]), f32(b, [5])) },
  { name: 'addBias: bias does not match the trailing axes', error: ShapeError, mentions: ['addBias', '[5]', '[2, 4]'], run: (b) => ops.addBias(f32(b, [2, 4]), f32(b, [5])) },
  { name: 'reshape: element counts differ', error: ShapeError, mentions: ['reshape', '[2, 3]', '[4, 2]'], run: (b) => ops.reshape(f32(b, [2, 3]), [4, 2]) },
  { name: 'transpose12: not 4-D', error: ShapeError, mentions: ['transpose12', '[2, 3, 4]'], run: (b) => ops.transpose12(f32(b, [2, 3, 4])) },
  { name: 'narrow: range past the end', error: ShapeError, mentions: ['narrow', '[3, 6)', '[4, 5]'], run: (b) => ops.narrow(f32(b, [4, 5]), 1, 3, 3) },
  { name: 'concat: other axes differ', error: ShapeError, mentions: ['concat', '[2, 3]', '[2, 4]', 'dim 0'], run: (b) => ops.concat(f32(b, [2, 3]), f32(b, [2, 4]), 0) },
  { name: 'crossEntropy: targets do not match the logits', error: ShapeError, mentions: ['crossEntropy', '[3]', '[2, 5]'], run: (b) => ops.crossEntropy(f32(b, [2, 5]), i32(b, [0, 1, 2])) },
  { name: 'embedding: table is not 2-D', error: ShapeError, mentions: ['embedding', 'table', '[10]'], run: (b) => ops.embedding(i32(b, [1]), f32(b, [10])) },
  { name: 'tensor: data length differs from the shape', error: ShapeError, mentions: ['tensor', '[2, 3]', '6', '5'], run: (b) => tensor([1, 2, 3, 4, 5], [2, 3], { backend: b }) },
  { name: 'zeros: negative dimension', error: ShapeError, mentions: ['zeros', '[2, -1]'], run: (b) => zeros([2, -1], { backend: b }) },
  { name: 'backward: implicit gradient of a non-scalar', error: ShapeError, mentions: ['backward', '1', '6'], run: (b) => { const w = tensor(new Float32Array(6), [2, 3], { backend: b, requiresGrad: true }); ops.scale(w, 2).backward(); } },
  { name: 'PositionalEncoding: sequence longer than maxLen', error: ShapeError, mentions: ['PositionalEncoding', '20', 'maxLen 16'], run: (b) => tinyLM(b).forward(i32(b, new Array(20).fill(1), [1, 20])) },
  { name: 'inputs on different backends', error: ShapeError, mentions: ['matmul', 'different backends'], run: (b) => ops.matmul(f32(b, [2, 2]), tensor([1, 2, 3, 4], [2, 2], { backend: otherBackend(b) })) },

  // ---- dtypes ----
  { name: 'matmul: i32 operand', error: DTypeError, mentions: ['matmul', 'b', 'f32', 'i32'], run: (b) => ops.matmul(f32(b, [2, 2]), i32(b, [1, 2, 3, 4], [2, 2])) },
  { name: 'embedding: f32 ids', error: DTypeError, mentions: ['embedding', 'ids', 'i32', 'f32'], run: (b) => ops.embedding(f32(b, [3]), f32(b, [10, 4])) },
  { name: 'crossEntropy: f32 targets', error: DTypeError, mentions: ['crossEntropy', 'targets', 'i32', 'f32'], run: (b) => ops.crossEntropy(f32(b, [2, 5]), f32(b, [2])) },
  { name: 'softmax: f32 mask', error: DTypeError, mentions: ['softmax', 'mask', 'u8', 'f32'], run: (b) => ops.softmax(f32(b, [2, 3]), f32(b, [2, 3])) },
  { name: 'attention: i32 key mask', error: DTypeError, mentions: ['attention', 'keyMask', 'u8', 'i32'], run: (b) => ops.attention(f32(b, [1, 1, 2, 4]), f32(b, [1, 1, 2, 4]), f32(b, [1, 1, 2, 4]), { keyMask: i32(b, [1, 1], [1, 2]) }) },
  { name: 'relu: u8 input', error: DTypeError, mentions: ['relu', 'x', 'f32', 'u8'], run: (b) => ops.relu(u8(b, [4])) },
  { name: 'tensor: requiresGrad on i32', error: DTypeError, mentions: ['tensor', 'f32', 'i32'], run: (b) => tensor([1, 2], [2], { dtype: 'i32', requiresGrad: true, backend: b }) },

  // ---- token ids outside the vocabulary ----
  { name: 'embedding: id equal to the vocabulary size', error: ShapeError, mentions: ['embedding', 'token id 10', 'position 1', '[0, 10)'], run: (b) => ops.embedding(i32(b, [3, 10]), f32(b, [10, 4])) },
  { name: 'embedding: negative id', error: ShapeError, mentions: ['embedding', 'token id -1', '[0, 10)'], run: (b) => ops.embedding(i32(b, [-1]), f32(b, [10, 4])) },
  { name: 'DecoderLM: id outside its vocabulary', error: ShapeError, mentions: ['embedding', 'token id 11', '[0, 11)'], run: (b) => tinyLM(b).forward(i32(b, [1, 2, 11, 3], [1, 4])) },
  { name: 'crossEntropy: target outside the classes', error: ShapeError, mentions: ['crossEntropy', 'target 5', 'position 1', '[0, 5)'], run: (b) => ops.crossEntropy(f32(b, [2, 5]), i32(b, [0, 5])) },
  { name: 'indexSelect: index outside the rows', error: ShapeError, mentions: ['indexSelect', 'index 3', '[0, 3)'], run: (b) => ops.indexSelect(f32(b, [3, 2]), i32(b, [0, 3])) },

  // ---- configurations that cannot work ----
  { name: 'MultiheadAttention: embedDim not divisible by numHeads', error: ConfigError, mentions: ['MultiheadAttention', 'embedDim 10', 'numHeads 3'], run: (b) => new nn.MultiheadAttention(10, 3, { backend: b }) },
  { name: 'Transformer: dModel not divisible by nHeads', error: ConfigError, mentions: ['dModel 30', 'nHeads 4'], run: (b) => new nn.Transformer({ srcVocab: 5, tgtVocab: 5, dModel: 30, nHeads: 4, numEncoderLayers: 1, numDecoderLayers: 1, dFF: 8 }, { backend: b }) },
  { name: 'Linear: zero output features', error: ConfigError, mentions: ['Linear', 'outFeatures', '0'], run: (b) => new nn.Linear(4, 0, { backend: b }) },
  { name: 'DecoderLM: zero vocabulary', error: ConfigError, mentions: ['DecoderLM', 'vocab', '0'], run: (b) => new nn.DecoderLM({ vocab: 0, dModel: 8, nHeads: 2, numLayers: 1, dFF: 8 }, { backend: b }) },
  { name: 'TransformerEncoderLayer: zero dFF', error: ConfigError, mentions: ['TransformerEncoderLayer', 'dFF', '0'], run: (b) => new nn.TransformerEncoderLayer({ dModel: 8, nHeads: 2, dFF: 0 }, { backend: b }) },
  { name: 'Dropout: negative p', error: ConfigError, mentions: ['Dropout', 'p', '-0.1'], run: (b) => new nn.Dropout(-0.1, { backend: b }) },
  { name: 'DecoderLM: dropout of 1', error: ConfigError, mentions: ['dropout', '[0, 1)', '1'], run: (b) => new nn.DecoderLM({ vocab: 5, dModel: 8, nHeads: 2, numLayers: 1, dFF: 8, dropout: 1 }, { backend: b }) },
  { name: 'ops.dropout: negative seed', error: ConfigError, mentions: ['dropout', 'seed', '-3'], run: (b) => ops.dropout(f32(b, [4]), 0.5, { seed: -3, offset: 0 }) },
  { name: 'layerNorm: zero eps', error: ConfigError, mentions: ['layerNorm', 'eps', '0'], run: (b) => ops.layerNorm(f32(b, [2, 4]), f32(b, [4]), f32(b, [4]), 0) },
  { name: 'LayerNorm: NaN eps', error: ConfigError, mentions: ['LayerNorm', 'eps', 'NaN'], run: (b) => new nn.LayerNorm(4, NaN, { backend: b }) },
  { name: 'crossEntropy: label smoothing above 1', error: ConfigError, mentions: ['crossEntropy', 'labelSmoothing', '1.5'], run: (b) => ops.crossEntropy(f32(b, [2, 5]), i32(b, [0, 1]), { labelSmoothing: 1.5 }) },
  { name: 'scale: infinite factor', error: ConfigError, mentions: ['scale', 'factor', 'Infinity'], run: (b) => ops.scale(f32(b, [2]), Infinity) },
  { name: 'Adam: negative lr', error: ConfigError, mentions: ['Adam', 'lr', '-0.001'], run: (b) => new optim.Adam([f32(b, [2])], { lr: -0.001 }) },
  { name: 'Adam: beta1 of 1', error: ConfigError, mentions: ['Adam', 'betas', '[1, 0.999]'], run: (b) => new optim.Adam([f32(b, [2])], { betas: [1, 0.999] }) },
  { name: 'Adam: NaN beta2', error: ConfigError, mentions: ['Adam', 'betas', 'NaN'], run: (b) => new optim.Adam([f32(b, [2])], { betas: [0.9, NaN] }) },
  { name: 'Adam: negative eps', error: ConfigError, mentions: ['Adam', 'eps', '-1e-8'], run: (b) => new optim.Adam([f32(b, [2])], { eps: -1e-8 }) },
  { name: 'Adam: infinite eps', error: ConfigError, mentions: ['Adam', 'eps', 'Infinity'], run: (b) => new optim.Adam([f32(b, [2])], { eps: Infinity }) },
  { name: 'AdamW: negative weight decay', error: ConfigError, mentions: ['AdamW', 'weightDecay', '-0.1'], run: (b) => new optim.AdamW([f32(b, [2])], { weightDecay: -0.1 }) },
  { name: 'Adam: setLr(NaN) from a broken schedule', error: ConfigError, mentions: ['Adam', 'lr', 'NaN'], run: (b) => new optim.Adam([f32(b, [2])]).setLr(NaN) },
  { name: 'noam: zero warmup', error: ConfigError, mentions: ['noam', 'warmup', '0'], run: () => optim.noam(512, 0) },
  { name: 'warmupDecay: total not after warmup', error: ConfigError, mentions: ['warmupDecay', 'warmup 100', 'total 50'], run: () => optim.warmupDecay(1e-3, 100, 50) },
  { name: 'warmupDecay: minLr above peak', error: ConfigError, mentions: ['warmupDecay', 'minLr', '0.1'], run: () => optim.warmupDecay(1e-3, 10, 50, { minLr: 0.1 }) },
  { name: 'constant: infinite lr', error: ConfigError, mentions: ['constant', 'lr', 'Infinity'], run: () => optim.constant(Infinity) },
  { name: 'clipGradNorm: zero max norm', error: ConfigError, mentions: ['clipGradNorm', 'maxNorm', '0'], run: (b) => optim.clipGradNorm([f32(b, [2])], 0) },
  { name: 'Trainer: negative clipNorm', error: ConfigError, mentions: ['Trainer', 'clipNorm', '-1'], run: (b) => { const model = tinyLM(b); return new Trainer({ model, optimizer: new optim.Adam(model.parameters()), loss: lmLoss(), clipNorm: -1 }); } },

  // ---- use after dispose() ----
  { name: 'matmul of a disposed tensor', error: DisposedError, mentions: ['matmul', 'dispose'], run: (b) => { const a = f32(b, [2, 2]); a.dispose(); return ops.matmul(a, f32(b, [2, 2])); } },
  { name: 'data() of a disposed tensor', error: DisposedError, mentions: ['data', 'dispose'], run: (b) => { const a = f32(b, [2]); a.dispose(); return a.data(); } },
  { name: 'forward of a disposed model', error: DisposedError, mentions: ['embedding', 'dispose'], run: (b) => { const m = tinyLM(b); m.dispose(); return m.forward(i32(b, [1, 2], [1, 2])); } },
  { name: 'optimizer step over a disposed parameter', error: DisposedError, mentions: ['Adam', 'dispose'], run: (b) => { const p = tensor([1, 2], [2], { backend: b, requiresGrad: true }); const opt = new optim.Adam([p]); ops.mul(p, p).backward(tensor([1, 1], [2], { backend: b })); p.grad!.keep(); const g = p.grad; p.dispose(); p.grad = g; opt.step(); } },

  // ---- state dicts and checkpoints ----
  {
    name: 'loadStateDict: missing, unexpected and mis-shaped keys in one error',
    error: nn.StateDictError,
    mentions: ['loadStateDict', 'missing keys: bias', 'unexpected keys: extra.weight', 'weight: expected [3, 4], got [4, 3]'],
    run: (b) => new nn.Linear(4, 3, { backend: b, rng: rng() }).loadStateDict({ weight: { shape: [4, 3], data: new Float32Array(12) }, 'extra.weight': { shape: [1], data: [0] } }),
  },
  {
    name: 'loadCheckpointBytes: a checkpoint of another model',
    error: nn.StateDictError,
    mentions: ['loadStateDict', 'embed.weight: expected [11, 8], got [13, 8]'],
    run: (b) => {
      const other = new nn.DecoderLM({ vocab: 13, dModel: 8, nHeads: 2, numLayers: 1, dFF: 16, maxLen: 16 }, { backend: b, rng: rng() });
      return loadCheckpointBytes(checkpointToBytes({ model: other, step: 3 }), { model: tinyLM(b) });
    },
  },
  { name: 'loadCheckpointBytes: not a checkpoint', error: FormatError, mentions: ['safetensors'], run: (b) => loadCheckpointBytes(new Uint8Array([1, 2, 3]), { model: tinyLM(b) }) },

  // ---- non-finite values with checkNumerics on ----
  { name: 'checkNumerics: NaN input to matmul', error: NumericsError, mentions: ['matmul', 'input 0', 'NaN', 'index 1'], run: (b) => withNumerics(() => ops.matmul(tensor([0, NaN, 0, 0], [2, 2], { backend: b }), f32(b, [2, 2]))) },
  { name: 'checkNumerics: infinite input to layerNorm', error: NumericsError, mentions: ['layerNorm', 'Infinity'], run: (b) => withNumerics(() => ops.layerNorm(tensor([1, Infinity, 2, 3], [1, 4], { backend: b }), f32(b, [4]), f32(b, [4]))) },
  { name: 'checkNumerics: scale overflows to Infinity', error: NumericsError, mentions: ['scale', 'output [2]', 'Infinity'], run: (b) => withNumerics(() => ops.scale(tensor([3e38, 1], [2], { backend: b }), 1e300)) },
  { name: 'checkNumerics: NaN weight reaches the loss of a model', error: NumericsError, mentions: ['NaN'], run: (b) => { const m = tinyLM(b); const w = m.generator.weight; const v = Float32Array.from(w.data()); v[5] = NaN; b.write(w.storage, v); return withNumerics(() => lmLoss()(m, lmBatch([[1, 2, 3, 4]], { backend: b }))); } },
];

let backends: Partial<Record<string, Backend>> = {};
/** A second backend for the mixed-backend case (reference, or native when testing reference). */
function otherBackend(b: Backend): Backend {
  const other = backends[b.name === 'reference' ? 'native' : 'reference'];
  if (!other) throw new Error('other backend not loaded');
  return other;
}

function withNumerics<T>(fn: () => T): T {
  setCheckNumerics(true);
  try {
    return fn();
  } finally {
    setCheckNumerics(false);
  }
}

/** After every failure: a small correct computation gives the right answer. */
function stillUsable(b: Backend): void {
  const y = ops.matmul(tensor([1, 2, 3, 4], [2, 2], { backend: b }), tensor([5, 6, 7, 8], [2, 2], { backend: b }));
  expect(y.toArray()).toEqual([19, 22, 43, 50]);
  const loss = ops.crossEntropy(tensor([0, 0, 0, 0], [1, 4], { backend: b }), tensor([2], [1], { dtype: 'i32', backend: b }));
  expect(loss.item()).toBeCloseTo(Math.log(4), 5);
}

it('the table has at least 40 cases', () => {
  expect(CASES.length).toBeGreaterThanOrEqual(40);
  expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
});

describeEachBackend('misuse', (ctx) => {
  afterEach(() => setCheckNumerics(false));
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    backends = { native: await getBackend('native'), reference: await getBackend('reference') };
    let thrown: unknown = null;
    try {
      c.run(ctx.backend);
    } catch (e) {
      thrown = e;
    }
    expect(thrown, 'no error was thrown').not.toBeNull();
    expect(thrown).toBeInstanceOf(c.error);
    const message = (thrown as Error).message;
    for (const m of c.mentions) {
      if (typeof m === 'string') expect(message).toContain(m);
      else expect(message).toMatch(m);
    }
    stillUsable(ctx.backend);
  });

  it('checkNumerics is off by default: NaN flows through without an error', () => {
    const y = ops.matmul(tensor([NaN, 0, 0, 0], [2, 2], { backend: ctx.backend }), tensor([1, 0, 0, 1], [2, 2], { backend: ctx.backend }));
    expect(Number.isNaN(y.toArray()[0])).toBe(true);
  });

  it('a refused state dict changes no parameter', () => {
    const lin = new nn.Linear(4, 3, { backend: ctx.backend, rng: rng() });
    const before = lin.namedParameters().map(([, p]) => Array.from(p.data()));
    expect(() => lin.loadStateDict({ weight: { shape: [3, 4], data: new Float32Array(12).fill(9) }, bias: { shape: [4], data: new Float32Array(4) } })).toThrow(nn.StateDictError);
    expect(lin.namedParameters().map(([, p]) => Array.from(p.data()))).toEqual(before);
  });
});
