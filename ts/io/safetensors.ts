// safetensors reader and writer (https://github.com/huggingface/safetensors):
//   [u64 little-endian N][N bytes of UTF-8 JSON header][byte buffer]
// header: { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { str: str } },
// offsets relative to the start of the byte buffer.
//
// The reader treats its input as hostile (checkpoints are downloaded): every field is
// validated before a typed array is built, and every failure is a FormatError naming the
// tensor and the offending values. The writer produces files the official library (and so
// PyTorch) reads back: contiguous data without gaps, header padded with spaces.

import { FormatError } from '../tensor/errors.js';

export type SafetensorsDType =
  | 'F32' | 'F64' | 'I32' | 'I64' | 'U8' | 'BOOL' | 'F16' | 'BF16' | 'I8' | 'I16' | 'U16' | 'U32' | 'U64';

export type SafetensorsData =
  | Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array
  | Int16Array | Uint16Array | Uint32Array | BigUint64Array;

export interface SafetensorsTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: SafetensorsData;
}

export interface SafetensorsFile {
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

type DataCtor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): SafetensorsData;
  new (length: number): SafetensorsData;
  readonly BYTES_PER_ELEMENT: number;
};

/** Element size and the typed array each dtype is returned as. F16 and BF16 come back as
 * raw bits in a Uint16Array (`toFloat32` converts them); BOOL as a Uint8Array of 0/1. */
const DTYPES: Readonly<Record<SafetensorsDType, { size: number; ctor: DataCtor }>> = {
  F64: { size: 8, ctor: Float64Array },
  I64: { size: 8, ctor: BigInt64Array },
  U64: { size: 8, ctor: BigUint64Array },
  F32: { size: 4, ctor: Float32Array },
  I32: { size: 4, ctor: Int32Array },
  U32: { size: 4, ctor: Uint32Array },
  F16: { size: 2, ctor: Uint16Array },
  BF16: { size: 2, ctor: Uint16Array },
  I16: { size: 2, ctor: Int16Array },
  U16: { size: 2, ctor: Uint16Array },
  U8: { size: 1, ctor: Uint8Array },
  I8: { size: 1, ctor: Int8Array },
  BOOL: { size: 1, ctor: Uint8Array },
};

const METADATA_KEY = '__metadata__';
/** Larger headers are refused before decoding (the official library's limit is 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;
/** Keys that could reach Object.prototype if some consumer copies the header naively. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function assertLittleEndian(): void {
  // Typed-array views reinterpret the file's bytes in host order; safetensors is little-endian.
  if (!LITTLE_ENDIAN) throw new FormatError('safetensors: big-endian hosts are not supported');
}

function isDType(s: unknown): s is SafetensorsDType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, s);
}

function show(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    if (s === undefined) return String(v);
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(v);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Product of a shape, or null when it exceeds Number.MAX_SAFE_INTEGER. */
function numel(shape: readonly number[]): number | null {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return null;
  }
  return n;
}

function validShape(shape: unknown): shape is number[] {
  return Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0);
}

/** One tensor's place in a file: dtype, shape and byte offsets relative to the data buffer
 * (which starts at `SafetensorsHeader.dataStart`). */
