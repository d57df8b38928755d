// Batches of token ids for the two model kinds, built on the host then moved to the
// backend once. Masks are derived from the ids inside the models (padding) and by the
// attention kernel (causal), so a batch is only ids.
import type { Backend } from '../backend/backend.js';
import { getDefaultBackend } from '../backend/registry.js';
import type { Module } from '../nn/module.js';
import type { DecoderLM, Transformer } from '../nn/transformer.js';
import * as ops from '../ops/index.js';
import { ConfigError, checkOptions } from '../tensor/errors.js';
import { Tensor, tensor } from '../tensor/tensor.js';

export interface Seq2SeqBatch {
  /** [B, Ts] source ids. */
  src: Tensor;
  /** [B, Tt] decoder input: the target shifted right (starts with BOS). */
  tgtIn: Tensor;
  /** [B, Tt] next-token targets (padding ignored by the loss). */
  tgtOut: Tensor;
  /** Non-padding target tokens. */
  tokens: number;
}

export interface LMBatch {
  /** [B, T] input ids. */
  input: Tensor;
  /** [B, T] targets: the input shifted left by one. */
  target: Tensor;
  tokens: number;
}

/** Rows of ids padded on the right to a common length: { data [B * T], shape [B, T] }. */
export function padRows(rows: readonly (readonly number[])[], padId: number, length?: number): { data: Int32Array; shape: [number, number] } {
  const t = length ?? Math.max(0, ...rows.map((r) => r.length));
  const data = new Int32Array(rows.length * t).fill(padId);
  rows.forEach((row, i) => {
    if (row.length > t) throw new ConfigError('padRows', `row ${i} has ${row.length} ids, longer than ${t}`);
    data.set(row, i * t);
  });
  return { data, shape: [rows.length, t] };
}

function columns(data: Int32Array, shape: readonly [number, number], start: number, end: number): Int32Array {
  const [b, t] = shape;
  const width = end - start;
  const out = new Int32Array(b * width);
  for (let i = 0; i < b; i++) out.set(data.subarray(i * t + start, i * t + end), i * width);
  return out;
}

/** src rows and full target rows ([BOS, y1, ..., yn, (EOS)]) -> a teacher-forcing batch. */
export function seq2seqBatch(src: readonly (readonly number[])[] | Int32Array, tgt: readonly (readonly number[])[] | Int32Array, options: { padId: number; backend?: Backend; srcShape?: [number, number]; tgtShape?: [number, number] }): Seq2SeqBatch {
  checkOptions('seq2seqBatch', options, ['padId', 'backend', 'srcShape', 'tgtShape'], ['padId']);
  const backend = options.backend ?? getDefaultBackend();
  const s = src instanceof Int32Array ? { data: src, shape: options.srcShape! } : padRows(src, options.padId);
  const t = tgt instanceof Int32Array ? { data: tgt, shape: options.tgtShape! } : padRows(tgt, options.padId);
  if (s.shape[0] !== t.shape[0]) throw new ConfigError('seq2seqBatch', `src has ${s.shape[0]} rows, tgt ${t.shape[0]}`);
  if (t.shape[1] < 2) throw new ConfigError('seq2seqBatch', `targets need at least 2 columns (BOS and one token), got ${t.shape[1]}`);
  const tt = t.shape[1] - 1;
  const out = columns(t.data, t.shape, 1, t.shape[1]);
  return {
    src: tensor(s.data, s.shape, { dtype: 'i32', backend }),
    tgtIn: tensor(columns(t.data, t.shape, 0, tt), [t.shape[0], tt], { dtype: 'i32', backend }),
    tgtOut: tensor(out, [t.shape[0], tt], { dtype: 'i32', backend }),
    tokens: out.reduce((n, id) => n + (id === options.padId ? 0 : 1), 0),
  };
}

/** Rows of T + 1 ids -> input [B, T] and next-token target [B, T]. */
export function lmBatch(rows: readonly (readonly number[])[] | Int32Array, options: { backend?: Backend; shape?: [number, number]; padId?: number } = {}): LMBatch {
  checkOptions('lmBatch', options, ['backend', 'shape', 'padId']);
  const backend = options.backend ?? getDefaultBackend();
  const x = rows instanceof Int32Array ? { data: rows, shape: options.shape! } : padRows(rows, options.padId ?? 0);
  const [b, t1] = x.shape;
  if (t1 < 2) throw new ConfigError('lmBatch', `rows need at least 2 ids, got ${t1}`);
  const target = columns(x.data, x.shape, 1, t1);
  return {
    input: tensor(columns(x.data, x.shape, 0, t1 - 1), [b, t1 - 1], { dtype: 'i32', backend }),
    target: tensor(target, [b, t1 - 1], { dtype: 'i32', backend }),
    tokens: options.padId === undefined ? target.length : target.reduce((n, id) => n + (id === options.padId ? 0 : 1), 0),
  };
}

/** Loss for the encoder-decoder: cross-entropy of the generator's logits, padding ignored. */
export function seq2seqLoss(options: { padId: number; labelSmoothing?: number }) {
  checkOptions('seq2seqLoss', options, ['padId', 'labelSmoothing'], ['padId']);
  return (model: Module, batch: Seq2SeqBatch): Tensor =>
    ops.crossEntropy((model as Transformer).forward(batch.src, batch.tgtIn), batch.tgtOut, { ignoreIndex: options.padId, labelSmoothing: options.labelSmoothing ?? 0 });
}

/** Loss for the decoder-only LM: next-token cross-entropy. */
export function lmLoss(options: { ignoreIndex?: number; labelSmoothing?: number } = {}) {
  checkOptions('lmLoss', options, ['ignoreIndex', 'labelSmoothing']);
  return (model: Module, batch: LMBatch): Tensor =>
    ops.crossEntropy((model as DecoderLM).forward(batch.input), batch.target, options);
}

/** u8 [T, T] lower-triangular mask (1 = may attend), the Annotated Transformer's
 * subsequent_mask, for users building attention by hand; the models use the kernel's
 * causal flag instead. */
export function subsequentMask(t: number, backend: Backend = getDefaultBackend()): Tensor {
  const m = new Uint8Array(t * t);
  for (let i = 0; i < t; i++) for (let j = 0; j <= i; j++) m[i * t + j] = 1;
  return tensor(m, [t, t], { dtype: 'u8', backend });
}
