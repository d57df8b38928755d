// Self-attention's packed in-projection (nn.MultiheadAttention with query, key and value the
// same tensor: one linear with in_proj_weight [3E, E], heads split by splitHeads) against the
// per-part path it replaces (three linears with narrowed weights, taken when the inputs are
// different tensors): the same outputs and gradients, the key bias's gradient exactly zero in
// both; splitHeads equal to narrow + reshape + transpose12, bit for bit, forward and backward.
import { expect, it } from 'vitest';
import { MultiheadAttention } from '../ts/nn/attention.js';
import { splitHeads } from '../ts/ops/attention.js';
import * as ops from '../ts/ops/index.js';
import { ConfigError, ShapeError } from '../ts/tensor/errors.js';
import { tensor, type Tensor } from '../ts/tensor/tensor.js';
import { describeEachBackend, relErr } from './helpers/backends.js';

describeEachBackend('packed self-attention projection', (ctx) => {
  it('splitHeads is narrow + reshape + transpose12 bit for bit, and adds its gradient into its part only', () => {
    const b = ctx.backend;
    const [B, T, H, D] = [2, 5, 3, 4];
    const E = H * D;
    const values = Array.from({ length: B * T * 3 * E }, (_, i) => Math.sin(i + 1));
    const weights = Array.from({ length: B * H * T * D }, (_, i) => Math.cos(i) - 0.25);
    for (let part = 0; part < 3; part++) {
      const packed = tensor(values, [B, T, 3 * E], { backend: b, requiresGrad: true });
      const copies = tensor(values, [B, T, 3 * E], { backend: b, requiresGrad: true });
      const split = splitHeads(packed, H, 3, part);
      const want = ops.transpose12(ops.reshape(ops.narrow(copies, 2, part * E, E), [B, T, H, D]));
      expect(split.shape).toEqual([B, H, T, D]);
      expect(Array.from(split.data())).toEqual(Array.from(want.data()));
      const w = tensor(weights, [B, H, T, D], { backend: b });
      ops.sum(ops.mul(split, w)).backward();
      ops.sum(ops.mul(want, w)).backward();
      const grad = packed.grad!.data();
      expect(Array.from(grad)).toEqual(Array.from(copies.grad!.data()));
      for (let i = 0; i < grad.length; i++) {
        const column = i % (3 * E);
        if (column < part * E || column >= (part + 1) * E) expect(grad[i]).toBe(0);
      }
    }
  });

  it('splitHeads refuses a part out of range and features that do not split into heads', () => {
    const x = tensor(new Array(2 * 3 * 12).fill(1), [2, 3, 12], { backend: ctx.backend });
    expect(() => splitHeads(x, 2, 3, 3)).toThrow(ConfigError);
    expect(() => splitHeads(x, 2, 3, 3)).toThrow(/splitHeads: part must be an integer in \[0, 3\), got 3/);
    expect(() => splitHeads(x, 5, 3, 0)).toThrow(ShapeError);
    expect(() => splitHeads(tensor([1, 2, 3], [3], { backend: ctx.backend }), 1, 3, 0)).toThrow(ShapeError);
  });

  it('x, x, x (one packed product) gives the outputs and gradients of three separate projections; the key bias gradient is exactly 0', () => {
    const b = ctx.backend;
    const [B, T, E, H] = [2, 6, 16, 4];
    const run = (packed: boolean) => {
      const mha = new MultiheadAttention(E, H, { backend: b });
      // Non-zero biases (PyTorch initialises them to zero), so that each part's bias counts.
      mha.loadStateDict({
        in_proj_weight: tensor(Array.from({ length: 3 * E * E }, (_, i) => 0.3 * Math.sin(0.7 * i)), [3 * E, E], { backend: b }),
        in_proj_bias: tensor(Array.from({ length: 3 * E }, (_, i) => 0.5 * Math.cos(1.3 * i)), [3 * E], { backend: b }),
        'out_proj.weight': tensor(Array.from({ length: E * E }, (_, i) => 0.2 * Math.cos(0.9 * i)), [E, E], { backend: b }),
        'out_proj.bias': tensor(Array.from({ length: E }, (_, i) => 0.1 * i), [E], { backend: b }),
      });
      const values = Array.from({ length: B * T * E }, (_, i) => Math.sin(0.37 * i + 0.2));
      const x = tensor(values, [B, T, E], { backend: b, requiresGrad: true });
      // Distinct tensors with x's values take the per-part path.
      const [k, v]: Tensor[] = packed ? [x, x] : [tensor(values, [B, T, E], { backend: b, requiresGrad: true }), tensor(values, [B, T, E], { backend: b, requiresGrad: true })];
      const { output } = mha.forward(x, k, v, { causal: true });
      const weights = tensor(Array.from({ length: output.size }, (_, i) => Math.cos(0.11 * i)), output.shape, { backend: b });
      ops.sum(ops.mul(output, weights)).backward();
      const dx = Array.from(x.grad!.data());
      if (!packed) for (const t of [k!, v!]) t.grad!.data().forEach((g, i) => (dx[i] = dx[i]! + g));
      return { output: output.data(), dx, dw: mha.inProjWeight.grad!.data(), db: mha.inProjBias.grad!.data() };
    };
    const packed = run(true);
    const separate = run(false);
    const tol = ctx.name === 'reference' ? 1e-12 : 1e-5;
    expect(relErr(packed.output, separate.output)).toBeLessThan(tol);
    expect(relErr(packed.dx, separate.dx)).toBeLessThan(tol);
    expect(relErr(packed.dw, separate.dw)).toBeLessThan(tol);
    expect(relErr(packed.db, separate.db)).toBeLessThan(tol);
    for (const { db } of [packed, separate]) {
      const keyBias = Array.from(db.subarray(E, 2 * E));
      expect(keyBias).toEqual(new Array(E).fill(0));
      // The query and value biases do move.
      expect(Array.from(db.subarray(0, E)).some((g) => g !== 0)).toBe(true);
      expect(Array.from(db.subarray(2 * E)).some((g) => g !== 0)).toBe(true);
    }
  });
});
