// Inverted dropout with a counter-based RNG: the mask depends only on (seed, offset), so
// native, wasm and the reference backend drop the same elements for the same seed.
import { record } from '../autograd/tape.js';
import { ConfigError, checkOptions } from '../tensor/errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { backendOf, output, requireDType, requireDropout } from './validate.js';

export interface DropoutOptions {
  /** u32 stream seed. */
  seed: number;
  /** u32 counter of the first element (advance it by x.size per call for fresh masks). */
  offset: number;
}

export function dropout(x: Tensor, p: number, options: DropoutOptions): Tensor {
  const op = 'dropout';
  checkOptions(op, options, ['seed', 'offset']);
  if (options === undefined) throw new ConfigError(op, 'needs { seed, offset } (the mask is drawn from that counter stream)');
  const backend = backendOf(op, x);
  requireDType(op, x, 'f32', 'x');
  requireDropout(op, 'p', p, options.seed, options.offset);
  const out = output(backend, x.shape);
  const keep = backend.allocUninit('u8', x.size);
  backend.dropoutForward(out.storage, keep, x.storage, p, options.seed, options.offset);
  return record(out, {
    op,
    inputs: [x],
    saved: [keep],
    backward: (dout, grad) => {
      const dx = grad(0);
      if (dx) backend.dropoutBackward(dx, dout, keep, p);
    },
  });
}
