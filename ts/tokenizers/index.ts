// Tokenizers: pure TypeScript, no tensors and no Node imports, so they run in the browser too.
export { BpeTokenizer, type BpeSplit, type BpeTokenizerJSON, type BpeTrainOptions } from './bpe.js';
export { HFTokenizer, type HFDecodeOptions, type HFEncodeOptions, type HFTokenizerFiles } from './hf.js';
export { CharTokenizer, type CharTokenizerJSON, type CharTrainOptions } from './char.js';
export {
  loadTokenizer,
  tokenizerFromJSON,
  type DecodeOptions,
  type EncodeOptions,
  type SpecialTokens,
  type Tokenizer,
} from './tokenizer.js';
