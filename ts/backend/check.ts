// The kernel checks of crates/kernels/src/check.rs in TypeScript, for the reference backend
// (ts/backend/kernels.generated.ts calls them in the shims' order): the same conditions and,
// word for word, the same messages, so a misuse reads the same on every backend.

import { savesActGrad, type LinearActivation } from './backend.js';

/** `<op>: <name> has length <got>, expected <want>` unless got === want. */
export function len(op: string, name: string, got: number, want: number): void {
  if (got !== want) throw new RangeError(`${op}: ${name} has length ${got}, expected ${want}`);
}

/** Product of dimensions (JS numbers are exact far beyond any buffer, so no overflow check). */
export function product(_op: string, dims: number[]): number {
  let size = 1;
  for (const d of dims) size *= d;
  return size;
}

/** Rows of a [rows, dim] table stored in `length` elements. */
export function rows(op: string, name: string, length: number, dim: number): number {
  if (dim === 0 || length % dim !== 0) {
    throw new RangeError(`${op}: ${name} has length ${length}, not a multiple of dim ${dim}`);
  }
  return length / dim;
}

/** Every id is a row of a table with `rowCount` rows, or equals `ignore`. */
export function ids(op: string, name: string, values: Int32Array, rowCount: number, ignore: number | null): void {
  for (let i = 0; i < values.length; i++) {
    const id = values[i]!;
    if (id !== ignore && (id < 0 || id >= rowCount)) {
      throw new RangeError(`${op}: ${name}[${i}] = ${id} is outside [0, ${rowCount})`);
    }
  }
}

/** The most dims a strided kernel walks (crates/kernels/src/ops/strided.rs). */
const MAX_DIMS = 8;

/** A contiguous buffer of `length` elements laid out as `shape`. */
export function shapeLen(op: string, name: string, length: number, shape: Int32Array): void {
  const dims = `[${shape.join(', ')}]`;
  if (shape.length > MAX_DIMS) throw new RangeError(`${op}: shape ${dims} has ${shape.length} dims, at most ${MAX_DIMS}`);
  if (shape.some((d) => d < 0)) throw new RangeError(`${op}: shape ${dims} has a negative dim`);
  len(op, name, length, product(op, Array.from(shape)));
}

/** Every element of the view (shape, strides, offset) of a buffer of `length` lies inside it. */
export function view(op: string, name: string, length: number, shape: Int32Array, strides: Int32Array, offset: number): void {
  if (shape.includes(0)) return;
  let lo = offset;
  let hi = offset;
  shape.forEach((d, i) => {
    const span = (d - 1) * strides[i]!;
    if (span < 0) lo += span;
    else hi += span;
  });
  if (!(lo >= 0 && hi < length)) {
    throw new RangeError(`${op}: the view of ${name} (shape [${shape.join(', ')}], strides [${strides.join(', ')}], offset ${offset}) reaches [${lo}, ${hi}], outside its ${length} elements`);
  }
}

/** start + len <= dim (narrow). */
export function within(op: string, start: number, length: number, dim: number): void {
  if (!(start + length <= dim)) throw new RangeError(`${op}: start ${start} + len ${length} exceeds dim ${dim}`);
}

/** A drop probability in [0, 1), judged as the f32 the kernels see. */
export function probability(op: string, name: string, p: number): void {
  const pf = Math.fround(p);
  if (!(pf >= 0 && pf < 1)) throw new RangeError(`${op}: ${name} = ${pf} is outside [0, 1)`);
}

/** Adam's step counts updates from 1. */
export function step(op: string, value: number): void {
  if (!(Number.isInteger(value) && value >= 1)) throw new RangeError(`${op}: step is 1-based, got ${value}`);
}

const ACTIVATIONS: readonly string[] = ['identity', 'relu', 'gelu', 'gelu_tanh'];

/** Each optional buffer of a fused linear call present exactly when the activation needs it
 * ('gelu': the GELUs only; 'any': every activation but the identity). */
export function linearActivation(op: string, activation: LinearActivation,
  buffers: [name: string, present: boolean, neededBy: 'gelu' | 'any'][]): void {
  if (!ACTIVATIONS.includes(activation)) {
    throw new RangeError(`${op}: activation ${String(activation)} is not identity, relu, gelu or gelu_tanh`);
  }
  for (const [name, present, neededBy] of buffers) {
    const needed = neededBy === 'gelu' ? savesActGrad(activation) : activation !== 'identity';
    if (present !== needed) {
      throw new RangeError(`${op}: ${name} ${needed ? 'is required' : 'must be null'} with activation ${activation}`);
    }
  }
}

type View = Float64Array | Float32Array | Int32Array | Uint8Array;

/** Refuses a written buffer that shares memory with another buffer of the call. */
export function disjoint(op: string, buffers: [name: string, view: View | null, written: boolean][]): void {
  for (let i = 0; i < buffers.length; i++) {
    const [nameA, a, writtenA] = buffers[i]!;
    if (a === null || a.byteLength === 0) continue;
    for (let j = i + 1; j < buffers.length; j++) {
      const [nameB, b, writtenB] = buffers[j]!;
      if (b === null || b.byteLength === 0 || !(writtenA || writtenB) || a.buffer !== b.buffer) continue;
      if (a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength) {
        throw new RangeError(`${op}: ${nameA} and ${nameB} overlap; an output must not share memory with another buffer`);
      }
    }
  }
}
