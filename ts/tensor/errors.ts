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
