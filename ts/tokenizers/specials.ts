// Special tokens take the lowest ids, in a fixed order: pad 0, bos 1, eos 2, then unk 3 where
// the tokenizer has one. Padding id 0 then matches the pad=0 convention of the batching and
// loss code (and of PyTorch recipes), whatever the vocabulary.

import { ConfigError } from '../tensor/errors.js';
import { expectOnlyKeys, expectRecord, expectString, formatError, ownField, show } from './json_checks.js';
import type { SpecialTokens } from './tokenizer.js';

export const DEFAULT_SPECIALS: Readonly<Required<SpecialTokens>> = {
  pad: '<pad>',
  bos: '<bos>',
  eos: '<eos>',
  unk: '<unk>',
};

const SPECIAL_NAMES = ['pad', 'bos', 'eos', 'unk'] as const;

/** The special strings in id order. */
export function specialsInIdOrder(specials: SpecialTokens): string[] {
  return specials.unk === undefined
    ? [specials.pad, specials.bos, specials.eos]
    : [specials.pad, specials.bos, specials.eos, specials.unk];
}

/** Distinct, non-empty strings: decode(..., { skipSpecial: false }) must be able to tell them apart. */
function findSpecialsProblem(specials: SpecialTokens): string | undefined {
  const seen = new Map<string, string>();
  for (const name of SPECIAL_NAMES) {
    const value = specials[name];
    if (value === undefined) continue;
    if (value.length === 0) return `${name} must be a non-empty string`;
    const other = seen.get(value);
    if (other !== undefined) return `${other} and ${name} must differ, both are ${show(value)}`;
    seen.set(value, name);
  }
  return undefined;
}

/**
 * Fills in the defaults for a training call. `withUnk`: the char tokenizer always has an unk
 * (text may hold unseen characters); byte-level BPE covers every input, so it reserves an unk
 * id only when the caller names one.
 */
export function resolveSpecials(op: string, given: Partial<SpecialTokens> | undefined, withUnk: boolean): SpecialTokens {
  if (given !== undefined && (typeof given !== 'object' || given === null)) {
    throw new ConfigError(op, `specials must be an object, got ${show(given)}`);
  }
  for (const name of SPECIAL_NAMES) {
    const value = given?.[name];
    if (value !== undefined && typeof value !== 'string') {
      throw new ConfigError(op, `specials.${name} must be a string, got ${show(value)}`);
    }
  }
  const resolved: SpecialTokens = {
    pad: given?.pad ?? DEFAULT_SPECIALS.pad,
    bos: given?.bos ?? DEFAULT_SPECIALS.bos,
    eos: given?.eos ?? DEFAULT_SPECIALS.eos,
  };
  const unk = given?.unk ?? (withUnk ? DEFAULT_SPECIALS.unk : undefined);
  if (unk !== undefined) resolved.unk = unk;
  const problem = findSpecialsProblem(resolved);
  if (problem !== undefined) throw new ConfigError(op, `specials: ${problem}`);
  return resolved;
}

/** The "specials" field of a tokenizer JSON. */
export function parseSpecials(value: unknown, unkRequired: boolean): SpecialTokens {
  const record = expectRecord(value, 'specials');
  expectOnlyKeys(record, 'specials', SPECIAL_NAMES);
  const specials: SpecialTokens = {
    pad: expectString(ownField(record, 'pad'), 'specials.pad'),
    bos: expectString(ownField(record, 'bos'), 'specials.bos'),
    eos: expectString(ownField(record, 'eos'), 'specials.eos'),
  };
  const unk = ownField(record, 'unk');
  if (unk !== undefined || unkRequired) specials.unk = expectString(unk, 'specials.unk');
  const problem = findSpecialsProblem(specials);
  if (problem !== undefined) throw formatError('specials', `are invalid: ${problem}`);
  return specials;
}

/** A copy with the fields in id order, so toJSON() output is stable. */
export function specialsToJSON(specials: SpecialTokens): SpecialTokens {
  const out: SpecialTokens = { pad: specials.pad, bos: specials.bos, eos: specials.eos };
  if (specials.unk !== undefined) out.unk = specials.unk;
  return out;
}

/** Checks ids passed to decode: callers often feed model output, so a bad id is a caller error. */
export function checkTokenId(op: string, ids: readonly number[], index: number, vocabSize: number): number {
  const id = ids[index];
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocabSize) {
    throw new ConfigError(op, `ids[${index}] must be an integer in [0, ${vocabSize}), got ${show(id)}`);
  }
  return id;
}
