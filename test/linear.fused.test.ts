// The fused linear op (bias and activation in the kernel call) against the same layer built
// from separate ops (matmul, addBias, relu / gelu / geluTanh), forward and every gradient, on every
// backend; and the backend-level rule that scratch buffers are present exactly when the
// activation needs them.
import { expect, it } from 'vitest';
import * as ops from '../ts/ops/index.js';
import { tensor, type Tensor } from '../ts/tensor/tensor.js';
import { describeEachBackend } from './helpers/backends.js';
import { randomArray } from './helpers/naive.js';

describeEachBackend('fused linear', (ctx) => {
  for (const activation of [null, 'relu', 'gelu', 'gelu_tanh'] as const) {
    for (const withBias of [true, false]) {
      it(`activation ${activation ?? 'none'}${withBias ? ' + bias' : ''} over [3, 45, 19] -> 70 equals matmul, addBias, ${activation ?? 'nothing'}`, () => {
        const be = ctx.backend;
        const param = (shape: number[], seed: number): Tensor =>
          tensor(randomArray(shape.reduce((a, b) => a * b, 1), seed), shape, { backend: be, requiresGrad: true });
        const [x, w, b] = [param([3, 45, 19], 1), param([70, 19], 2), withBias ? param([70], 3) : null];
        const weights = tensor(randomArray(3 * 45 * 70, 4), [3, 45, 70], { backend: be });
        const grads = (y: Tensor): number[][] => {
          const out = Array.from(y.data());
          y.backward(weights);
          const g = [x, w, b].filter((t) => t !== null).map((t) => Array.from(t.grad!.data()));
          for (const t of [x, w, b]) if (t) t.grad = null;
          return [out, ...g];
        };
        const fused = grads(ops.linear(x, w, b, { activation }));
        let y = ops.reshape(ops.matmul(ops.reshape(x, [135, 19]), w, { transB: true }), [3, 45, 70]);
        if (b) y = ops.addBias(y, b);
        if (activation === 'relu') y = ops.relu(y);
        if (activation === 'gelu') y = ops.gelu(y);
        if (activation === 'gelu_tanh') y = ops.geluTanh(y);
        const plain = grads(y);
        // The same kernels in the same order: equal to the last bit on every backend.
        expect(fused.length).toBe(plain.length);
        for (const [i, f] of fused.entries()) expect(f, ['out', 'dx', 'dweight', 'dbias'][i]).toEqual(plain[i]);
        if (activation === 'relu') expect(fused[0]!.some((v) => v === 0) && fused[0]!.some((v) => v > 0)).toBe(true);
      });
    }
  }

  it('empty dimensions: no rows, no input features (output = act(bias)), no output features', () => {
    const be = ctx.backend;
    const filled = (shape: number[]): Tensor =>
      tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.3), shape, { backend: be, requiresGrad: true });
    for (const [rows, inF, outF] of [[0, 3, 2], [2, 0, 3], [2, 3, 0]] as const) {
      for (const activation of [null, 'relu', 'gelu'] as const) {
        const [x, w, b] = [filled([rows, inF]), filled([outF, inF]), filled([outF])];
        const y = ops.linear(x, w, b, { activation });
        expect(y.shape).toEqual([rows, outF]);
        // With no input features the product is 0 and the output is act(bias) = act(0.3).
        if (inF === 0) for (const v of y.data()) expect(v).toBeCloseTo(activation === 'gelu' ? 0.3 * 0.617911 : 0.3, 5);
        y.backward(tensor(new Float32Array(y.size).fill(1), y.shape, { backend: be }));
        if (activation !== 'gelu') for (const g of b.grad!.data()) expect(g).toBe(rows);
        for (const t of [x, w]) expect(Array.from(t.grad!.data()).every(Number.isFinite)).toBe(true);
      }
    }
  });

  it('the backend refuses scratch buffers that do not match the activation, naming them', () => {
    const be = ctx.backend;
    const [out, x, w] = [be.alloc('f32', 6), be.alloc('f32', 4), be.alloc('f32', 6)];
    expect(() => be.linearForward(out, null, x, w, null, 2, 2, 3, 'gelu')).toThrow(/linearForward: pre is required/);
    expect(() => be.linearForward(out, be.alloc('f32', 6), x, w, null, 2, 2, 3, 'relu')).toThrow(/linearForward: pre must be null/);
    expect(() => be.linearBackward(null, null, null, null, out, x, w, out, 2, 2, 3, 'relu', true, true)).toThrow(/linearBackward: dpre is required/);
    expect(() => be.linearForward(out, null, x, be.alloc('f32', 5), null, 2, 2, 3, 'identity')).toThrow(/linearForward: weight has length 5, expected 6/);
  });
});
