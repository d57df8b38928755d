// Validation helpers for tokenizer JSON. Tokenizer files are downloaded and shared, so the
// loader treats them as hostile: every field is checked for type and range before use, and
// every failure is a FormatError naming the field (`merges[3][1]`) and the offending value.

import { FormatError } from '../tensor/errors.js';

/** Bumped whenever the JSON layout changes incompatibly; loaders refuse any other value. */
export const TOKENIZER_JSON_VERSION = 1;

/** Larger vocabularies are refused before any per-entry work, so a hostile file cannot make
 * the loader allocate without bound (real tokenizers stay well under 300k entries). */
export const MAX_VOCAB_SIZE = 1_000_000;

/** Keys that could reach Object.prototype if some consumer copies the parsed value naively. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

export function formatError(field: string, message: string): FormatError {
  return new FormatError(`tokenizer JSON: ${field} ${message}`);
}

/** A short rendering of a value for error messages (hostile strings can be huge). */
export function show(value: unknown): string {
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') {
    const quoted = JSON.stringify(value);
    return quoted.length > 60 ? `${quoted.slice(0, 57)}..."` : quoted;
  }
  return String(value);
}

/**
 * Refuses `__proto__`, `constructor` and `prototype` keys at any depth. JSON.parse creates
 * `"__proto__"` as an ordinary own property, so `Object.keys` sees it. The walk is iterative
 * (deeply nested input cannot overflow the stack) and remembers visited objects (a value
 * built in memory, rather than parsed, may contain cycles).
 */
export function assertNoForbiddenKeys(root: unknown): void {
  const visited = new WeakSet<object>();
  const pending: Array<{ value: unknown; path: string }> = [{ value: root, path: '(root)' }];
  while (pending.length > 0) {
    const { value, path } = pending.pop()!;
    if (typeof value !== 'object' || value === null || visited.has(value)) continue;
    visited.add(value);
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i];
        if (typeof item === 'object' && item !== null) pending.push({ value: item, path: `${path}[${i}]` });
      }
      continue;
    }
    for (const key of Object.keys(value)) {
      if (FORBIDDEN_KEYS.has(key)) throw formatError(path, `contains the forbidden key ${JSON.stringify(key)}`);
      const item: unknown = (value as Record<string, unknown>)[key];
      const itemPath = path === '(root)' ? key : `${path}.${key}`;
      if (typeof item === 'object' && item !== null) pending.push({ value: item, path: itemPath });
    }
  }
}

/** A plain object (what JSON.parse produces for `{...}`): no arrays, no class instances. */
export function expectRecord(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw formatError(field, `must be an object, got ${show(value)}`);
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw formatError(field, 'must be a plain object');
  return value as Record<string, unknown>;
}

/** Reads an own property only, so inherited names (`toString`, ...) never count as fields. */
export function ownField(record: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;
}

/** Unknown keys are refused rather than dropped, so a load followed by toJSON() reproduces
 * the input exactly, and a newer layout is never half-read under an old version number. */
export function expectOnlyKeys(record: Record<string, unknown>, field: string, allowed: readonly string[]): void {
  for (const key of Object.keys(record)) {
    if (!allowed.includes(key)) throw formatError(field, `has the unknown key ${show(key)}`);
  }
}

export function expectString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw formatError(field, `must be a string, got ${show(value)}`);
  return value;
}

export function expectArray(value: unknown, field: string, maxLength: number): unknown[] {
  if (!Array.isArray(value)) throw formatError(field, `must be an array, got ${show(value)}`);
  if (value.length > maxLength) throw formatError(field, `has ${value.length} entries, more than the limit of ${maxLength}`);
  return value;
}

/** An integer in [min, maxExclusive). */
export function expectInteger(value: unknown, field: string, min: number, maxExclusive: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value >= maxExclusive) {
    throw formatError(field, `must be an integer in [${min}, ${maxExclusive}), got ${show(value)}`);
  }
  return value;
}

/** The fields every tokenizer JSON starts with: the expected kind and the supported version. */
export function expectHeader(record: Record<string, unknown>, kind: string): void {
  const gotKind = ownField(record, 'kind');
  if (gotKind !== kind) throw formatError('kind', `must be ${JSON.stringify(kind)}, got ${show(gotKind)}`);
  const version = ownField(record, 'version');
  if (version !== TOKENIZER_JSON_VERSION) {
    throw formatError('version', `must be ${TOKENIZER_JSON_VERSION}, got ${show(version)}`);
  }
}
