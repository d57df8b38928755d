// Learning-rate schedules as pure functions of the 1-based step (the Annotated
// Transformer's `rate`).
import { ConfigError } from '../tensor/errors.js';

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
