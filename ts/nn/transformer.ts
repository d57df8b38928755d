// The Transformer of "Attention Is All You Need" with PyTorch's nn.Transformer* parameter
// names (encoder.layers.N.self_attn.in_proj_weight, ..., norm1/norm2/norm3, linear1/linear2),
// and a decoder-only language model built from the same encoder layers under a causal mask.
import * as ops from '../ops/index.js';
import { ConfigError, ShapeError, checkOptions } from '../tensor/errors.js';
import { Tensor } from '../tensor/tensor.js';
import { disposeCache, emptyCache, MultiheadAttention, type AttentionCache } from './attention.js';
import { defaultRng, xavierUniform, type Rng } from './init.js';
import { Dropout, Embedding, FeedForward, LayerNorm, Linear, requirePositiveInt, requireProbability, type Activation, type LayerOptions } from './layers.js';
import { Module } from './module.js';

/** pe[pos, 2i] = sin(pos / 10000^(2i/d)), pe[pos, 2i+1] = cos(pos / 10000^(2i/d)). */
export function sinusoidalTable(maxLen: number, dModel: number): Float32Array {
  const pe = new Float32Array(maxLen * dModel);
  for (let pos = 0; pos < maxLen; pos++) {
    for (let i = 0; i < dModel; i += 2) {
      const angle = pos / 10000 ** (i / dModel);
      pe[pos * dModel + i] = Math.sin(angle);
      if (i + 1 < dModel) pe[pos * dModel + i + 1] = Math.cos(angle);
    }
  }
  return pe;
}

export type PositionKind = 'sinusoidal' | 'learned';

/** Adds positions to [B, T, C]: a fixed sinusoidal table (a buffer, not a parameter) or a
 * learned table registered as `weight`. */
export class PositionalEncoding extends Module {
  private readonly table: Tensor;
  constructor(readonly dModel: number, readonly maxLen: number, readonly kind: PositionKind = 'sinusoidal', options: LayerOptions = {}) {
    super(options.backend);
    requirePositiveInt('PositionalEncoding', 'maxLen', maxLen);
    if (kind === 'sinusoidal') {
      this.table = new Tensor(this.backend.fromArray('f32', sinusoidalTable(maxLen, dModel)), [maxLen, dModel], this.backend);
    } else if (kind === 'learned') {
      const rng = options.rng ?? defaultRng();
      this.table = this.registerParameter('weight', this.newParameter([maxLen, dModel], rng.normal(maxLen * dModel, 0.02)));
    } else {
      throw new ConfigError('PositionalEncoding', `kind must be 'sinusoidal' or 'learned', got ${String(kind)}`);
    }
  }
  /** x [B, T, C] + table[offset : offset + T]. */
  forward(x: Tensor, offset = 0): Tensor {
    const t = x.shape[1] ?? 0;
    if (offset + t > this.maxLen) {
      throw new ShapeError('PositionalEncoding', `positions up to ${offset + t} exceed maxLen ${this.maxLen}`, this.maxLen, offset + t);
    }
    const rows = ops.narrow(this.table, 0, offset, t);
    const out = ops.addBias(x, rows);
    // A slice of the fixed table is outside the graph: backward() would never free it.
    if (!rows.requiresGrad) rows.dispose();
    return out;
  }
  override dispose(): void {
    super.dispose();
    this.table.dispose();
  }
}

export interface LayerConfig {
  dModel: number;
  nHeads: number;
  dFF: number;
  dropout?: number;
  activation?: Activation;
  /** Pre-LN (norm before each sublayer, as most modern code) instead of the paper's post-LN. */
  normFirst?: boolean;
  layerNormEps?: number;
}

/** A constructor called without its config, or without some required keys, says which. */
function requireConfig(op: string, config: unknown, required: string[]): void {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new ConfigError(op, `needs a config object with ${required.join(', ')}, got ${config === null ? 'null' : Array.isArray(config) ? 'an array' : typeof config}`);
  }
  const missing = required.filter((k) => (config as Record<string, unknown>)[k] === undefined);
  if (missing.length > 0) throw new ConfigError(op, `config is missing ${missing.join(', ')} (required: ${required.join(', ')})`);
}

