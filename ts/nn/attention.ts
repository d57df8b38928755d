// Multi-head attention with PyTorch's parameter layout: Q, K and V projections packed in
// in_proj_weight [3E, E] (rows Wq; Wk; Wv) and in_proj_bias [3E], then out_proj.
import { noGrad } from '../autograd/tape.js';
import { inProjectionBias, splitHeads } from '../ops/attention.js';
import * as ops from '../ops/index.js';
import { ConfigError, ShapeError, checkOptions } from '../tensor/errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { defaultRng, xavierUniform } from './init.js';
import { Dropout, Linear, requirePositiveInt, requireProbability, type LayerOptions } from './layers.js';
import { Module } from './module.js';

export interface MultiheadAttentionOptions {
  /** [B, Tk] u8, 1 = attend, 0 = padding (the inverse of PyTorch's key_padding_mask). */
  keyMask?: Tensor | null;
  causal?: boolean;
  /** Also return per-head attention weights [B, H, Tq, Tk] (for attention maps), after
   * dropout in training mode, as PyTorch's need_weights. */
  needWeights?: boolean;
  /** Incremental decoding: keys/values of earlier steps, updated in place. Key and value
   * inputs then hold only the new positions. */
  cache?: AttentionCache;
}

/** Keys and values of earlier steps, [B, H, t, D], for incremental decoding. A `fixed`
 * cache (cross-attention over the encoder memory) is filled once and then reused. */
export interface AttentionCache {
  k: Tensor | null;
  v: Tensor | null;
  fixed: boolean;
}

export function emptyCache(fixed = false): AttentionCache {
  return { k: null, v: null, fixed };
}

export function disposeCache(cache: AttentionCache): void {
  cache.k?.dispose();
  cache.v?.dispose();
  cache.k = null;
  cache.v = null;
}

/**
 * Self-attention's cache step: appends this call's keys and values [B, H, t, D] to the
 * cache's (which keeps the joined tensors) and says whether the causal mask still applies.
 * The kernel's causal mask is top-left aligned; after the prompt, one query at a time sees
 * every cached key, so no mask is needed then.
 */
export function appendToCache(op: string, cache: AttentionCache, k: Tensor, v: Tensor, tq: number, causal: boolean): { k: Tensor; v: Tensor; causal: boolean } {
  if (cache.k !== null && cache.v !== null) {
    if (tq !== 1) throw new ShapeError(op, `after the first call, incremental decoding takes one position at a time, got ${tq}`, 1, tq);
    const [oldK, oldV] = [cache.k, cache.v];
    k = ops.concat(oldK, k, 2);
    v = ops.concat(oldV, v, 2);
    oldK.dispose();
    oldV.dispose();
    causal = false;
  }
  cache.k = k.keep();
  cache.v = v.keep();
  return { k, v, causal };
}

export interface MultiheadAttentionOutput {
  output: Tensor;
  weights: Tensor | null;
}

export class MultiheadAttention extends Module {
  readonly inProjWeight: Tensor;
  readonly inProjBias: Tensor;
  readonly outProj: Linear;
  readonly headDim: number;
  /** Dropout probability on the attention weights in training mode (PyTorch's `dropout`). */
  readonly dropout: number;
  /** The stream of that dropout ('attn_dropout', so checkpoints save its position); null
   * when dropout is 0, so that a model without it draws nothing from the init rng. */
  readonly attnDropout: Dropout | null;

  constructor(readonly embedDim: number, readonly numHeads: number, options: LayerOptions & { dropout?: number } = {}) {
    checkOptions('MultiheadAttention', options, ['backend', 'rng', 'dropout']);
    super(options.backend);
    requirePositiveInt('MultiheadAttention', 'embedDim', embedDim);
    requirePositiveInt('MultiheadAttention', 'numHeads', numHeads);
    this.dropout = options.dropout ?? 0;
    requireProbability('MultiheadAttention', 'dropout', this.dropout);
    if (embedDim % numHeads !== 0) {
      throw new ConfigError('MultiheadAttention', `embedDim ${embedDim} must be divisible by numHeads ${numHeads}`);
    }
    this.headDim = embedDim / numHeads;
    const rng = options.rng ?? defaultRng();
    // PyTorch: xavier_uniform_ over the packed [3E, E] matrix, zero biases.
    this.inProjWeight = this.registerParameter('in_proj_weight', this.newParameter([3 * embedDim, embedDim], xavierUniform(rng, 3 * embedDim, embedDim)));
    this.inProjBias = this.registerParameter('in_proj_bias', this.newParameter([3 * embedDim], new Float32Array(3 * embedDim)));
    const layerOptions = { backend: this.backend, rng };
    this.outProj = this.registerModule('out_proj', new Linear(embedDim, embedDim, layerOptions));
    this.backend.fill(this.outProj.bias!.storage, 0);
    this.attnDropout = this.dropout > 0 ? this.registerModule('attn_dropout', new Dropout(this.dropout, layerOptions)) : null;
  }

