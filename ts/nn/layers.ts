// Basic layers: Linear, LayerNorm, Embedding, Dropout, FeedForward.
import type { Backend } from '../backend/backend.js';
import * as ops from '../ops/index.js';
import { ConfigError, checkOptions } from '../tensor/errors.js';
import { Tensor } from '../tensor/tensor.js';
import { defaultRng, linearUniform, type Rng } from './init.js';
import { Module } from './module.js';

export interface LayerOptions {
  backend?: Backend;
  rng?: Rng;
}

export function requirePositiveInt(op: string, name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) throw new ConfigError(op, `${name} must be a positive integer, got ${value}`);
}

export function requireProbability(op: string, name: string, value: number): void {
  if (!(value >= 0 && value < 1)) throw new ConfigError(op, `${name} must be in [0, 1), got ${value}`);
}

/** Replaces a layer's parameter by another tensor of the same shape (`lmHead.weight =
 * wte.weight` ties them: one tensor under both names, as assigning a Parameter in PyTorch). */
function assignParameter(module: Module, name: string, current: Tensor, value: Tensor): void {
  if (current.shape.join() !== value.shape.join()) {
    throw new ConfigError(module.constructor.name, `${name} must keep its shape [${current.shape.join(', ')}], got [${value.shape.join(', ')}]`);
  }
  module.replaceParameter(name, value);
}

/** y = x W^T + b; weight [out, in], bias [out] (PyTorch's layout and initialisation). The
 * third argument is PyTorch's positional `bias` (`new Linear(4, 3, false)` has none) or the
 * options. */
export class Linear extends Module {
  readonly bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, options: boolean | (LayerOptions & { bias?: boolean }) = {}) {
    const o = typeof options === 'boolean' ? { bias: options } : options;
    if (o === null || typeof o !== 'object') throw new ConfigError('Linear', `the third argument is bias (a boolean) or an options object, got ${String(options)}`);
    checkOptions('Linear', o, ['backend', 'rng', 'bias']);
    super(o.backend);
    requirePositiveInt('Linear', 'inFeatures', inFeatures);
    requirePositiveInt('Linear', 'outFeatures', outFeatures);
    const rng = o.rng ?? defaultRng();
    this.registerParameter('weight', this.newParameter([outFeatures, inFeatures], linearUniform(rng, outFeatures * inFeatures, inFeatures)));
    this.bias = o.bias === false ? null : this.registerParameter('bias', this.newParameter([outFeatures], linearUniform(rng, outFeatures, inFeatures)));
  }
  get weight(): Tensor {
    return this.parameter('weight');
  }
  set weight(value: Tensor) {
    assignParameter(this, 'weight', this.weight, value);
  }
  forward(x: Tensor): Tensor {
    return ops.linear(x, this.weight, this.bias);
  }
}

export interface LayerNormOptions extends LayerOptions {
  /** A learnable shift beta (default true); false as PyTorch's LayerNorm(bias=False), which
   * nanoGPT uses: no `bias` parameter and no `.bias` key in the state dict. */
  bias?: boolean;
}

/** Layer normalisation over the last axis with learnable gamma (`weight`) and, unless
 * `bias: false`, beta (`bias`). `new LayerNorm(C, { bias: false })` is accepted for
 * `new LayerNorm(C, 1e-5, { bias: false })`. */
export class LayerNorm extends Module {
  readonly bias: Tensor | null;
  readonly eps: number;
  /** Zeros [dim] fed to the kernel in place of a bias; the module's own, but not a buffer
   * (PyTorch's LayerNorm(bias=False) has none). */
  private readonly shift: Tensor;
  constructor(readonly dim: number, eps: number | LayerNormOptions = 1e-5, options: LayerNormOptions = {}) {
    const o = typeof eps === 'object' ? eps : options;
    if (o === null || typeof o !== 'object') throw new ConfigError('LayerNorm', `options must be an object such as { bias: false }, got ${String(o)}`);
    checkOptions('LayerNorm', o, ['backend', 'rng', 'bias']);
    super(o.backend);
    this.eps = typeof eps === 'number' ? eps : 1e-5;
    requirePositiveInt('LayerNorm', 'dim', dim);
    if (!(this.eps > 0)) throw new ConfigError('LayerNorm', `eps must be positive, got ${String(eps)}`);
    this.registerParameter('weight', this.newParameter([dim], new Float32Array(dim).fill(1)));
    if (o.bias === false) {
      this.bias = null;
      this.shift = new Tensor(this.backend.alloc('f32', dim), [dim], this.backend);
    } else {
      this.bias = this.registerParameter('bias', this.newParameter([dim], new Float32Array(dim)));
      this.shift = this.bias;
    }
  }
  get weight(): Tensor {
    return this.parameter('weight');
  }
  set weight(value: Tensor) {
    assignParameter(this, 'weight', this.weight, value);
  }
  forward(x: Tensor): Tensor {
    return ops.layerNorm(x, this.weight, this.shift, this.eps);
  }
  override dispose(): void {
    super.dispose();
    this.shift.dispose();
  }
}

