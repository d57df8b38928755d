// Reference embedding (crates/kernels/src/ops/embedding.rs): rows of a [vocab, dim] table by
// id (ids were checked to lie in [0, vocab) before the call).

import type { Floats } from './arrays.js';

export function embeddingForward(out: Floats, ids: Int32Array, table: Floats, dim: number): void {
  for (let r = 0; r < ids.length; r++) {
    const id = ids[r]!;
    for (let c = 0; c < dim; c++) out[r * dim + c] = table[id * dim + c]!;
  }
}

export function embeddingBackward(dtable: Floats, dout: Floats, ids: Int32Array, dim: number): void {
  for (let r = 0; r < ids.length; r++) {
    const id = ids[r]!;
    for (let c = 0; c < dim; c++) dtable[id * dim + c] = dtable[id * dim + c]! + dout[r * dim + c]!;
  }
}
