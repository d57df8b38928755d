export { stepDecoder, type CausalLM, type Model, type StepDecoder } from './decoders.js';
export {
  beamSearch, greedy, lengthPenalty, logSoftmax, sample, type BeamOptions, type GenerateInput, type GenerateOptions,
  type Hypothesis, type SampleOptions,
} from './search.js';
