export { Adam, AdamW, type AdamConfig, type ParamGroup } from './adam.js';
export { clipGradNorm } from './clip.js';
export { decayGroups, gradNorm } from './groups.js';
export { constant, noam, warmupDecay, type Schedule } from './schedules.js';
