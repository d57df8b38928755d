// Streams a safetensors file into backend storages tensor by tensor, in file order, so a
// checkpoint loads without ever holding the file (or a second copy of the weights): the
// header is parsed first and every tensor checked against its destination before any data
// is read; then each chunk of the stream is converted to float32 (F16 / BF16 / F64 on the
// way) and written at its place with Backend.writeAt. A tensor stored transposed (GPT-2's
// Conv1D weights, [in, out]) is gathered whole and transposed once: the only scratch as
// large as a tensor.
import type { Backend, Storage } from '../backend/backend.js';
import {
  FLOAT_DTYPES, readSafetensorsHeader, safetensorsData, safetensorsElementSize, safetensorsHeaderSize, toFloat32,
  type SafetensorsEntry, type SafetensorsHeader,
} from '../io/safetensors.js';
import { FormatError } from '../tensor/errors.js';

/** Where one tensor of the file goes: a float32 storage of the same number of elements,
 * filled as stored, or transposed from [rows, cols] (the file's shape) to [cols, rows]. */
export interface WeightTarget {
  storage: Storage;
  transpose: boolean;
}

/** Elements per block when writing a transposed tensor (256 KiB of float32). */
const TRANSPOSE_BLOCK = 1 << 16;

/** What a load allocated besides the weights (tests assert on it, not on timing). */
export interface LoadStats {
  /** Most bytes of scratch alive at once (chunk conversions, a transposed tensor). */
  peakScratchBytes: number;
  /** The largest tensor's size as float32, the bound the loader keeps to. */
  largestTensorBytes: number;
  /** Bytes of weights written. */
  weightBytes: number;
}

/** Counts scratch allocations so the loader's claim about memory is testable. */
class ScratchMeter {
  private live = 0;
  peak = 0;
  private conversion: Float32Array | null = null;
  /** One float32 buffer reused by every chunk's conversion (grown when a part needs more):
   * a fresh array per chunk would leave the collector a trail of them. */
  conversionBuffer(n: number): Float32Array {
    if (this.conversion === null || this.conversion.length < n) {
      if (this.conversion !== null) this.release(this.conversion.byteLength);
      this.conversion = this.f32(n);
    }
    return this.conversion.subarray(0, n);
  }
  f32(n: number): Float32Array {
    this.take(n * 4);
    return new Float32Array(n);
  }
  bytes(n: number): Uint8Array {
    this.take(n);
    return new Uint8Array(n);
  }
  release(bytes: number): void {
    this.live -= bytes;
  }
  take(bytes: number): void {
    this.live += bytes;
    this.peak = Math.max(this.peak, this.live);
  }
}

/** Reads the header from the stream's first chunks; returns it with the bytes after it. */
async function readHeader(chunks: AsyncIterator<Uint8Array>, source: string, fileLength: number | null):
  Promise<{ header: SafetensorsHeader; rest: Uint8Array | null }> {
  let buffered = new Uint8Array(0);
  let need = 8;
  for (;;) {
    while (buffered.length < need) {
      const next = await chunks.next();
      if (next.done) throw new FormatError(`${source}: file ends after ${buffered.length} bytes, inside the safetensors header`);
      const joined = new Uint8Array(buffered.length + next.value.length);
      joined.set(buffered);
      joined.set(next.value, buffered.length);
      buffered = joined;
    }
    if (need === 8) {
      need = safetensorsHeaderSize(buffered.subarray(0, 8), fileLength ?? undefined);
      continue;
    }
    const header = readSafetensorsHeader(buffered.subarray(0, need), fileLength ?? Number.MAX_SAFE_INTEGER);
    return { header, rest: buffered.length > need ? buffered.subarray(need) : null };
  }
}

/**
 * Loads the tensors `plan` names from a safetensors byte stream. `plan(name, entry)` returns
 * the destination of a tensor, or null to skip it; it may throw to refuse the file (it sees
 * every header entry before any data is read, so nothing is written to a refused model).
 * `fileLength` (when known) lets a truncated header be reported before reading on.
 */
