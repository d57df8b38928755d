// Checkpoints in safetensors: the model under PyTorch's names (`model.<name>`), the
// optimiser moments (`optim.<index>.m` / `.v`), and in the metadata the step, each
// parameter's Adam step count and every Dropout's RNG position, so that a resumed run
// continues exactly where it stopped. Loading validates everything before changing anything.
import { FLOAT_DTYPES, readSafetensors, toFloat32, writeSafetensors, type SafetensorsTensor } from '../io/safetensors.js';
import { Dropout } from '../nn/layers.js';
import type { LoadOptions, LoadResult, Module } from '../nn/module.js';
import type { Adam } from '../optim/adam.js';
import { ConfigError, FormatError, checkOptions } from '../tensor/errors.js';
import type { Tensor } from '../tensor/tensor.js';

const FORMAT = 'ferroformer-checkpoint';
const VERSION = '1';

export interface CheckpointContents {
  model: Module;
  optimizer?: Adam;
  /** Optimiser steps taken (the schedule's position). */
  step: number;
  /** Anything JSON-serialisable the caller wants back (config, data position, ...). */
  extra?: Record<string, unknown>;
}

function f32(data: ArrayLike<number>): Float32Array {
  return data instanceof Float32Array ? data : Float32Array.from(data);
}

/** Names written for the model: each tied group (one tensor under several names) keeps only
 * its alphabetically first name, as safetensors.torch.save_model does, and the metadata maps
 * each dropped name to the kept one (save_model's convention). */
function tiedNamesToDrop(model: Module): Map<string, string> {
  const dropped = new Map<string, string>();
  for (const names of model.tiedParameterNames()) {
    const [kept, ...rest] = [...names].sort();
    for (const name of rest) dropped.set(name, kept!);
  }
  return dropped;
}

/** The model's state dict (parameters and persistent buffers) under their PyTorch names, as safetensors bytes (loads into
 * PyTorch with `safetensors.torch.load_model(model, path)`, or `load_file` +
 * `model.load_state_dict` when no weights are tied). A tied tensor is written once. */
export function modelToSafetensors(model: Module, metadata: Record<string, string> = {}): Uint8Array {
  const dropped = tiedNamesToDrop(model);
  const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  for (const [name, p] of model.stateDict()) {
    if (!dropped.has(name)) tensors.set(name, { dtype: 'F32', shape: [...p.shape], data: f32(p.data()) });
  }
  return writeSafetensors(tensors, { ...Object.fromEntries(dropped), ...metadata });
}

/** Loads parameters saved by modelToSafetensors or PyTorch (save_file, save_model) into the
 * model; returns the keys that were missing or unexpected (non-empty only with strict false). */
export function loadModelSafetensors(model: Module, bytes: Uint8Array, options: LoadOptions = {}): LoadResult {
  checkOptions('loadModelSafetensors', options, ['strict', 'stripPrefix']);
  const { tensors } = readSafetensors(bytes);
  // Half-precision and F64 checkpoints are common: convert on load, as PyTorch's
  // load_state_dict copies into float32 parameters. Checked for every tensor before converting any.
  for (const [name, t] of tensors) {
    if (!FLOAT_DTYPES.has(t.dtype)) {
      throw new FormatError(`loadModel: ${name} has dtype ${t.dtype}; parameters load from F32, F64, F16 or BF16`);
    }
  }
  const floats = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of tensors) floats.set(name, { shape: t.shape, data: toFloat32(t.dtype, t.data) });
  return model.loadStateDict(floats, options);
}

const OPTIMIZER_FORMAT = 'ferroformer-optimizer';

/** One parameter group as written beside the optimiser state: torch.optim's param_groups
 * entry with parameter names where PyTorch has indices. */
export interface OptimizerGroupRecord {
  params: string[];
  lr: number;
  betas: [number, number];
  eps: number;
  weight_decay: number;
}

/** The name each parameter tensor is written under: its first name, or for a tied tensor
 * the name modelToSafetensors keeps. */
