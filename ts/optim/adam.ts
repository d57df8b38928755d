// Adam and AdamW (torch.optim semantics): flat per-parameter state (m, v, step) beside a
// config with defaults, as burn's adamw.rs. Parameter groups carry their own lr and decay.
import type { Storage } from '../backend/backend.js';
import { ConfigError } from '../tensor/errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { decayGroups, type NamedParameterSource } from './groups.js';

export interface AdamConfig {
  lr?: number;
  betas?: readonly [number, number];
  eps?: number;
  weightDecay?: number;
}

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
  if (!(c.lr >= 0) || !Number.isFinite(c.lr)) throw new ConfigError(op, `lr must be a finite number >= 0, got ${c.lr}`);
  if (!Array.isArray(c.betas) || c.betas.length !== 2) throw new ConfigError(op, `betas must be a pair [beta1, beta2], got ${String(c.betas)}`);
  const [b1, b2] = c.betas;
  if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1)) throw new ConfigError(op, `betas must be in [0, 1), got [${b1}, ${b2}]`);
  if (!(c.eps >= 0) || !Number.isFinite(c.eps)) throw new ConfigError(op, `eps must be a finite number >= 0, got ${c.eps}`);
  if (!(c.weightDecay >= 0) || !Number.isFinite(c.weightDecay)) throw new ConfigError(op, `weightDecay must be a finite number >= 0, got ${c.weightDecay}`);
}

export class Adam {
  readonly groups: ResolvedGroup[];
  protected readonly state = new Map<Tensor, ParamState>();
  protected readonly decoupled: boolean;
  readonly name: string;

  /** Defaults are torch.optim.Adam's: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0
   * (AdamW: 1e-2). The Transformer paper's recipe, betas (0.9, 0.98) and eps 1e-9, is passed
   * explicitly where it is wanted (the CLI's `train`). */
  constructor(params: Tensor[] | ParamGroup[], config: AdamConfig = {}, options: { decoupled?: boolean; name?: string } = {}) {
    this.decoupled = options.decoupled ?? false;
    this.name = options.name ?? 'Adam';
    const defaults: Required<AdamConfig> = {
      lr: config.lr ?? 1e-3,
      betas: config.betas ?? [0.9, 0.999],
      eps: config.eps ?? 1e-8,
      weightDecay: config.weightDecay ?? (this.decoupled ? 1e-2 : 0),
    };
    validate(this.name, defaults);
    const groups: ParamGroup[] = params.length > 0 && 'params' in (params[0] as object) ? (params as ParamGroup[]) : [{ params: params as Tensor[] }];
    this.groups = groups.map((g) => {
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
    const seen = new Set<Tensor>();
    for (const g of this.groups) {
      for (const p of g.params) {
        if (seen.has(p)) throw new ConfigError(this.name, 'a parameter appears in more than one group');
        seen.add(p);
        if (p.dtype !== 'f32') throw new ConfigError(this.name, `parameters must be f32, got ${p.dtype}`);
      }
    }
  }

  /** Sets the learning rate of every group (schedules call this before each step). */
  setLr(lr: number): void {
    if (!(lr >= 0) || !Number.isFinite(lr)) throw new ConfigError(this.name, `lr must be a finite number >= 0, got ${lr}`);
    for (const g of this.groups) g.lr = lr;
  }

  get lr(): number {
    return this.groups[0]?.lr ?? 0;
  }

  /** One update of every parameter that has a gradient. */
  step(): void {
    for (const g of this.groups) {
      for (const p of g.params) {
        if (p.grad === null) continue;
        const backend = p.backend;
        let s = this.state.get(p);
        if (s === undefined) {
          s = { m: backend.alloc('f32', p.size), v: backend.alloc('f32', p.size), step: 0 };
          this.state.set(p, s);
        }
        s.step += 1;
        backend.adamUpdate(p.storageFor(this.name), s.m, s.v, p.grad.storageFor(this.name), g.lr, g.betas[0], g.betas[1], g.eps, g.weightDecay, s.step, this.decoupled);
      }
    }
  }

  zeroGrad(): void {
    for (const g of this.groups) for (const p of g.params) if (p.grad) p.backend.fill(p.grad.storage, 0);
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
  constructor(params: Tensor[] | ParamGroup[] | NamedParameterSource, config: AdamConfig = {}) {
    const list = Array.isArray(params) ? params : decayGroups(params, config.weightDecay ?? 1e-2);
    super(list, config, { decoupled: true, name: 'AdamW' });
  }
}
