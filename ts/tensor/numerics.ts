// checkNumerics: a process-wide switch that makes every op read its f32 inputs and output
// and throw a NumericsError naming the op, the tensor and the first non-finite value. Off by
// default: each check copies the values to the host.
import type { Backend, Storage } from '../backend/backend.js';
import { NumericsError } from './errors.js';

let checking = false;

/** Turns NaN/Inf checks of every op's inputs and outputs on or off (default off). */
export function setCheckNumerics(on: boolean): void {
  checking = on === true;
}

export function getCheckNumerics(): boolean {
  return checking;
}

/** Index and value of the first non-finite element, or null. */
export function firstNonFinite(values: ArrayLike<number>): [number, number] | null {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) return [i, v];
  }
  return null;
}

/** Throws NumericsError when an f32 storage holds NaN or +-Inf (no-op for i32/u8). */
export function checkFiniteStorage(op: string, backend: Backend, storage: Storage, what: string): void {
  if (storage.dtype !== 'f32') return;
  const bad = firstNonFinite(backend.read(storage));
  if (bad !== null) {
    throw new NumericsError(op, `${what} holds ${bad[1]} at index ${bad[0]} of ${storage.length} (checkNumerics is on)`);
  }
}
