// Embedding lookup: ids (i32, any shape [...]) index rows of table [V, C] -> [..., C].
import { record } from '../autograd/tape.js';
import { ShapeError } from '../tensor/errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { backendOf, fmt, output, requireDType } from './validate.js';

/** Throws when an id is outside [0, vocab) (the kernels index without checking). */
export function checkIds(op: string, ids: Tensor, vocab: number, what = 'token id'): void {
  const values = ids.backend.read(ids.storageFor(op));
  for (let i = 0; i < values.length; i++) {
    const id = values[i]!;
    if (id < 0 || id >= vocab) {
      throw new ShapeError(op, `${what} ${id} at position ${i} is outside the vocabulary [0, ${vocab})`, `[0, ${vocab})`, id);
    }
  }
}

export function embedding(ids: Tensor, table: Tensor): Tensor {
  const op = 'embedding';
  const backend = backendOf(op, ids, table);
  requireDType(op, ids, 'i32', 'ids');
  requireDType(op, table, 'f32', 'table');
  if (table.ndim !== 2) throw new ShapeError(op, `table must be [V, C], got ${fmt(table.shape)}`, 2, table.shape);
  const [vocab, dim] = table.shape as [number, number];
  checkIds(op, ids, vocab);
  const out = output(backend, [...ids.shape, dim]);
  backend.embeddingForward(out.storage, ids.storage, table.storage, dim);
  return record(out, {
    op,
    inputs: [ids, table],
    saved: [],
    backward: (dout, grad) => {
      const dtable = grad(1);
      if (dtable) backend.embeddingBackward(dtable, dout, ids.storage, dim);
    },
  });
}