function checkLayerConfig(op: string, c: LayerConfig): void {
  requirePositiveInt(op, 'dModel', c.dModel);
  requirePositiveInt(op, 'nHeads', c.nHeads);
  requirePositiveInt(op, 'dFF', c.dFF);
  if (c.dModel % c.nHeads !== 0) throw new ConfigError(op, `dModel ${c.dModel} must be divisible by nHeads ${c.nHeads}`);
  requireProbability(op, 'dropout', c.dropout ?? 0);
}

export interface AttentionMaps {
  /** Per layer, [B, H, Tq, Tk]. */
  self: Tensor[];
  cross: Tensor[];
}

/** x = x + Dropout(Sublayer(LN(x))) (pre-LN) or LN(x + Dropout(Sublayer(x))) (post-LN). */
function residual(x: Tensor, norm: LayerNorm, dropout: Dropout, normFirst: boolean, sublayer: (h: Tensor) => Tensor): Tensor {
  if (normFirst) return ops.add(x, dropout.forward(sublayer(norm.forward(x))));
  return norm.forward(ops.add(x, dropout.forward(sublayer(x))));
}

export class TransformerEncoderLayer extends Module {
  readonly selfAttn: MultiheadAttention;
  readonly ffn: FeedForward;
  readonly norm1: LayerNorm;
  readonly norm2: LayerNorm;
  readonly dropout1: Dropout;
  readonly dropout2: Dropout;
  readonly normFirst: boolean;
  constructor(config: LayerConfig, options: LayerOptions = {}) {
    super(options.backend);
    checkLayerConfig('TransformerEncoderLayer', config);
    const o = { ...options, backend: this.backend };
    this.normFirst = config.normFirst ?? false;
    this.selfAttn = this.registerModule('self_attn', new MultiheadAttention(config.dModel, config.nHeads, { ...o, dropout: config.dropout }));
    // '' flattens linear1/linear2 into this layer's names, as PyTorch's layer holds them.
    this.ffn = this.registerModule('', new FeedForward(config.dModel, config.dFF, { ...o, activation: config.activation, dropout: config.dropout }));
    this.norm1 = this.registerModule('norm1', new LayerNorm(config.dModel, config.layerNormEps ?? 1e-5, o));
    this.norm2 = this.registerModule('norm2', new LayerNorm(config.dModel, config.layerNormEps ?? 1e-5, o));
    this.dropout1 = this.registerModule('dropout1', new Dropout(config.dropout ?? 0, o));
    this.dropout2 = this.registerModule('dropout2', new Dropout(config.dropout ?? 0, o));
  }
  /** x [B, T, C]; keyMask [B, T] (1 attend). */
  forward(x: Tensor, options: { keyMask?: Tensor | null; causal?: boolean; maps?: Tensor[]; cache?: AttentionCache } = {}): Tensor {
    x = residual(x, this.norm1, this.dropout1, this.normFirst, (h) => {
      const r = this.selfAttn.forward(h, h, h, { keyMask: options.keyMask, causal: options.causal, needWeights: options.maps !== undefined, cache: options.cache });
      if (r.weights) options.maps!.push(r.weights);
      return r.output;
    });
    return residual(x, this.norm2, this.dropout2, this.normFirst, (h) => this.ffn.forward(h));
  }
}

/** Per decoder layer: its self-attention keys/values so far, and the cross-attention
 * keys/values of the encoder memory (computed once). */
export interface DecoderLayerCache {
  self: AttentionCache;
  cross: AttentionCache;
}

