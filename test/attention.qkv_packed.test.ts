// Self-attention on a packed projection (ops.attentionQkvPacked, flash-attn's qkvpacked
// layout): qkv [B, T, 3, H, D] in, [B, T, H, D] out. It must give exactly the numbers of
// ops.attention on the heads split out of the same buffer and merged back (the kernels run
// the same tiles on both layouts), forward and backward, with causal and padding masks and
// dropout, on every backend; keep only the per-row log-sum-exp for backward; and refuse bad
// shapes by name.
import { expect, it } from 'vitest';
import * as ops from '../ts/ops/index.js';
import { ConfigError, ShapeError } from '../ts/tensor/errors.js';
import { tensor, type Tensor } from '../ts/tensor/tensor.js';
import { describeEachBackend } from './helpers/backends.js';
import { randomArray } from './helpers/naive.js';

describeEachBackend('attentionQkvPacked', (ctx) => {
  const cases = [
    // nanoGPT's baby GPT heads (32 wide) across two query tiles.
    { b: 2, t: 100, h: 4, d: 32, causal: true, padded: false, dropout: 0 },
    // 64-wide heads with padding and dropout on the weights.
    { b: 1, t: 70, h: 3, d: 64, causal: true, padded: true, dropout: 0.2 },
    // Not causal, a head size no vector width divides.
    { b: 3, t: 17, h: 2, d: 13, causal: false, padded: true, dropout: 0 },
  ];
  for (const { b, t, h, d, causal, padded, dropout } of cases) {
    it(`B${b} T${t} H${h} D${d}${causal ? ' causal' : ''}${padded ? ' padded' : ''}${dropout ? ` dropout ${dropout}` : ''}: attention() on the split heads, bit for bit`, () => {
      const be = ctx.backend;
      const values = randomArray(b * t * 3 * h * d, 1);
      const keyMask = padded
        ? tensor(Array.from({ length: b * t }, (_, i) => (i % 7 === 5 ? 0 : 1)), [b, t], { dtype: 'u8', backend: be })
        : null;
      const options = { keyMask, causal, dropout, ...(dropout ? { seed: 9, offset: 40 } : {}) };
      const weights = tensor(randomArray(b * t * h * d, 2), [b, t, h, d], { backend: be });

      const qkv = tensor(values, [b, t, 3, h, d], { backend: be, requiresGrad: true });
      const packed = ops.attentionQkvPacked(qkv, options);
      expect(packed.shape).toEqual([b, t, h, d]);
      // Only the per-row log-sum-exp (and the mask's copy) is kept for backward.
      const kept = packed.gradFn!.saved.reduce((n, s) => n + s.length, 0);
      expect(kept).toBe(b * h * t + (padded ? b * t : 0));
      const packedOut = packed.data();
      packed.backward(weights);

      // The same numbers through per-head tensors [B, H, T, D].
      const split = tensor(values, [b, t, 3, h, d], { backend: be, requiresGrad: true });
      const head = (part: number): Tensor => ops.asStrided(split, [b, h, t, d], [t * 3 * h * d, d, 3 * h * d, 1], part * h * d);
      const heads = ops.attention(head(0), head(1), head(2), options);
      const merged = ops.transpose12(heads);
      const mergedOut = merged.data();
      merged.backward(weights);

      expect(Array.from(packedOut)).toEqual(Array.from(mergedOut));
      expect(Array.from(qkv.grad!.data())).toEqual(Array.from(split.grad!.data()));
      // Not vacuous: every part of qkv received a gradient.
      const g = qkv.grad!.data();
      for (let part = 0; part < 3; part++) {
        let norm = 0;
        for (let i = 0; i < b * t; i++) for (let j = 0; j < h * d; j++) norm += Math.abs(g[(i * 3 + part) * h * d + j]!);
        expect(norm, `part ${part}`).toBeGreaterThan(0);
      }
    });
  }

  it('refuses a qkv that is not [B, T, 3, H, D], a key mask of another shape and dropout without a seed', () => {
    const be = ctx.backend;
    const flat = tensor(new Float32Array(2 * 5 * 12), [2, 5, 12], { backend: be });
    expect(() => ops.attentionQkvPacked(flat)).toThrow(ShapeError);
    expect(() => ops.attentionQkvPacked(flat)).toThrow(/attentionQkvPacked: qkv must be \[B, T, 3, H, D\], got \[2, 5, 12\]/);
    const two = tensor(new Float32Array(2 * 5 * 2 * 2 * 3), [2, 5, 2, 2, 3], { backend: be });
    expect(() => ops.attentionQkvPacked(two)).toThrow(ShapeError);
    const qkv = tensor(new Float32Array(2 * 5 * 3 * 2 * 3), [2, 5, 3, 2, 3], { backend: be });
    const keyMask = tensor(new Uint8Array(2 * 4).fill(1), [2, 4], { dtype: 'u8', backend: be });
    expect(() => ops.attentionQkvPacked(qkv, { keyMask })).toThrow(/attentionQkvPacked: keyMask \[B, Tk\]/);
    expect(() => ops.attentionQkvPacked(qkv, { dropout: 0.1 })).toThrow(ConfigError);
  });
});
