// y = act(x W^T + b) with PyTorch's layout: x [..., in], weight [out, in], bias [out].
// One fused kernel call per direction (crates/kernels/src/ops/linear.rs): the product, the
// bias and the activation in forward; the activation's gradient, the bias gradient and both
// products in backward.
import { savesActGrad, type LinearActivation } from '../backend/backend.js';
import { record } from '../autograd/tape.js';
import { ConfigError, ShapeError, checkOptions } from '../tensor/errors.js';
import { shapeSize, type Tensor } from '../tensor/tensor.js';
import { backendOf, fmt, output, requireDType, requireRank, requireShape } from './validate.js';

export interface LinearOptions {
  /** Applied after the bias, in the same kernel call (default none). */
  activation?: 'relu' | 'gelu' | 'gelu_tanh' | null;
}

export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null, options: LinearOptions = {}): Tensor {
  const op = 'linear';
  checkOptions(op, options, ['activation']);
  const backend = backendOf(op, x, weight, bias);
  requireDType(op, x, 'f32', 'x');
  requireDType(op, weight, 'f32', 'weight');
  requireRank(op, weight, [2], 'weight');
  const [outF, inF] = weight.shape as [number, number];
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== inF) {
    throw new ShapeError(op, `x ${fmt(x.shape)} must end in ${inF} to match weight ${fmt(weight.shape)}`, inF, x.shape);
  }
  if (bias) {
    requireDType(op, bias, 'f32', 'bias');
    requireShape(op, bias, [outF], () => `bias (weight is ${fmt(weight.shape)})`);
  }
  const activation: LinearActivation = options.activation ?? 'identity';
  if (activation !== 'identity' && activation !== 'relu' && activation !== 'gelu' && activation !== 'gelu_tanh') {
    throw new ConfigError(op, `activation must be 'relu', 'gelu', 'gelu_tanh' or null, got ${String(options.activation)}`);
  }
  const rows = shapeSize(x.shape.slice(0, -1));
  const out = output(backend, [...x.shape.slice(0, -1), outF]);
  // The GELUs save their derivative at the pre-activation (backward multiplies dout by it);
  // ReLU's backward reads the output (y > 0 iff pre > 0).
  const actGrad = savesActGrad(activation) ? backend.allocUninit('f32', rows * outF) : null;
  backend.linearForward(out.storage, actGrad, x.storage, weight.storage, bias?.storage ?? null, rows, inF, outF, activation);
  return record(out, {
    op,
    inputs: bias ? [x, weight, bias] : [x, weight],
    saved: actGrad ? [actGrad] : [],
    backward: (dout, grad, _adopt, gradTarget) => {
      const dpre = activation === 'identity' ? null : backend.allocUninit('f32', rows * outF);
      const saved = savesActGrad(activation) ? actGrad : activation === 'relu' ? out.storageFor(op) : null;
      // dx and dweight are written, not added to, when nothing has written them yet (no zero
      // fill first): an activation's gradient, or a weight's after zeroGrad() set it to none.
      const [dx, dweight] = [gradTarget(0), gradTarget(1)];
      backend.linearBackward(dx?.storage ?? null, dweight?.storage ?? null, bias ? grad(2) : null, dpre, dout, x.storage, weight.storage, saved,
        rows, inF, outF, activation, dx?.accumulate ?? true, dweight?.accumulate ?? true);
      if (dpre) backend.free(dpre);
    },
  });
}
