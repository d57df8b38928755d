// Trainer: one optimiser step per call, over one or more micro-batches (gradient
// accumulation), with the schedule, clipping and metrics of the paper's recipe. Given the
// same seed, backend and thread count it produces the same loss curve to the bit: every
// kernel is deterministic and dropout draws from counters saved in checkpoints.
import { noGrad } from '../autograd/tape.js';
import type { Module } from '../nn/module.js';
import * as ops from '../ops/index.js';
import type { Adam } from '../optim/adam.js';
import { clipGradNorm } from '../optim/clip.js';
import { gradNorm } from '../optim/groups.js';
import type { Schedule } from '../optim/schedules.js';
import { ConfigError, NumericsError } from '../tensor/errors.js';
import type { Tensor } from '../tensor/tensor.js';

export interface StepMetrics {
  step: number;
  loss: number;
  perplexity: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  tokens: number;
  tokensPerSecond: number;
  /** True when the step was skipped because the loss or a gradient was not finite. */
  skipped: boolean;
  /** On a skipped step: the message a 'throw' run would give (loss, gradient norm and the
   * first parameter, in namedParameters() order, whose gradient holds NaN or Inf). */
  nonFinite?: string;
}

export interface EvalMetrics {
  step: number;
  loss: number;
  perplexity: number;
}

export interface TrainerCallbacks {
  onStep?(metrics: StepMetrics): void;
  onEval?(metrics: EvalMetrics): void;
}

export interface TrainerOptions<B> {
  model: Module;
  optimizer: Adam;
  /** Builds the graph for one micro-batch and returns its scalar (mean) loss. */
  loss: (model: Module, batch: B) => Tensor;
  /** lr as a function of the 1-based step; default: the optimiser's lr, unchanged. */
  schedule?: Schedule;
  /** Clip the global gradient norm to this before each update. */
  clipNorm?: number;
  /** Tokens in a batch (for tokens/s); default 0. */
  tokens?: (batch: B) => number;
  callbacks?: TrainerCallbacks;
  /** What a non-finite loss or gradient does: throw (default), skip the update, or stop. */
  onNonFinite?: 'throw' | 'skip';
}

export class Trainer<B> {
  /** Optimiser steps taken so far. */
  step = 0;
  readonly history: StepMetrics[] = [];
  private readonly options: TrainerOptions<B>;
  private readonly params: Tensor[];

  constructor(options: TrainerOptions<B>) {
    if (options.clipNorm !== undefined && !(options.clipNorm > 0)) {
      throw new ConfigError('Trainer', `clipNorm must be positive, got ${options.clipNorm}`);
    }
    this.options = options;
    this.params = options.model.parameters();
  }

  /** One optimiser step over `batches` (several = gradient accumulation: the losses are
   * averaged, so the update equals one step on their union when they have equal size). */
  trainStep(batches: B | B[]): StepMetrics {
    const list = Array.isArray(batches) ? batches : [batches];
    if (list.length === 0) throw new ConfigError('Trainer.trainStep', 'needs at least one batch');
    const { model, optimizer } = this.options;
    const started = performance.now();
    model.train();
    optimizer.zeroGrad();
    let lossSum = 0;
    let tokens = 0;
    for (const batch of list) {
      const loss = this.options.loss(model, batch);
      lossSum += loss.item();
      const scaled = list.length === 1 ? loss : ops.scale(loss, 1 / list.length);
      scaled.backward();
      scaled.dispose();
      loss.dispose();
      tokens += this.options.tokens?.(batch) ?? 0;
    }
    const loss = lossSum / list.length;
    const lr = this.options.schedule ? this.options.schedule(this.step + 1) : optimizer.lr;
    optimizer.setLr(lr);
    const norm = this.options.clipNorm !== undefined ? clipGradNorm(this.params, this.options.clipNorm) : gradNorm(this.params);
    let skipped = false;
    let nonFinite: string | undefined;
    if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
      const where = this.firstNonFinite();
      const message = `step ${this.step + 1}: loss ${loss}, gradient norm ${norm}${where ? `, first non-finite gradient in ${where}` : ''}`;
      if (this.options.onNonFinite !== 'skip') throw new NumericsError('Trainer', message);
      skipped = true;
      nonFinite = message;
      optimizer.zeroGrad();
    } else {
      optimizer.step();
    }
    this.step += 1;
    const seconds = (performance.now() - started) / 1000;
    const metrics: StepMetrics = {
      step: this.step, loss, perplexity: Math.exp(loss), lr, gradNorm: norm, tokens,
      tokensPerSecond: seconds > 0 ? tokens / seconds : 0, skipped,
      ...(nonFinite === undefined ? {} : { nonFinite }),
    };
    this.history.push(metrics);
    this.options.callbacks?.onStep?.(metrics);
    return metrics;
  }

  /** Mean loss over batches with dropout off and no graph. */
  evaluate(batches: Iterable<B>): EvalMetrics {
    const { model } = this.options;
    const wasTraining = model.training;
    model.eval();
    let sum = 0;
    let count = 0;
    try {
      noGrad(() => {
        for (const batch of batches) {
          const loss = this.options.loss(model, batch);
          sum += loss.item();
          loss.dispose();
          count++;
        }
      });
    } finally {
      model.train(wasTraining);
    }
    const loss = count > 0 ? sum / count : NaN;
    const metrics = { step: this.step, loss, perplexity: Math.exp(loss) };
    this.options.callbacks?.onEval?.(metrics);
    return metrics;
  }

  private firstNonFinite(): string | null {
    for (const [name, p] of this.options.model.namedParameters()) {
      if (!p.grad) continue;
      const g = p.grad.data();
      for (let i = 0; i < g.length; i++) if (!Number.isFinite(g[i]!)) return name;
    }
    return null;
  }
}