export class TransformerDecoderLayer extends Module {
  readonly selfAttn: MultiheadAttention;
  readonly crossAttn: MultiheadAttention;
  readonly ffn: FeedForward;
  readonly norm1: LayerNorm;
  readonly norm2: LayerNorm;
  readonly norm3: LayerNorm;
  readonly dropout1: Dropout;
  readonly dropout2: Dropout;
  readonly dropout3: Dropout;
  readonly normFirst: boolean;
  constructor(config: LayerConfig, options: LayerOptions = {}) {
    super(options.backend);
    checkLayerConfig('TransformerDecoderLayer', config);
    const o = { ...options, backend: this.backend };
    this.normFirst = config.normFirst ?? false;
    this.selfAttn = this.registerModule('self_attn', new MultiheadAttention(config.dModel, config.nHeads, { ...o, dropout: config.dropout }));
    this.crossAttn = this.registerModule('multihead_attn', new MultiheadAttention(config.dModel, config.nHeads, { ...o, dropout: config.dropout }));
    this.ffn = this.registerModule('', new FeedForward(config.dModel, config.dFF, { ...o, activation: config.activation, dropout: config.dropout }));
    const eps = config.layerNormEps ?? 1e-5;
    this.norm1 = this.registerModule('norm1', new LayerNorm(config.dModel, eps, o));
    this.norm2 = this.registerModule('norm2', new LayerNorm(config.dModel, eps, o));
    this.norm3 = this.registerModule('norm3', new LayerNorm(config.dModel, eps, o));
    this.dropout1 = this.registerModule('dropout1', new Dropout(config.dropout ?? 0, o));
    this.dropout2 = this.registerModule('dropout2', new Dropout(config.dropout ?? 0, o));
    this.dropout3 = this.registerModule('dropout3', new Dropout(config.dropout ?? 0, o));
  }
  /** x [B, Tt, C] (causal self-attention), memory [B, Ts, C] from the encoder. */
  forward(x: Tensor, memory: Tensor, options: { tgtKeyMask?: Tensor | null; memoryKeyMask?: Tensor | null; maps?: AttentionMaps; cache?: DecoderLayerCache } = {}): Tensor {
    const maps = options.maps;
    x = residual(x, this.norm1, this.dropout1, this.normFirst, (h) => {
      const r = this.selfAttn.forward(h, h, h, { keyMask: options.tgtKeyMask, causal: true, needWeights: maps !== undefined, cache: options.cache?.self });
      if (r.weights) maps!.self.push(r.weights);
      return r.output;
    });
    x = residual(x, this.norm2, this.dropout2, this.normFirst, (h) => {
      const r = this.crossAttn.forward(h, memory, memory, { keyMask: options.memoryKeyMask, needWeights: maps !== undefined, cache: options.cache?.cross });
      if (r.weights) maps!.cross.push(r.weights);
      return r.output;
    });
    return residual(x, this.norm3, this.dropout3, this.normFirst, (h) => this.ffn.forward(h));
  }
}

/** A stack of layers under `layers.N`, with an optional final `norm` (pre-LN needs it). */
class LayerStack<L extends Module> extends Module {
  readonly layers: L[];
  readonly norm: LayerNorm | null;
  constructor(make: () => L, count: number, dModel: number, finalNorm: boolean, eps: number, options: LayerOptions) {
    super(options.backend);
    requirePositiveInt('Transformer', 'layers', count);
    this.layers = Array.from({ length: count }, (_, i) => this.registerModule(`layers.${i}`, make()));
    this.norm = finalNorm ? this.registerModule('norm', new LayerNorm(dModel, eps, options)) : null;
  }
}

export class TransformerEncoder extends LayerStack<TransformerEncoderLayer> {
  constructor(config: LayerConfig & { numLayers: number; finalNorm?: boolean }, options: LayerOptions = {}) {
    super(() => new TransformerEncoderLayer(config, options), config.numLayers, config.dModel, config.finalNorm ?? false, config.layerNormEps ?? 1e-5, options);
  }
  forward(x: Tensor, options: { keyMask?: Tensor | null; causal?: boolean; maps?: Tensor[]; caches?: AttentionCache[] } = {}): Tensor {
    this.layers.forEach((layer, i) => {
      x = layer.forward(x, { ...options, cache: options.caches?.[i] });
    });
    return this.norm ? this.norm.forward(x) : x;
  }
}