function parameterNames(model: Module): Map<Tensor, string> {
  const dropped = tiedNamesToDrop(model);
  const out = new Map<Tensor, string>();
  for (const [name, p] of model.namedParameters()) if (!dropped.has(name) && !out.has(p)) out.set(p, name);
  return out;
}

/** Adam/AdamW state under parameter names, in torch.optim's terms: `<name>.exp_avg` and
 * `<name>.exp_avg_sq` (the first and second moments, shaped as the parameter), and in the
 * metadata each parameter's `step`, the `param_groups` (names, lr, betas, eps,
 * weight_decay) and `optimizer` ('Adam' or 'AdamW'). Names instead of PyTorch's indices, so
 * the state maps onto a PyTorch model whatever order it registers its parameters in
 * (examples/pytorch-ddp builds `optimizer.state_dict()` from it). */
export function optimizerToSafetensors(model: Module, optimizer: Adam): Uint8Array {
  const names = parameterNames(model);
  const params = optimizer.groups.flatMap((g) => g.params);
  const nameOf = (p: Tensor): string => {
    const name = names.get(p);
    if (name === undefined) throw new ConfigError('optimizerToSafetensors', `the optimiser holds a parameter of shape [${p.shape.join(', ')}] that is not in the model`);
    return name;
  };
  const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  const steps: Record<string, number> = {};
  for (const e of optimizer.stateEntries()) {
    const p = params[e.index]!;
    const name = nameOf(p);
    tensors.set(`${name}.exp_avg`, { dtype: 'F32', shape: [...p.shape], data: f32(p.backend.read(e.m)) });
    tensors.set(`${name}.exp_avg_sq`, { dtype: 'F32', shape: [...p.shape], data: f32(p.backend.read(e.v)) });
    steps[name] = e.step;
  }
  const groups: OptimizerGroupRecord[] = optimizer.groups.map((g) => ({
    params: g.params.map(nameOf), lr: g.lr, betas: [g.betas[0], g.betas[1]], eps: g.eps, weight_decay: g.weightDecay,
  }));
  return writeSafetensors(tensors, { format: OPTIMIZER_FORMAT, optimizer: optimizer.name, step: JSON.stringify(steps), param_groups: JSON.stringify(groups) });
}

/** Restores state written by optimizerToSafetensors (or by examples/pytorch-ddp from a
 * PyTorch optimizer) into `optimizer` over `model`'s parameters, and each group's learning
 * rate. A tied parameter may be named by any of its names. Validates everything first;
 * throws (changing nothing) when the kind, names or shapes do not match. */
export function loadOptimizerSafetensors(model: Module, optimizer: Adam, bytes: Uint8Array): void {
  const { tensors, metadata } = readSafetensors(bytes);
  const op = 'loadOptimizer';
  if (metadata['format'] !== OPTIMIZER_FORMAT) throw new FormatError(`${op}: not an optimiser state file (format '${metadata['format']}')`);
  if (metadata['optimizer'] !== optimizer.name) throw new FormatError(`${op}: the file holds ${metadata['optimizer']} state, the optimiser is ${optimizer.name}`);
  const steps = parseObject(metadata, 'step', op);
  const groups = parseJson(metadata, 'param_groups', op) as OptimizerGroupRecord[];
  if (!Array.isArray(groups) || groups.length !== optimizer.groups.length) {
    throw new FormatError(`${op}: ${Array.isArray(groups) ? groups.length : 'no'} parameter groups in the file, the optimiser has ${optimizer.groups.length}`);
  }
  const byName = model.stateDict();
  const params = optimizer.groups.flatMap((g) => g.params);
  const indexOf = new Map(params.map((p, i) => [p, i]));
  const entries: { index: number; m: Float32Array; v: Float32Array; step: number }[] = [];
  for (const [name, step] of Object.entries(steps)) {
    const p = byName.get(name);
    const index = p === undefined ? undefined : indexOf.get(p);
    if (p === undefined || index === undefined) throw new FormatError(`${op}: state for '${name}', which is not a parameter of this optimiser's model`);
    if (typeof step !== 'number' || !Number.isSafeInteger(step) || step < 0) throw new FormatError(`${op}: step of '${name}' must be an integer >= 0, got ${String(step)}`);
    const [m, v] = [tensors.get(`${name}.exp_avg`), tensors.get(`${name}.exp_avg_sq`)];
    if (!m || !v) throw new FormatError(`${op}: '${name}' lacks ${m ? 'exp_avg_sq' : 'exp_avg'}`);
    for (const t of [m, v]) {
      if (t.dtype !== 'F32') throw new FormatError(`${op}: moments of '${name}' have dtype ${t.dtype}, expected F32`);
      if (t.shape.join() !== p.shape.join()) throw new FormatError(`${op}: moments of '${name}' are [${t.shape.join(', ')}], the parameter is [${p.shape.join(', ')}]`);
    }
    entries.push({ index, m: m.data as Float32Array, v: v.data as Float32Array, step });
  }
  const lrs = groups.map((g, i) => {
    const lr = g?.lr;
    if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) throw new FormatError(`${op}: group ${i} has no valid lr`);
    return lr;
  });
  optimizer.loadStateEntries(entries);
  optimizer.groups.forEach((g, i) => {
    g.lr = lrs[i]!;
  });
}

