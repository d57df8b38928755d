// Reference dropout (crates/kernels/src/ops/dropout.rs): the same elements as the kernels
// for the same seed, drawn with the mirrored RNG; p is taken as the f32 the kernels see.

import type { Floats } from './arrays.js';
import { dropoutThreshold, randomU32 } from './rng.js';

export function dropoutForward(out: Floats, keep: Uint8Array, inp: Floats, p: number, seed: number, offset: number): void {
  const pf = Math.fround(p);
  const threshold = dropoutThreshold(pf);
  for (let i = 0; i < inp.length; i++) {
    // u32 counter arithmetic wraps, as in Rust's wrapping_add.
    const kept = randomU32(seed >>> 0, (offset + i) >>> 0) >= threshold;
    keep[i] = kept ? 1 : 0;
    out[i] = kept ? inp[i]! / (1 - pf) : 0;
  }
}

export function dropoutBackward(dinp: Floats, dout: Floats, keep: Uint8Array, p: number): void {
  const pf = Math.fround(p);
  for (let i = 0; i < dout.length; i++) if (keep[i] !== 0) dinp[i] = dinp[i]! + dout[i]! / (1 - pf);
}