export class TransformerDecoder extends LayerStack<TransformerDecoderLayer> {
  constructor(config: LayerConfig & { numLayers: number; finalNorm?: boolean }, options: LayerOptions = {}) {
    super(() => new TransformerDecoderLayer(config, options), config.numLayers, config.dModel, config.finalNorm ?? false, config.layerNormEps ?? 1e-5, options);
  }
  forward(x: Tensor, memory: Tensor, options: { tgtKeyMask?: Tensor | null; memoryKeyMask?: Tensor | null; maps?: AttentionMaps; caches?: DecoderLayerCache[] } = {}): Tensor {
    this.layers.forEach((layer, i) => {
      x = layer.forward(x, memory, { ...options, cache: options.caches?.[i] });
    });
    return this.norm ? this.norm.forward(x) : x;
  }
}

/** u8 [B, T] key mask from token ids: 1 where the id is not `padId`. Null when no padding. */
export function paddingMask(ids: Tensor, padId: number | null): Tensor | null {
  if (padId === null) return null;
  if (ids.dtype !== 'i32') throw new ShapeError('paddingMask', `ids must be i32, got ${ids.dtype}`);
  const values = ids.data();
  const keep = new Uint8Array(values.length);
  let any = false;
  for (let i = 0; i < values.length; i++) {
    keep[i] = values[i] === padId ? 0 : 1;
    if (keep[i] === 0) any = true;
  }
  if (!any) return null;
  return new Tensor(ids.backend.fromArray('u8', keep), ids.shape, ids.backend);
}

/** Token embedding scaled by sqrt(d_model) (the paper's 3.4), plus positions, plus dropout. */
class EmbeddingBlock {
  constructor(
    readonly embed: Embedding,
    readonly positions: PositionalEncoding,
    readonly dropout: Dropout,
    readonly scaleBySqrtD: boolean,
  ) {}
  forward(ids: Tensor, offset = 0): Tensor {
    if (ids.ndim !== 2) throw new ShapeError('embedding', `token ids must be [B, T], got [${ids.shape.join(', ')}]`, 2, ids.shape);
    let x = this.embed.forward(ids);
    if (this.scaleBySqrtD) x = ops.scale(x, Math.sqrt(this.embed.embeddingDim));
    return this.dropout.forward(this.positions.forward(x, offset));
  }
}

/** Glorot-uniform on every matrix (embeddings, projections, generator), as PyTorch's
 * nn.Transformer._reset_parameters and the Annotated Transformer's make_model do. With
 * N(0, 1) embeddings scaled by sqrt(d_model), token vectors would drown the positional
 * signal (norm ~d vs ~sqrt(d/2)) and position-driven tasks like copying learn slowly. */
function glorotMatrices(model: Module, rng: Rng): void {
  for (const p of model.parameters()) {
    if (p.ndim < 2) continue;
    const [fanOut, fanIn] = [p.shape[0]!, p.size / p.shape[0]!];
    p.backend.write(p.storage, xavierUniform(rng, fanOut, fanIn));
  }
}

/** Options both model kinds share. */
export interface ModelOptions {
  dModel: number;
  nHeads: number;
  dFF: number;
  dropout?: number;
  activation?: Activation;
  normFirst?: boolean;
  /** A final LayerNorm after each stack (`encoder.norm`, `decoder.norm`, `blocks.norm`).
   * Transformer: default true, as PyTorch's nn.Transformer always has one, so its state dict
   * loads with the defaults. DecoderLM: default normFirst, as nn.TransformerEncoder's `norm`
   * is optional and pre-LN needs it. */
  finalNorm?: boolean;
  maxLen?: number;
  positions?: PositionKind;
  /** Multiply embeddings by sqrt(dModel) (default true, as the paper). */
  scaleEmbedding?: boolean;
  /** Generator shares the target embedding matrix (requires equal shapes). */
  tieWeights?: boolean;
  /** The token id whose positions no query attends to (key padding mask built from the ids).
   * Transformer: default 0 (train.seq2seqBatch pads with 0, and the encoder, not being
   * causal, would otherwise attend to every source pad). DecoderLM: default null, no id is
   * padding, as in GPT-2 and nn.TransformerEncoder: under the causal mask right-padded rows
   * (train.lmBatch) never attend to their pads, and in a character or BPE vocabulary id 0 is
   * an ordinary token. Set it for left-padded batches. */
  padId?: number | null;
  layerNormEps?: number;
}

