// Containers as PyTorch's: ModuleList and Sequential name their children '0', '1', ...;
// ModuleDict by key. A child's parameters appear under `<index or key>.<name>`, so
// `blocks.0.attn.c_attn.weight` reads the same as in a PyTorch state dict.
import type { Backend } from '../backend/backend.js';
import { ConfigError } from '../tensor/errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module } from './module.js';

/** A module Sequential can chain: one tensor in, one out. */
export interface Forward {
  forward(x: Tensor): Tensor;
}

function requireModule(op: string, value: unknown, where: string): Module {
  if (!(value instanceof Module)) {
    const got = value === null ? 'null' : typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value;
    throw new ConfigError(op, `${where} must be an nn.Module, got ${got}`);
  }
  return value;
}

/** items[index], negative counting from the end as Python's indexing. */
function pick<M>(op: string, items: M[], index: number): M {
  const i = index < 0 ? items.length + index : index;
  const m = Number.isInteger(i) ? items[i] : undefined;
  if (m === undefined) throw new ConfigError(op, `index ${index} is out of range for ${items.length} modules`);
  return m;
}

/** The backend of the first child, else the default one. */
function firstBackend(modules: Iterable<Module>): Backend | undefined {
  for (const m of modules) return m.backend;
  return undefined;
}

/** Children in a list, registered as '0', '1', ... (PyTorch's nn.ModuleList). */
export class ModuleList<M extends Module = Module> extends Module implements Iterable<M> {
  private readonly items: M[] = [];
  constructor(modules: Iterable<M> = [], options: { backend?: Backend } = {}) {
    const list = [...modules];
    super(options.backend ?? firstBackend(list));
    this.extend(list);
  }
  append(module: M): this {
    requireModule('ModuleList.append', module, `item ${this.items.length}`);
    this.registerModule(String(this.items.length), module);
    this.items.push(module);
    return this;
  }
  extend(modules: Iterable<M>): this {
    for (const m of modules) this.append(m);
    return this;
  }
  /** The i-th child; negative counts from the end, as Python's indexing. */
  at(index: number): M {
    return pick('ModuleList', this.items, index);
  }
  get length(): number {
    return this.items.length;
  }
  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
  map<R>(fn: (m: M, i: number) => R): R[] {
    return this.items.map(fn);
  }
}

/** Children applied in order, x -> m0 -> m1 -> ... (PyTorch's nn.Sequential). Given modules,
 * they are named '0', '1', ...; given a record, by its keys (PyTorch's OrderedDict form). */
export class Sequential extends Module implements Forward {
  private readonly steps: (Module & Forward)[] = [];
  constructor(...modules: (Module & Forward)[] | [Record<string, Module & Forward>]) {
    const first = modules[0];
    const named: [string, Module & Forward][] =
      modules.length === 1 && first !== undefined && !(first instanceof Module) && typeof first === 'object'
        ? Object.entries(first as Record<string, Module & Forward>)
        : (modules as (Module & Forward)[]).map((m, i) => [String(i), m]);
    for (const [name, m] of named) {
      requireModule('Sequential', m, `module '${name}'`);
      if (typeof m.forward !== 'function') throw new ConfigError('Sequential', `module '${name}' (${m.constructor.name}) has no forward(x)`);
    }
    super(firstBackend(named.map(([, m]) => m)));
    for (const [name, m] of named) this.steps.push(this.registerModule(name, m));
  }
  forward(x: Tensor): Tensor {
    for (const m of this.steps) x = m.forward(x);
    return x;
  }
  at(index: number): Module & Forward {
    return pick('Sequential', this.steps, index);
  }
  get length(): number {
    return this.steps.length;
  }
}

/** Children by key (PyTorch's nn.ModuleDict); keys keep insertion order. */
export class ModuleDict<M extends Module = Module> extends Module {
  private readonly items = new Map<string, M>();
  constructor(modules: Record<string, M> | Iterable<[string, M]> = {}, options: { backend?: Backend } = {}) {
    const entries = Symbol.iterator in modules ? [...(modules as Iterable<[string, M]>)] : Object.entries(modules as Record<string, M>);
    super(options.backend ?? firstBackend(entries.map(([, m]) => m)));
    for (const [key, m] of entries) this.set(key, m);
  }
  /** Adds a child; a key may be registered once (keys containing '.' would break the names). */
  set(key: string, module: M): this {
    if (key === '' || key.includes('.')) throw new ConfigError('ModuleDict', `key must be non-empty and contain no '.', got '${key}'`);
    requireModule('ModuleDict', module, `'${key}'`);
    if (this.items.has(key)) throw new ConfigError('ModuleDict', `'${key}' is already registered`);
    this.items.set(key, this.registerModule(key, module));
    return this;
  }
  get(key: string): M {
    const m = this.items.get(key);
    if (m === undefined) throw new ConfigError('ModuleDict', `no module '${key}' (keys: ${[...this.items.keys()].join(', ') || 'none'})`);
    return m;
  }
  has(key: string): boolean {
    return this.items.has(key);
  }
  keys(): string[] {
    return [...this.items.keys()];
  }
  entries(): [string, M][] {
    return [...this.items];
  }
  get size(): number {
    return this.items.size;
  }
}
