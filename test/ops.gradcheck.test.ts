// Gradient checks of every tensor op's backward (broadcast binary ops, where, unary math and
// its scalar forms, reductions, max along a dim, softmax on a dim, views, cat / stack / split,
// triangles, gather / scatter_add / index_select / embedding with padding_idx, broadcast
// matmul) through the public ops on the float64 reference backend, against central
// differences. Inputs avoid the kinks (relu and abs at 0, clamp bounds, ties).
import { beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../ts/backend/backend.js';
import * as ops from '../ts/ops/index.js';
import { tensor, type Tensor } from '../ts/tensor/tensor.js';
import { getBackend } from './helpers/backends.js';
import { gradcheck, randomArray } from './helpers/gradcheck.js';

let backend: Backend;
beforeAll(async () => {
  backend = await getBackend('reference');
});

const TOL = 1e-6;

/** Checks op's gradient with respect to every float input of the given shapes. */
function check(shapes: number[][], op: (xs: Tensor[]) => Tensor, range: [number, number] = [-2, 2], seed = 1): void {
  const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);
  const inputs = shapes.map((s, i) => randomArray(size(s), seed + i, ...range));
  const make = (data: Float64Array[], requiresGrad: boolean): Tensor[] =>
    data.map((d, i) => tensor(d, shapes[i]!, { backend, requiresGrad }));
  const r = gradcheck(
    (data) => Float64Array.from(op(make(data, false)).data()),
    inputs,
    (w) => {
      const xs = make(inputs, true);
      const y = op(xs);
      y.backward(tensor(w, y.shape, { backend }));
      return xs.map((x) => Float64Array.from(x.grad!.data()));
    },
  );
  expect(r.relError, JSON.stringify(r.worst)).toBeLessThan(TOL);
}

const ints = (values: number[], shape: number[]): Tensor => tensor(values, shape, { backend, dtype: 'i32' });
const bytes = (values: number[], shape: number[]): Tensor => tensor(values, shape, { backend, dtype: 'u8' });