function dropouts(model: Module): [string, Dropout][] {
  return model.namedModules().filter((entry): entry is [string, Dropout] => entry[1] instanceof Dropout);
}

export function checkpointToBytes(contents: CheckpointContents): Uint8Array {
  checkOptions('checkpointToBytes', contents, ['model', 'optimizer', 'step', 'extra'], ['model', 'step']);
  const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  for (const [name, p] of contents.model.namedParameters()) {
    tensors.set(`model.${name}`, { dtype: 'F32', shape: [...p.shape], data: f32(p.data()) });
  }
  const optimSteps: Record<string, number> = {};
  for (const e of contents.optimizer?.stateEntries() ?? []) {
    const backend = contents.model.backend;
    tensors.set(`optim.${e.index}.m`, { dtype: 'F32', shape: [e.m.length], data: f32(backend.read(e.m)) });
    tensors.set(`optim.${e.index}.v`, { dtype: 'F32', shape: [e.v.length], data: f32(backend.read(e.v)) });
    optimSteps[e.index] = e.step;
  }
  const rng = Object.fromEntries(dropouts(contents.model).map(([name, d]) => [name, d.rngState]));
  return writeSafetensors(tensors, {
    format: FORMAT,
    version: VERSION,
    step: String(contents.step),
    optim_steps: JSON.stringify(optimSteps),
    optim_lr: JSON.stringify(contents.optimizer?.groups.map((g) => g.lr) ?? []),
    dropout_rng: JSON.stringify(rng),
    extra: JSON.stringify(contents.extra ?? {}),
  });
}

function parseJson(metadata: Record<string, string>, key: string, op = 'checkpoint'): unknown {
  const text = metadata[key];
  if (text === undefined) throw new FormatError(`${op}: metadata '${key}' is missing`);
  try {
    return JSON.parse(text, (k, v: unknown) => {
      if (k === '__proto__' || k === 'constructor' || k === 'prototype') throw new FormatError(`${op}: metadata '${key}' has a forbidden key '${k}'`);
      return v;
    });
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError(`${op}: metadata '${key}' is not valid JSON`);
  }
}

