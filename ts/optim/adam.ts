// Adam and AdamW (torch.optim semantics): flat per-parameter state (m, v, step) beside a
// config with defaults, as burn's adamw.rs. Parameter groups carry their own lr and decay.
import type { Storage } from '../backend/backend.js';
import { ConfigError } from '../tensor/errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { decayGroups, type NamedParameterSource } from './groups.js';
import { configOf, Optimizer, parameterGroups, requireNonNegative, type ParameterSource } from './params.js';

export interface AdamConfig {
  lr?: number;
  betas?: readonly [number, number];
  eps?: number;
  weightDecay?: number;
}

const ADAM_KEYS = ['lr', 'betas', 'eps', 'weightDecay'] as const;

export interface ParamGroup extends AdamConfig {
  params: Tensor[];
}

interface ResolvedGroup {
  params: Tensor[];
  lr: number;
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
}

interface ParamState {
  m: Storage;
  v: Storage;
  step: number;
}

function validate(op: string, c: Required<AdamConfig>): void {
  requireNonNegative(op, 'lr', c.lr);
  if (!Array.isArray(c.betas) || c.betas.length !== 2) throw new ConfigError(op, `betas must be a pair [beta1, beta2], got ${String(c.betas)}`);
  const [b1, b2] = c.betas;
  if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1)) throw new ConfigError(op, `betas must be in [0, 1), got [${b1}, ${b2}]`);
  requireNonNegative(op, 'eps', c.eps);
  requireNonNegative(op, 'weightDecay', c.weightDecay);
}

export class Adam extends Optimizer<ResolvedGroup> {
  readonly groups: ResolvedGroup[];
  protected readonly state = new Map<Tensor, ParamState>();
  protected readonly decoupled: boolean;
  readonly name: string;

  /** torch.optim.Adam's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8. `params` is a list
   * of tensors, of parameter groups, or a module; the second argument is the config or, as
   * in PyTorch, lr alone (`new Adam(params, 0.01)`). */
  constructor(params: Tensor[] | ParamGroup[] | ParameterSource, lrOrConfig: AdamConfig | number = {}, options: { decoupled?: boolean; name?: string } = {}) {
    super();
    this.decoupled = options.decoupled ?? false;
    this.name = options.name ?? 'Adam';
    const config = configOf<AdamConfig>(this.name, lrOrConfig, ADAM_KEYS);
    const defaults: Required<AdamConfig> = {
      lr: config.lr ?? 1e-3,
      betas: config.betas ?? [0.9, 0.999],
      eps: config.eps ?? 1e-8,
      weightDecay: config.weightDecay ?? (this.decoupled ? 1e-2 : 0),
    };
    validate(this.name, defaults);
    this.groups = parameterGroups<AdamConfig>(this.name, params, ADAM_KEYS).map((g) => {
      const resolved = {
        params: g.params,
        lr: g.lr ?? defaults.lr,
        betas: g.betas ?? defaults.betas,
        eps: g.eps ?? defaults.eps,
        weightDecay: g.weightDecay ?? defaults.weightDecay,
      };
      validate(this.name, resolved);
      return resolved;
    });
  }

  step(): void {
    this.eachWithGradient((p, g) => {
      const backend = p.backend;
      let s = this.state.get(p);
      if (s === undefined) {
        s = { m: backend.alloc('f32', p.size), v: backend.alloc('f32', p.size), step: 0 };
        this.state.set(p, s);
      }
      s.step += 1;
      backend.adamUpdate(p.storageFor(this.name), s.m, s.v, p.grad.storageFor(this.name), g.lr, g.betas[0], g.betas[1], g.eps, g.weightDecay, s.step, this.decoupled);
    });
  }

  /** Flat state for checkpoints: per parameter index (in group order) its m, v and step. */
  stateEntries(): { index: number; m: Storage; v: Storage; step: number }[] {
    const out: { index: number; m: Storage; v: Storage; step: number }[] = [];
    let index = 0;
    for (const g of this.groups) {
      for (const p of g.params) {
        const s = this.state.get(p);
        if (s) out.push({ index, ...s });
        index++;
      }
    }
    return out;
  }

  /** Restores what stateEntries() gave (values copied in). */
  loadStateEntries(entries: { index: number; m: ArrayLike<number>; v: ArrayLike<number>; step: number }[]): void {
    const params = this.groups.flatMap((g) => g.params);
    for (const e of entries) {
      const p = params[e.index];
      if (p === undefined) throw new ConfigError(this.name, `state for parameter ${e.index}, but the optimiser has ${params.length}`);
      if (e.m.length !== p.size || e.v.length !== p.size) {
        throw new ConfigError(this.name, `state for parameter ${e.index} has ${e.m.length} values, expected ${p.size}`);
      }
      const s = this.state.get(p) ?? { m: p.backend.alloc('f32', p.size), v: p.backend.alloc('f32', p.size), step: 0 };
      p.backend.write(s.m, e.m);
      p.backend.write(s.v, e.v);
      s.step = e.step;
      this.state.set(p, s);
    }
  }

  dispose(): void {
    for (const [p, s] of this.state) {
      p.backend.free(s.m);
      p.backend.free(s.v);
    }
    this.state.clear();
  }
}

/** AdamW: decoupled weight decay (default 0.01), as torch.optim.AdamW. Given a model
 * rather than a list, it decays only matrices (weights of linear layers and embeddings),
 * not biases or LayerNorm parameters (see decayGroups). */
export class AdamW extends Adam {
  constructor(params: Tensor[] | ParamGroup[] | NamedParameterSource, lrOrConfig: AdamConfig | number = {}) {
    const config = configOf<AdamConfig>('AdamW', lrOrConfig, ADAM_KEYS);
    const isModel = typeof params === 'object' && params !== null && !Array.isArray(params) && typeof (params as NamedParameterSource).namedParameters === 'function';
    const list = isModel ? decayGroups(params as NamedParameterSource, config.weightDecay ?? 1e-2) : (params as Tensor[] | ParamGroup[]);
    super(list, config, { decoupled: true, name: 'AdamW' });
  }
}
