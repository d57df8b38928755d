export { Adam, AdamW, type AdamConfig, type ParamGroup } from './adam.js';
export { clipGradNorm } from './clip.js';
export { decayGroups, gradNorm } from './groups.js';
export { Optimizer, type ParameterSource } from './params.js';
export { constant, cosineWithWarmup, getLr, noam, warmupDecay, type CosineWarmupConfig, type Schedule } from './schedules.js';
export { SGD, type SGDConfig, type SGDParamGroup } from './sgd.js';
