// Scaled dot-product attention, softmax(q k^T * scale + masks) v, on per-head tensors:
// q [B, H, Tq, D], k and v [B, H, Tk, D], keyMask [B, Tk] (u8, 1 attend / 0 padding).
// Flash style (crates/kernels/src/ops/attention.rs): memory O(T) per head, not O(T^2).
// Dropout on the weights (PyTorch's dropout_p) happens inside the kernels: weight
// (b, h, i, j) is dropped as ops.dropout would drop element (b, h, i, j) of the materialised
// [B, H, Tq, Tk] weights for the same seed and offset, so every backend drops the same ones.
import type { Storage } from '../backend/backend.js';
import { needsGrad, record } from '../autograd/tape.js';
import { ConfigError, ShapeError, checkOptions } from '../tensor/errors.js';
import { Tensor, type GradNode } from '../tensor/tensor.js';
import { backendOf, fmt, output, recordSingleInput, requireDropout, requireDType, requireFinite, requireShape } from './validate.js';

export interface AttentionOptions {
  keyMask?: Tensor | null;
  /** Query i attends keys j <= i (top-left aligned, as PyTorch's is_causal). */
  causal?: boolean;
  /** Default 1 / sqrt(D). */
  scale?: number;
  /** Dropout probability on the weights after the softmax, in [0, 1) (default 0). */
  dropout?: number;
  /** u32 seed of the dropout mask's counter stream (required when dropout > 0). */
  seed?: number;
  /** u32 counter of the first weight; a call draws B·H·Tq·Tk counters from it (advance it
   * by that much per call for fresh masks, as for ops.dropout). */
  offset?: number;
}

export interface AttentionResult {
  output: Tensor;
  /** [B, H, Tq, Tk] attention weights (outside the graph), for visualisation; rebuilt from the
   * forward's per-row log-sum-exp, the only T x T tensor this op ever makes. With dropout,
   * the weights the output was computed from (dropped ones 0, kept ones times 1/(1-p)), as
   * PyTorch's multi_head_attention_forward returns them, so output = probs @ v. */
  probs: Tensor;
}

/** The options' scalars, checked, with their defaults; the key mask must be [B, Tk]. */
function settings(op: string, options: AttentionOptions, keyMask: Tensor | null, b: number, tk: number, d: number) {
  if (keyMask) {
    requireDType(op, keyMask, 'u8', 'keyMask');
    requireShape(op, keyMask, [b, tk], 'keyMask [B, Tk]');
  }
  const scale = options.scale ?? 1 / Math.sqrt(d);
  requireFinite(op, 'scale', scale);
  const causal = options.causal ?? false;
  const dropout = options.dropout ?? 0;
  if (dropout !== 0) requireDropout(op, 'dropout', dropout, options.seed, options.offset);
  // At p = 0 no mask is drawn, so no seed or offset is needed.
  const [seed, offset] = dropout === 0 ? [0, 0] : [options.seed!, options.offset!];
  return { scale, causal, dropout, seed, offset };
}

/** A copy of the key mask for backward (callers may dispose theirs once forward returns). */
function saveMask(keyMask: Tensor | null, inputs: Tensor[]): Storage | null {
  if (!keyMask || !needsGrad(inputs)) return null;
  const saved = keyMask.backend.allocUninit('u8', keyMask.size);
  keyMask.backend.copy(saved, keyMask.storage);
  return saved;
}

