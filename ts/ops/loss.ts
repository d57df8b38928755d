// Cross-entropy over logits [..., V] with targets [...] (i32), PyTorch semantics: mean over
// targets that are not ignoreIndex, optional label smoothing. Returns a 0-d tensor (shape [])
// as PyTorch does, so loss.item(), loss.backward() and loss.add(other) behave as there.
import { record } from '../autograd/tape.js';
import { ConfigError, ShapeError, checkOptions } from '../tensor/errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { backendOf, fmt, output, requireDType } from './validate.js';

export interface CrossEntropyOptions {
  /** Targets equal to this are skipped (PyTorch's default -100). */
  ignoreIndex?: number;
  /** In [0, 1]: the target distribution is (1 - eps) one-hot + eps uniform. */
  labelSmoothing?: number;
}

export function crossEntropy(logits: Tensor, targets: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  checkOptions(op, options, ['ignoreIndex', 'labelSmoothing']);
  const backend = backendOf(op, logits, targets);
  requireDType(op, logits, 'f32', 'logits');
  requireDType(op, targets, 'i32', 'targets');
  const ignoreIndex = options.ignoreIndex ?? -100;
  const smoothing = options.labelSmoothing ?? 0;
  if (!Number.isInteger(ignoreIndex)) throw new ConfigError(op, `ignoreIndex must be an integer, got ${ignoreIndex}`);
  if (!(smoothing >= 0 && smoothing <= 1)) throw new ConfigError(op, `labelSmoothing must be in [0, 1], got ${smoothing}`);
  if (logits.ndim < 1) throw new ShapeError(op, 'logits must have a class axis', 1, logits.shape);
  const vocab = logits.shape[logits.ndim - 1]!;
  const lead = logits.shape.slice(0, -1);
  if (targets.shape.length !== lead.length || targets.shape.some((d, i) => d !== lead[i])) {
    throw new ShapeError(op, `targets ${fmt(targets.shape)} must match logits ${fmt(logits.shape)} without its last axis`, lead, targets.shape);
  }
  const rows = targets.size;
  const values = backend.read(targets.storage);
  for (let i = 0; i < values.length; i++) {
    const t = values[i]!;
    if (t !== ignoreIndex && (t < 0 || t >= vocab)) {
      throw new ShapeError(op, `target ${t} at position ${i} is outside [0, ${vocab})`, `[0, ${vocab})`, t);
    }
  }
  const loss = output(backend, []);
  const lse = backend.allocUninit('f32', rows);
  backend.crossEntropyForward(loss.storage, lse, logits.storage, targets.storage, rows, vocab, ignoreIndex, smoothing);
  return record(loss, {
    op,
    inputs: [logits, targets],
    saved: [lse],
    backward: (dloss, _grad, _adopt, gradTarget) => {
      // dlogits is written, not added to, when nothing has written it yet (no zero fill first).
      const dlogits = gradTarget(0);
      if (dlogits) {
        backend.crossEntropyBackward(dlogits.storage, dloss, logits.storage, lse, targets.storage, rows, vocab, ignoreIndex, smoothing,
          dlogits.accumulate);
      }
    },
  });
}
