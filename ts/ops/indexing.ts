// Integer indexing along a dim (crates/kernels/src/ops/index.rs): gather, scatter_add,
// index_select and an embedding lookup with padding_idx. Indices are i32 tensors, checked
// against the dim's size before a kernel runs.
import { record } from '../autograd/tape.js';
import { ConfigError, ShapeError, checkOptions } from '../tensor/errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { checkIds, embedding as embeddingRows } from './embedding.js';
import { indexSelect as indexSelectRows, reshape } from './elementwise.js';
import { blockSizes, normalizeDim } from './shapes.js';
import { backendOf, fmt, output, requireDType } from './validate.js';

/** index must have x's dims, equal to x's outside `axis` (the kernels' [outer, k, inner]). */
function requireAlongDim(op: string, x: Tensor, index: Tensor, axis: number, what: string): void {
  if (index.ndim !== x.ndim || index.shape.some((d, i) => i !== axis && d !== x.shape[i])) {
    throw new ShapeError(op, `${what} ${fmt(index.shape)} must match ${fmt(x.shape)} outside dim ${axis}`, x.shape, index.shape);
  }
}

/** out[..., j, ...] = x[..., index[..., j, ...], ...] along `dim` (PyTorch's gather, with
 * index equal to x outside dim). Repeated indices add up in the gradient. */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  const op = 'gather';
  const backend = backendOf(op, x, index);
  requireDType(op, x, 'f32', 'x');
  requireDType(op, index, 'i32', 'index');
  const axis = normalizeDim(op, dim, x.ndim);
  requireAlongDim(op, x, index, axis, 'index');
  const [outer, n, inner] = blockSizes(x.shape, axis, axis + 1);
  const k = index.shape[axis]!;
  checkIds(op, index, n, 'index');
  const out = output(backend, index.shape);
  backend.gatherForward(out.storage, x.storage, index.storage, outer, n, k, inner);
  return record(out, {
    op,
    inputs: [x, index],
    saved: [],
    backward: (dout, grad) => {
      const dx = grad(0);
      if (dx) backend.gatherBackward(dx, dout, index.storageFor(op), outer, n, k, inner);
    },
  });
}

/** x with src added at index along `dim` (PyTorch's scatter_add; repeats add up). Gradients:
 * dx = dy, dsrc = dy gathered at index. */
export function scatterAdd(x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  const op = 'scatterAdd';
  const backend = backendOf(op, x, index, src);
  requireDType(op, x, 'f32', 'x');
  requireDType(op, src, 'f32', 'src');
  requireDType(op, index, 'i32', 'index');
  const axis = normalizeDim(op, dim, x.ndim);
  requireAlongDim(op, x, index, axis, 'index');
  if (src.ndim !== index.ndim || src.shape.some((d, i) => d !== index.shape[i])) {
    throw new ShapeError(op, `src ${fmt(src.shape)} must have the shape of index ${fmt(index.shape)}`, index.shape, src.shape);
  }
  const [outer, n, inner] = blockSizes(x.shape, axis, axis + 1);
  const k = index.shape[axis]!;
  checkIds(op, index, n, 'index');
  const out = output(backend, x.shape);
  backend.copy(out.storage, x.storage);
  backend.gatherBackward(out.storage, src.storage, index.storage, outer, n, k, inner);
  return record(out, {
    op,
    inputs: [x, index, src],
    saved: [],
    backward: (dout, grad) => {
      const dx = grad(0);
      const dsrc = grad(2);
      if (dx) backend.accumulate(dx, dout, 1);
      if (!dsrc) return;
      const picked = backend.allocUninit('f32', src.size);
      backend.gatherForward(picked, dout, index.storageFor(op), outer, n, k, inner);
      backend.accumulate(dsrc, picked, 1);
      backend.free(picked);
    },
  });
}

/** Slices of x along `dim` picked by the 1-D i32 `index` (repeats add up in the gradient).
 * indexSelect(x, index) is dim 0. */
export function indexSelect(x: Tensor, dimOrIndex: number | Tensor, maybeIndex?: Tensor): Tensor {
  if (typeof dimOrIndex !== 'number') return indexSelectRows(x, dimOrIndex);
  return selectAlong('indexSelect', x, dimOrIndex, maybeIndex!, -1);
}

function selectAlong(op: string, x: Tensor, dim: number, index: Tensor, paddingIdx: number): Tensor {
  const backend = backendOf(op, x, index);
  requireDType(op, x, 'f32', 'x');
  requireDType(op, index, 'i32', 'index');
  if (index.ndim > 1) throw new ShapeError(op, `index must be 1-D, got ${fmt(index.shape)}`, 1, index.shape);
  const axis = normalizeDim(op, dim, x.ndim);
  const [outer, n, inner] = blockSizes(x.shape, axis, axis + 1);
  const k = index.size;
  checkIds(op, index, n, 'index');
  const out = output(backend, x.shape.map((d, i) => (i === axis ? k : d)));
  backend.indexSelectForward(out.storage, x.storage, index.storage, outer, n, k, inner);
  return record(out, {
    op,
    inputs: [x, index],
    saved: [],
    backward: (dout, grad) => {
      const dx = grad(0);
      if (dx) backend.indexSelectBackward(dx, dout, index.storageFor(op), outer, n, k, inner, paddingIdx);
    },
  });
}

export interface EmbeddingOptions {
  /** A row that is read but never receives a gradient (PyTorch's padding_idx; negative counts
   * from the end). */
  paddingIdx?: number | null;
}

/** Rows of table [V, C] by i32 ids [...]: [..., C]. */
export function embedding(ids: Tensor, table: Tensor, options: EmbeddingOptions = {}): Tensor {
  const op = 'embedding';
  checkOptions(op, options, ['paddingIdx']);
  if (options.paddingIdx === undefined || options.paddingIdx === null) return embeddingRows(ids, table);
  if (table.ndim !== 2) throw new ShapeError(op, `table must be [V, C], got ${fmt(table.shape)}`, 2, table.shape);
  const [vocab, dim] = table.shape as [number, number];
  const p = options.paddingIdx;
  if (!Number.isSafeInteger(p) || p < -vocab || p >= vocab) {
    throw new ConfigError(op, `paddingIdx must be an integer in [${-vocab}, ${vocab}), got ${p}`);
  }
  const rows = selectAlong(op, table, 0, ids.viewAs([ids.size]), p < 0 ? p + vocab : p);
  return reshape(rows, [...ids.shape, dim]);
}