function attentionImpl(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions, wantProbs: boolean): AttentionResult | Tensor {
  const op = 'attention';
  checkOptions(op, options, ['keyMask', 'causal', 'scale', 'dropout', 'seed', 'offset']);
  const keyMask = options.keyMask ?? null;
  const backend = backendOf(op, q, k, v, keyMask);
  for (const [t, what] of [[q, 'q'], [k, 'k'], [v, 'v']] as const) {
    requireDType(op, t, 'f32', what);
    if (t.ndim !== 4) throw new ShapeError(op, `${what} must be [B, H, T, D], got ${fmt(t.shape)}`, 4, t.shape);
  }
  const [b, h, tq, d] = q.shape as [number, number, number, number];
  const tk = k.shape[2]!;
  if (k.shape[0] !== b || k.shape[1] !== h || k.shape[3] !== d) {
    throw new ShapeError(op, `k ${fmt(k.shape)} must be [${b}, ${h}, Tk, ${d}] to match q ${fmt(q.shape)}`, [b, h, tk, d], k.shape);
  }
  requireShape(op, v, k.shape, 'v (same as k)');
  const { scale, causal, dropout, seed, offset } = settings(op, options, keyMask, b, tk, d);
  const out = output(backend, q.shape);
  // Flash attention: only one log-sum-exp per query row is kept for backward, never the
  // [Tq, Tk] weights; backward rebuilds them tile by tile from q, k and lse.
  const lse = backend.allocUninit('f32', b * h * tq);
  backend.attentionForward(out.storage, lse, q.storage, k.storage, v.storage, keyMask?.storage ?? null, b, h, tq, tk, d, causal, scale, dropout, seed, offset);
  let probs: Tensor | null = null;
  if (wantProbs) {
    probs = output(backend, [b, h, tq, tk]);
    backend.attentionProbs(probs.storage, q.storage, k.storage, lse, keyMask?.storage ?? null, b, h, tq, tk, d, causal, scale);
    // The kernel dropped weight (b, h, i, j) as dropout over these [B, H, Tq, Tk] weights
    // drops that element for the same seed and offset: the same call reproduces its mask.
    if (dropout !== 0) probs = dropWeights(probs, dropout, seed, offset);
  }
  const savedMask = saveMask(keyMask, [q, k, v]);
  const node: GradNode = {
    op,
    inputs: [q, k, v],
    saved: savedMask ? [lse, savedMask] : [lse],
    backward: (dout, grad) => {
      const dq = grad(0) ?? backend.alloc('f32', q.size);
      const dk = grad(1) ?? backend.alloc('f32', k.size);
      const dv = grad(2) ?? backend.alloc('f32', v.size);
      backend.attentionBackward(dq, dk, dv, dout, q.storage, k.storage, v.storage, out.storageFor(op), lse,
        savedMask, b, h, tq, tk, d, causal, scale, dropout, seed, offset);
      if (!grad(0)) backend.free(dq);
      if (!grad(1)) backend.free(dk);
      if (!grad(2)) backend.free(dv);
    },
  };
  try {
    record(out, node);
  } catch (e) {
    // A numerics check refused the output (record freed the rest): the maps go too.
    probs?.dispose();
    throw e;
  }
  return probs ? { output: out, probs } : out;
}

/** probs with dropout applied (outside the graph, like probs itself); frees probs. */
function dropWeights(probs: Tensor, p: number, seed: number, offset: number): Tensor {
  const backend = probs.backend;
  const dropped = output(backend, probs.shape);
  const keep = backend.allocUninit('u8', probs.size);
  backend.dropoutForward(dropped.storage, keep, probs.storage, p, seed, offset);
  backend.free(keep);
  probs.dispose();
  return dropped;
}

export function attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  return attentionImpl(q, k, v, options, false) as Tensor;
}

/**
 * Self-attention straight from a packed projection, flash-attn's `flash_attn_qkvpacked_func`:
 * qkv [B, T, 3, H, D] holds q, k and v (nanoGPT's `c_attn(x)` or PyTorch's packed in_proj
 * output [B, T, 3·E] reshaped, no copy), the result is [B, T, H, D] (reshape it to [B, T, E]
 * for the output projection). The same numbers as attention() on the heads split out, without
 * the copies that split them out and merge them back, or their gradients' copies. keyMask is
 * [B, T]; dropout draws the same mask as attention() for the same seed and offset.
 */
