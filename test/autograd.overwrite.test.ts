// A gradient buffer nothing has written yet is allocated without a zero fill: the first op
// that can write it whole (a linear's dx and dweight, the packed attention's dqkv, a residual
// add's copy, cross-entropy's dlogits) overwrites it, and later contributions add to it; a
// parameter's gradient starts so too (its first backward, or after zeroGrad(), which sets it
// to none as PyTorch does). With uninitialised memory poisoned (NaN), the gradients must still
// equal the reference backend's, whichever consumer runs first, and no zero fill may run for
// a gradient written that way.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Backend, Storage } from '../ts/backend/backend.js';
import type { NativeBackend } from '../ts/backend/native.js';
import type { WasmBackend } from '../ts/backend/wasm.js';
import * as ops from '../ts/ops/index.js';
import { tensor, type Tensor } from '../ts/tensor/tensor.js';
import { describeEachBackend, getBackend, relErr } from './helpers/backends.js';
import { randomArray } from './helpers/naive.js';

/** Runs loss.backward(), counting the fill(·, 0) calls on buffers of the given lengths. */
function backwardCountingZeroFills(be: Backend, loss: Tensor, lengths: number[]): number {
  let zeroFills = 0;
  const { fill } = be;
  (be as { fill: Backend['fill'] }).fill = (s: Storage, value: number) => {
    if (value === 0 && lengths.includes(s.length)) zeroFills++;
    fill.call(be, s, value);
  };
  try {
    loss.backward();
  } finally {
    delete (be as Partial<Backend>).fill;
  }
  return zeroFills;
}

/** x.grad of sum(y1) + sum(y2) · 0.5 + sum(attention out), where h = 2·x [B, T, C] feeds two
 * linears to [B, T, 6] (one overwrites h's gradient, the other adds) and a third to qkv, which
 * a packed self-attention reads in place. `zeroFills` counts fill(·, 0) calls during backward
 * on buffers of h's size (the attention output's too: sum's backward adds into its gradient)
 * and of qkv's. */
function gradients(be: Backend, order: 'gelu first' | 'relu first'): { grad: Float32Array | Float64Array; zeroFills: number } {
  const [b, t, c, heads, out] = [2, 5, 8, 2, 6];
  const param = (shape: number[], seed: number, grad = true): Tensor =>
    tensor(randomArray(shape.reduce((p, q) => p * q, 1), seed), shape, { backend: be, requiresGrad: grad });
  const x = param([b, t, c], 1);
  const [w1, w2, wqkv] = [param([out, c], 2), param([out, c], 3), param([3 * c, c], 4)];
  const h = ops.scale(x, 2);
  const first = (w: Tensor, act: 'gelu' | 'relu'): Tensor => ops.sum(ops.linear(h, w, null, { activation: act }));
  const [y1, y2] = order === 'gelu first' ? [first(w1, 'gelu'), first(w2, 'relu')] : [first(w2, 'relu'), first(w1, 'gelu')];
  const qkv = ops.reshape(ops.linear(h, wqkv), [b, t, 3, heads, c / heads]);
  const att = ops.sum(ops.attentionQkvPacked(qkv, { causal: true }));
  const loss = ops.add(ops.add(y1, ops.scale(y2, 0.5)), att);
  const zeroFills = backwardCountingZeroFills(be, loss, [b * t * c, 3 * b * t * c]);
  return { grad: x.grad!.data(), zeroFills };
}

/** x.grad of crossEntropy(logits) (+ 0.5 · sum(logits) where `alsoSum`), logits = linear(2·x)
 * [B, T, V] with some targets ignored and label smoothing: the cross-entropy's backward writes
 * the logits' gradient when it runs first. `zeroFills` counts fill(·, 0) calls during backward
 * on buffers of the logits' size. */
