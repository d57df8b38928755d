// Seeded parameter initialisation with PyTorch's default distributions, so a seed gives
// the same model on every backend.
import type { Tensor } from '../tensor/tensor.js';

/** mulberry32: a small, fast, well-mixed 32-bit PRNG; deterministic across platforms. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** A u32, e.g. a dropout seed. */
  nextU32(): number {
    return Math.floor(this.next() * 4294967296) >>> 0;
  }
  uniform(n: number, low: number, high: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = low + (high - low) * this.next();
    return out;
  }
  /** Standard normal values (Box-Muller). */
  normal(n: number, std = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const u = 1 - this.next();
      const v = this.next();
      const r = std * Math.sqrt(-2 * Math.log(u));
      out[i] = r * Math.cos(2 * Math.PI * v);
      if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
    }
    return out;
  }
  get seed(): number {
    return this.state;
  }
  set seed(s: number) {
    this.state = s >>> 0;
  }
}

/** PyTorch nn.Linear's default (kaiming_uniform with a = sqrt(5)): U(-1/sqrt(fanIn), 1/sqrt(fanIn)). */
export function linearUniform(rng: Rng, n: number, fanIn: number): Float32Array {
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return rng.uniform(n, -bound, bound);
}

/** xavier_uniform_: U(-a, a), a = sqrt(6 / (fanIn + fanOut)). */
export function xavierUniform(rng: Rng, fanOut: number, fanIn: number): Float32Array {
  const a = Math.sqrt(6 / (fanIn + fanOut));
  return rng.uniform(fanOut * fanIn, -a, a);
}

let globalRng = new Rng(0);

/** Seeds the generator layers use when none is passed (as torch.manual_seed). */
export function manualSeed(seed: number): void {
  globalRng = new Rng(seed);
}

export function defaultRng(): Rng {
  return globalRng;
}

/** Fills `t` in place with N(mean, std^2) values from `rng` (default: the generator
 * manualSeed sets), as torch.nn.init.normal_. */
export function normal_(t: Tensor, options: { mean?: number; std?: number; rng?: Rng } = {}): Tensor {
  const values = (options.rng ?? globalRng).normal(t.size, options.std ?? 1);
  const mean = options.mean ?? 0;
  if (mean !== 0) for (let i = 0; i < values.length; i++) values[i]! += mean;
  t.backend.write(t.storageFor('normal_'), values);
  return t;
}

/** Fills `t` with zeros in place (torch.nn.init.zeros_). */
export function zeros_(t: Tensor): Tensor {
  t.backend.fill(t.storageFor('zeros_'), 0);
  return t;
}

/** Fills `t` with ones in place (torch.nn.init.ones_). */
export function ones_(t: Tensor): Tensor {
  t.backend.fill(t.storageFor('ones_'), 1);
  return t;
}
