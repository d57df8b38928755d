// Flash attention at the ops level: what it keeps for backward is O(T) per head (never a
// [Tq, Tk] tensor), and its output and gradients equal the materialised composition
// softmax(q·kᵀ·scale, mask)·v built from matmul / scale / softmax, at sizes that cross the
// kernels' query (48) and key (128) tiles, with causal and padding masks, on every backend.
import { expect, it } from 'vitest';
import * as ops from '../ts/ops/index.js';
import { tensor, type Tensor } from '../ts/tensor/tensor.js';
import { describeEachBackend } from './helpers/backends.js';
import { randomArray } from './helpers/naive.js';

describeEachBackend('flash attention', (ctx) => {
  const cases = [
    { b: 2, h: 2, tq: 150, tk: 150, d: 16, causal: true },
    { b: 1, h: 3, tq: 60, tk: 290, d: 8, causal: false },
    { b: 2, h: 1, tq: 200, tk: 70, d: 12, causal: true },
  ];
  for (const { b, h, tq, tk, d, causal } of cases) {
    it(`B${b} H${h} Tq${tq} Tk${tk} D${d}${causal ? ' causal' : ''} + padding: equals the materialised softmax(q·kᵀ)·v, output and gradients`, () => {
      const be = ctx.backend;
      const param = (shape: number[], seed: number): Tensor =>
        tensor(randomArray(shape.reduce((x, y) => x * y, 1), seed), shape, { backend: be, requiresGrad: true });
      const q = param([b, h, tq, d], 1);
      const k = param([b, h, tk, d], 2);
      const v = param([b, h, tk, d], 3);
      // Padding: every fifth key of batch 0 and the last 20 keys of the last batch.
      const keep = Array.from({ length: b * tk }, (_, i) => {
        const [bi, j] = [Math.floor(i / tk), i % tk];
        return (bi === 0 && j % 5 === 4) || (bi === b - 1 && j >= tk - 20) ? 0 : 1;
      });
      const keyMask = tensor(keep, [b, tk], { dtype: 'u8', backend: be });
      const scale = 1 / Math.sqrt(d);
      const weights = tensor(randomArray(b * h * tq * d, 4), [b, h, tq, d], { backend: be });

      const flash = ops.attention(q, k, v, { keyMask, causal });
      // Only the per-row log-sum-exp and a copy of the mask are kept for backward.
      const kept = flash.gradFn!.saved.reduce((n, s) => n + s.length, 0);
      expect(kept).toBe(b * h * tq + b * tk);
      expect(kept).toBeLessThan(tq * tk);
      // Gradients of sum(out ∘ weights).
      flash.backward(weights);
      const flashOut = flash.data();
      const flashGrads = [q, k, v].map((t) => t.grad!.data());
      for (const t of [q, k, v]) t.grad = null;

      // The same thing with a [Tq, Tk] score matrix.
      const mask = tensor(Array.from({ length: b * h * tq * tk }, (_, i) => {
        const j = i % tk;
        const row = Math.floor(i / tk) % tq;
        const bi = Math.floor(i / (h * tq * tk));
        return (causal && j > row) || keep[bi * tk + j] === 0 ? 0 : 1;
      }), [b * h, tq, tk], { dtype: 'u8', backend: be });
      const scores = ops.scale(ops.matmul(ops.reshape(q, [b * h, tq, d]), ops.reshape(k, [b * h, tk, d]), { transB: true }), scale);
      const probs = ops.softmax(scores, mask);
      const plain = ops.reshape(ops.matmul(probs, ops.reshape(v, [b * h, tk, d])), [b, h, tq, d]);
      const plainOut = plain.data();
      plain.backward(weights);
      const tol = be.name === 'reference' ? 1e-10 : 2e-5;
      expectClose(flashOut, plainOut, tol, 'out');
      for (const [i, t] of [q, k, v].entries()) expectClose(flashGrads[i]!, t.grad!.data(), tol, `d${'qkv'[i]}`);
    });
  }

  it('no queries or no keys: empty output or zeros, finite gradients', () => {
    const be = ctx.backend;
    for (const [tq, tk] of [[0, 3], [3, 0]] as const) {
      const t = (n: number): Tensor => tensor(new Float32Array(2 * n * 4).fill(0.5), [1, 2, n, 4], { backend: be, requiresGrad: true });
      const [q, k, v] = [t(tq), t(tk), t(tk)];
      const out = ops.attention(q, k, v, { causal: true });
      expect(out.shape).toEqual([1, 2, tq, 4]);
      expect(Array.from(out.data()).every((x) => x === 0)).toBe(true);
      out.backward(tensor(new Float32Array(out.size).fill(1), out.shape, { backend: be }));
      for (const x of [q, k, v]) expect(Array.from(x.grad!.data()).every((g) => g === 0)).toBe(true);
    }
  });

  it('attentionWithProbs returns weights whose rows sum to 1, 0 where masked', () => {
    const be = ctx.backend;
    const [b, h, t, d] = [1, 2, 140, 4];
    const q = tensor(randomArray(b * h * t * d, 5), [b, h, t, d], { backend: be });
    const keyMask = tensor(Array.from({ length: t }, (_, j) => (j % 3 === 0 ? 0 : 1)), [b, t], { dtype: 'u8', backend: be });
    const { probs } = ops.attentionWithProbs(q, q, q, { keyMask, causal: true });
    expect(probs.shape).toEqual([b, h, t, t]);
    const p = probs.data();
    for (let r = 0; r < b * h * t; r++) {
      const i = r % t;
      let sum = 0;
      for (let j = 0; j < t; j++) {
        const x = p[r * t + j]!;
        if (j > i || j % 3 === 0) expect(x).toBe(0);
        sum += x;
      }
      // Row 0 sees only key 0, which is padding: no key, all zeros.
      expect(sum).toBeCloseTo(i === 0 ? 0 : 1, 5);
    }
  });
});

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  expect(got.length, what).toBe(want.length);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  expect(worst / Math.max(scale, 1e-30), what).toBeLessThan(tol);
}
