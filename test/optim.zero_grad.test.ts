// zeroGrad() as torch's zero_grad: by default (set_to_none, PyTorch's default since 2.0) the
// gradients are disposed and set to null, so the next backward writes fresh ones and step()
// skips parameters it does not reach; { setToNone: false } zero-fills them in place.
import { expect, it } from 'vitest';
import * as nn from '../ts/nn/index.js';
import * as ops from '../ts/ops/index.js';
import { Adam, SGD } from '../ts/optim/index.js';
import { ConfigError } from '../ts/tensor/errors.js';
import { tensor, type Tensor } from '../ts/tensor/tensor.js';
import { describeEachBackend, relErr } from './helpers/backends.js';

describeEachBackend('zeroGrad', (ctx) => {
  const model = () => new nn.Linear(4, 3, { backend: ctx.backend, rng: new nn.Rng(1) });
  const x = () => tensor([0.5, -1, 2, 0.25, 1, 0, -0.5, 3], [2, 4], { backend: ctx.backend });
  const backward = (m: nn.Linear) => ops.sum(ops.mul(m.forward(x()), m.forward(x()))).backward();
  const values = (t: Tensor | null) => Array.from(t!.data());

  it('sets every gradient to none by default (disposing it), and the next backward writes it afresh', () => {
    const m = model();
    const optimizer = new SGD(m.parameters(), { lr: 0.1 });
    backward(m);
    const first = m.parameters().map((p) => values(p.grad));
    const old = m.parameters().map((p) => p.grad!);
    optimizer.zeroGrad();
    expect(m.parameters().map((p) => p.grad)).toEqual([null, null]);
    expect(old.every((g) => g.disposed)).toBe(true);
    backward(m);
    expect(m.parameters().map((p) => values(p.grad))).toEqual(first);
    // A second backward adds to the gradients the first wrote (the kernels add per k block,
    // so up to rounding).
    backward(m);
    m.parameters().forEach((p, i) => expect(relErr(values(p.grad), first[i]!.map((v) => 2 * v))).toBeLessThan(1e-6));
  });

  it('step() after zeroGrad() without a backward leaves the weights as they are (nothing has a gradient)', () => {
    const m = model();
    const optimizer = new Adam(m.parameters(), { lr: 0.1 });
    backward(m);
    optimizer.step();
    optimizer.zeroGrad();
    const before = m.parameters().map((p) => values(p));
    optimizer.step();
    expect(m.parameters().map((p) => values(p))).toEqual(before);
  });

  it('{ setToNone: false } zero-fills the gradients in place, keeping their tensors', () => {
    const m = model();
    const optimizer = new SGD(m.parameters(), { lr: 0.1 });
    backward(m);
    const grads = m.parameters().map((p) => p.grad!);
    optimizer.zeroGrad({ setToNone: false });
    m.parameters().forEach((p, i) => {
      expect(p.grad).toBe(grads[i]);
      expect(values(p.grad).every((v) => v === 0)).toBe(true);
    });
  });

  it("Module.zeroGrad() does the same, and both refuse unknown options with the op's name", () => {
    const m = model();
    backward(m);
    m.zeroGrad({ setToNone: false });
    expect(m.parameters().every((p) => values(p.grad).every((v) => v === 0))).toBe(true);
    m.zeroGrad();
    expect(m.parameters().map((p) => p.grad)).toEqual([null, null]);
    expect(() => m.zeroGrad({ set_to_none: true } as never)).toThrow(ConfigError);
    expect(() => new SGD(m.parameters(), { lr: 0.1 }).zeroGrad({ setToNon: false } as never)).toThrow(/SGD\.zeroGrad.*setToNon/);
  });
});
