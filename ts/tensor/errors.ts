// Typed errors. Every one names the operation (or parameter) and the values involved, and
// is thrown before anything reaches Rust, so the library stays usable after catching it.

function formatValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.join(', ')}]`;
  return String(v);
}

/** Shapes that do not fit the op: `matmul: inner dimensions must match, got a [2, 3] and b [4, 5]`. */
export class ShapeError extends RangeError {
  override name = 'ShapeError';
  constructor(
    readonly op: string,
    message: string,
    readonly expected?: unknown,
    readonly got?: unknown,
  ) {
    super(`${op}: ${message}`);
  }

  /** `<op>: <what> must be <expected>, got <got>` */
  static mismatch(op: string, what: string, expected: unknown, got: unknown): ShapeError {
    return new ShapeError(op, `${what} must be ${formatValue(expected)}, got ${formatValue(got)}`, expected, got);
  }
}

/** A tensor of the wrong dtype for the op (token ids must be i32, masks u8, ...). */
export class DTypeError extends TypeError {
  override name = 'DTypeError';
  constructor(
    readonly op: string,
    readonly expected: string,
    readonly got: string,
    what = 'tensor',
  ) {
    super(`${op}: ${what} must have dtype ${expected}, got ${got}`);
  }
}

/** A configuration that cannot work (d_model not divisible by heads, negative dropout, ...). */
export class ConfigError extends RangeError {
  override name = 'ConfigError';
  constructor(
    readonly op: string,
    message: string,
  ) {
    super(`${op}: ${message}`);
  }
}

/** A malformed file (safetensors, tokenizer JSON, checkpoint). */
export class FormatError extends Error {
  override name = 'FormatError';
}

/** A tensor used after `dispose()`. */
export class DisposedError extends Error {
  override name = 'DisposedError';
  constructor(readonly op: string) {
    super(`${op}: tensor was used after dispose()`);
  }
}

/** A non-finite value found where `checkNumerics` is on. */
export class NumericsError extends RangeError {
  override name = 'NumericsError';
  constructor(
    readonly op: string,
    message: string,
  ) {
    super(`${op}: ${message}`);
  }
}

/** Autograd used in a way it cannot follow: a second backward() through a graph the first
 * one freed, backward() from a tensor no gradient reaches (PyTorch's RuntimeErrors). */
export class AutogradError extends Error {
  override name = 'AutogradError';
  constructor(
    readonly op: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${op}: ${message}`, options);
  }
}

/** A backend that cannot be used: none initialised yet, or one that failed to load. */
export class BackendError extends Error {
  override name = 'BackendError';
  constructor(
    readonly op: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${op}: ${message}`, options);
  }
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The allowed key a mistyped one most likely meant: the same key in camelCase
 * (`ignore_index` → `ignoreIndex`, PyTorch's spelling), the same letters ignoring case and
 * underscores, one that extends the other, or the nearest by edit distance (at most 2, or a
 * third of its length). */
export function suggestKey(key: string, allowed: readonly string[]): string | null {
  const squash = (s: string): string => s.replace(/[_-]/g, '').toLowerCase();
  const camel = key.replace(/[_-]+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());
  const exact = allowed.find((k) => k === camel) ?? allowed.find((k) => squash(k) === squash(key));
  if (exact !== undefined) return exact;
  // One spelling extends the other (stdev / std, label / labelSmoothing).
  const short = (a: string, b: string): boolean => a.length >= 3 && b.startsWith(a);
  const extended = allowed.find((k) => short(squash(k), squash(key)) || short(squash(key), squash(k)));
  if (extended !== undefined) return extended;
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const k of allowed) {
    const d = editDistance(squash(key), squash(k));
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/** Refuses anything but a plain options object holding only `allowed` keys: a ConfigError
 * names an unknown key and the key it probably meant, so `{ ignore_index: 0 }` fails loudly
 * instead of silently running with the default. `undefined` means "no options". A number,
 * string, array or tensor where the options object goes is a positional argument in the
 * wrong place (PyTorch's `Adam(params, 0.01)`) and is refused too. */
export function checkOptions(op: string, options: unknown, allowed: readonly string[], required: readonly string[] = []): void {
  if (options === undefined) {
    if (required.length > 0) throw new ConfigError(op, `needs an options object with ${required.join(', ')}`);
    return;
  }
  if (options === null || typeof options !== 'object' || Array.isArray(options) || 'storageFor' in options) {
    const got = Array.isArray(options) ? 'an array' : options === null ? 'null' : typeof options === 'object' ? 'a tensor' : `${typeof options} ${String(options)}`;
    throw new ConfigError(op, `expected an options object { ${allowed.join(', ')} }, got ${got} (options are passed by name, not position)`);
  }
  for (const key of Object.keys(options)) {
    if (allowed.includes(key)) continue;
    const hint = suggestKey(key, allowed);
    const known = allowed.length > 0 ? `known options: ${allowed.join(', ')}` : 'it takes no options';
    throw new ConfigError(op, `unknown option '${key}'${hint ? `; did you mean '${hint}'?` : ''} (${known})`);
  }
  const missing = required.filter((k) => (options as Record<string, unknown>)[k] === undefined);
  if (missing.length > 0) throw new ConfigError(op, `missing option${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
}
