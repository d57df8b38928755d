// Learning-rate schedules as pure functions of the 1-based step (the Annotated
// Transformer's `rate`).
import { ConfigError } from '../tensor/errors.js';
import { rejectUnknownKeys } from './params.js';

export type Schedule = (step: number) => number;

function positive(op: string, name: string, v: number): void {
  if (!(v > 0) || !Number.isFinite(v)) throw new ConfigError(op, `${name} must be a positive number, got ${v}`);
}

/** lr = factor * dModel^-0.5 * min(step^-0.5, step * warmup^-1.5); step 0 counts as 1. */
export function noam(dModel: number, warmup: number, factor = 1): Schedule {
  positive('noam', 'dModel', dModel);
  positive('noam', 'warmup', warmup);
  positive('noam', 'factor', factor);
  return (step) => {
    const s = Math.max(step, 1);
    return factor * dModel ** -0.5 * Math.min(s ** -0.5, s * warmup ** -1.5);
  };
}

/** Linear warmup from 0 to `peak` over `warmup` steps, then cosine (or linear) decay to
 * `minLr` at `total` steps; constant `minLr` after. */
export function warmupDecay(peak: number, warmup: number, total: number, options: { decay?: 'cosine' | 'linear'; minLr?: number } = {}): Schedule {
  positive('warmupDecay', 'peak', peak);
  if (!(warmup >= 0) || !(total > warmup)) throw new ConfigError('warmupDecay', `need 0 <= warmup < total, got warmup ${warmup}, total ${total}`);
  const minLr = options.minLr ?? 0;
  if (!(minLr >= 0 && minLr <= peak)) throw new ConfigError('warmupDecay', `minLr must be in [0, peak ${peak}], got ${minLr}`);
  if (!Number.isFinite(total)) throw new ConfigError('warmupDecay', `total must be finite, got ${total}`);
  const decay = options.decay ?? 'cosine';
  return (step) => {
    if (step < warmup) return (peak * step) / warmup;
    if (step >= total) return minLr;
    const progress = (step - warmup) / (total - warmup);
    const shape = decay === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
    return minLr + (peak - minLr) * shape;
  };
}

export function constant(lr: number): Schedule {
  if (!(lr >= 0) || !Number.isFinite(lr)) throw new ConfigError('constant', `lr must be a finite number >= 0, got ${lr}`);
  return () => lr;
}

export interface CosineWarmupConfig {
  /** Peak lr, reached at the end of warmup (nanoGPT's learning_rate). */
  learningRate: number;
  minLr: number;
  warmupIters: number;
  lrDecayIters: number;
}

function checkCosineWarmup(c: CosineWarmupConfig): void {
  const op = 'cosineWithWarmup';
  rejectUnknownKeys(op, 'config', c, ['learningRate', 'minLr', 'warmupIters', 'lrDecayIters']);
  positive(op, 'learningRate', c.learningRate);
  if (!(c.minLr >= 0 && c.minLr <= c.learningRate)) throw new ConfigError(op, `minLr must be in [0, learningRate ${c.learningRate}], got ${c.minLr}`);
  if (!Number.isSafeInteger(c.warmupIters) || c.warmupIters < 0) throw new ConfigError(op, `warmupIters must be an integer >= 0, got ${c.warmupIters}`);
  if (!Number.isSafeInteger(c.lrDecayIters) || c.lrDecayIters <= c.warmupIters) {
    throw new ConfigError(op, `lrDecayIters must be an integer above warmupIters ${c.warmupIters}, got ${c.lrDecayIters}`);
  }
}

/** nanoGPT train.py's get_lr(it) for the 0-based iteration `it`: linear warmup
 * lr * (it + 1) / (warmupIters + 1), then cosine from lr down to minLr at lrDecayIters,
 * minLr after. */
export function getLr(it: number, c: CosineWarmupConfig): number {
  if (it < c.warmupIters) return (c.learningRate * (it + 1)) / (c.warmupIters + 1);
  if (it > c.lrDecayIters) return c.minLr;
  const decayRatio = (it - c.warmupIters) / (c.lrDecayIters - c.warmupIters);
  const coeff = 0.5 * (1 + Math.cos(Math.PI * decayRatio));
  return c.minLr + coeff * (c.learningRate - c.minLr);
}

/** getLr as a checked Schedule of the 0-based iteration (nanoGPT's iter_num). The Trainer
 * passes 1-based steps: there, use `(step) => schedule(step - 1)`. */
export function cosineWithWarmup(config: CosineWarmupConfig): Schedule {
  checkCosineWarmup(config);
  const c = { ...config };
  return (it) => getLr(it, c);
}
