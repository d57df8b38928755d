export { disposeCache, emptyCache, MultiheadAttention, type AttentionCache, type MultiheadAttentionOptions, type MultiheadAttentionOutput } from './attention.js';
export { defaultRng, linearUniform, manualSeed, Rng, xavierUniform } from './init.js';
/** torch.nn.init's in-place fills: nn.init.normal_(p, { std: 0.02 }), zeros_, ones_. */
export * as init from './init.js';
export { ModuleDict, ModuleList, Sequential, type Forward } from './containers.js';
export { Dropout, Embedding, FeedForward, LayerNorm, Linear, type Activation, type LayerNormOptions, type LayerOptions } from './layers.js';
export { Module, StateDictError, type LoadOptions, type LoadResult, type StateEntry } from './module.js';
export {
  DecoderLM, disposeDecodingState, paddingMask, type DecoderLayerCache, type LMDecodingState, type Seq2SeqDecodingState, PositionalEncoding, sinusoidalTable, Transformer, TransformerDecoder, TransformerDecoderLayer,
  TransformerEncoder, TransformerEncoderLayer, type AttentionMaps, type DecoderLMConfig, type LayerConfig, type ModelOptions, type PositionKind,
  type TransformerConfig,
} from './transformer.js';
