export { gelu, geluTanh, relu } from './activation.js';
export { attention, attentionQkvPacked, attentionWithProbs, type AttentionOptions, type AttentionResult } from './attention.js';
export { addBias, concat, narrow, reshape, scale, transpose12 } from './elementwise.js';
export { checkIds } from './embedding.js';
export { dropout, type DropoutOptions } from './dropout.js';
export { layerNorm } from './layernorm.js';
export { crossEntropy, type CrossEntropyOptions } from './loss.js';
export type { MatmulOptions } from './matmul.js';
export { softmax } from './softmax.js';
export { linear, type LinearOptions } from './linear.js';
export { add, div, eq, ge, gt, le, lt, maskedFill, maximum, minimum, mul, ne, pow, sub, where } from './binary.js';
export { abs, clamp, exp, log, neg, rsqrt, sigmoid, silu, softplus, sqrt, tanh, type SoftplusOptions } from './unary.js';
export {
  amax, amin, argmax, argmin, logSoftmax, logsumexp, max, mean, min, softmaxDim, sum, variance,
  type Dims, type MaxResult, type ReduceOptions, type VarOptions,
} from './reduce.js';
export { asStrided, cat, chunk, expand, flatten, permute, slice, split, squeeze, stack, transpose, tril, triu, unsqueeze } from './views.js';
export { embedding, gather, indexSelect, scatterAdd, type EmbeddingOptions } from './indexing.js';
export { matmul } from './linalg.js';

import { installTensorMethods } from '../tensor/methods.js';
import { geluTanh, gelu, relu } from './activation.js';
import * as binary from './binary.js';
import { narrow, reshape } from './elementwise.js';
import * as indexing from './indexing.js';
import * as linalg from './linalg.js';
import * as reduce from './reduce.js';
import * as unary from './unary.js';
import * as views from './views.js';

// Tensor methods (x.add(y).relu().sum()) delegate to these ops.
installTensorMethods({
  ...binary, ...unary, ...reduce, ...views, gelu, geluTanh, relu, narrow, reshape,
  matmul: linalg.matmul, gather: indexing.gather, scatterAdd: indexing.scatterAdd,
  indexSelect: (x, dim, index) => indexing.indexSelect(x, dim, index),
});
