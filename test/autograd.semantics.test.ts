// Autograd as a PyTorch user knows it: requiresGrad per tensor, noGrad, detach, .grad,
// retainGraph, a second backward through a freed graph refused, an implicit gradient only
// for a scalar, and intermediates the user's code holds readable after backward (what only
// library code held, inside libraryCall, is freed by it).
import { expect, it } from 'vitest';
import type { Backend } from '../ts/backend/backend.js';
import { noGrad } from '../ts/autograd/tape.js';
import * as ops from '../ts/ops/index.js';
import { AutogradError, ConfigError, DTypeError, ShapeError } from '../ts/tensor/errors.js';
import { libraryCall } from '../ts/tensor/memory.js';
import { tensor, type Shape, type Tensor } from '../ts/tensor/tensor.js';
import { describeEachBackend } from './helpers/backends.js';

const param = (b: Backend, values: number[], shape: Shape = [values.length]): Tensor => tensor(values, shape, { backend: b, requiresGrad: true });
const ones = (b: Backend, shape: Shape): Tensor => tensor(new Array(shape.reduce((n, d) => n * d, 1)).fill(1), shape, { backend: b });
const values = (t: Tensor): number[] => Array.from(t.data(), (v) => Math.round(v * 1e5) / 1e5);

describeEachBackend('autograd semantics', (ctx) => {
  it('requiresGrad is per tensor: only the tensors that ask get a .grad', () => {
    const b = ctx.backend;
    const x = param(b, [1, 2, 3]);
    const w = tensor([4, 5, 6], [3], { backend: b });
    const y = ops.mul(x, w);
    expect(y.requiresGrad).toBe(true);
    expect(y.isLeaf).toBe(false);
    y.backward(ones(b, [3]));
    expect(values(x.grad!)).toEqual([4, 5, 6]);
    expect(w.grad).toBeNull();
    w.setRequiresGrad();
    ops.mul(x, w).backward(ones(b, [3]));
    expect(values(w.grad!)).toEqual([1, 2, 3]);
    // Leaves accumulate until zeroed, as in PyTorch.
    expect(values(x.grad!)).toEqual([8, 10, 12]);
  });

  it('noGrad records nothing: its outputs do not require grad and cannot be backpropagated', () => {
    const b = ctx.backend;
    const x = param(b, [1, 2]);
    const y = noGrad(() => ops.mul(x, x));
    expect(y.requiresGrad).toBe(false);
    expect(y.gradFn).toBeNull();
    expect(() => y.backward(ones(b, [2]))).toThrow(AutogradError);
    expect(x.grad).toBeNull();
  });

  it('detach shares the values and cuts the graph', () => {
    const b = ctx.backend;
    const x = param(b, [1, 2, 3]);
    const squared = ops.mul(x, x);
    const d = squared.detach();
    expect(d.requiresGrad).toBe(false);
    expect(d.isLeaf).toBe(true);
    expect(values(d)).toEqual([1, 4, 9]);
    // z = d * x: dz/dx = d = x^2 (3 x^2 if the graph went through d).
    ops.mul(d, x).backward(ones(b, [3]));
    expect(values(x.grad!)).toEqual([1, 4, 9]);
  });

  it('retainGraph allows a second backward; without it the second one is an AutogradError that changes nothing', () => {
    const b = ctx.backend;
    const x = param(b, [1, 2, 3]);
    const z = ops.mul(ops.scale(x, 1), x);
    z.backward(ones(b, [3]), { retainGraph: true });
    expect(values(x.grad!)).toEqual([2, 4, 6]);
    z.backward(ones(b, [3]));
    expect(values(x.grad!)).toEqual([4, 8, 12]);
    expect(() => z.backward(ones(b, [3]))).toThrow(/backward through the graph a second time/);
    expect(() => z.backward(ones(b, [3]))).toThrow(AutogradError);
    expect(values(x.grad!)).toEqual([4, 8, 12]);
  });

  it('a new graph over an intermediate whose graph was freed cannot be backpropagated either', () => {
    const b = ctx.backend;
    const x = param(b, [1, 2]);
    const h = ops.mul(x, x);
    ops.scale(h, 2).backward(ones(b, [2]));
    const again = ops.scale(h, 3);
    expect(() => again.backward(ones(b, [2]))).toThrow(/second time/);
    expect(values(x.grad!)).toEqual([4, 8]);
  });

  it('an implicit gradient needs a scalar: the error names the shape', () => {
    const b = ctx.backend;
    const y = ops.scale(param(b, [1, 2, 3, 4, 5, 6], [2, 3]), 2);
    expect(() => y.backward()).toThrow(ShapeError);
    expect(() => y.backward()).toThrow(/\[2, 3\]/);
    expect(() => y.backward(undefined, { retain_graph: true } as never)).toThrow(/retainGraph/);
  });

  it('intermediates the user holds stay readable after backward; what only library code held is freed', () => {
    const b = ctx.backend;
    const x = param(b, [1, 2, 3]);
    const w = param(b, [2, 2, 2]);
    const h = ops.mul(x, w);
    const y = ops.mul(h, h);
    y.backward(ones(b, [3]));
    expect(h.disposed).toBe(false);
    expect(values(h)).toEqual([2, 4, 6]);
    expect(h.gradFn).toBeNull();
    expect(values(x.grad!)).toEqual([8, 16, 24]); // 2 h w

    let inner: Tensor | null = null;
    const out = libraryCall(() => {
      inner = ops.mul(x, x);
      return ops.mul(inner, w);
    });
    const loss = ops.scale(out, 1);
    loss.backward(ones(b, [3]));
    expect(inner!.disposed).toBe(true);
    expect(out.disposed).toBe(false);
    expect(values(out)).toEqual([2, 8, 18]);
  });

  it('a view the user holds keeps the storage it shares alive', () => {
    const b = ctx.backend;
    const x = param(b, [1, 2, 3, 4]);
    const view = libraryCall(() => ops.reshape(ops.scale(x, 2), [2, 2]));
    ops.scale(view, 1).backward(ones(b, [2, 2]));
    expect(values(view)).toEqual([2, 4, 6, 8]);
  });

  it('requiresGrad changes only on an f32 leaf', () => {
    const b = ctx.backend;
    const y = ops.mul(param(b, [1]), param(b, [2]));
    expect(() => y.setRequiresGrad(false)).toThrow(ConfigError);
    expect(() => tensor([1], [1], { backend: b, dtype: 'i32' }).setRequiresGrad()).toThrow(DTypeError);
  });
});