/** Token embedding table [V, C], N(0, 1) initialised as PyTorch's nn.Embedding. */
export class Embedding extends Module {
  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, options: LayerOptions = {}) {
    checkOptions('Embedding', options, ['backend', 'rng']);
    super(options.backend);
    requirePositiveInt('Embedding', 'numEmbeddings', numEmbeddings);
    requirePositiveInt('Embedding', 'embeddingDim', embeddingDim);
    const rng = options.rng ?? defaultRng();
    this.registerParameter('weight', this.newParameter([numEmbeddings, embeddingDim], rng.normal(numEmbeddings * embeddingDim)));
  }
  get weight(): Tensor {
    return this.parameter('weight');
  }
  set weight(value: Tensor) {
    assignParameter(this, 'weight', this.weight, value);
  }
  forward(ids: Tensor): Tensor {
    return ops.embedding(ids, this.weight);
  }
}

/** Inverted dropout, active in training mode only. Each call draws a fresh mask from the
 * module's seeded counter stream, so runs are reproducible. */
export class Dropout extends Module {
  private counter = 0;
  private seed: number;
  constructor(readonly p: number, options: LayerOptions = {}) {
    super(options.backend);
    requireProbability('Dropout', 'p', p);
    this.seed = (options.rng ?? defaultRng()).nextU32();
  }
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    return ops.dropout(x, this.p, this.take(x.size));
  }
  /** ops.attention's dropout options for `weights` attention weights (B·H·Tq·Tk): in
   * training mode this module's p and the next `weights` positions of its stream (as
   * forward() would draw for a tensor of that size; nanoGPT's `attn_dropout`), else
   * `{ dropout: 0 }`. */
  forAttention(weights: number): { dropout: number; seed?: number; offset?: number } {
    if (!this.training || this.p === 0) return { dropout: 0 };
    return { dropout: this.p, ...this.take(weights) };
  }
  /** The stream position of the next `size` draws, advancing past them. */
  private take(size: number): { seed: number; offset: number } {
    const offset = this.counter;
    this.counter = (this.counter + size) >>> 0;
    return { seed: this.seed, offset };
  }
  /** Stream seed and position, saved in checkpoints so a resumed run draws the same masks. */
  get rngState(): { seed: number; counter: number } {
    return { seed: this.seed, counter: this.counter };
  }
  set rngState(value: { seed: number; counter: number }) {
    this.seed = value.seed >>> 0;
    this.counter = value.counter >>> 0;
  }
}

export type Activation = 'relu' | 'gelu';

/** Position-wise feed-forward network max(0, x W1 + b1) W2 + b2 (or GELU), with PyTorch's
 * TransformerEncoderLayer names `linear1` / `linear2`. */
export class FeedForward extends Module {
  readonly linear1: Linear;
  readonly linear2: Linear;
  readonly dropout: Dropout;
  constructor(readonly dModel: number, readonly dFF: number, options: LayerOptions & { activation?: Activation; dropout?: number } = {}) {
    checkOptions('FeedForward', options, ['backend', 'rng', 'activation', 'dropout']);
    super(options.backend);
    const layer = { backend: options.backend, rng: options.rng };
    this.linear1 = this.registerModule('linear1', new Linear(dModel, dFF, layer));
    this.linear2 = this.registerModule('linear2', new Linear(dFF, dModel, layer));
    this.dropout = this.registerModule('dropout', new Dropout(options.dropout ?? 0, layer));
    this.activation = options.activation ?? 'relu';
    if (this.activation !== 'relu' && this.activation !== 'gelu') {
      throw new ConfigError('FeedForward', `activation must be 'relu' or 'gelu', got ${String(this.activation)}`);
    }
  }
  readonly activation: Activation;
  forward(x: Tensor): Tensor {
    // linear1, its bias and the activation in one fused call.
    const a = ops.linear(x, this.linear1.weight, this.linear1.bias, { activation: this.activation });
    return this.linear2.forward(this.dropout.forward(a));
  }
}
