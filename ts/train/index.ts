export { lmBatch, lmLoss, padRows, seq2seqBatch, seq2seqLoss, subsequentMask, type LMBatch, type Seq2SeqBatch } from './batching.js';
export {
  checkpointToBytes, loadCheckpointBytes, loadModelSafetensors, loadOptimizerSafetensors, modelToSafetensors, optimizerToSafetensors, type CheckpointContents,
  type OptimizerGroupRecord,
} from './checkpoint.js';
export { loadCheckpoint, saveCheckpoint, writeFileAtomic } from './checkpoint_file.js';
export { Trainer, type EvalMetrics, type StepMetrics, type TrainerCallbacks, type TrainerOptions } from './trainer.js';
export { reverse, symbolBatch, symbolTask, type PairBatch, type SymbolTask } from './tasks.js';
