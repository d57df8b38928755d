// Module: PyTorch's naming and state-dict conventions, so a state dict saved here loads
// into PyTorch (and back) under the same keys, e.g. `encoder.layers.0.self_attn.in_proj_weight`.
import type { Backend } from '../backend/backend.js';
import { getDefaultBackend } from '../backend/registry.js';
import { resetGradients, type ZeroGradOptions } from '../autograd/tape.js';
import { ConfigError, ShapeError, checkOptions } from '../tensor/errors.js';
import { libraryCall } from '../tensor/memory.js';
import { Tensor, type Shape } from '../tensor/tensor.js';

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** Anything with a shape and values: a Tensor, or a plain record from io.readSafetensors. */
export interface StateEntry {
  shape: readonly number[];
  data?: ArrayLike<number>;
}

export interface LoadOptions {
  /** Missing and unexpected keys are errors (default true). Shape mismatches always are. */
  strict?: boolean;
  /** Removed from the front of every key that starts with it before matching: 'module.' for a
   * state dict saved from a DistributedDataParallel- or DataParallel-wrapped model. */
  stripPrefix?: string;
}

/** A long key list shortened to its first few names and the count (a whole model's names
 * would make a line of kilobytes). */
function listKeys(keys: string[], shown = 6): string {
  if (keys.length <= shown) return keys.join(', ');
  return `${keys.slice(0, shown).join(', ')}, ... (${keys.length} in all)`;
}

export class StateDictError extends ShapeError {
  override name = 'StateDictError';
  constructor(
    readonly missingKeys: string[],
    readonly unexpectedKeys: string[],
    readonly shapeMismatches: string[],
    hint = '',
  ) {
    const parts: string[] = [];
    if (missingKeys.length) parts.push(`missing keys: ${listKeys(missingKeys)}`);
    if (unexpectedKeys.length) parts.push(`unexpected keys: ${listKeys(unexpectedKeys)}`);
    if (shapeMismatches.length) parts.push(`shape mismatches: ${listKeys(shapeMismatches)}`);
    if (hint) parts.push(hint);
    super('loadStateDict', parts.join('. '));
  }
}

/** When every given key starts with one leading component that none of the model's names
 * has, and dropping it would match the model's names, says so and how to load the dict: a
 * DDP- or DataParallel-wrapped model saves `module.<name>`, torch.compile `_orig_mod.<name>`. */
function prefixHint(given: string[], own: Set<string>): string {
  const first = given[0]?.split('.')[0];
  if (first === undefined || given.length === 0) return '';
  const prefix = `${first}.`;
  if (!given.every((k) => k.startsWith(prefix)) || [...own].some((k) => k.startsWith(prefix))) return '';
  if (!given.some((k) => own.has(k.slice(prefix.length)))) return '';
  const origin = prefix === 'module.' ? ' (a state dict saved from a DistributedDataParallel- or DataParallel-wrapped model)' : '';
  return `every key starts with '${prefix}'${origin}: load it with { stripPrefix: '${prefix}' }`;
}

/** A child registered under '' is flattened into its parent's names (PyTorch's encoder
 * layer owns `linear1` directly; here a FeedForward child provides it). */
function childPrefix(prefix: string, name: string): string {
  return name === '' ? prefix : `${prefix}${name}.`;
}

/** Each distinct tensor with all its names (several when tied), in registration order. */
function namesByTensor(named: Iterable<[string, Tensor]>): Map<Tensor, string[]> {
  const out = new Map<Tensor, string[]>();
  for (const [name, p] of named) out.set(p, [...(out.get(p) ?? []), name]);
  return out;
}

export abstract class Module {
  training = true;
  readonly backend: Backend;
  private readonly parametersByName = new Map<string, Tensor>();
  private readonly childrenByName = new Map<string, Module>();
  private readonly buffersByName = new Map<string, { tensor: Tensor; persistent: boolean }>();

  constructor(backend?: Backend) {
    this.backend = backend ?? getDefaultBackend();
    // forward runs as library code: the activations it makes belong to the graph, which
    // backward() frees; what it returns reaches the caller, who may hold it (libraryCall).
    const self = this as unknown as { forward?: (...args: unknown[]) => unknown };
    const forward = self.forward;
    if (typeof forward === 'function') self.forward = (...args: unknown[]) => libraryCall(() => forward.apply(this, args));
  }

  protected registerParameter(name: string, value: Tensor): Tensor {
    value.requiresGrad = true;
    this.parametersByName.set(name, value);
    return value;
  }

  /** A tensor the module owns that is not trained (running statistics, a fixed table, a
   * mask): never in parameters(), disposed with the module, and in stateDict() unless
   * `persistent` is false (PyTorch's register_buffer(name, t, persistent=False)). */
  protected registerBuffer(name: string, value: Tensor, options: { persistent?: boolean } = {}): Tensor {
    if (this.buffersByName.has(name) || this.parametersByName.has(name)) throw new ConfigError('registerBuffer', `'${name}' is already registered`);
    value.requiresGrad = false;
    this.buffersByName.set(name, { tensor: value, persistent: options.persistent ?? true });
    return value;
  }

  /** The parameter registered under `name` (layers read their weights through it, so that
   * assigning `layer.weight = other.weight` ties them). */
  protected parameter(name: string): Tensor {
    const p = this.parametersByName.get(name);
    if (p === undefined) throw new ConfigError(this.constructor.name, `no parameter '${name}'`);
    return p;
  }

  protected registerModule<M extends Module>(name: string, module: M): M {
    if (this.childrenByName.has(name)) throw new Error(`registerModule: '${name}' is already registered`);
    this.childrenByName.set(name, module);
    return module;
  }