const MODEL_OPTION_KEYS = ['dModel', 'nHeads', 'dFF', 'dropout', 'activation', 'normFirst', 'finalNorm', 'maxLen', 'positions', 'scaleEmbedding', 'tieWeights', 'padId', 'layerNormEps'] as const satisfies readonly (keyof ModelOptions)[];
const LAYER_OPTION_KEYS = ['backend', 'rng'] as const satisfies readonly (keyof LayerOptions)[];

/** The generator's weight becomes the embedding matrix (both [V, C]): one tensor under two
 * names, as PyTorch's tied state dicts list it. */
function tieGenerator(generator: Linear, embedding: Embedding): void {
  if (generator.weight.shape.join() !== embedding.weight.shape.join()) {
    throw new ConfigError('tieWeights', `generator [${generator.weight.shape.join(', ')}] and embedding [${embedding.weight.shape.join(', ')}] differ`);
  }
  generator.weight.dispose();
  (generator as { weight: Tensor }).weight = embedding.weight;
  generator.replaceParameter('weight', embedding.weight);
}

export interface TransformerConfig extends ModelOptions {
  srcVocab: number;
  tgtVocab: number;
  numEncoderLayers: number;
  numDecoderLayers: number;
}

/** The encoder-decoder model. Parameter names: src_embed, tgt_embed, (src_pos, tgt_pos when
 * learned), encoder.*, decoder.*, generator: a subclass of PyTorch's nn.Transformer adding
 * those three modules has the same state dict (README, "PyTorch interoperability"). */
export class Transformer extends Module {
  readonly config: Required<Omit<TransformerConfig, 'padId'>> & { padId: number | null };
  readonly srcEmbed: Embedding;
  readonly tgtEmbed: Embedding;
  readonly encoder: TransformerEncoder;
  readonly decoder: TransformerDecoder;
  readonly generator: Linear;
  private readonly srcBlock: EmbeddingBlock;
  private readonly tgtBlock: EmbeddingBlock;

  constructor(config: TransformerConfig, options: LayerOptions = {}) {
    // Before super(): the config is checked before the default backend is looked up.
    requireConfig('Transformer', config, ['srcVocab', 'tgtVocab', 'dModel', 'nHeads', 'dFF', 'numEncoderLayers', 'numDecoderLayers']);
    checkOptions('Transformer', config, [...MODEL_OPTION_KEYS, 'srcVocab', 'tgtVocab', 'numEncoderLayers', 'numDecoderLayers']);
    checkOptions('Transformer', options, LAYER_OPTION_KEYS);
    super(options.backend);
    const c = {
      dropout: 0.1, activation: 'relu' as Activation, normFirst: false, maxLen: 512, positions: 'sinusoidal' as PositionKind,
      scaleEmbedding: true, tieWeights: false, padId: 0, layerNormEps: 1e-5, ...config,
      finalNorm: config.finalNorm ?? true,
    };
    requirePositiveInt('Transformer', 'srcVocab', c.srcVocab);
    requirePositiveInt('Transformer', 'tgtVocab', c.tgtVocab);
    if (c.padId !== null && !(Number.isInteger(c.padId) && c.padId >= 0 && c.padId < Math.min(c.srcVocab, c.tgtVocab))) {
      throw new ConfigError('Transformer', `padId must be a token id in both vocabularies or null, got ${c.padId}`);
    }
    this.config = c;
    const o = { ...options, backend: this.backend, rng: options.rng ?? defaultRng() };
    const layer = { dModel: c.dModel, nHeads: c.nHeads, dFF: c.dFF, dropout: c.dropout, activation: c.activation, normFirst: c.normFirst, layerNormEps: c.layerNormEps };
    this.srcEmbed = this.registerModule('src_embed', new Embedding(c.srcVocab, c.dModel, o));
    this.tgtEmbed = this.registerModule('tgt_embed', new Embedding(c.tgtVocab, c.dModel, o));
    const srcPos = this.registerModule('src_pos', new PositionalEncoding(c.dModel, c.maxLen, c.positions, o));
    const tgtPos = this.registerModule('tgt_pos', new PositionalEncoding(c.dModel, c.maxLen, c.positions, o));
    this.encoder = this.registerModule('encoder', new TransformerEncoder({ ...layer, numLayers: c.numEncoderLayers, finalNorm: c.finalNorm }, o));
    this.decoder = this.registerModule('decoder', new TransformerDecoder({ ...layer, numLayers: c.numDecoderLayers, finalNorm: c.finalNorm }, o));
    this.generator = this.registerModule('generator', new Linear(c.dModel, c.tgtVocab, o));
    glorotMatrices(this, o.rng);
    if (c.tieWeights) tieGenerator(this.generator, this.tgtEmbed);
    this.srcBlock = new EmbeddingBlock(this.srcEmbed, srcPos, this.registerModule('src_dropout', new Dropout(c.dropout, o)), c.scaleEmbedding);
    this.tgtBlock = new EmbeddingBlock(this.tgtEmbed, tgtPos, this.registerModule('tgt_dropout', new Dropout(c.dropout, o)), c.scaleEmbedding);
  }