export interface SafetensorsEntry {
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

/** A parsed and validated header: enough to read tensors one at a time from a file or a
 * stream without holding the whole file. */
export interface SafetensorsHeader {
  /** In file order of the header's keys. */
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** Byte offset of the data buffer in the file: 8 + the header's length. */
  dataStart: number;
}

/** 8 + N, the bytes up to the data buffer, from the file's first 8 bytes (N = the header's
 * length), checked against the size limit and, when given, the file's length. */
export function safetensorsHeaderSize(first8: Uint8Array, fileLength?: number): number {
  assertLittleEndian();
  if (!(first8 instanceof Uint8Array)) throw new FormatError('safetensors: input must be a Uint8Array');
  const known = fileLength ?? first8.length;
  if (first8.length < 8 || known < 8) {
    throw new FormatError(`safetensors: file is ${Math.min(first8.length, known)} bytes, too short for the 8-byte header length`);
  }
  const headerLen = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    throw new FormatError(`safetensors: header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const n = Number(headerLen);
  if (fileLength !== undefined && 8 + n > fileLength) {
    throw new FormatError(`safetensors: header length ${n} runs past the end of the ${fileLength}-byte file`);
  }
  if (n < 2) throw new FormatError(`safetensors: header length ${n} is too short for a JSON object`);
  return 8 + n;
}

/**
 * Parses and validates a header. `bytes` holds at least the file's first
 * `safetensorsHeaderSize` bytes (the whole file will do); `fileLength` is the whole file's
 * length, against which the offsets are checked.
 *
 * @throws FormatError as `readSafetensors`.
 */
export function readSafetensorsHeader(bytes: Uint8Array, fileLength: number = bytes.length): SafetensorsHeader {
  const dataStart = safetensorsHeaderSize(bytes, fileLength);
  if (bytes.length < dataStart) {
    throw new FormatError(`safetensors: ${bytes.length} bytes given, the header needs ${dataStart}`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart));
  } catch {
    throw new FormatError('safetensors: header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text, (key, value: unknown) => {
      if (FORBIDDEN_KEYS.has(key)) throw new FormatError(`safetensors: forbidden key ${show(key)} in header`);
      return value;
    });
  } catch (e) {
    if (e instanceof FormatError) throw e;
    // SyntaxError, or a RangeError from pathologically deep nesting
    throw new FormatError(`safetensors: header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(header)) throw new FormatError(`safetensors: header must be a JSON object, got ${show(header)}`);

  const bufferLen = fileLength - dataStart;
  const metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  const entries = new Map<string, SafetensorsEntry>();

  for (const name of Object.keys(header)) {
    const info = header[name];
    if (name === METADATA_KEY) {
      if (info === null) continue;
      if (!isPlainObject(info)) throw new FormatError(`safetensors: __metadata__ must be an object, got ${show(info)}`);
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') {
          throw new FormatError(`safetensors: __metadata__ value for ${show(k)} must be a string, got ${show(v)}`);
        }
        metadata[k] = v;
      }
      continue;
    }
    const where = `safetensors: tensor ${show(name)}`;
    if (!isPlainObject(info)) throw new FormatError(`${where}: entry must be an object, got ${show(info)}`);
    const { dtype, shape, data_offsets: offsets } = info;
    if (!isDType(dtype)) throw new FormatError(`${where}: unknown dtype ${show(dtype)}`);
    if (!validShape(shape)) {
      throw new FormatError(`${where}: shape must be an array of non-negative integers, got ${show(shape)}`);
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !Number.isSafeInteger(offsets[0]) || !Number.isSafeInteger(offsets[1])
    ) {
      throw new FormatError(`${where}: data_offsets must be [begin, end] integers, got ${show(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin < 0 || begin > end || end > bufferLen) {
      throw new FormatError(
        `${where}: data_offsets [${begin}, ${end}] must satisfy 0 <= begin <= end <= ${bufferLen} (buffer length)`,
      );
    }
    const count = numel(shape);
    const size = DTYPES[dtype].size;
    if (count === null || count * size !== end - begin) {
      throw new FormatError(
        `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dtype} shape ` +
          `[${shape.join(', ')}] needs ${count === null ? 'more than 2^53' : count * size}`,
      );
    }
    entries.set(name, { dtype, shape: shape.slice(), begin, end });
  }

  // Overlap check in O(n log n): sorted by begin, each non-empty range must start at or
  // after the previous one's end.
  const ranges = [...entries].filter(([, e]) => e.end > e.begin).sort(([, a], [, b]) => a.begin - b.begin);
  for (let i = 1; i < ranges.length; i++) {
    const [prevName, prev] = ranges[i - 1]!;
    const [curName, cur] = ranges[i]!;
    if (cur.begin < prev.end) {
      throw new FormatError(
        `safetensors: tensor ${show(curName)} [${cur.begin}, ${cur.end}] overlaps ` +
          `tensor ${show(prevName)} [${prev.begin}, ${prev.end}]`,
      );
    }
  }
  return { entries, metadata, dataStart };
}

/** Bytes per element of a safetensors dtype. */
export function safetensorsElementSize(dtype: SafetensorsDType): number {
  return DTYPES[dtype].size;
}

/** The typed array of `dtype` over `bytes` (a view when aligned, else an aligned copy). */
export function safetensorsData(dtype: SafetensorsDType, bytes: Uint8Array): SafetensorsData {
  const { size, ctor } = DTYPES[dtype];
  if (bytes.length % size !== 0) throw new FormatError(`safetensors: ${bytes.length} bytes are not a whole number of ${dtype} elements`);
  const count = bytes.length / size;
  if (bytes.byteOffset % size === 0) return new ctor(bytes.buffer, bytes.byteOffset, count);
  // Typed arrays need aligned views; copy the bytes into a fresh, aligned buffer.
  const data = new ctor(count);
  new Uint8Array(data.buffer).set(bytes);
  return data;
}

/**
 * Parses a safetensors file.
 *
 * Zero-copy where possible: a tensor whose data starts at a byte address (within
 * `bytes.buffer`) aligned to its element size is returned as a VIEW on `bytes.buffer`, so
 * it shares memory with the input (mutating one mutates the other; keep `bytes` alive and
 * unmodified, or copy with `.slice()`). An unaligned tensor is copied into a fresh array.
 * Files written by `writeSafetensors` are always aligned.
 *
 * @throws FormatError for anything malformed: truncated file, header length beyond the file
 * or over 100 MB, invalid UTF-8 or JSON, a `__proto__`/`constructor`/`prototype` key, an
 * unknown dtype, a bad shape, offsets out of range, a size that does not match the shape,
 * overlapping tensors, non-string metadata.
 */
export function readSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) throw new FormatError('safetensors: input must be a Uint8Array');
  const { entries, metadata, dataStart } = readSafetensorsHeader(bytes);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [name, e] of entries) {
    const data = safetensorsData(e.dtype, bytes.subarray(dataStart + e.begin, dataStart + e.end));
    tensors.set(name, { dtype: e.dtype, shape: e.shape.slice(), data });
  }
  return { tensors, metadata };
}

/** Floating dtypes that convert to float32 on load. */
export const FLOAT_DTYPES: ReadonlySet<SafetensorsDType> = new Set(['F32', 'F64', 'F16', 'BF16']);

/**
 * Float32 values of a floating tensor: F32 as is (the same array unless `out` is given),
 * F64 rounded, F16 and BF16 (raw bits in a Uint16Array) widened exactly. Writes into `out`
 * (length = element count) when given, so a loader can reuse one buffer.
 *
 * @throws FormatError for a non-floating dtype or a data array that does not fit it.
 */
export function toFloat32(dtype: SafetensorsDType, data: SafetensorsData, out?: Float32Array): Float32Array {
  if (!FLOAT_DTYPES.has(dtype) || !acceptsData(dtype, data)) {
    throw new FormatError(`safetensors: cannot convert ${dtype} (${data.constructor.name}) to float32; floating dtypes are F32, F64, F16 and BF16`);
  }
  if (out !== undefined && out.length !== data.length) {
    throw new FormatError(`safetensors: toFloat32 output has length ${out.length}, data ${data.length}`);
  }
  if (dtype === 'F32') {
    if (out === undefined) return data as Float32Array;
    out.set(data as Float32Array);
    return out;
  }
  const result = out ?? new Float32Array(data.length);
  if (dtype === 'F64') {
    result.set(data as Float64Array);
  } else if (dtype === 'BF16') {
    // bfloat16 is the top half of a float32: shifting the bits back is exact (NaN included).
    const bits = new Uint32Array(result.buffer, result.byteOffset, result.length);
    const src = data as Uint16Array;
    for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  } else {
    const bits = new Uint32Array(result.buffer, result.byteOffset, result.length);
    const src = data as Uint16Array;
    for (let i = 0; i < src.length; i++) bits[i] = float16BitsToFloat32Bits(src[i]!);
  }
  return result;
}

/** IEEE half (1 sign, 5 exponent, 10 mantissa bits) to the float32 bits of the same value. */
function float16BitsToFloat32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >> 10) & 0x1f;
  let mantissa = h & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0; // Inf, NaN
  if (exponent !== 0) return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0; // ±0
  // Subnormal half: normalise (every half subnormal is a normal float32).
  let e = 113;
  while ((mantissa & 0x400) === 0) {
    mantissa <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((mantissa & 0x3ff) << 13)) >>> 0;
}

export type SafetensorsInput = Record<string, SafetensorsTensor> | Map<string, SafetensorsTensor>;

/** Typed arrays accepted as data for each dtype (their element size must match). */
function acceptsData(dtype: SafetensorsDType, data: unknown): boolean {
  switch (dtype) {
    case 'F32': return data instanceof Float32Array;
    case 'F64': return data instanceof Float64Array;
    case 'I32': return data instanceof Int32Array;
    case 'I64': return data instanceof BigInt64Array;
    case 'U64': return data instanceof BigUint64Array;
    case 'U32': return data instanceof Uint32Array;
    case 'I16': return data instanceof Int16Array;
    case 'U16': case 'F16': case 'BF16': return data instanceof Uint16Array;
    case 'I8': return data instanceof Int8Array;
    case 'U8': case 'BOOL': return data instanceof Uint8Array || data instanceof Uint8ClampedArray;
  }
}

/**
 * Serialises tensors (and optional string metadata) to safetensors bytes.
 *
 * Header keys are sorted by name. Data is laid out contiguously, largest element size
 * first and by name within a size (as the official library does), and the header is padded
 * with spaces to a multiple of 8 bytes: so every tensor starts aligned to its element size
 * and `readSafetensors` returns zero-copy views.
 *
 * @throws FormatError for an unknown dtype, a bad shape, data whose type or length does not
 * match dtype and shape, a reserved name, or a non-string metadata value.
 */
export function writeSafetensors(tensors: SafetensorsInput, metadata?: Record<string, string>): Uint8Array {
  assertLittleEndian();
  const list = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))];
  for (const [name, t] of list) {
    const where = `safetensors: tensor ${show(name)}`;
    if (name === METADATA_KEY || FORBIDDEN_KEYS.has(name)) throw new FormatError(`${where}: reserved name`);
    if (!isDType(t.dtype)) throw new FormatError(`${where}: unknown dtype ${show(t.dtype)}`);
    if (!validShape(t.shape)) {
      throw new FormatError(`${where}: shape must be an array of non-negative integers, got ${show(t.shape)}`);
    }
    if (!acceptsData(t.dtype, t.data)) {
      throw new FormatError(`${where}: data ${t.data?.constructor?.name ?? typeof t.data} does not fit dtype ${t.dtype}`);
    }
    const count = numel(t.shape);
    if (count !== t.data.length) {
      throw new FormatError(`${where}: shape [${t.shape.join(', ')}] needs ${count} elements, data has ${t.data.length}`);
    }
  }
  const meta: Record<string, string> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') {
        throw new FormatError(`safetensors: metadata value for ${show(k)} must be a string, got ${show(v)}`);
      }
      if (FORBIDDEN_KEYS.has(k)) throw new FormatError(`safetensors: metadata key ${show(k)} is reserved`);
      meta[k] = v;
    }
  }

  // Largest element size first: every offset is then a multiple of the element size.
  const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  const layout = [...list].sort(
    ([na, a], [nb, b]) => DTYPES[b.dtype].size - DTYPES[a.dtype].size || byName(na, nb),
  );
  const offsets = new Map<string, [number, number]>();
  let pos = 0;
  for (const [name, t] of layout) {
    offsets.set(name, [pos, pos + t.data.byteLength]);
    pos += t.data.byteLength;
  }

  const header: Record<string, unknown> = {};
  if (Object.keys(meta).length > 0) {
    header[METADATA_KEY] = Object.fromEntries(Object.keys(meta).sort(byName).map((k) => [k, meta[k]]));
  }
  for (const [name, t] of [...list].sort(([a], [b]) => byName(a, b))) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: offsets.get(name) };
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20); // trailing spaces are valid JSON whitespace
    p.set(json);
    json = p;
  }

  const out = new Uint8Array(8 + json.length + pos);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  for (const [name, t] of layout) {
    const [begin] = offsets.get(name)!;
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), 8 + json.length + begin);
  }
  return out;
}
