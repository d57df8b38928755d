// What every optimiser accepts as its first argument, checked as torch.optim does (and a
// little more): a list of tensors, a list of parameter groups, or a module, never an empty
// list, a tensor twice, or a non-f32 tensor.
import { resetGradients, type ZeroGradOptions } from '../autograd/tape.js';
import { ConfigError, DisposedError, checkOptions, suggestKey } from '../tensor/errors.js';
import { Tensor } from '../tensor/tensor.js';

/** A group's own tensors and the hyper-parameters it overrides. */
export type GroupSpec<C> = C & { params: Tensor[] };

/** Anything with parameters(): an nn.Module (its distinct parameters, tied ones once). */
export interface ParameterSource {
  parameters(): Tensor[];
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return value.constructor?.name ?? 'object';
}

/** The groups behind `params` (a single group when given tensors or a module). Throws a
 * ConfigError naming what is wrong. */
export function parameterGroups<C extends object>(op: string, params: Tensor[] | GroupSpec<C>[] | ParameterSource, configKeys: readonly string[]): GroupSpec<C>[] {
  let groups: GroupSpec<C>[];
  if (params instanceof Tensor) {
    throw new ConfigError(op, 'params must be a list of tensors (or of parameter groups), got one Tensor: wrap it as [tensor]');
  } else if (Array.isArray(params)) {
    const isGroup = (x: unknown) => typeof x === 'object' && x !== null && !(x instanceof Tensor) && 'params' in x;
    if (params.length > 0 && params.every(isGroup)) groups = params as GroupSpec<C>[];
    else if (params.every((p) => p instanceof Tensor)) groups = [{ params: params as Tensor[] } as GroupSpec<C>];
    else {
      const bad = params.findIndex((p) => !(p instanceof Tensor) && !isGroup(p));
      const at = bad >= 0 ? bad : params.findIndex((p) => isGroup(p) !== isGroup(params[0]));
      throw new ConfigError(op, `params must be all tensors or all parameter groups ({ params: [...] }), got ${describe(params[at])} at index ${at}`);
    }
  } else if (typeof params === 'object' && params !== null && typeof (params as ParameterSource).parameters === 'function') {
    groups = [{ params: (params as ParameterSource).parameters() } as GroupSpec<C>];
  } else {
    throw new ConfigError(op, `params must be a list of tensors, a list of parameter groups or a module, got ${describe(params)}`);
  }
  const seen = new Set<Tensor>();
  groups.forEach((g, i) => {
    if (!Array.isArray(g.params)) throw new ConfigError(op, `parameter group ${i}: params must be a list of tensors, got ${describe(g.params)}`);
    rejectUnknownKeys(op, `parameter group ${i}`, g, ['params', ...configKeys]);
    for (const p of g.params) {
      if (!(p instanceof Tensor)) throw new ConfigError(op, `parameter group ${i} holds ${describe(p)}, not a Tensor`);
      if (seen.has(p)) throw new ConfigError(op, 'a parameter appears in more than one group');
      seen.add(p);
      if (p.dtype !== 'f32') throw new ConfigError(op, `parameters must be f32, got ${p.dtype}`);
    }
  });
  if (seen.size === 0) throw new ConfigError(op, 'optimizer got an empty parameter list');
  return groups;
}

/** Throws DisposedError when any parameter was disposed (model.dispose()): an optimiser
 * over freed weights must not report success while updating nothing. */
export function requireLive(op: string, groups: { params: Tensor[] }[]): void {
  for (const g of groups) for (const p of g.params) if (p.disposed) throw new DisposedError(`${op}.step`);
}

/** `lr` given positionally (torch.optim.Adam(params, 0.01)) or in the config object. */
export function configOf<C extends { lr?: number }>(op: string, config: C | number | undefined, keys: readonly string[]): C {
  if (config === undefined) return {} as C;
  if (typeof config === 'number') return { lr: config } as C;
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new ConfigError(op, `the second argument is lr (a number) or a config object, got ${describe(config)}`);
  }
  rejectUnknownKeys(op, 'config', config, keys);
  return config;
}

/** Throws a ConfigError for the first key of `obj` outside `allowed`, suggesting the key
 * meant (`weight_decay` -> `weightDecay`, errors.ts's suggestKey): an ignored key would
 * train with the default silently. */
export function rejectUnknownKeys(op: string, what: string, obj: object, allowed: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (allowed.includes(key)) continue;
    const meant = suggestKey(key, allowed);
    const hint = meant !== null ? `; did you mean '${meant}'?` : ` (known: ${allowed.join(', ')})`;
    throw new ConfigError(op, `unknown ${what} key '${key}'${hint}`);
  }
}

/** A finite number >= 0. */
export function requireNonNegative(op: string, name: string, value: number): void {
  if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) throw new ConfigError(op, `${name} must be a finite number >= 0, got ${String(value)}`);
}

/** What every optimiser shares: its groups (each with its own lr), setting the lr of all of
 * them (schedules), and zeroing the gradients in place. */
export abstract class Optimizer<G extends { params: Tensor[]; lr: number }> {
  abstract readonly name: string;
  abstract readonly groups: G[];

  /** Sets the learning rate of every group (schedules call this before each step). */
  setLr(lr: number): void {
    requireNonNegative(this.name, 'lr', lr);
    for (const g of this.groups) g.lr = lr;
  }

  get lr(): number {
    return this.groups[0]?.lr ?? 0;
  }

  /** Resets every gradient, as torch.optim's zero_grad: by default (setToNone, PyTorch's
   * default since 2.0) each gradient tensor is disposed and `grad` becomes null, so the next
   * backward writes a fresh buffer instead of zero-filling and adding to the old one, and
   * `step()` skips parameters it does not reach; `{ setToNone: false }` zero-fills the
   * buffers in place instead. */
  zeroGrad(options: ZeroGradOptions = {}): void {
    checkOptions(`${this.name}.zeroGrad`, options, ['setToNone']);
    for (const g of this.groups) resetGradients(g.params, options.setToNone ?? true);
  }

  /** One update of every parameter that has a gradient. */
  abstract step(): void;

  /** Calls `update` for each parameter with a gradient, after checking that none was
   * disposed. */
  protected eachWithGradient(update: (p: Tensor & { grad: Tensor }, group: G) => void): void {
    requireLive(this.name, this.groups);
    for (const g of this.groups) for (const p of g.params) if (p.grad !== null) update(p as Tensor & { grad: Tensor }, g);
  }

  /** Frees the optimiser's state (moments, momentum buffers). */
  abstract dispose(): void;
}
