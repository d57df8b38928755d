// The fused linear op (bias and activation in the kernel call) against the same layer built
// from separate ops (matmul, addBias, relu / gelu / geluTanh), forward and every gradient, on every
// backend; the GELUs' saved buffer against the float64 derivative at the pre-activation; and the
// backend-level rule that scratch buffers are present exactly when the activation needs them.
import { expect, it } from 'vitest';
import { geluGrad, geluTanhGrad } from '../ts/backend/reference/numerics.js';
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

  // pre = x · w exactly (x is 1 or 0.25, one input feature), from -16 to 16: into the erf
  // GELU's far tail, where its derivative is denormal (from -13.4) and then 0 (from -14.5).
  // Tolerances as crates/kernels/tests/math.rs: 2e-6 relative, plus 3e-7 absolute from -5 up
  // (GELU' crosses zero at -0.75) and for the tanh form, whose f32 argument rounds far out.
  for (const activation of ['gelu', 'gelu_tanh'] as const) {
    it(`${activation} saves act'(x·Wᵀ + b) and its backward multiplies dout by it`, () => {
      const be = ctx.backend;
      const grad = activation === 'gelu' ? geluGrad : geluTanhGrad;
      const [rows, outF] = [2, 129];
      const xs = [1, 0.25];
      const ws = Array.from({ length: outF }, (_, o) => -16 + (32 * o) / (outF - 1));
      const pre = xs.flatMap((x) => ws.map((w) => x * w));
      const dout = randomArray(rows * outF, 5).map((v) => v * 3);
      const [x, w, out, actGrad] = [be.fromArray('f32', xs), be.fromArray('f32', ws), be.alloc('f32', rows * outF), be.alloc('f32', rows * outF)];
      be.linearForward(out, actGrad, x, w, null, rows, 1, outF, activation);
      const tolerance = (want: number, p: number): number =>
        2e-6 * Math.abs(want) + (activation === 'gelu_tanh' || p >= -5 ? 3e-7 : 6e-45);
      const saved = be.read(actGrad);
      for (const [i, p] of pre.entries()) {
        expect(Math.abs(saved[i]! - grad(p)), `${activation}'(${p}) = ${saved[i]}`).toBeLessThanOrEqual(tolerance(grad(p), p));
      }
      // dbias = Σ_rows dout ∘ act'(pre) (dx and dweight are the products of the same dpre).
      const [dbias, dpre, g] = [be.alloc('f32', outF), be.alloc('f32', rows * outF), be.fromArray('f32', dout)];
      be.linearBackward(null, null, dbias, dpre, g, x, w, actGrad, rows, 1, outF, activation, true, true);
      const got = be.read(dbias);
      for (let o = 0; o < outF; o++) {
        const [i, j] = [o, outF + o];
        const want = dout[i]! * grad(pre[i]!) + dout[j]! * grad(pre[j]!);
        const slack = Math.abs(dout[i]!) * tolerance(grad(pre[i]!), pre[i]!) + Math.abs(dout[j]!) * tolerance(grad(pre[j]!), pre[j]!);
        expect(Math.abs(got[o]! - want), `dbias at pre ${ws[o]}`).toBeLessThanOrEqual(slack + 2e-7 * Math.abs(want) + 3e-45);
      }
      for (const s of [x, w, out, actGrad, dbias, dpre, g]) be.free(s);
    });
  }

  it('the backend refuses scratch buffers that do not match the activation, naming them', () => {
    const be = ctx.backend;
    const [out, x, w] = [be.alloc('f32', 6), be.alloc('f32', 4), be.alloc('f32', 6)];
    expect(() => be.linearForward(out, null, x, w, null, 2, 2, 3, 'gelu')).toThrow(/linearForward: actGrad is required/);
    expect(() => be.linearForward(out, be.alloc('f32', 6), x, w, null, 2, 2, 3, 'relu')).toThrow(/linearForward: actGrad must be null/);
    expect(() => be.linearBackward(null, null, null, null, out, x, w, out, 2, 2, 3, 'relu', true, true)).toThrow(/linearBackward: dpre is required/);
    expect(() => be.linearForward(out, null, x, be.alloc('f32', 5), null, 2, 2, 3, 'identity')).toThrow(/linearForward: weight has length 5, expected 6/);
  });
});