function isU32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** A JSON metadata value that must be a plain object (not null, not an array). */
function parseObject(metadata: Record<string, string>, key: string, op = 'checkpoint'): Record<string, unknown> {
  const value = parseJson(metadata, key, op);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new FormatError(`${op}: metadata '${key}' must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** Restores model, optimiser and RNG state; returns the step and extra. Throws (changing
 * nothing) when the file does not match the model or optimiser. */
export function loadCheckpointBytes(bytes: Uint8Array, target: { model: Module; optimizer?: Adam }): { step: number; extra: Record<string, unknown> } {
  checkOptions('loadCheckpointBytes', target, ['model', 'optimizer'], ['model']);
  const { tensors, metadata } = readSafetensors(bytes);
  if (metadata['format'] !== FORMAT) throw new FormatError(`checkpoint: not a ferroformer checkpoint (format '${metadata['format']}')`);
  if (metadata['version'] !== VERSION) throw new FormatError(`checkpoint: unsupported version '${metadata['version']}'`);
  const step = Number(metadata['step']);
  if (!Number.isSafeInteger(step) || step < 0) throw new FormatError(`checkpoint: step '${metadata['step']}' is not a non-negative integer`);
  const optimSteps = parseObject(metadata, 'optim_steps') as Record<string, number>;
  const lrs = parseJson(metadata, 'optim_lr') as number[];
  if (!Array.isArray(lrs) || lrs.some((lr) => typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0)) {
    throw new FormatError(`checkpoint: metadata 'optim_lr' must be an array of finite numbers >= 0`);
  }
  const rng = parseObject(metadata, 'dropout_rng') as Record<string, { seed: number; counter: number }>;
  for (const [name, state] of Object.entries(rng)) {
    const ok = state !== null && typeof state === 'object' && isU32(state.seed) && isU32(state.counter);
    if (!ok) throw new FormatError(`checkpoint: dropout RNG state of '${name}' must be {seed, counter} u32 integers`);
  }
  const extra = parseObject(metadata, 'extra');
  for (const [name, t] of tensors) {
    if (t.dtype !== 'F32') throw new FormatError(`checkpoint: ${name} has dtype ${t.dtype}, expected F32`);
  }

  const modelEntries = new Map<string, SafetensorsTensor>();
  for (const [name, t] of tensors) if (name.startsWith('model.')) modelEntries.set(name.slice(6), t);
  // Validate the optimiser part before touching anything.
  const entries: { index: number; m: Float32Array; v: Float32Array; step: number }[] = [];
  if (target.optimizer) {
    const params = target.optimizer.groups.flatMap((g) => g.params);
    for (const [key, s] of Object.entries(optimSteps)) {
      const index = Number(key);
      if (String(index) !== key) throw new FormatError(`checkpoint: optimiser state key '${key}' is not a parameter index`);
      const m = tensors.get(`optim.${key}.m`);
      const v = tensors.get(`optim.${key}.v`);
      const p = params[index];
      if (!m || !v) throw new FormatError(`checkpoint: optimiser state ${key} is missing its moments`);
      if (!p) throw new FormatError(`checkpoint: optimiser state for parameter ${key}, but the optimiser has ${params.length}`);
      if (m.data.length !== p.size || v.data.length !== p.size) {
        throw new FormatError(`checkpoint: optimiser state ${key} has ${m.data.length} values, parameter has ${p.size}`);
      }
      if (!Number.isSafeInteger(s) || s < 0) throw new FormatError(`checkpoint: optimiser step '${s}' for ${key} is invalid`);
      entries.push({ index, m: m.data as Float32Array, v: v.data as Float32Array, step: s });
    }
    if (!Array.isArray(lrs) || lrs.length !== target.optimizer.groups.length) {
      throw new FormatError(`checkpoint: ${Array.isArray(lrs) ? lrs.length : 'no'} learning rates for ${target.optimizer.groups.length} parameter groups`);
    }
  }
  target.model.loadStateDict(modelEntries as Map<string, { shape: number[]; data: Float32Array }>); // validates all keys and shapes first
  if (target.optimizer) {
    target.optimizer.loadStateEntries(entries);
    target.optimizer.groups.forEach((g, i) => {
      g.lr = Number(lrs[i]);
    });
  }
  for (const [name, d] of dropouts(target.model)) {
    const state = rng[name];
    if (state) d.rngState = state;
  }
  return { step, extra: extra as Record<string, unknown> };
}
