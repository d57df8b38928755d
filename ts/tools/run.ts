// A run folder as the CLI writes it (runs/<name>/): config.json, tokenizer.json,
// model.safetensors, eval_batch.json (the fixed held-out batch the validation loss and the
// loss landscape are measured on), metrics.jsonl, checkpoints/, pictures and report.html.
// This module rebuilds a model, its tokenizer and that batch from the folder; the CLI, the
// landscape and its worker threads all load runs through it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dispose, nn, noGrad, ops, tidy, tokenizers, train, type Tensor } from '../index.js';

export interface TrainSettings {
  steps: number;
  batchSize: number;
  seed: number;
  backend: 'auto' | 'native' | 'wasm' | 'reference';
  threads: number | null;
  /** Noam schedule: lr = factor * dModel^-0.5 * min(step^-0.5, step * warmup^-1.5). */
  warmup: number;
  lrFactor: number;
  labelSmoothing: number;
  clipNorm: number;
  logEvery: number;
  evalEvery: number;
  checkpointEvery: number;
}

export interface RunConfig {
  format: 'ferroformer-run';
  version: 1;
  name: string;
  kind: 'seq2seq' | 'lm';
  /** Built-in seq2seq task, or null for a text file (character-level LM). */
  task: string | null;
  text: string | null;
  /** LM: context length in tokens. Seq2seq: longest source and target in characters. */
  context: number | null;
  maxSrcLen: number | null;
  maxTgtLen: number | null;
  /** Seed of the held-out set (seq2seq tasks). */
  heldOutSeed: number | null;
  preset: string | null;
  model: nn.TransformerConfig | nn.DecoderLMConfig;
  train: TrainSettings;
  backendUsed?: string;
  threadsUsed?: number;
}

/** Seq2seq: source rows and full target rows ([BOS, ..., EOS]). LM: rows of context + 1 ids. */
export interface EvalBatchJSON {
  src?: number[][];
  tgt?: number[][];
  rows?: number[][];
}

export type AnyModel = nn.Transformer | nn.DecoderLM;

export function buildModel(config: RunConfig, seed = config.train.seed): AnyModel {
  const rng = new nn.Rng(seed);
  if (config.kind === 'lm') return new nn.DecoderLM(config.model as nn.DecoderLMConfig, { rng });
  const model = config.model as nn.TransformerConfig;
  // Runs written before the CLI recorded finalNorm were built with the default of that time:
  // a final LayerNorm only for pre-LN stacks.
  return new nn.Transformer({ ...model, finalNorm: model.finalNorm ?? model.normFirst ?? false }, { rng });
}

export function readConfig(runDir: string): RunConfig {
  const path = join(runDir, 'config.json');
  const config = reading(path, () => JSON.parse(readFileSync(path, 'utf8')) as RunConfig);
  if (config === null || typeof config !== 'object' || config.format !== 'ferroformer-run') throw new Error(`${path} is not a ferroformer run config`);
  return config;
}

/** `f()`, with the file it reads named at the start of any error's message. */
function reading<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof Error) e.message = `${path}: ${e.message}`;
    throw e;
  }
}

/** The first few of each kind of mismatch and their counts (a full list runs to kilobytes). */
function summariseMismatch(e: nn.StateDictError): string {
  const few = (what: string, items: string[], separator: string): string[] =>
    items.length === 0 ? [] : [`${items.length} ${what} (${items.slice(0, 3).join(separator)}${items.length > 3 ? `${separator}...` : ''})`];
  return [...few('shape mismatches', e.shapeMismatches, '; '), ...few('missing keys', e.missingKeys, ', '), ...few('unexpected keys', e.unexpectedKeys, ', ')].join(', ');
}

export interface LoadedRun {
  dir: string;
  config: RunConfig;
  model: AnyModel;
  tokenizer: tokenizers.Tokenizer;
  evalBatch: EvalBatchJSON;
}

/** Model (weights from `weights`, default model.safetensors), tokenizer and eval batch of a run.
 * Needs an initialised backend. */
export function loadRun(runDir: string, weights = join(runDir, 'model.safetensors')): LoadedRun {
  const config = readConfig(runDir);
  const configPath = join(runDir, 'config.json');
  const model = reading(configPath, () => buildModel(config));
  try {
    train.loadModelSafetensors(model, new Uint8Array(readFileSync(weights)));
  } catch (e) {
    model.dispose();
    if (e instanceof nn.StateDictError) throw new Error(`${weights} does not match ${configPath}: ${summariseMismatch(e)}`);
    if (e instanceof Error) e.message = `${weights}: ${e.message}`;
    throw e;
  }
  model.eval();
  const tokenizerPath = join(runDir, 'tokenizer.json');
  const tokenizer = reading(tokenizerPath, () => tokenizers.loadTokenizer(readFileSync(tokenizerPath, 'utf8')));
  const evalBatchPath = join(runDir, 'eval_batch.json');
  const evalBatch = reading(evalBatchPath, () => JSON.parse(readFileSync(evalBatchPath, 'utf8')) as EvalBatchJSON);
  return { dir: runDir, config, model, tokenizer, evalBatch };
}

/** Plain cross-entropy (nats per target token, padding ignored, no label smoothing) of the
 * model on the batch, dropout off and no graph. */
export function evalLoss(model: AnyModel, batch: EvalBatchJSON, padId = 0): number {
  const wasTraining = model.training;
  model.eval();
  try {
    if (model instanceof nn.Transformer) {
      const b = train.seq2seqBatch(batch.src!, batch.tgt!, { padId, backend: model.backend });
      try {
        return lossOf(() => train.seq2seqLoss({ padId })(model, b));
      } finally {
        dispose(b);
      }
    }
    const b = train.lmBatch(batch.rows!, { backend: model.backend });
    try {
      return lossOf(() => ops.crossEntropy(model.forward(b.input), b.target));
    } finally {
      dispose(b);
    }
  } finally {
    model.train(wasTraining);
  }
}

function lossOf(f: () => Tensor): number {
  // noGrad through the model's own backend: no tape, every intermediate freed by tidy.
  let value = NaN;
  noGradTidy(() => {
    const loss = f();
    value = loss.item();
    loss.dispose();
  });
  return value;
}

function noGradTidy(f: () => void): void {
  noGrad(() => tidy(() => {
    f();
    return undefined;
  }));
}
