// Fine-tuning a causal language model (GPT2LMHeadModel) on a text: token ids split into
// training and held-out parts, random windows of `context` tokens as batches (labels = the
// ids; the model shifts them), AdamW with warm-up and cosine decay, gradient clipping, and
// the Trainer's metrics. Used by `ferroformer train --init <hf-folder>` and the tests.
import type { Backend } from '../backend/backend.js';
import { noGrad } from '../autograd/tape.js';
import { Rng } from '../nn/init.js';
import { AdamW } from '../optim/adam.js';
import { warmupDecay } from '../optim/schedules.js';
import { ConfigError } from '../tensor/errors.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import { Trainer, type EvalMetrics, type StepMetrics } from '../train/trainer.js';
import type { GPT2LMHeadModel } from './gpt2.js';

export interface FineTuneOptions {
  steps: number;
  /** Windows per batch (default 8). */
  batchSize?: number;
  /** Tokens per window (default min(64, n_positions)). */
  context?: number;
  /** Peak learning rate (default 5e-4). */
  lr?: number;
  /** Warm-up steps (default 10% of steps). */
  warmup?: number;
  weightDecay?: number;
  /** Clip the global gradient norm (default 1). */
  clipNorm?: number;
  /** Share of the ids held out for evaluation, from the end (default 0.1). */
  heldOut?: number;
  seed?: number;
  /** Evaluate the held-out part every this many steps (default: at the end only). */
  evalEvery?: number;
  onStep?: (metrics: StepMetrics) => void;
  onEval?: (metrics: EvalMetrics) => void;
}

export interface FineTuneResult {
  trainer: Trainer<Tensor>;
  /** Held-out loss before the first step and after the last. */
  heldOutBefore: number;
  heldOutAfter: number;
}

/** Consecutive non-overlapping windows [n, context] over `ids` (the held-out batches). */
function windows(ids: Int32Array, context: number, backend: Backend, limit = 16): Tensor[] {
  const out: Tensor[] = [];
  for (let start = 0; start + context <= ids.length && out.length < limit; start += context) {
    out.push(tensor(ids.subarray(start, start + context), [1, context], { dtype: 'i32', backend }));
  }
  return out;
}

/**
 * A fine-tuning run one step at a time (the CLI awaits between steps so Ctrl-C is seen):
 * `step()` trains on one random batch, `evaluate()` measures the held-out loss, `dispose()`
 * frees the held-out batches.
 */
export class FineTuning {
  readonly trainer: Trainer<Tensor>;
  readonly steps: number;
  private readonly heldBatches: Tensor[];
  private readonly batch: () => Tensor;

  constructor(readonly model: GPT2LMHeadModel, ids: Int32Array, readonly options: FineTuneOptions) {
    const op = 'fineTune';
    const context = options.context ?? Math.min(64, model.config.n_positions);
    const batchSize = options.batchSize ?? 8;
    const heldOutShare = options.heldOut ?? 0.1;
    if (!(Number.isInteger(options.steps) && options.steps >= 1)) throw new ConfigError(op, `steps must be a positive integer, got ${options.steps}`);
    if (!(Number.isInteger(context) && context >= 2 && context <= model.config.n_positions)) {
      throw new ConfigError(op, `context must be an integer in [2, n_positions ${model.config.n_positions}], got ${context}`);
    }
    if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new ConfigError(op, `batchSize must be a positive integer, got ${batchSize}`);
    const split = Math.floor(ids.length * (1 - heldOutShare));
    const train = ids.subarray(0, split);
    const held = ids.subarray(split);
    if (train.length < context + 1) throw new ConfigError(op, `the text has ${train.length} training tokens, fewer than context ${context} + 1`);
    const backend = model.backend;
    this.steps = options.steps;
    this.heldBatches = windows(held.length >= context ? held : train, context, backend);
    const rng = new Rng(options.seed ?? 1234);
    this.batch = () => {
      const data = new Int32Array(batchSize * context);
      for (let r = 0; r < batchSize; r++) {
        const start = Math.floor(rng.next() * (train.length - context + 1));
        data.set(train.subarray(start, start + context), r * context);
      }
      return tensor(data, [batchSize, context], { dtype: 'i32', backend });
    };
    const lr = options.lr ?? 5e-4;
    const optimizer = new AdamW(model, { lr, weightDecay: options.weightDecay ?? 0.01 });
    this.trainer = new Trainer<Tensor>({
      model, optimizer,
      loss: (_m, batch) => model.loss(batch),
      schedule: warmupDecay(lr, options.warmup ?? Math.max(1, Math.floor(options.steps / 10)), options.steps, { decay: 'cosine' }),
      clipNorm: options.clipNorm ?? 1,
      tokens: (batch) => batch.size,
      callbacks: { onStep: options.onStep, onEval: options.onEval },
    });
  }

  /** One optimiser step on a fresh random batch. */
  step(): StepMetrics {
    const batch = this.batch();
    try {
      return this.trainer.trainStep(batch);
    } finally {
      batch.dispose();
    }
  }

  /** Mean loss over the held-out windows (no graph, dropout off). */
  evaluate(): number {
    return noGrad(() => this.trainer.evaluate(this.heldBatches)).loss;
  }

  dispose(): void {
    for (const t of this.heldBatches) t.dispose();
  }
}

/** Fine-tunes `model` in place on `ids` (a tokenized text). */
export function fineTune(model: GPT2LMHeadModel, ids: Int32Array, options: FineTuneOptions): FineTuneResult {
  const run = new FineTuning(model, ids, options);
  try {
    const heldOutBefore = run.evaluate();
    for (let step = 1; step <= run.steps; step++) {
      run.step();
      if (options.evalEvery && step % options.evalEvery === 0 && step < run.steps) run.evaluate();
    }
    const heldOutAfter = run.evaluate();
    model.eval();
    return { trainer: run.trainer, heldOutBefore, heldOutAfter };
  } finally {
    run.dispose();
  }
}
