export {
  GPT2_DEFAULTS, gpt2Config, GPT2LMHeadModel, GPT2Model, type FromPretrainedOptions, type GPT2Config,
} from './gpt2.js';
export { fromUrl, openPretrained, type FileData, type FileMap, type PretrainedFiles, type PretrainedSource, type WeightStream } from './sources.js';
export { streamSafetensors, type LoadStats, type WeightTarget } from './weights_stream.js';
export { fineTune, FineTuning, type FineTuneOptions, type FineTuneResult } from './finetune.js';