describe('ops gradcheck [reference]', () => {
  for (const name of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'] as const) {
    it(`${name} with broadcasting`, () => check([[4, 1, 5], [3, 1]], ([a, b]) => ops[name](a!, b!)));
    it(`${name} against a 0-d tensor`, () => check([[3, 2], []], ([a, b]) => ops[name](a!, b!)));
  }
  it('pow with broadcasting (positive base)', () => check([[2, 3, 1], [3, 4]], ([a, b]) => ops.pow(a!, b!), [0.5, 2]));
  it('scalar forms', () => {
    check([[3, 4]], ([x]) => ops.sub(2, x!));
    check([[3, 4]], ([x]) => ops.div(1.5, x!), [0.5, 2]);
    check([[3, 4]], ([x]) => ops.pow(x!, -1.5), [0.5, 2]);
    check([[3, 4]], ([x]) => ops.pow(2, x!));
    check([[3, 4]], ([x]) => ops.mul(ops.add(x!, 2.5), -1.5).div(3));
  });
  it('where and maskedFill with broadcast conditions', () => {
    const cond = bytes([1, 0, 1, 1], [1, 4, 1]);
    check([[3, 1, 5], [4, 5]], ([a, b]) => ops.where(cond, a!, b!));
    check([[3, 4, 5]], ([x]) => ops.maskedFill(x!, cond.reshape([4, 1]), -1));
  });
  const unary: [string, (x: Tensor) => Tensor, [number, number]][] = [
    ['exp', ops.exp, [-2, 2]], ['log', ops.log, [0.2, 3]], ['sqrt', ops.sqrt, [0.2, 3]], ['rsqrt', ops.rsqrt, [0.2, 3]],
    ['tanh', ops.tanh, [-2, 2]], ['sigmoid', ops.sigmoid, [-3, 3]], ['silu', ops.silu, [-3, 3]], ['neg', ops.neg, [-2, 2]],
    ['abs', ops.abs, [0.1, 2]], ['relu', ops.relu, [0.1, 2]], ['gelu', ops.gelu, [-3, 3]], ['geluTanh', ops.geluTanh, [-3, 3]],
    ['softplus', (x) => ops.softplus(x, { beta: 2, threshold: 3 }), [-2, 1.4]],
    ['clamp', (x) => ops.clamp(x, -0.5, 0.75), [-0.4, 0.7]],
  ];
  for (const [name, f, range] of unary) it(name, () => check([[3, 5]], ([x]) => f(x!), range));

  it('sum, mean, var, amax, amin, logsumexp over dims with keepdim', () => {
    for (const dim of [[0, 2], [-1], [1], null] as (number[] | null)[]) {
      for (const keepdim of [false, true]) {
        check([[3, 4, 5]], ([x]) => ops.sum(x!, dim, { keepdim }));
        check([[3, 4, 5]], ([x]) => ops.mean(x!, dim, { keepdim }));
        check([[3, 4, 5]], ([x]) => ops.variance(x!, dim, { keepdim, correction: 1 }));
        check([[3, 4, 5]], ([x]) => ops.amax(x!, dim, { keepdim }));
        check([[3, 4, 5]], ([x]) => ops.amin(x!, dim, { keepdim }));
        check([[3, 4, 5]], ([x]) => ops.logsumexp(x!, dim, { keepdim }));
      }
    }
  });
  it('max and min along a dim', () => {
    check([[3, 5, 2]], ([x]) => ops.max(x!, 1).values);
    check([[3, 5, 2]], ([x]) => ops.min(x!, 0, { keepdim: true }).values);
  });
  it('softmax and logSoftmax on a middle dim', () => {
    check([[3, 5, 7]], ([x]) => ops.softmaxDim(x!, 1));
    check([[3, 5, 7]], ([x]) => ops.logSoftmax(x!, 1));
  });
  it('views: permute, transpose, expand, slice with steps, squeeze / unsqueeze / flatten', () => {
    check([[2, 3, 4]], ([x]) => ops.permute(x!, [2, 0, 1]));
    check([[2, 3, 4]], ([x]) => ops.transpose(x!, 0, -1));
    check([[3, 1, 5]], ([x]) => ops.expand(x!, [2, 3, 4, 5]));
    check([[3, 9, 4]], ([x]) => ops.slice(x!, 1, 1, 7, 2));
    check([[3, 1, 4]], ([x]) => ops.flatten(ops.unsqueeze(ops.squeeze(x!, 1), 0)));
  });
  it('cat, stack, split, chunk', () => {
    check([[2, 3], [2, 5], [2, 1]], (xs) => ops.cat(xs, -1));
    check([[2, 3], [2, 3]], (xs) => ops.stack(xs, 1));
    check([[3, 9]], ([x]) => ops.cat(ops.split(x!, 4, 1).map((p, i) => ops.mul(p, i + 1)), 1));
    check([[5, 2]], ([x]) => ops.cat(ops.chunk(x!, 2, 0).reverse(), 0));
  });
  it('tril and triu', () => {
    check([[2, 4, 6]], ([x]) => ops.tril(x!, -1));
    check([[2, 4, 6]], ([x]) => ops.triu(x!, 2));
  });
  it('gather, scatterAdd, indexSelect, embedding with paddingIdx (repeated indices)', () => {
    check([[3, 4]], ([x]) => ops.gather(x!, 1, ints([0, 3, 3, 1, 2, 2, 0, 0, 1], [3, 3])));
    check([[3, 7], [3, 2]], ([x, src]) => ops.scatterAdd(x!, 1, ints([6, 6, 0, 1, 2, 0], [3, 2]), src!));
    check([[2, 5, 3]], ([x]) => ops.indexSelect(x!, 1, ints([4, 0, 4], [3])));
    // paddingIdx not among the ids: the padding row's zero gradient is no derivative (below).
    check([[6, 3]], ([w]) => ops.embedding(ints([3, 2, 3, 5], [2, 2]), w!, { paddingIdx: 1 }));
  });
  it('matmul with batch broadcasting and 1-D operands', () => {
    check([[2, 1, 3, 4], [3, 4, 2]], ([a, b]) => ops.matmul(a!, b!));
    check([[4], [4, 3]], ([a, b]) => ops.matmul(a!, b!));
    check([[2, 3, 4], [4]], ([a, b]) => ops.matmul(a!, b!));
  });
  it('the padding row gets no gradient', () => {
    const w = tensor(randomArray(12, 3), [4, 3], { backend, requiresGrad: true });
    ops.embedding(ints([1, 1, 2], [3]), w, { paddingIdx: 1 }).sum().backward();
    expect(Array.from(w.grad!.data())).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0]);
  });
});
