// torch.matmul semantics on top of the [B, M, K] · [B, K, N] kernel (ts/ops/matmul.ts): 1-D
// operands (a vector is a row on the left, a column on the right, its dim removed from the
// result) and batch dims broadcast NumPy-style. Broadcast operands are expanded (a copy whose
// gradient sums back over the repeats), batch dims flattened into one.
import { checkOptions } from '../tensor/errors.js';
import { libraryCall } from '../tensor/memory.js';
import { shapeSize, type Tensor } from '../tensor/tensor.js';
import { reshape } from './elementwise.js';
import { matmul as matmulBatched, type MatmulOptions } from './matmul.js';
import { broadcastShapes } from './shapes.js';
import { backendOf, fmt, requireDType } from './validate.js';
import { expand, transpose } from './views.js';
import { ShapeError } from '../tensor/errors.js';

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/** a @ b with torch.matmul's rules; transA / transB transpose the last two dims first. */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const op = 'matmul';
  checkOptions(op, options, ['transA', 'transB']);
  // The kernel's own cases (2-D · 2-D, 3-D · 3-D with one batch) go straight through.
  if (a.ndim === b.ndim && (a.ndim === 2 || (a.ndim === 3 && a.shape[0] === b.shape[0]))) return matmulBatched(a, b, options);
  backendOf(op, a, b);
  requireDType(op, a, 'f32', 'a');
  requireDType(op, b, 'f32', 'b');
  if (a.ndim === 0 || b.ndim === 0) throw new ShapeError(op, `both operands need at least 1 dim, got a ${fmt(a.shape)} and b ${fmt(b.shape)}`);
  return libraryCall(() => {
    const made: Tensor[] = [];
    const keep = (t: Tensor): Tensor => {
      made.push(t);
      return t;
    };
    let x = a.ndim === 1 ? keep(reshape(a, [1, a.shape[0]!])) : a;
    let y = b.ndim === 1 ? keep(reshape(b, [b.shape[0]!, 1])) : b;
    if (options.transA && a.ndim > 1) x = keep(transpose(x, -1, -2));
    if (options.transB && b.ndim > 1) y = keep(transpose(y, -1, -2));
    const [m, k] = x.shape.slice(-2) as [number, number];
    const [kb, n] = y.shape.slice(-2) as [number, number];
    if (k !== kb) throw new ShapeError(op, `inner dimensions must match, got a ${fmt(a.shape)} and b ${fmt(b.shape)}`, k, kb);
    const batch = batchShape(op, a, b, x.shape.slice(0, -2), y.shape.slice(0, -2));
    const flat = (t: Tensor, rows: number, cols: number): Tensor => {
      const full = [...batch, rows, cols];
      const wide = sameShape(t.shape, full) ? t : keep(expand(t, full));
      return keep(reshape(wide, [shapeSize(batch), rows, cols]));
    };
    const product = matmulBatched(flat(x, m, k), flat(y, k, n));
    const shape = [...batch, ...(a.ndim === 1 ? [] : [m]), ...(b.ndim === 1 ? [] : [n])];
    const out = reshape(product, shape);
    if (!out.requiresGrad) for (const t of made) t.dispose();
    return out;
  });
}

/** The broadcast batch dims of a matmul, with an error that names both operands' shapes (a
 * user sees which batch dims clash, not only the trailing pair). */
function batchShape(op: string, a: Tensor, b: Tensor, batchA: number[], batchB: number[]): number[] {
  try {
    return broadcastShapes(op, batchA, batchB);
  } catch (e) {
    if (!(e instanceof ShapeError)) throw e;
    throw new ShapeError(op, `batch dimensions ${fmt(batchA)} of a ${fmt(a.shape)} and ${fmt(batchB)} of b ${fmt(b.shape)} cannot be broadcast together`);
  }
}
