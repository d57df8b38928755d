// ops.asStrided (PyTorch's as_strided): one strided copy of a contiguous tensor. The head
// split of a packed [B, T, 3C] projection must equal narrow + reshape + transpose12 in values
// and gradient; overlapping windows sum their gradients; a view past the end is a ShapeError.
import { expect, it } from 'vitest';
import * as ops from '../ts/ops/index.js';
import { ConfigError, ShapeError } from '../ts/tensor/errors.js';
import { tensor } from '../ts/tensor/tensor.js';
import { describeEachBackend } from './helpers/backends.js';

describeEachBackend('asStrided', (ctx) => {
  it('splits the heads of a packed qkv exactly as narrow + reshape + transpose12, forward and backward', () => {
    const b = ctx.backend;
    const [B, T, nh, hs] = [2, 3, 2, 2];
    const C = nh * hs;
    const values = Array.from({ length: B * T * 3 * C }, (_, i) => Math.sin(i + 1));
    const weights = Array.from({ length: B * nh * T * hs }, (_, i) => (i % 5) - 2);
    for (let part = 0; part < 3; part++) {
      const viaStrides = tensor(values, [B, T, 3 * C], { backend: b, requiresGrad: true });
      const viaCopies = tensor(values, [B, T, 3 * C], { backend: b, requiresGrad: true });
      const a = ops.asStrided(viaStrides, [B, nh, T, hs], [T * 3 * C, hs, 3 * C, 1], part * C);
      const c = ops.transpose12(ops.reshape(ops.narrow(viaCopies, 2, part * C, C), [B, T, nh, hs]));
      expect(a.shape).toEqual([B, nh, T, hs]);
      expect(Array.from(a.data())).toEqual(Array.from(c.data()));
      const w = tensor(weights, [B, nh, T, hs], { backend: b });
      ops.sum(ops.mul(a, w)).backward();
      ops.sum(ops.mul(c, w)).backward();
      expect(Array.from(viaStrides.grad!.data())).toEqual(Array.from(viaCopies.grad!.data()));
      // Only this part's columns receive gradient.
      const grad = viaStrides.grad!.data();
      for (let i = 0; i < grad.length; i++) {
        const column = i % (3 * C);
        if (column < part * C || column >= (part + 1) * C) expect(grad[i]).toBe(0);
      }
    }
  });

  it('overlapping windows sum their gradients (sliding windows of 3 with stride 1)', () => {
    const b = ctx.backend;
    const x = tensor([1, 2, 3, 4, 5], [5], { backend: b, requiresGrad: true });
    const windows = ops.asStrided(x, [3, 3], [1, 1]);
    expect(Array.from(windows.data())).toEqual([1, 2, 3, 2, 3, 4, 3, 4, 5]);
    ops.sum(windows).backward();
    expect(Array.from(x.grad!.data())).toEqual([1, 2, 3, 2, 1]);
  });

  it('refuses a view past the end, mismatched lengths and negative strides, naming the op', () => {
    const b = ctx.backend;
    const x = tensor([1, 2, 3, 4, 5, 6], [2, 3], { backend: b });
    expect(() => ops.asStrided(x, [2, 3], [3, 1], 1)).toThrow(ShapeError);
    expect(() => ops.asStrided(x, [2, 3], [3, 1], 1)).toThrow(/asStrided: .*reach element 6 of x \[2, 3\] \(6 elements\)/);
    expect(() => ops.asStrided(x, [2, 3], [3])).toThrow(ShapeError);
    expect(() => ops.asStrided(x, [2, 3], [-3, 1])).toThrow(ConfigError);
    expect(ops.asStrided(x, [0, 3], [3, 1], 6).shape).toEqual([0, 3]);
    expect(Array.from(ops.asStrided(x, [3], [2], 1).data())).toEqual([2, 4, 6]);
  });
});
