// Reference attention (crates/kernels/src/ops/attention.rs). q: [B, H, Tq, D], k, v:
// [B, H, Tk, D], out: [B, H, Tq, D], lse: [B, H, Tq], keyMask: [B, Tk] (1 attend). Causal is
// top-left: key j is visible to query i iff j <= i. Row by row in float64; the weights of a
// row are e^(score - lse), as the kernels rebuild them. Dropout on the weights: weight
// (bh, i, j) is kept, times 1 / (1 - p), iff dropout's draw at counter offset + its index in
// [B, H, Tq, Tk] passes, the kernels' mask.

import type { Floats } from './arrays.js';
import { splitHeadsBackward, splitHeadsForward } from './heads.js';
import { dropoutThreshold, randomU32 } from './rng.js';

interface AttentionDims { b: number; h: number; tq: number; tk: number; d: number; causal: boolean; scale: number }

interface WeightDropout { p: number; seed: number; offset: number }

/** f[j] = the factor of weight (bh, i, j): 1 / (1 - p) when kept, 0 when dropped. */
function dropoutFactors(f: Float64Array, drop: WeightDropout, dims: AttentionDims, bh: number, i: number): void {
  const pf = Math.fround(drop.p);
  const threshold = dropoutThreshold(pf);
  const first = (bh * dims.tq + i) * dims.tk;
  for (let j = 0; j < dims.tk; j++) {
    // u32 counter arithmetic wraps, as in Rust's wrapping_add.
    f[j] = randomU32(drop.seed >>> 0, (drop.offset + first + j) >>> 0) >= threshold ? 1 / (1 - pf) : 0;
  }
}

export function attentionForward(out: Floats, lse: Floats, q: Floats, k: Floats, v: Floats,
  keyMask: Uint8Array | null, b: number, h: number, tq: number, tk: number, d: number,
  causal: boolean, scale: number, dropoutP: number, seed: number, offset: number): void {
  const dims = { b, h, tq, tk, d, causal, scale };
  const p = new Float64Array(tk);
  const f = new Float64Array(tk);
  for (let bh = 0; bh < b * h; bh++) {
    for (let i = 0; i < tq; i++) {
      const rowLse = attentionScores(p, q, k, keyMask, dims, bh, i);
      lse[bh * tq + i] = rowLse;
      weightsFromLse(p, rowLse);
      if (dropoutP !== 0) {
        dropoutFactors(f, { p: dropoutP, seed, offset }, dims, bh, i);
        for (let j = 0; j < tk; j++) p[j] = p[j]! * f[j]!;
      }
      const qo = (bh * tq + i) * d;
      for (let c = 0; c < d; c++) {
        let s = 0;
        for (let j = 0; j < tk; j++) s += p[j]! * v[(bh * tk + j) * d + c]!;
        out[qo + c] = s;
      }
    }
  }
}

export function attentionProbs(probs: Floats, q: Floats, k: Floats, lse: Floats, keyMask: Uint8Array | null,
  b: number, h: number, tq: number, tk: number, d: number, causal: boolean, scale: number): void {
  eachWeightRow(q, k, lse, keyMask, { b, h, tq, tk, d, causal, scale }, (bh, i, p) => probs.set(p, (bh * tq + i) * tk));
}

export function attentionBackward(dq: Floats, dk: Floats, dv: Floats, dout: Floats, q: Floats, k: Floats,
  v: Floats, out: Floats, lse: Floats, keyMask: Uint8Array | null, b: number, h: number,
  tq: number, tk: number, d: number, causal: boolean, scale: number, dropoutP: number, seed: number, offset: number): void {
  const dims = { b, h, tq, tk, d, causal, scale };
  const f = new Float64Array(tk).fill(1);
  eachWeightRow(q, k, lse, keyMask, dims, (bh, i, p) => {
    const qo = (bh * tq + i) * d;
    if (dropoutP !== 0) dropoutFactors(f, { p: dropoutP, seed, offset }, dims, bh, i);
    // delta = dout_i · out_i = sum_j p_ij dp_ij (with dropout, out_i = sum_j p_ij f_ij v_j and
    // dp_ij = f_ij dout_i · v_j, so the identity still holds)
    let delta = 0;
    for (let c = 0; c < d; c++) delta += dout[qo + c]! * out[qo + c]!;
    for (let j = 0; j < tk; j++) {
      const pij = p[j]!;
      if (pij === 0) continue;
      const vo = (bh * tk + j) * d;
      // dv_j += p_ij f_ij · dout_i;  dp_ij = f_ij dout_i · v_j
      const kept = pij * f[j]!;
      let dp = 0;
      for (let c = 0; c < d; c++) {
        dv[vo + c] = dv[vo + c]! + kept * dout[qo + c]!;
        dp += dout[qo + c]! * v[vo + c]!;
      }
      dp *= f[j]!;
      // softmax backward: ds_ij = p_ij (dp_ij - delta); scores = scale · q·k
      const ds = pij * (dp - delta) * scale;
      for (let c = 0; c < d; c++) {
        dq[qo + c] = dq[qo + c]! + ds * k[vo + c]!;
        dk[vo + c] = dk[vo + c]! + ds * q[qo + c]!;
      }
    }
  });
}

