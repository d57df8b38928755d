// Trainer: one optimiser step per call, over one or more micro-batches (gradient
// accumulation), with the schedule, clipping and metrics of the paper's recipe. Given the
// same seed, backend and thread count it produces the same loss curve to the bit: every
// kernel is deterministic and dropout draws from counters saved in checkpoints.
import { lastBackwardLeaves, noGrad } from '../autograd/tape.js';
import type { Module } from '../nn/module.js';
import * as ops from '../ops/index.js';
import type { Optimizer } from '../optim/params.js';
import { clipGradNorm } from '../optim/clip.js';
import { gradNorm } from '../optim/groups.js';
import type { Schedule } from '../optim/schedules.js';
import { ConfigError, NumericsError, checkOptions } from '../tensor/errors.js';
import { libraryCall } from '../tensor/memory.js';
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
  /** Any optimiser (Adam, AdamW, SGD, or a subclass of optim.Optimizer). */
  optimizer: Optimizer<{ params: Tensor[]; lr: number }>;
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

const TRAINER_KEYS = ['model', 'optimizer', 'loss', 'schedule', 'clipNorm', 'tokens', 'callbacks', 'onNonFinite'] as const satisfies readonly (keyof TrainerOptions<unknown>)[];

export class Trainer<B> {
  /** Optimiser steps taken so far. */
  step = 0;
  readonly history: StepMetrics[] = [];
  private readonly options: TrainerOptions<B>;
  private readonly params: Tensor[];

  constructor(options: TrainerOptions<B>) {
    checkOptions('Trainer', options, TRAINER_KEYS, ['model', 'optimizer', 'loss']);
    if (typeof options.loss !== 'function') throw new ConfigError('Trainer', `loss must be a function (model, batch) => scalar loss tensor, got ${typeof options.loss}`);
    if (options.onNonFinite !== undefined && options.onNonFinite !== 'throw' && options.onNonFinite !== 'skip') {
      throw new ConfigError('Trainer', `onNonFinite must be 'throw' or 'skip', got ${String(options.onNonFinite)}`);
    }
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
    let leaves: readonly Tensor[] = [];
    for (const batch of list) {
      // Inside libraryCall every tensor of the step belongs to the graph, which backward()
      // frees: a step leaves nothing behind (test/soak.memory.test.ts).
      libraryCall(() => {
        const loss = this.options.loss(model, batch);
        if (loss.size !== 1) {
          loss.dispose();
          throw new ConfigError('Trainer', `the loss function must return a scalar (one-element) loss, got shape [${loss.shape.join(', ')}]; reduce it (mean) in the loss function`);
        }
        lossSum += loss.item();
        const scaled = list.length === 1 ? loss : ops.scale(loss, 1 / list.length);
        scaled.backward();
        scaled.dispose();
        loss.dispose();
      });
      if (leaves.length === 0) leaves = lastBackwardLeaves();
      tokens += this.options.tokens?.(batch) ?? 0;
    }
    const loss = lossSum / list.length;
    const lr = this.options.schedule ? this.options.schedule(this.step + 1) : optimizer.lr;
    optimizer.setLr(lr);
    const norm = this.options.clipNorm !== undefined ? clipGradNorm(this.params, this.options.clipNorm) : gradNorm(this.params);
    let skipped = false;
    let nonFinite: string | undefined;
    if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
      const where = this.firstNonFinite(leaves);
      const message = `step ${this.step + 1}: loss ${loss}, gradient norm ${norm}${where ? `, ${where}` : ''}`;
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

  /** Where the non-finite value came from: a parameter that holds one (it poisons every
   * gradient, so those say nothing), else the first parameter whose gradient holds one in
   * the order the backward pass reached them (from the loss towards the inputs). */
  private firstNonFinite(backwardOrder: readonly Tensor[]): string | null {
    const named = this.options.model.namedParameters();
    const nameOf = new Map<Tensor, string>();
    for (const [name, p] of named) if (!nameOf.has(p)) nameOf.set(p, name);
    const nonFinite = (t: Tensor): boolean => t.data().some((v) => !Number.isFinite(v));
    for (const [name, p] of named) if (nonFinite(p)) return `non-finite value in parameter ${name} (so every gradient is)`;
    const ordered = [...backwardOrder.filter((p) => nameOf.has(p)), ...named.map(([, p]) => p)];
    for (const p of ordered) if (p.grad && nonFinite(p.grad)) return `first non-finite gradient in ${nameOf.get(p)!} (in backward order)`;
    return null;
  }
}