function crossEntropyGradients(be: Backend, alsoSum: boolean): { grad: Float32Array | Float64Array; zeroFills: number } {
  const [b, t, c, vocab] = [2, 5, 8, 11];
  const x = tensor(randomArray(b * t * c, 5), [b, t, c], { backend: be, requiresGrad: true });
  const w = tensor(randomArray(vocab * c, 6), [vocab, c], { backend: be, requiresGrad: true });
  const logits = ops.linear(ops.scale(x, 2), w);
  const ids = Array.from({ length: b * t }, (_, i) => (i % 4 === 1 ? -100 : (i * 7) % vocab));
  const targets = tensor(Int32Array.from(ids), [b, t], { backend: be, dtype: 'i32' });
  const ce = ops.crossEntropy(logits, targets, { labelSmoothing: 0.1 });
  const loss = alsoSum ? ops.add(ce, ops.scale(ops.sum(logits), 0.5)) : ce;
  const zeroFills = backwardCountingZeroFills(be, loss, [b * t * vocab]);
  return { grad: x.grad!.data(), zeroFills };
}

/** The gradients of a weight read by two linears (the first writes its gradient, the second
 * adds) and of their biases, from none (a first backward, or after zeroGrad()), and of a
 * second pass that adds to them; `zeroFills` counts fill(·, 0) on the weight's size in the
 * first backward. */
function weightGradients(be: Backend): { grads: (Float32Array | Float64Array)[]; zeroFills: number } {
  const [rows, c, out] = [6, 8, 5];
  const param = (shape: number[], seed: number): Tensor =>
    tensor(randomArray(shape.reduce((p, q) => p * q, 1), seed), shape, { backend: be, requiresGrad: true });
  const [x, w, b1, b2] = [param([rows, c], 11), param([out, c], 12), param([out], 13), param([out], 14)];
  const loss = () => ops.add(ops.sum(ops.linear(x, w, b1, { activation: 'gelu' })), ops.scale(ops.sum(ops.linear(ops.scale(x, 3), w, b2, { activation: 'relu' })), 0.5));
  const zeroFills = backwardCountingZeroFills(be, loss(), [out * c]);
  const first = [w, b1, b2].map((p) => p.grad!.data());
  loss().backward();
  return { grads: [...first, ...[w, b1, b2].map((p) => p.grad!.data())], zeroFills };
}

describeEachBackend('gradients written by their first op', (ctx) => {
  beforeAll(() => (ctx.backend as NativeBackend | WasmBackend).setPoisonUninitialised?.(true));
  afterAll(() => (ctx.backend as NativeBackend | WasmBackend).setPoisonUninitialised?.(false));

  for (const order of ['gelu first', 'relu first'] as const) {
    it(`h feeds three linears (${order}): x.grad equals the reference backend's, and neither h's gradient nor qkv's is zero-filled`, async () => {
      const want = gradients(await getBackend('reference'), order).grad;
      const { grad, zeroFills } = gradients(ctx.backend, order);
      expect(grad.every(Number.isFinite)).toBe(true);
      expect(relErr(grad, want)).toBeLessThan(1e-5);
      // h's gradient is written by the first linear's dx (the others add), the attention's
      // dqkv by the kernel, and the adds hand over or copy: the zero fills of these sizes are
      // the attention output's gradient, which sum's backward adds into, and x's own (a leaf's
      // first gradient), which scale's backward adds into.
      expect(zeroFills).toBe(2);
    });
  }

  it("a weight's gradient from none is written by the first linear's dweight (no zero fill), later ones add", async () => {
    const want = weightGradients(await getBackend('reference')).grads;
    const { grads, zeroFills } = weightGradients(ctx.backend);
    grads.forEach((g, i) => {
      expect(g.every(Number.isFinite), `gradient ${i}`).toBe(true);
      expect(relErr(g, want[i]!), `gradient ${i}`).toBeLessThan(1e-5);
    });
    expect(zeroFills).toBe(0);
  });

  for (const alsoSum of [false, true]) {
    // Read by the cross-entropy alone, its backward writes the logits' gradient; with a sum
    // reading them too, whichever runs first writes (or zero-fills) and the other adds.
    it(`cross-entropy (ignored rows, label smoothing)${alsoSum ? ' and sum' : ''} reading the logits: x.grad equals the reference backend's`, async () => {
      const want = crossEntropyGradients(await getBackend('reference'), alsoSum).grad;
      const { grad, zeroFills } = crossEntropyGradients(ctx.backend, alsoSum);
      expect(grad.every(Number.isFinite)).toBe(true);
      expect(relErr(grad, want)).toBeLessThan(1e-5);
      if (!alsoSum) expect(zeroFills).toBe(0);
    });
  }
});