/** Per-head [B, H, T, D] copies of the parts of a packed [B, T, parts, H, D] buffer. */
function unpackHeads(x: Floats, b: number, t: number, parts: number, h: number, d: number): Float64Array[] {
  return Array.from({ length: parts }, (_, part) => {
    const heads = new Float64Array(b * h * t * d);
    splitHeadsForward(heads, x, b, t, h, d, parts * h, part * h);
    return heads;
  });
}

/** Self-attention on packed qkv [B, T, 3, H, D], out [B, T, H, D]: the per-head kernel on
 * the parts split out, its output merged back. */
export function attentionPackedForward(out: Floats, lse: Floats, qkv: Floats, keyMask: Uint8Array | null,
  b: number, h: number, t: number, d: number, causal: boolean, scale: number, dropoutP: number, seed: number, offset: number): void {
  const [q, k, v] = unpackHeads(qkv, b, t, 3, h, d) as [Float64Array, Float64Array, Float64Array];
  const heads = new Float64Array(b * h * t * d);
  attentionForward(heads, lse, q, k, v, keyMask, b, h, t, t, d, causal, scale, dropoutP, seed, offset);
  out.fill(0);
  splitHeadsBackward(out, heads, b, t, h, d, h, 0);
}

/** Backward of attentionPackedForward: dqkv [B, T, 3, H, D] += the per-head gradients (or =,
 * unless accumulate). */
export function attentionPackedBackward(dqkv: Floats, dout: Floats, qkv: Floats, out: Floats, lse: Floats,
  keyMask: Uint8Array | null, b: number, h: number, t: number, d: number, causal: boolean, scale: number,
  dropoutP: number, seed: number, offset: number, accumulate: boolean): void {
  if (!accumulate) dqkv.fill(0);
  const [q, k, v] = unpackHeads(qkv, b, t, 3, h, d) as [Float64Array, Float64Array, Float64Array];
  const [doutHeads] = unpackHeads(dout, b, t, 1, h, d) as [Float64Array];
  const [outHeads] = unpackHeads(out, b, t, 1, h, d) as [Float64Array];
  const grads = [0, 1, 2].map(() => new Float64Array(b * h * t * d)) as [Float64Array, Float64Array, Float64Array];
  attentionBackward(...grads, doutHeads, q, k, v, outHeads, lse, keyMask, b, h, t, t, d, causal, scale, dropoutP, seed, offset);
  grads.forEach((g, part) => splitHeadsBackward(dqkv, g, b, t, h, d, 3 * h, part * h));
}

/** Fills p[j] with query i's scaled score against key j (-inf where hidden by the causal or
 * key mask) for head slab bh; returns the row's log-sum-exp (-inf when no key is visible). */
function attentionScores(p: Float64Array, q: Floats, k: Floats, keyMask: Uint8Array | null,
  dims: AttentionDims, bh: number, i: number): number {
  const { h, tq, tk, d, causal, scale } = dims;
  const bi = Math.floor(bh / h);
  const qo = (bh * tq + i) * d;
  let max = -Infinity;
  for (let j = 0; j < tk; j++) {
    if ((causal && j > i) || (keyMask !== null && keyMask[bi * tk + j] === 0)) {
      p[j] = -Infinity;
      continue;
    }
    const ko = (bh * tk + j) * d;
    let s = 0;
    for (let c = 0; c < d; c++) s += q[qo + c]! * k[ko + c]!;
    p[j] = s * scale;
    max = Math.max(max, p[j]!);
  }
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let j = 0; j < tk; j++) sum += Math.exp(p[j]! - max);
  return max + Math.log(sum);
}

/** Calls fn(bh, i, weights) for every query row, the weights rebuilt from the saved lse. */
function eachWeightRow(q: Floats, k: Floats, lse: Floats, keyMask: Uint8Array | null,
  dims: AttentionDims, fn: (bh: number, i: number, p: Float64Array) => void): void {
  const p = new Float64Array(dims.tk);
  for (let bh = 0; bh < dims.b * dims.h; bh++) {
    for (let i = 0; i < dims.tq; i++) {
      attentionScores(p, q, k, keyMask, dims, bh, i);
      weightsFromLse(p, lse[bh * dims.tq + i]!);
      fn(bh, i, p);
    }
  }
}

/** p[j] = e^(p[j] - lse): the row's weights (all 0 when lse is -inf, nothing visible). */
function weightsFromLse(p: Float64Array, lse: number): void {
  for (let j = 0; j < p.length; j++) p[j] = lse === -Infinity ? 0 : Math.exp(p[j]! - lse);
}
