// The interface every tokenizer implements, and loading one from JSON whatever its kind.

import { FormatError } from '../tensor/errors.js';
import { BpeTokenizer } from './bpe.js';
import { CharTokenizer } from './char.js';
import { expectRecord, formatError, ownField, show } from './json_checks.js';

/** Special token strings. Ids: pad 0, bos 1, eos 2, unk 3 where present; the vocabulary follows. */
export interface SpecialTokens {
  pad: string;
  bos: string;
  eos: string;
  unk?: string;
}

export interface EncodeOptions {
  /** Prepend bosId. Default false. */
  addBos?: boolean;
  /** Append eosId. Default false. */
  addEos?: boolean;
}

export interface DecodeOptions {
  /** Drop special ids (pad, bos, eos, unk) instead of rendering their strings. Default true. */
  skipSpecial?: boolean;
}

export interface Tokenizer {
  readonly kind: 'char' | 'bpe';
  readonly vocabSize: number;
  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number;
  /** Special strings occurring literally in `text` are encoded as ordinary text, never as
   * special ids: only the options add specials, so user text cannot inject control tokens. */
  encode(text: string, options?: EncodeOptions): number[];
  /** @throws ConfigError for an id that is not an integer in [0, vocabSize). */
  decode(ids: readonly number[], options?: DecodeOptions): string;
  /** A JSON.stringify-able description with "kind" and "version"; tokenizerFromJSON reverses it. */
  toJSON(): object;
}

/**
 * Rebuilds a tokenizer from the value toJSON() produced (after JSON.parse), dispatching on
 * its "kind". The input is treated as hostile.
 * @throws FormatError naming the field for anything malformed: a `__proto__`, `constructor`
 * or `prototype` key anywhere, an unknown kind or version, a wrong type, an id out of range,
 * a duplicate entry, a vocabulary over 1,000,000.
 */
export function tokenizerFromJSON(json: unknown): Tokenizer {
  const kind = ownField(expectRecord(json, 'tokenizer'), 'kind');
  switch (kind) {
    case 'char':
      return CharTokenizer.fromJSON(json);
    case 'bpe':
      return BpeTokenizer.fromJSON(json);
    default:
      throw formatError('kind', `must be "char" or "bpe", got ${show(kind)}`);
  }
}

/** Parses JSON text (as written by `JSON.stringify(tokenizer)`) and validates it like tokenizerFromJSON.
 * @throws FormatError for invalid JSON or a malformed tokenizer. */
export function loadTokenizer(jsonText: string): Tokenizer {
  if (typeof jsonText !== 'string') throw new FormatError(`tokenizer JSON: input must be a string, got ${show(jsonText)}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(jsonText);
  } catch (e) {
    throw new FormatError(`tokenizer JSON: not valid JSON (${(e as Error).message})`);
  }
  return tokenizerFromJSON(parsed);
}
