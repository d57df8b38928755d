// Tensor methods as a PyTorch user writes them (x.matmul(w).add(b).relu().sum()) on every
// backend: chaining, broadcasting, gradients reduced over broadcast dims, reductions to 0-d,
// max with indices, NaN propagation, and the errors that name the op and the shapes.
import { expect, it } from 'vitest';
import * as ops from '../ts/ops/index.js';
import { ShapeError, ConfigError } from '../ts/tensor/errors.js';
import { tensor } from '../ts/tensor/tensor.js';
import { describeEachBackend } from './helpers/backends.js';

describeEachBackend('tensor methods', (ctx) => {
  const t = (data: number[], shape: number[], requiresGrad = false) => tensor(data, shape, { backend: ctx.backend, requiresGrad });

  it('x.matmul(w).add(b).relu().sum() chains and backpropagates, b summed over the batch', () => {
    const x = t([1, 2, -3, 4, 0.5, -1], [3, 2]);
    const w = t([1, -1, 2, 0.5], [2, 2], true);
    const b = t([0.25, -10], [2], true);
    const loss = x.matmul(w).add(b).relu().sum();
    expect(loss.shape).toEqual([]);
    // h = x·w + b = [[5.25, -10], [5.25, -11], [-1.25, -10.5]]: only column 0 of rows 0, 1 pass relu.
    expect(loss.item()).toBeCloseTo(10.5, 5);
    loss.backward();
    expect(Array.from(b.grad!.data())).toEqual([2, 0]);
    expect(Array.from(w.grad!.data())).toEqual([-2, 0, 6, 0]);
  });

  it('broadcasting follows NumPy: [4, 1, 5] + [3, 1] is [4, 3, 5]; mismatches name both shapes', () => {
    const a = t(Array.from({ length: 20 }, (_, i) => i), [4, 1, 5]);
    const b = t([100, 200, 300], [3, 1]);
    const y = a.add(b);
    expect(y.shape).toEqual([4, 3, 5]);
    expect(Array.from(y.data()).slice(0, 6)).toEqual([100, 101, 102, 103, 104, 200]);
    expect(() => a.add(t([1, 2], [2]))).toThrow(ShapeError);
    expect(() => a.add(t([1, 2], [2]))).toThrow(/\[4, 1, 5\] and \[2\] cannot be broadcast/);
  });

  it('max(dim) gives values and first indices; amax over all dims is 0-d; NaN propagates', () => {
    const x = t([1, 3, 3, 0, -1, 2], [2, 3]);
    const { values, indices } = x.max(1);
    expect(Array.from(values.data())).toEqual([3, 2]);
    expect(Array.from(indices.data())).toEqual([1, 2]);
    expect(indices.dtype).toBe('i32');
    expect(x.max().shape).toEqual([]);
    expect(x.max().item()).toBe(3);
    expect(Array.from(x.argmin(1).data())).toEqual([0, 1]);
    expect(x.argmax(null, { keepdim: true }).shape).toEqual([1, 1]);
    expect(x.argmax().item()).toBe(1);
    const n = t([1, NaN, 2], [3]);
    expect(n.relu().data()[1]).toBeNaN();
    expect(n.amax().item()).toBeNaN();
    expect(n.maximum(0).data()[1]).toBeNaN();
  });

  it('a number operand of maximum / where keeps its gradient path (relu as maximum(x, 0))', () => {
    const x = t([-1, 2, 0.5], [3], true);
    x.maximum(0).mul(t([1, 2, 3], [3])).sum().backward();
    expect(Array.from(x.grad!.data())).toEqual([0, 2, 3]);
    const z = t([4, 5], [2], true);
    ops.where(tensor([1, 0], [2], { backend: ctx.backend, dtype: 'u8' }), z, -1).sum().backward();
    expect(Array.from(z.grad!.data())).toEqual([1, 0]);
  });

  it("comparisons give u8 masks for where and maskedFill (nanoGPT's masked_fill(tril == 0, -inf))", () => {
    const x = t([0, 2, -1, 0], [2, 2]);
    const m = x.eq(0);
    expect(m.dtype).toBe('u8');
    expect(Array.from(m.data())).toEqual([1, 0, 0, 1]);
    expect(x.maskedFill(x.tril().eq(0), -Infinity).toArray()).toEqual([-Infinity, -Infinity, -1, -Infinity]);
    expect(ops.where(x.gt(0), x, 5).toArray()).toEqual([5, 2, 5, 5]);
  });

  it('views chain: reshape / permute / slice / expand / cat / split', () => {
    const x = t(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]);
    expect(x.permute(2, 0, 1).shape).toEqual([4, 2, 3]);
    expect(Array.from(x.slice(-1, 1, null, 2).data()).slice(0, 4)).toEqual([1, 3, 5, 7]);
    expect(x.view(6, 4).transpose(0, 1).shape).toEqual([4, 6]);
    expect(t([1, 2], [2, 1]).expand(2, 3).toArray()).toEqual([1, 1, 1, 2, 2, 2]);
    const [p, q] = x.split([1, 2], 1);
    expect([p!.shape, q!.shape]).toEqual([[2, 1, 4], [2, 2, 4]]);
    expect(ops.cat([p!, q!], 1).toArray()).toEqual(x.toArray());
  });

  it('a strided kernel called with a view past its buffer is a RangeError naming the view, on every backend', () => {
    const b = ctx.backend;
    const [out, inp] = [b.alloc('f32', 4), b.alloc('f32', 4)];
    const [shape, strides] = [b.fromArray('i32', [2, 2]), b.fromArray('i32', [2, 1])];
    expect(() => b.stridedCopyForward(out, inp, shape, strides, 1)).toThrow(
      'stridedCopyForward: the view of inp (shape [2, 2], strides [2, 1], offset 1) reaches [1, 4], outside its 4 elements',
    );
    const long = b.alloc('f32', 5);
    expect(() => b.stridedCopyForward(long, inp, shape, strides, 0)).toThrow('stridedCopyForward: out has length 5, expected 4');
    for (const s of [out, inp, shape, strides, long]) b.free(s);
  });

  it('errors name the op and the values', () => {
    const x = t([1, 2, 3, 4], [2, 2]);
    expect(() => x.sum(2)).toThrow(/sum: dim 2 is out of range/);
    expect(() => x.permute(0, 0)).toThrow(/permute/);
    expect(() => x.expand(3, 2)).toThrow(/cannot expand \[2, 2\]/);
    expect(() => x.softplus({ beta: 1, treshold: 5 } as never)).toThrow(ConfigError);
    expect(() => x.clamp()).toThrow(/clamp: at least one of min and max/);
    expect(() => x.gather(1, tensor([0, 2, 1, 0], [2, 2], { backend: ctx.backend, dtype: 'i32' }))).toThrow(/gather/);
  });
});