  /** [B, T, E] -> [B, H, T, D] through the rows [index*E, (index+1)*E) of the packed projection. */
  private project(x: Tensor, index: number): Tensor {
    const e = this.embedDim;
    const w = ops.narrow(this.inProjWeight, 0, index * e, e);
    // The key bias is taken outside the graph: its gradient is exactly zero (see
    // inProjectionBias).
    const b = index === 1 ? noGrad(() => ops.narrow(this.inProjBias, 0, e, e)) : ops.narrow(this.inProjBias, 0, index * e, e);
    const [batch, t] = x.shape as [number, number];
    const y = ops.linear(x, w, b);
    // The key bias slice is outside the graph, so backward() would never free it (and the
    // linear backward does not read the bias).
    if (index === 1) b.dispose();
    return ops.transpose12(ops.reshape(y, [batch, t, this.numHeads, this.headDim]));
  }

  /**
   * Self-attention's q, k and v [B, H, T, D] from x [B, T, E] (PyTorch's
   * `_in_projection_packed` when q is k is v): one product with the whole [3E, E] weight gives
   * [B, T, 3E], and each head tensor is one copy out of it (no narrowed weights).
   */
  private projectPacked(x: Tensor): [Tensor, Tensor, Tensor] {
    const bias = inProjectionBias(this.inProjBias);
    const qkv = ops.linear(x, this.inProjWeight, bias);
    const [q, k, v] = [0, 1, 2].map((part) => splitHeads(qkv, this.numHeads, 3, part)) as [Tensor, Tensor, Tensor];
    // Without a graph nothing reads them again.
    if (bias.gradFn === null) bias.dispose();
    if (qkv.gradFn === null) qkv.dispose();
    return [q, k, v];
  }

  /**
   * Self-attention without a cache or weights, x [B, T, E] -> the heads side by side [B, T, E]
   * before out_proj: one product with the packed [3E, E] weight gives qkv [B, T, 3E], which the
   * attention kernel reads as [B, T, 3, H, D] in place and answers as [B, T, H, D], so no head
   * is copied out or merged back (nor are their gradients).
   */
  private selfAttentionPacked(x: Tensor, keyMask: Tensor | null, causal: boolean): Tensor {
    const [batch, t] = x.shape as [number, number];
    const bias = inProjectionBias(this.inProjBias);
    const qkv = ops.linear(x, this.inProjWeight, bias);
    const packed = ops.reshape(qkv, [batch, t, 3, this.numHeads, this.headDim]);
    // Dropout on the weights [B, H, T, T] in training mode, inside the kernel.
    const dropout = this.attnDropout?.forAttention(batch * this.numHeads * t * t) ?? { dropout: 0 };
    const heads = ops.attentionQkvPacked(packed, { keyMask, causal, ...dropout });
    // Without a graph nothing reads them again.
    for (const done of [bias, packed, qkv]) if (done.gradFn === null) done.dispose();
    return ops.reshape(heads, [batch, t, this.embedDim]);
  }

  /** query [B, Tq, E], key and value [B, Tk, E] -> [B, Tq, E]. */
  forward(query: Tensor, key: Tensor, value: Tensor, options: MultiheadAttentionOptions = {}): MultiheadAttentionOutput {
    const op = 'MultiheadAttention';
    checkOptions(op, options, ['keyMask', 'causal', 'needWeights', 'cache']);
    const e = this.embedDim;
    for (const [t, what] of [[query, 'query'], [key, 'key'], [value, 'value']] as const) {
      if (t.ndim !== 3 || t.shape[2] !== e) {
        throw new ShapeError(op, `${what} must be [B, T, ${e}], got [${t.shape.join(', ')}]`, [-1, -1, e], t.shape);
      }
    }
    if (key.shape[0] !== query.shape[0] || value.shape[0] !== query.shape[0] || key.shape[1] !== value.shape[1]) {
      throw new ShapeError(op, `batch and key lengths must agree, got query [${query.shape.join(', ')}], key [${key.shape.join(', ')}], value [${value.shape.join(', ')}]`);
    }
    const [batch, tq] = query.shape as [number, number];
    let causal = options.causal ?? false;
    const cache = options.cache;
    if (query === key && key === value && cache === undefined && !options.needWeights) {
      return { output: this.outProj.forward(this.selfAttentionPacked(query, options.keyMask ?? null, causal)), weights: null };
    }
    const fixedKeys = cache !== undefined && cache.fixed && cache.k !== null && cache.v !== null;
    let q: Tensor;
    let k: Tensor;
    let v: Tensor;
    if (query === key && key === value && !fixedKeys) [q, k, v] = this.projectPacked(query);
    else {
      q = this.project(query, 0);
      [k, v] = fixedKeys ? [cache.k!, cache.v!] : [this.project(key, 1), this.project(value, 2)];
    }
    if (cache !== undefined && !fixedKeys) ({ k, v, causal } = appendToCache(op, cache, k, v, tq, causal));
    // Dropout on the weights [B, H, Tq, Tk] in training mode, inside the kernel.
    const dropout = this.attnDropout?.forAttention(batch * this.numHeads * tq * k.shape[2]!) ?? { dropout: 0 };
    const attnOptions = { keyMask: options.keyMask ?? null, causal, ...dropout };
    let heads: Tensor;
    let weights: Tensor | null = null;
    if (options.needWeights) {
      const r = ops.attentionWithProbs(q, k, v, attnOptions);
      heads = r.output;
      weights = r.probs;
    } else {
      heads = ops.attention(q, k, v, attnOptions);
    }
    const merged = ops.reshape(ops.transpose12(heads), [batch, tq, e]);
    return { output: this.outProj.forward(merged), weights };
  }
}
