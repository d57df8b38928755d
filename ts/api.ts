// Everything both entries (Node and browser) export; each entry adds its own init().
export type { Backend, BackendName, Capability, DType, HostArray, Storage } from './backend/backend.js';
export { getDefaultBackend, setDefaultBackend, type InitOptions } from './backend/registry.js';
export { backward, isGradEnabled, noGrad, type BackwardOptions } from './autograd/tape.js';
export { AutogradError, BackendError, ConfigError, DisposedError, DTypeError, FormatError, NumericsError, ShapeError } from './tensor/errors.js';
export { dispose, tidy } from './tensor/memory.js';
export { getCheckNumerics, setCheckNumerics } from './tensor/numerics.js';
export { full, ones, Tensor, tensor, zeros, type Shape, type TensorOptions } from './tensor/tensor.js';
export * as ops from './ops/index.js';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';
export * as io from './io/index.js';
export * as generate from './generate/index.js';
export * as train from './train/index.js';
export * as tokenizers from './tokenizers/index.js';
export * as models from './models/index.js';