  /** src [B, Ts] ids -> memory [B, Ts, C]. */
  encode(src: Tensor, options: { maps?: Tensor[] } = {}): Tensor {
    return this.withSourceMask(src, (srcMask) => this.encodeMasked(src, srcMask, options.maps));
  }

  /** tgt [B, Tt] ids attending to memory -> logits [B, Tt, V]. */
  decode(tgt: Tensor, memory: Tensor, src: Tensor, options: { maps?: AttentionMaps } = {}): Tensor {
    return this.withSourceMask(src, (srcMask) => this.decodeMasked(tgt, memory, srcMask, options.maps));
  }

  /** Teacher-forced logits [B, Tt, tgtVocab] for source [B, Ts] and decoder input [B, Tt];
   * the source padding mask is built once for both the encoder and the cross-attention. */
  forward(src: Tensor, tgtIn: Tensor): Tensor {
    return this.withSourceMask(src, (srcMask) => this.decodeMasked(tgtIn, this.encodeMasked(src, srcMask), srcMask));
  }

  /** Masks are outside the graph (backward() would never free them) and unused by backward,
   * so they are freed as soon as the forward pass is done. */
  private withSourceMask(src: Tensor, run: (srcMask: Tensor | null) => Tensor): Tensor {
    const srcMask = paddingMask(src, this.config.padId);
    try {
      return run(srcMask);
    } finally {
      srcMask?.dispose();
    }
  }

  private encodeMasked(src: Tensor, keyMask: Tensor | null, maps?: Tensor[]): Tensor {
    return this.encoder.forward(this.srcBlock.forward(src), { keyMask, maps });
  }

  private decodeMasked(tgt: Tensor, memory: Tensor, memoryKeyMask: Tensor | null, maps?: AttentionMaps): Tensor {
    const tgtKeyMask = paddingMask(tgt, this.config.padId);
    try {
      const h = this.decoder.forward(this.tgtBlock.forward(tgt), memory, { tgtKeyMask, memoryKeyMask, maps });
      return this.generator.forward(h);
    } finally {
      tgtKeyMask?.dispose();
    }
  }

  /** Starts incremental decoding of `src` [B, Ts]: encodes once, empty caches. */
  startDecoding(src: Tensor): Seq2SeqDecodingState {
    const memory = this.encode(src).keep();
    const memoryKeyMask = paddingMask(src, this.config.padId)?.keep() ?? null;
    const caches = this.decoder.layers.map(() => ({ self: emptyCache(), cross: emptyCache(true) }));
    return { memory, memoryKeyMask, caches, length: 0 };
  }

  /** Logits [B, T, V] for the next `tokens` [B, T] (the whole prefix on the first call,
   * then one position at a time), reusing and extending the caches. */
  decodeStep(state: Seq2SeqDecodingState, tokens: Tensor): Tensor {
    const x = this.tgtBlock.forward(tokens, state.length);
    const h = this.decoder.forward(x, state.memory, { memoryKeyMask: state.memoryKeyMask, caches: state.caches });
    state.length += tokens.shape[1]!;
    return this.generator.forward(h);
  }
}