  /** [name, parameter] pairs in registration order, names dotted as PyTorch's. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [name, p] of this.parametersByName) out.push([prefix + name, p]);
    for (const [name, child] of this.childrenByName) out.push(...child.namedParameters(childPrefix(prefix, name)));
    return out;
  }

  /** Distinct parameters (a tied weight appears once, as in PyTorch's parameters()). */
  parameters(): Tensor[] {
    return [...new Set(this.namedParameters().map(([, p]) => p))];
  }

  /** Points a registered name at another tensor (weight tying). */
  replaceParameter(name: string, value: Tensor): void {
    if (!this.parametersByName.has(name)) throw new Error(`replaceParameter: no parameter '${name}'`);
    this.parametersByName.set(name, value);
  }

  /** [name, buffer] pairs, persistent or not, names dotted as PyTorch's named_buffers(). */
  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [name, b] of this.buffersByName) out.push([prefix + name, b.tensor]);
    for (const [name, child] of this.childrenByName) out.push(...child.namedBuffers(childPrefix(prefix, name)));
    return out;
  }

  buffers(): Tensor[] {
    return this.namedBuffers().map(([, b]) => b);
  }

  /** Direct children by name (PyTorch's named_children()). */
  namedChildren(): [string, Module][] {
    return [...this.childrenByName];
  }

  /** Calls `fn` on every child module (recursively, children first) and then on this one, as
   * PyTorch's apply (nanoGPT's `self.apply(self._init_weights)`). */
  apply(fn: (module: Module) => void): this {
    for (const child of this.childrenByName.values()) child.apply(fn);
    fn(this);
    return this;
  }

  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix.replace(/\.$/, ''), this]];
    for (const [name, child] of this.childrenByName) out.push(...child.namedModules(childPrefix(prefix, name)));
    return out;
  }

  /** The parameters and persistent buffers by name (the tensors themselves, not copies), in
   * PyTorch's order: each module's parameters, then its buffers, then its children's. A tied
   * tensor appears under each of its names, as in PyTorch's state_dict(). */
  stateDict(prefix = ''): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [name, p] of this.parametersByName) out.set(prefix + name, p);
    for (const [name, b] of this.buffersByName) if (b.persistent) out.set(prefix + name, b.tensor);
    for (const [name, child] of this.childrenByName) for (const [k, v] of child.stateDict(childPrefix(prefix, name))) out.set(k, v);
    return out;
  }

  /** Copies values into the parameters. Every shape mismatch is an error; with `strict`
   * (default true) so are missing and unexpected keys, all listed in one StateDictError, and
   * nothing is changed. A tied parameter (one tensor under several names, as a generator
   * sharing the embedding matrix) needs only one of its names: safetensors' save_model and
   * modelToSafetensors write it once. */
  loadStateDict(dict: Map<string, StateEntry | Tensor> | Record<string, StateEntry | Tensor>, options: LoadOptions = {}): LoadResult {
    checkOptions('loadStateDict', options, ['strict', 'stripPrefix']);
    const strict = options.strict ?? true;
    let entries = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const strip = options.stripPrefix;
    if (strip) entries = new Map([...entries].map(([k, v]) => [k.startsWith(strip) ? k.slice(strip.length) : k, v]));
    const own = this.stateDict();
    const missingKeys: string[] = [];
    const sources: [Tensor, string, StateEntry | Tensor][] = [];
    for (const [param, names] of namesByTensor(own)) {
      const found = names.find((n) => entries.has(n));
      if (found === undefined) missingKeys.push(...names);
      else sources.push([param, found, entries.get(found)!]);
    }
    const unexpectedKeys = [...entries.keys()].filter((k) => !own.has(k));
    const shapeMismatches: string[] = [];
    for (const [name, entry] of entries) {
      const param = own.get(name);
      if (param && (entry.shape.length !== param.shape.length || entry.shape.some((d, i) => d !== param.shape[i]))) {
        shapeMismatches.push(`${name}: expected [${param.shape.join(', ')}], got [${entry.shape.join(', ')}]`);
      }
    }
    if (shapeMismatches.length > 0 || (strict && (missingKeys.length > 0 || unexpectedKeys.length > 0))) {
      const hint = unexpectedKeys.length > 0 ? prefixHint([...entries.keys()], new Set(own.keys())) : '';
      throw new StateDictError(missingKeys, unexpectedKeys, shapeMismatches, hint);
    }
    for (const [param, name, entry] of sources) {
      const values = entry instanceof Tensor ? entry.data() : entry.data;
      if (values === undefined) throw new ShapeError('loadStateDict', `${name} has no data`);
      param.backend.write(param.storageFor('loadStateDict'), values);
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Groups of names that share one tensor (tied weights), each in registration order;
   * parameters with a single name are left out. */
  tiedParameterNames(): string[][] {
    return [...namesByTensor(this.namedParameters()).values()].filter((names) => names.length > 1);
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Resets every parameter's gradient, as torch's Module.zero_grad: disposed and set to null
   * by default (setToNone, PyTorch's default since 2.0), or `{ setToNone: false }` zero-filled
   * in place. */
  zeroGrad(options: ZeroGradOptions = {}): void {
    checkOptions('Module.zeroGrad', options, ['setToNone']);
    resetGradients(this.parameters(), options.setToNone ?? true);
  }

  /** Frees every parameter and gradient, and what child modules hold besides (buffers such
   * as the sinusoidal table). */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
    for (const b of this.buffersByName.values()) b.tensor.dispose();
    for (const child of this.childrenByName.values()) child.dispose();
  }

  /** Number of scalar parameters. */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  protected newParameter(shape: Shape, values: ArrayLike<number>): Tensor {
    return new Tensor(this.backend.fromArray('f32', values), shape, this.backend, { requiresGrad: true });
  }
}
