// Checkpoints in safetensors: the model under PyTorch's names (`model.<name>`), the
// optimiser moments (`optim.<index>.m` / `.v`), and in the metadata the step, each
// parameter's Adam step count and every Dropout's RNG position, so that a resumed run
// continues exactly where it stopped. Loading validates everything before changing anything.
import { readSafetensors, writeSafetensors, type SafetensorsTensor } from '../io/safetensors.js';
import { Dropout } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import type { Adam } from '../optim/adam.js';
import { FormatError } from '../tensor/errors.js';

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

/** The model's parameters under their PyTorch names, as safetensors bytes (loads into
 * PyTorch with `safetensors.torch.load_file` + `model.load_state_dict`). */
export function modelToSafetensors(model: Module, metadata: Record<string, string> = {}): Uint8Array {
  const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  for (const [name, p] of model.namedParameters()) tensors.set(name, { dtype: 'F32', shape: [...p.shape], data: f32(p.data()) });
  return writeSafetensors(tensors, metadata);
}

/** Loads parameters saved by modelToSafetensors (or PyTorch's save_file) into the model. */
export function loadModelSafetensors(model: Module, bytes: Uint8Array, options: { strict?: boolean } = {}): void {
  const { tensors } = readSafetensors(bytes);
  for (const [name, t] of tensors) {
    if (t.dtype !== 'F32') throw new FormatError(`loadModel: ${name} has dtype ${t.dtype}, expected F32`);
  }
  model.loadStateDict(tensors as Map<string, { shape: number[]; data: Float32Array }>, options);
}

function dropouts(model: Module): [string, Dropout][] {
  return model.namedModules().filter((entry): entry is [string, Dropout] => entry[1] instanceof Dropout);
}

export function checkpointToBytes(contents: CheckpointContents): Uint8Array {
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

function parseJson(metadata: Record<string, string>, key: string): unknown {
  const text = metadata[key];
  if (text === undefined) throw new FormatError(`checkpoint: metadata '${key}' is missing`);
  try {
    return JSON.parse(text, (k, v: unknown) => {
      if (k === '__proto__' || k === 'constructor' || k === 'prototype') throw new FormatError(`checkpoint: metadata '${key}' has a forbidden key '${k}'`);
      return v;
    });
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError(`checkpoint: metadata '${key}' is not valid JSON`);
  }
}

function isU32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** A JSON metadata value that must be a plain object (not null, not an array). */
function parseObject(metadata: Record<string, string>, key: string): Record<string, unknown> {
  const value = parseJson(metadata, key);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new FormatError(`checkpoint: metadata '${key}' must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** Restores model, optimiser and RNG state; returns the step and extra. Throws (changing
 * nothing) when the file does not match the model or optimiser. */
export function loadCheckpointBytes(bytes: Uint8Array, target: { model: Module; optimizer?: Adam }): { step: number; extra: Record<string, unknown> } {
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
