// Scoped memory for code outside a training step (evaluation, generation): tidy(fn)
// disposes every tensor created inside fn except what fn returns or keep()s, as
// tfjs's tidy does. Training needs no scope: backward() releases the tensors the graph owns
// (those made inside library code: a module's forward, a Trainer step), see libraryCall.
import type { Tensor } from './tensor.js';

const scopes: Set<Tensor>[] = [];
let libraryDepth = 0;

/** Whether a tensor made now is made by library code (inside a module's forward or a
 * Trainer step) rather than by the user's own code. */
export function insideLibraryCall(): boolean {
  return libraryDepth > 0;
}

/** Runs fn as library code: the tensors it makes belong to the autograd graph, which
 * backward() disposes, since no user code can hold them. What the outermost call returns
 * reaches the user, who may hold it, so it (and a view's base) stays alive until dispose(),
 * tidy() or garbage collection. Module.forward and Trainer.trainStep run inside one. */
export function libraryCall<T>(fn: () => T): T {
  libraryDepth++;
  let result: T;
  try {
    result = fn();
  } finally {
    libraryDepth--;
  }
  if (libraryDepth === 0) {
    const returned = new Set<unknown>();
    collectTensors(result, returned);
    for (const t of returned) (t as Tensor).holdByUser();
  }
  return result;
}

/** Called by the Tensor constructor. */
export function registerInScope(t: Tensor): void {
  scopes[scopes.length - 1]?.add(t);
}

function collectTensors(value: unknown, into: Set<unknown>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  if ('storageFor' in value && 'shape' in value) {
    into.add(value);
    return;
  }
  const items = value instanceof Map ? value.values() : Array.isArray(value) ? value : Object.values(value);
  for (const item of items) collectTensors(item, into, depth + 1);
}

/** Runs fn and disposes the tensors it created, except those in its result (tensors,
 * arrays, maps or plain objects of them) and kept ones, which move to the outer scope. */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const survivors = new Set<unknown>();
  collectTensors(result, survivors);
  const outer = scopes[scopes.length - 1];
  for (const t of scope) {
    if (survivors.has(t) || t.kept) outer?.add(t);
    else t.dispose();
  }
  return result;
}

/** Disposes every tensor found in a value (tensor, array, map or object of tensors). */
export function dispose(value: unknown): void {
  const found = new Set<unknown>();
  collectTensors(value, found);
  for (const t of found) (t as Tensor).dispose();
}