export function attentionQkvPacked(qkv: Tensor, options: AttentionOptions = {}): Tensor {
  const op = 'attentionQkvPacked';
  checkOptions(op, options, ['keyMask', 'causal', 'scale', 'dropout', 'seed', 'offset']);
  const keyMask = options.keyMask ?? null;
  const backend = backendOf(op, qkv, keyMask);
  requireDType(op, qkv, 'f32', 'qkv');
  if (qkv.ndim !== 5 || qkv.shape[2] !== 3) {
    throw new ShapeError(op, `qkv must be [B, T, 3, H, D], got ${fmt(qkv.shape)}`, 5, qkv.shape);
  }
  const [b, t, , h, d] = qkv.shape as [number, number, number, number, number];
  const { scale, causal, dropout, seed, offset } = settings(op, options, keyMask, b, t, d);
  const out = output(backend, [b, t, h, d]);
  const lse = backend.allocUninit('f32', b * h * t);
  backend.attentionPackedForward(out.storage, lse, qkv.storage, keyMask?.storage ?? null, b, h, t, d, causal, scale, dropout, seed, offset);
  const savedMask = saveMask(keyMask, [qkv]);
  return record(out, {
    op,
    inputs: [qkv],
    saved: savedMask ? [lse, savedMask] : [lse],
    backward: (dout, _grad, _adopt, gradTarget) => {
      // Written, not added to, when nothing has written the gradient yet (no zero fill first).
      const dqkv = gradTarget(0);
      if (dqkv) {
        backend.attentionPackedBackward(dqkv.storage, dout, qkv.storage, out.storageFor(op), lse, savedMask, b, h, t, d, causal, scale, dropout, seed, offset, dqkv.accumulate);
      }
    },
  });
}

/** attention() that also returns the weights, for attention maps. */
export function attentionWithProbs(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): AttentionResult {
  return attentionImpl(q, k, v, options, true) as AttentionResult;
}

/**
 * The packed in-projection bias [3E] (rows q; k; v, PyTorch's in_proj_bias) as the bias of one
 * fused q/k/v linear: the same values (a view), but the key slice [E, 2E) takes no gradient.
 * The key bias adds q·b_k to every logit of a softmax row, which the softmax ignores, so its
 * true gradient is exactly zero; summed through the linear's bias gradient it is float32
 * round-off instead, which Adam's normalisation (m / sqrt(v) with v ~ noise²) turns into
 * lr-sized random steps. Only the query and value slices are passed back, unchanged.
 */
export function inProjectionBias(bias: Tensor): Tensor {
  const op = 'inProjectionBias';
  const backend = backendOf(op, bias);
  requireDType(op, bias, 'f32', 'bias');
  if (bias.ndim !== 1 || bias.size % 3 !== 0) throw new ShapeError(op, `bias must be [3E], got ${fmt(bias.shape)}`, [-1], bias.shape);
  const e = bias.size / 3;
  return record(bias.viewAs(bias.shape), {
    op,
    inputs: [bias],
    saved: [],
    backward: (dout, grad) => {
      const dbias = grad(0);
      if (!dbias) return;
      const slice = backend.allocUninit('f32', e);
      for (const start of [0, 2 * e]) {
        backend.narrowForward(slice, dout, 1, 3 * e, 1, start, e);
        backend.narrowBackward(dbias, slice, 1, 3 * e, 1, start, e);
      }
      backend.free(slice);
    },
  });
}

/**
 * Part `part` of `parts` side by side in a packed projection x [B, T, parts·E] (PyTorch's
 * packed q; k; v) as heads [B, H, T, E/H], in one copy: the narrow of the features and the
 * head transpose together. Its gradient adds into that part's window of x's.
 */
export function splitHeads(x: Tensor, numHeads: number, parts: number, part: number): Tensor {
  const op = 'splitHeads';
  const backend = backendOf(op, x);
  requireDType(op, x, 'f32', 'x');
  for (const [name, value] of [['numHeads', numHeads], ['parts', parts]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) throw new ConfigError(op, `${name} must be a positive integer, got ${value}`);
  }
  if (!Number.isSafeInteger(part) || part < 0 || part >= parts) throw new ConfigError(op, `part must be an integer in [0, ${parts}), got ${part}`);
  if (x.ndim !== 3 || x.shape[2]! % (parts * numHeads) !== 0) {
    throw new ShapeError(op, `x must be [B, T, ${parts}·E] with E divisible by ${numHeads} heads, got ${fmt(x.shape)}`, 3, x.shape);
  }
  const [b, t, features] = x.shape as [number, number, number];
  const d = features / (parts * numHeads);
  const [dim, start] = [parts * numHeads, part * numHeads];
  const out = output(backend, [b, numHeads, t, d]);
  backend.splitHeadsForward(out.storage, x.storage, b, t, numHeads, d, dim, start);
  return recordSingleInput(op, out, x, (dx, dout) => backend.splitHeadsBackward(dx, dout, b, t, numHeads, d, dim, start));
}
