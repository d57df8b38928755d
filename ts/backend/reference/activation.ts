// Reference activations (crates/kernels/src/ops/activation.rs): ReLU, the exact GELU and its
// tanh approximation.

import type { Floats } from './arrays.js';
import { gelu, geluGrad, geluTanh, geluTanhGrad, relu } from './numerics.js';

export function reluForward(out: Floats, inp: Floats): void {
  for (let i = 0; i < inp.length; i++) out[i] = relu(inp[i]!);
}

export function reluBackward(dinp: Floats, dout: Floats, inp: Floats): void {
  // PyTorch's threshold_backward: no gradient where x <= 0; a NaN passes it on.
  for (let i = 0; i < inp.length; i++) if (!(inp[i]! <= 0)) dinp[i] = dinp[i]! + dout[i]!;
}

export function geluForward(out: Floats, inp: Floats): void {
  for (let i = 0; i < inp.length; i++) out[i] = gelu(inp[i]!);
}

export function geluBackward(dinp: Floats, dout: Floats, inp: Floats): void {
  for (let i = 0; i < inp.length; i++) dinp[i] = dinp[i]! + dout[i]! * geluGrad(inp[i]!);
}

export function geluTanhForward(out: Floats, inp: Floats): void {
  for (let i = 0; i < inp.length; i++) out[i] = geluTanh(inp[i]!);
}

export function geluTanhBackward(dinp: Floats, dout: Floats, inp: Floats): void {
  for (let i = 0; i < inp.length; i++) dinp[i] = dinp[i]! + dout[i]! * geluTanhGrad(inp[i]!);
}