export interface Seq2SeqDecodingState {
  memory: Tensor;
  memoryKeyMask: Tensor | null;
  caches: DecoderLayerCache[];
  /** Target positions decoded so far. */
  length: number;
}

export function disposeDecodingState(state: Seq2SeqDecodingState | LMDecodingState): void {
  if ('memory' in state) {
    state.memory.dispose();
    state.memoryKeyMask?.dispose();
    for (const c of state.caches) {
      disposeCache(c.self);
      disposeCache(c.cross);
    }
  } else {
    for (const c of state.caches) disposeCache(c);
  }
}

export interface DecoderLMConfig extends ModelOptions {
  vocab: number;
  numLayers: number;
}

/** Decoder-only causal language model. Names: embed, blocks.layers.N.*, blocks.norm, generator. */
export class DecoderLM extends Module {
  readonly config: Required<Omit<DecoderLMConfig, 'padId'>> & { padId: number | null };
  readonly embed: Embedding;
  readonly blocks: TransformerEncoder;
  readonly generator: Linear;
  private readonly block: EmbeddingBlock;

  constructor(config: DecoderLMConfig, options: LayerOptions = {}) {
    // Before super(): the config is checked before the default backend is looked up.
    requireConfig('DecoderLM', config, ['vocab', 'dModel', 'nHeads', 'dFF', 'numLayers']);
    checkOptions('DecoderLM', config, [...MODEL_OPTION_KEYS, 'vocab', 'numLayers']);
    checkOptions('DecoderLM', options, LAYER_OPTION_KEYS);
    super(options.backend);
    const c = {
      dropout: 0.1, activation: 'relu' as Activation, normFirst: true, maxLen: 512, positions: 'sinusoidal' as PositionKind,
      scaleEmbedding: true, tieWeights: false, padId: null, layerNormEps: 1e-5, ...config,
      finalNorm: config.finalNorm ?? config.normFirst ?? true,
    };
    requirePositiveInt('DecoderLM', 'vocab', c.vocab);
    this.config = c;
    const o = { ...options, backend: this.backend, rng: options.rng ?? defaultRng() };
    this.embed = this.registerModule('embed', new Embedding(c.vocab, c.dModel, o));
    const pos = this.registerModule('pos', new PositionalEncoding(c.dModel, c.maxLen, c.positions, o));
    this.blocks = this.registerModule('blocks', new TransformerEncoder({
      dModel: c.dModel, nHeads: c.nHeads, dFF: c.dFF, dropout: c.dropout, activation: c.activation,
      normFirst: c.normFirst, layerNormEps: c.layerNormEps, numLayers: c.numLayers, finalNorm: c.finalNorm,
    }, o));
    this.generator = this.registerModule('generator', new Linear(c.dModel, c.vocab, o));
    glorotMatrices(this, o.rng);
    if (c.tieWeights) tieGenerator(this.generator, this.embed);
    this.block = new EmbeddingBlock(this.embed, pos, this.registerModule('dropout', new Dropout(c.dropout, o)), c.scaleEmbedding);
  }

  /** ids [B, T] -> logits [B, T, V] under a causal mask. */
  forward(ids: Tensor, options: { maps?: Tensor[] } = {}): Tensor {
    const keyMask = paddingMask(ids, this.config.padId);
    try {
      const h = this.blocks.forward(this.block.forward(ids), { keyMask, causal: true, maps: options.maps });
      return this.generator.forward(h);
    } finally {
      keyMask?.dispose();
    }
  }

  startDecoding(): LMDecodingState {
    return { caches: this.blocks.layers.map(() => emptyCache()), length: 0 };
  }

  /** Logits [B, T, V] for `tokens` [B, T] (the prompt first, then one position at a time). */
  decodeStep(state: LMDecodingState, tokens: Tensor): Tensor {
    const x = this.block.forward(tokens, state.length);
    const h = this.blocks.forward(x, { causal: true, caches: state.caches });
    state.length += tokens.shape[1]!;
    return this.generator.forward(h);
  }
}

export interface LMDecodingState {
  caches: AttentionCache[];
  length: number;
}

export type { Rng };