export async function streamSafetensors(
  stream: AsyncIterable<Uint8Array>, backend: Backend, source: string, fileLength: number | null,
  plan: (header: SafetensorsHeader) => Map<string, WeightTarget>,
): Promise<LoadStats> {
  const chunks = stream[Symbol.asyncIterator]();
  const { header, rest } = await readHeader(chunks, source, fileLength);
  const targets = plan(header);
  const meter = new ScratchMeter();
  const order = [...targets].map(([name, target]) => ({ name, target, entry: header.entries.get(name)! }))
    .sort((a, b) => a.entry.begin - b.entry.begin);
  let largest = 0;
  let weightBytes = 0;
  for (const { name, entry } of order) {
    if (!FLOAT_DTYPES.has(entry.dtype)) throw new FormatError(`${source}: tensor ${name} has dtype ${entry.dtype}; weights must be F32, F16, BF16 or F64`);
    const count = (entry.end - entry.begin) / safetensorsElementSize(entry.dtype);
    largest = Math.max(largest, count * 4);
    weightBytes += count * 4;
  }

  // Byte position (relative to the data buffer) of the next stream byte.
  let pos = 0;
  let index = 0;
  // Per tensor: elements written so far, a partial element split across chunks, and for a
  // transposed tensor the gathered bytes.
  let written = 0;
  let carry: Uint8Array | null = null;
  let gathered: Uint8Array | null = null;
  let gatheredLength = 0;

  const finishTransposed = (e: SafetensorsEntry, target: WeightTarget): void => {
    const [rows, cols] = e.shape.length === 2 ? (e.shape as [number, number]) : [1, e.shape.reduce((a, b) => a * b, 1)];
    const raw = safetensorsData(e.dtype, gathered!);
    // Output rows (source columns) a block at a time: gathered in the file's dtype, then
    // converted, so no float32 copy of the whole tensor is ever made.
    const blockRows = Math.max(1, Math.floor(TRANSPOSE_BLOCK / Math.max(rows, 1)));
    const ctor = raw.constructor as new (n: number) => typeof raw;
    for (let c0 = 0; c0 < cols; c0 += blockRows) {
      const n = Math.min(blockRows, cols - c0);
      const block = ctor === Float32Array ? meter.f32(n * rows) : (meter.take(n * rows * safetensorsElementSize(e.dtype)), new ctor(n * rows));
      for (let j = 0; j < n; j++) {
        for (let r = 0; r < rows; r++) block[j * rows + r] = raw[r * cols + c0 + j]!;
      }
      const values = toFloat32(e.dtype, block, block instanceof Float32Array ? undefined : meter.f32(n * rows));
      backend.writeAt(target.storage, c0 * rows, values);
      meter.release(block.byteLength + (values === block ? 0 : values.byteLength));
    }
    meter.release(gathered!.length);
    gathered = null;
  };

  /** Feeds bytes [pos, pos + bytes.length) of the data buffer. */
  const feed = (bytes: Uint8Array): void => {
    let offset = 0;
    while (offset < bytes.length && index < order.length) {
      const { name, target, entry } = order[index]!;
      const here = pos + offset;
      if (here < entry.begin) {
        offset += Math.min(entry.begin - here, bytes.length - offset); // bytes of a skipped tensor
        continue;
      }
      const take = Math.min(entry.end - here, bytes.length - offset);
      const part = bytes.subarray(offset, offset + take);
      if (target.transpose) {
        if (gathered === null) {
          gathered = meter.bytes(entry.end - entry.begin);
          gatheredLength = 0;
        }
        gathered.set(part, gatheredLength);
        gatheredLength += part.length;
      } else {
        written += writeElements(backend, target.storage, written, entry, carry, part, meter, (c) => {
          carry = c;
        });
      }
      offset += take;
      if (here + take === entry.end) {
        if (target.transpose) finishTransposed(entry, target);
        if (carry !== null) throw new FormatError(`${source}: tensor ${name} ends inside an element`);
        index++;
        written = 0;
      }
    }
    pos += bytes.length;
  };

  if (rest !== null) feed(rest);
  while (index < order.length) {
    const next = await chunks.next();
    if (next.done) {
      const { name, entry } = order[index]!;
      throw new FormatError(`${source}: file ends at byte ${header.dataStart + pos}, inside tensor ${name} (bytes ${header.dataStart + entry.begin} to ${header.dataStart + entry.end})`);
    }
    feed(next.value);
  }
  await chunks.return?.();
  return { peakScratchBytes: meter.peak, largestTensorBytes: largest, weightBytes };
}

/** Writes the whole elements of `carry + part` at element `at` of `storage`; keeps a
 * trailing partial element in the next carry. Returns the elements written. */
function writeElements(backend: Backend, storage: Storage, at: number, entry: SafetensorsEntry, carry: Uint8Array | null,
  part: Uint8Array, meter: ScratchMeter, setCarry: (c: Uint8Array | null) => void): number {
  const size = safetensorsElementSize(entry.dtype);
  let bytes = part;
  if (carry !== null) {
    bytes = new Uint8Array(carry.length + part.length);
    bytes.set(carry);
    bytes.set(part, carry.length);
  }
  const whole = bytes.length - (bytes.length % size);
  setCarry(whole < bytes.length ? bytes.slice(whole) : null);
  if (whole === 0) return 0;
  const count = whole / size;
  const aligned = (bytes.byteOffset % size) === 0;
  if (entry.dtype === 'F32' && aligned) {
    backend.writeAt(storage, at, new Float32Array(bytes.buffer, bytes.byteOffset, count));
  } else {
    const values = toFloat32(entry.dtype, safetensorsData(entry.dtype, bytes.subarray(0, whole)), meter.conversionBuffer(count));
    backend.writeAt(storage, at, values);
  }
  return count;
}

/** The chunks of a WHATWG ReadableStream (fetch's body), for runtimes whose streams are not
 * async-iterable. */
export async function* readableChunks(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      if (value) yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** Chunks of an in-memory file, at most `chunkBytes` each (views, no copies). */
export async function* bytesChunks(bytes: Uint8Array, chunkBytes = 1 << 24): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += chunkBytes) yield bytes.subarray(i, Math.min(bytes.length, i + chunkBytes));
}
