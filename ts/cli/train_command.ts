// `ferroformer train`: builds the data (a generated seq2seq task, or a text file for a
// character-level LM), the model (a preset, adjusted by flags) and the paper's recipe (Adam
// 0.9/0.98/1e-9, Noam schedule, label smoothing, clipping), trains with progress, and writes
// the run folder: config, tokenizer, weights, metrics, checkpoints, pictures and the report.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, appendFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { dispose, generate, init, nn, optim, train, type Backend } from '../index.js';
import { drawAttention, drawLandscape, drawLoss, writeReport, attentionPanels } from '../tools/pictures.js';
import { controlPictures } from '../tools/plots.js';
import type { Sample } from '../tools/report.js';
import { buildModel, evalLoss, readConfig, type AnyModel, type EvalBatchJSON, type RunConfig } from '../tools/run.js';
import { UsageError } from './errors.js';
import { Interruption } from './interrupt.js';
import { createProgress, duration, type Progress } from './progress.js';
import { heldOut, makeTask, taskTokenizer, TASK_NAMES, type Example, type Seq2SeqTask, type TaskName } from './tasks.js';
import { readTextFile, shellPath } from './text.js';
import { tokenizers } from '../index.js';

export const PRESETS = {
  tiny: { dModel: 32, nHeads: 2, layers: 1, dFF: 64 },
  small: { dModel: 64, nHeads: 4, layers: 2, dFF: 256 },
  base: { dModel: 128, nHeads: 8, layers: 3, dFF: 512 },
} as const;
export type PresetName = keyof typeof PRESETS;

export interface TrainFlags {
  task?: string;
  text?: string;
  preset: string;
  dModel?: number;
  heads?: number;
  layers?: number;
  dFf?: number;
  dropout: number;
  context: number;
  steps?: number;
  batchSize: number;
  backend: string;
  threads?: number;
  seed: number;
  out: string;
  name?: string;
  resume?: string;
  warmup?: number;
  lrFactor: number;
  labelSmoothing: number;
  logEvery?: number;
  evalEvery?: number;
  checkpointEvery?: number;
  heldOut: number;
  samples: number;
  beam: number;
  landscape: boolean;
  resolution: number;
  workers: number;
}

const HELD_OUT_SEED = 20240607;
const EVAL_BATCH = 64;

function timestamp(): string {
  const d = new Date();
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** Points `<out>/latest` at the run, atomically (a fresh link renamed over the old one).
 * Called once the run has its model.safetensors, so `latest` is always a usable run. */
function linkLatest(outDir: string, name: string): void {
  const temp = join(outDir, `.latest.${process.pid}.tmp`);
  rmSync(temp, { force: true });
  symlinkSync(name, temp, 'dir');
  renameSync(temp, join(outDir, 'latest'));
}

/** Config for a fresh run from the flags. */
function configFromFlags(flags: TrainFlags): { config: RunConfig; text: string | null } {
  if (flags.task !== undefined && flags.text !== undefined) throw new UsageError('give either --task or --text, not both');
  if (!(flags.preset in PRESETS)) throw new UsageError(`--preset must be one of ${Object.keys(PRESETS).join(', ')}, got '${flags.preset}'`);
  const preset = PRESETS[flags.preset as PresetName];
  const dModel = flags.dModel ?? preset.dModel;
  const nHeads = flags.heads ?? preset.nHeads;
  if (dModel % nHeads !== 0) throw new UsageError(`--d-model ${dModel} must be divisible by --heads ${nHeads}`);
  const layers = flags.layers ?? preset.layers;
  const dFF = flags.dFf ?? preset.dFF;
  const name = flags.name ?? `${flags.text !== undefined ? basename(flags.text).replace(/\.[^.]*$/, '') : flags.task ?? 'dates'}-${timestamp()}`;
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name === 'latest' || name.startsWith('.')) throw new UsageError(`--name must be letters, digits, '.', '_' or '-' (and not 'latest'), got '${name}'`);
  const steps = flags.steps ?? (flags.text !== undefined ? 2000 : flags.task === undefined || flags.task === 'dates' ? 1200 : 600);
  const logEvery = flags.logEvery ?? Math.max(1, Math.min(10, Math.floor(steps / 20)));
  const evalEvery = flags.evalEvery ?? Math.max(logEvery, Math.round(steps / 20 / logEvery) * logEvery);
  const checkpointEvery = flags.checkpointEvery ?? evalEvery;
  const trainSettings = {
    steps, batchSize: flags.batchSize, seed: flags.seed, backend: flags.backend as RunConfig['train']['backend'], threads: flags.threads ?? null,
    warmup: flags.warmup ?? Math.max(1, Math.min(400, Math.round(steps / 3))), lrFactor: flags.lrFactor, labelSmoothing: flags.labelSmoothing,
    clipNorm: 1, logEvery, evalEvery, checkpointEvery,
  };
  const common = { format: 'ferroformer-run' as const, version: 1 as const, name, preset: flags.preset, train: trainSettings };
  if (flags.text !== undefined) {
    const text = readTextFile(flags.text);
    const tok = tokenizers.CharTokenizer.train(text);
    if (text.length < 10 * (flags.context + 1)) throw new UsageError(`--text: the file has ${text.length} characters; it needs at least ${10 * (flags.context + 1)} for --context ${flags.context}`);
    const model: nn.DecoderLMConfig = { vocab: tok.vocabSize, dModel, nHeads, numLayers: layers, dFF, dropout: flags.dropout, maxLen: flags.context, padId: null };
    return { config: { ...common, kind: 'lm', task: null, text: resolve(flags.text), context: flags.context, maxSrcLen: null, maxTgtLen: null, heldOutSeed: null, model }, text };
  }
  const taskName = (flags.task ?? 'dates') as TaskName;
  if (!TASK_NAMES.includes(taskName)) throw new UsageError(`--task must be one of ${TASK_NAMES.join(', ')}, got '${flags.task}'`);
  const task = makeTask(taskName);
  const vocab = taskTokenizer(task).vocabSize;
  const model: nn.TransformerConfig = {
    srcVocab: vocab, tgtVocab: vocab, dModel, nHeads, numEncoderLayers: layers, numDecoderLayers: layers, dFF, dropout: flags.dropout, padId: 0,
    maxLen: Math.max(task.maxSrcLen, task.maxTgtLen + 2),
    // Written out (PyTorch's nn.Transformer layout), so the run keeps loading if a default changes.
    finalNorm: true,
  };
  return {
    config: { ...common, kind: 'seq2seq', task: taskName, text: null, context: null, maxSrcLen: task.maxSrcLen, maxTgtLen: task.maxTgtLen, heldOutSeed: HELD_OUT_SEED, model },
    text: null,
  };
}

/** Rows padded with 0 to a common length (generation takes one tensor per call). */
function padded(rows: number[][]): number[][] {
  const t = Math.max(...rows.map((r) => r.length));
  return rows.map((r) => [...r, ...new Array<number>(t - r.length).fill(0)]);
}

function strip(tok: tokenizers.Tokenizer, ids: number[]): string {
  return tok.decode(ids.filter((id) => id !== tok.eosId));
}

export interface ExactMatch {
  /** Greedy exact match over all `count` examples. */
  greedy: number;
  count: number;
  /** Greedy and beam-search exact match over the first `beamCount` examples (the same ones),
   * null when beam search is off. */
  greedyOnBeamSet: number | null;
  beam: number | null;
  beamCount: number;
}

/** Greedy exact match over the held-out examples (chunks of 100); beam search over the first
 * `beamCount`, with greedy's score on those same examples beside it. */
export function exactMatch(model: nn.Transformer, tok: tokenizers.Tokenizer, examples: Example[], maxTokens: number, beamSize: number, beamCount: number): ExactMatch {
  model.eval();
  let greedyHits = 0;
  let greedyHitsOnBeamSet = 0;
  for (let i = 0; i < examples.length; i += 100) {
    const chunk = examples.slice(i, i + 100);
    const out = generate.greedy(model, padded(chunk.map((e) => tok.encode(e.src))), { maxTokens, bosId: tok.bosId, eosId: tok.eosId });
    out.forEach((h, j) => {
      if (strip(tok, h.tokens) !== chunk[j]!.tgt) return;
      greedyHits++;
      if (i + j < beamCount) greedyHitsOnBeamSet++;
    });
  }
  let beamHits = 0;
  const beamSet = examples.slice(0, beamCount);
  if (beamSize > 1 && beamSet.length > 0) {
    for (let i = 0; i < beamSet.length; i += 50) {
      const chunk = beamSet.slice(i, i + 50);
      const out = generate.beamSearch(model, padded(chunk.map((e) => tok.encode(e.src))), { maxTokens, bosId: tok.bosId, eosId: tok.eosId, beamSize, lengthPenalty: 0.6 });
      out.forEach((h, j) => {
        if (strip(tok, h.tokens) === chunk[j]!.tgt) beamHits++;
      });
    }
  }
  const beamOn = beamSize > 1 && beamSet.length > 0;
  return {
    greedy: greedyHits / examples.length, count: examples.length,
    greedyOnBeamSet: beamOn ? greedyHitsOnBeamSet / beamSet.length : null, beam: beamOn ? beamHits / beamSet.length : null, beamCount: beamSet.length,
  };
}

const percent = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** "greedy 97.8% of 500; on the first 100 of them: greedy 95.0%, beam search (4 beams) 95.0%":
 * the two decoders compared on the same examples. */
export function exactMatchLine(em: ExactMatch, beamSize: number): string {
  const all = `greedy ${percent(em.greedy)} of ${em.count}`;
  if (em.beam === null || em.greedyOnBeamSet === null) return all;
  const beam = `beam search (${beamSize} beams) ${percent(em.beam)}`;
  return em.beamCount === em.count ? `${all}, ${beam} on the same examples` : `${all}; on the first ${em.beamCount} of them: greedy ${percent(em.greedyOnBeamSet)}, ${beam}`;
}

export function seq2seqSamples(model: nn.Transformer, tok: tokenizers.Tokenizer, examples: Example[], maxTokens: number, beamSize: number): Sample[] {
  if (examples.length === 0) return [];
  const src = padded(examples.map((e) => tok.encode(e.src)));
  const greedy = generate.greedy(model, src, { maxTokens, bosId: tok.bosId, eosId: tok.eosId });
  const beam = beamSize > 1 ? generate.beamSearch(model, src, { maxTokens, bosId: tok.bosId, eosId: tok.eosId, beamSize, lengthPenalty: 0.6 }) : null;
  return examples.map((e, i) => ({ input: e.src, reference: e.tgt, greedy: strip(tok, greedy[i]!.tokens), beam: beam ? strip(tok, beam[i]!.tokens) : undefined }));
}

/** How a language-model run's samples are drawn (the report's column heading says so). */
const LM_SAMPLING = { temperature: 0.8, topK: 10 } as const;

export function lmSamples(model: nn.DecoderLM, tok: tokenizers.Tokenizer, prompts: string[], maxTokens: number, seed: number): Sample[] {
  return prompts.map((prompt, i) => {
    const ids = [tok.encode(prompt)];
    const greedy = generate.greedy(model, ids, { maxTokens, eosId: null });
    const sampled = generate.sample(model, ids, { maxTokens, eosId: null, temperature: LM_SAMPLING.temperature, topK: LM_SAMPLING.topK, seed: seed + i });
    return { input: prompt, greedy: tok.decode(greedy[0]!.tokens), sampled: tok.decode(sampled[0]!.tokens) };
  });
}

interface Data {
  tok: tokenizers.Tokenizer;
  /** Draws one training batch. */
  batch(rng: nn.Rng, size: number): train.Seq2SeqBatch | train.LMBatch;
  evalBatch: EvalBatchJSON;
  task: Seq2SeqTask | null;
  heldOut: Example[];
  /** LM: held-out text to take prompts from. */
  prompts: string[];
}

function buildData(config: RunConfig, text: string | null, heldOutCount: number, backend: Backend): Data {
  if (config.kind === 'lm') {
    const source = text ?? readTextFile(config.text!);
    const tok = tokenizers.CharTokenizer.train(source);
    const ids = tok.encode(source);
    const split = Math.floor(ids.length * 0.9);
    const ctx = config.context!;
    const trainIds = ids.slice(0, split);
    const valIds = ids.slice(split);
    if (valIds.length < ctx + 2 || trainIds.length < ctx + 2) throw new UsageError(`--text: too short for --context ${ctx} (needs ${ctx + 2} characters in each of the 90% / 10% splits)`);
    const windows = Math.min(32, valIds.length - ctx - 1);
    const rows = Array.from({ length: windows }, (_, i) => valIds.slice(Math.floor((i * (valIds.length - ctx - 1)) / windows), Math.floor((i * (valIds.length - ctx - 1)) / windows) + ctx + 1));
    const prompts = [0, 1, 2].map((i) => tok.decode(rows[Math.floor((i * rows.length) / 3)]!.slice(0, Math.min(16, Math.floor(ctx / 2)))));
    return {
      tok, evalBatch: { rows }, task: null, heldOut: [], prompts,
      batch(rng, size) {
        const batchRows = Array.from({ length: size }, () => {
          const start = Math.floor(rng.next() * (trainIds.length - ctx - 1));
          return trainIds.slice(start, start + ctx + 1);
        });
        return train.lmBatch(batchRows, { backend });
      },
    };
  }
  const task = makeTask(config.task as TaskName);
  const tok = taskTokenizer(task);
  const held = heldOut(task, heldOutCount, config.heldOutSeed!);
  const evalSet = held.examples.slice(0, EVAL_BATCH);
  return {
    tok, task, heldOut: held.examples, prompts: [],
    evalBatch: { src: evalSet.map((e) => tok.encode(e.src)), tgt: evalSet.map((e) => tok.encode(e.tgt, { addBos: true, addEos: true })) },
    batch(rng, size) {
      const src: number[][] = [];
      const tgt: number[][] = [];
      while (src.length < size) {
        const e = task.sample(rng);
        if (held.has(e.src)) continue;
        src.push(tok.encode(e.src));
        tgt.push(tok.encode(e.tgt, { addBos: true, addEos: true }));
      }
      return train.seq2seqBatch(src, tgt, { padId: 0, backend });
    },
  };
}

export async function trainCommand(flags: TrainFlags): Promise<void> {
  let config: RunConfig;
  let text: string | null = null;
  let runDir: string;
  let resumeFrom: string | null = null;
  if (flags.resume !== undefined) {
    if (!existsSync(flags.resume)) throw new UsageError(`--resume: no such checkpoint '${flags.resume}'`);
    runDir = dirname(resolve(flags.resume));
    if (!existsSync(join(runDir, 'config.json'))) throw new UsageError(`--resume: ${flags.resume} is not inside a run folder (no config.json beside it)`);
    config = readConfig(runDir);
    if (flags.steps !== undefined) config.train.steps = flags.steps;
    resumeFrom = resolve(flags.resume);
  } else {
    ({ config, text } = configFromFlags(flags));
    const out = resolve(flags.out);
    runDir = join(out, config.name);
    if (existsSync(runDir)) throw new UsageError(`run folder ${runDir} exists already; pick another --name, or --resume ${join(runDir, 'checkpoint.safetensors')}`);
    mkdirSync(join(runDir, 'checkpoints'), { recursive: true });
  }
  const t = config.train;
  const backend = await init({ backend: t.backend, ...(t.threads !== null ? { threads: t.threads } : {}) });
  config.backendUsed = backend.name;
  config.threadsUsed = backend.getThreads();
  const data = buildData(config, text, flags.heldOut, backend);
  const model = buildModel(config);
  const dModel = (config.model as { dModel: number }).dModel;
  const optimizer = new optim.Adam(model.parameters(), { betas: [0.9, 0.98], eps: 1e-9 });
  const trainer = new train.Trainer<train.Seq2SeqBatch | train.LMBatch>({
    model, optimizer, schedule: optim.noam(dModel, t.warmup, t.lrFactor), clipNorm: t.clipNorm,
    loss: (config.kind === 'seq2seq' ? train.seq2seqLoss({ padId: 0, labelSmoothing: t.labelSmoothing }) : train.lmLoss({ labelSmoothing: t.labelSmoothing })) as (m: nn.Module, b: train.Seq2SeqBatch | train.LMBatch) => ReturnType<ReturnType<typeof train.lmLoss>>,
    tokens: (b) => b.tokens,
  });
  const dataRng = new nn.Rng(t.seed * 7919 + 17);
  let elapsedBefore = 0;
  const metricsPath = join(runDir, 'metrics.jsonl');
  if (resumeFrom !== null) {
    const { step, extra } = await train.loadCheckpoint(resumeFrom, { model, optimizer });
    // Checked before anything in the folder is rewritten.
    if (step >= t.steps) {
      const asked = flags.steps !== undefined ? `--steps ${flags.steps} is ${flags.steps < step ? 'below' : 'at'} the checkpoint's step ${step}` : `the checkpoint is already at the run's last step ${step}`;
      throw new UsageError(`${asked}; give --steps above ${step} to train further (nothing was changed)`);
    }
    trainer.step = step;
    if (typeof extra['dataRng'] === 'number') dataRng.seed = extra['dataRng'];
    if (typeof extra['elapsed'] === 'number') elapsedBefore = extra['elapsed'];
    if (existsSync(metricsPath)) {
      const kept = readFileSync(metricsPath, 'utf8').split('\n').filter((l) => l.trim() !== '' && (JSON.parse(l) as { step: number }).step <= step);
      writeFileSync(metricsPath, kept.map((l) => l + '\n').join(''));
    }
  } else {
    writeFileSync(join(runDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    writeFileSync(join(runDir, 'tokenizer.json'), JSON.stringify(data.tok.toJSON()) + '\n');
    writeFileSync(join(runDir, 'eval_batch.json'), JSON.stringify(data.evalBatch) + '\n');
    writeFileSync(metricsPath, '');
    await train.writeFileAtomic(join(runDir, 'checkpoints', 'step-0.safetensors'), train.modelToSafetensors(model));
  }
  writeFileSync(join(runDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');

  const what = config.kind === 'seq2seq' ? `${config.task} task (encoder-decoder)` : `character-level LM on ${basename(config.text!)}`;
  console.log(`ferroformer train: ${what}, ${model.numParameters().toLocaleString('en-US')} parameters, ${t.steps} steps of ${t.batchSize}, ${backend.name} backend (${backend.getThreads()} thread(s))`);
  console.log(`run folder: ${runDir}`);

  const started = performance.now();
  const elapsed = (): number => elapsedBefore + (performance.now() - started) / 1000;
  const progress = createProgress({ label: 'train', total: t.steps, start: trainer.step, every: Math.max(t.logEvery, Math.round(t.steps / 20 / t.logEvery) * t.logEvery) });
  const saveCheckpoints = async (step: number): Promise<void> => {
    await train.writeFileAtomic(join(runDir, 'checkpoints', `step-${step}.safetensors`), train.modelToSafetensors(model));
    await train.saveCheckpoint(join(runDir, 'checkpoint.safetensors'), { model, optimizer, step, extra: { dataRng: dataRng.seed, elapsed: elapsed() } });
  };
  let windowLoss = 0;
  let windowSteps = 0;
  let windowTokens = 0;
  let windowStart = performance.now();
  let lastLoss = NaN;
  let lastVal = NaN;
  let tpsAverage: number | null = null;
  const interruption = new Interruption();
  try {
    while (trainer.step < t.steps && interruption.signal === null) {
      const batch = data.batch(dataRng, t.batchSize);
      const m = trainer.trainStep(batch);
      dispose(batch);
      windowLoss += m.loss;
      windowSteps++;
      windowTokens += m.tokens;
      const step = m.step;
      const last = step === t.steps;
      if (step % t.logEvery === 0 || last) {
        const seconds = (performance.now() - windowStart) / 1000;
        const record: Record<string, number> = {
          step, loss: windowLoss / windowSteps, lr: m.lr, gradNorm: m.gradNorm, tokens: windowTokens,
          tokensPerSecond: seconds > 0 ? windowTokens / seconds : 0, elapsed: Number(elapsed().toFixed(3)),
        };
        if (step % t.evalEvery === 0 || last) {
          lastVal = evalLoss(model as AnyModel, data.evalBatch);
          record['valLoss'] = lastVal;
        }
        appendFileSync(metricsPath, JSON.stringify(record) + '\n');
        lastLoss = record['loss']!;
        // The bar shows a moving average of tokens/s (single windows jitter with the machine's load).
        tpsAverage = tpsAverage === null ? record['tokensPerSecond']! : 0.8 * tpsAverage + 0.2 * record['tokensPerSecond']!;
        progress.update(step, { loss: lastLoss, lr: m.lr, tokensPerSecond: tpsAverage });
        windowLoss = 0;
        windowSteps = 0;
        windowTokens = 0;
        windowStart = performance.now();
      }
      if (step % t.checkpointEvery === 0 || last) await saveCheckpoints(step);
      // Lets a Ctrl-C or SIGTERM reach its handler between steps.
      await new Promise<void>((resolveStep) => setImmediate(resolveStep));
    }
    progress.stop();
    if (interruption.signal !== null && trainer.step < t.steps) {
      await train.saveCheckpoint(join(runDir, 'checkpoint.safetensors'), { model, optimizer, step: trainer.step, extra: { dataRng: dataRng.seed, elapsed: elapsed() } });
      model.dispose();
      console.error(`interrupted at step ${trainer.step}; resume with: ferroformer train --resume ${shellPath(join(runDir, 'checkpoint.safetensors'))}`);
      process.exitCode = interruption.exitCode();
      return;
    }
    const trainSeconds = elapsed();
    model.eval();
    await train.writeFileAtomic(join(runDir, 'model.safetensors'), train.modelToSafetensors(model, { format: 'pt' }));
    linkLatest(dirname(runDir), basename(runDir));
    // From here on the run is usable; a signal stops the pictures at once.
    interruption.exitNow(() => `interrupted after training: ${shellPath(join(runDir, 'model.safetensors'))} is saved, some pictures may be missing (ferroformer landscape ${shellPath(runDir)} redraws the landscape and the report)`);
    console.log(`trained ${t.steps} steps in ${duration(trainSeconds)}; final train loss ${lastLoss.toFixed(4)}, held-out cross-entropy ${lastVal.toFixed(4)}`);

    // Evaluation and samples.
    const facts: [string, string][] = [
      ['model', `${config.kind === 'seq2seq' ? 'encoder-decoder Transformer' : 'decoder-only Transformer'}, ${model.numParameters().toLocaleString('en-US')} parameters (d_model ${dModel})`],
      ['data', what],
      ['training', `${t.steps} steps x ${t.batchSize} examples, Adam (0.9, 0.98, 1e-9), Noam warmup ${t.warmup}, label smoothing ${t.labelSmoothing}`],
      ['backend', `${backend.name}, ${backend.getThreads()} thread(s)`],
      ['training time', duration(trainSeconds)],
      ['final held-out cross-entropy', `${lastVal.toFixed(4)} nats/token`],
    ];
    let samples: Sample[];
    let attentionSrc: number[];
    let attentionTgt: number[] = [];
    if (model instanceof nn.Transformer) {
      const maxTokens = config.maxTgtLen! + 1;
      const em = exactMatch(model, data.tok, data.heldOut, maxTokens, flags.beam, Math.min(100, data.heldOut.length));
      const emLine = `held-out exact match: ${exactMatchLine(em, flags.beam)}`;
      facts.push(['held-out exact match', exactMatchLine(em, flags.beam)]);
      samples = seq2seqSamples(model, data.tok, data.heldOut.slice(0, flags.samples), maxTokens, flags.beam);
      console.log(emLine);
      for (const s of samples) console.log(`  input  ${JSON.stringify(s.input)}\n  greedy ${s.greedy}${s.greedy === s.reference ? '' : `   (expected ${s.reference})`}` + (s.beam !== undefined ? `\n  beam   ${s.beam}` : ''));
      const example = data.heldOut[0]!;
      attentionSrc = data.tok.encode(example.src);
      attentionTgt = [data.tok.bosId, ...data.tok.encode(samples[0]?.greedy ?? example.tgt)];
    } else {
      const longest = Math.max(...data.prompts.map((p) => data.tok.encode(p).length));
      samples = lmSamples(model as nn.DecoderLM, data.tok, data.prompts, Math.max(1, config.context! - longest), t.seed);
      for (const s of samples) console.log(`  prompt  ${JSON.stringify(s.input)}\n  greedy  ${JSON.stringify(s.greedy)}\n  sampled ${JSON.stringify(s.sampled)}`);
      attentionSrc = data.evalBatch.rows![0]!.slice(0, Math.min(32, config.context!));
    }

    // Pictures and report.
    const title = config.kind === 'seq2seq' ? `ferroformer: ${config.task} task` : `ferroformer: character LM on ${controlPictures(basename(config.text!))}`;
    await drawLoss(runDir, `${title}: loss and learning rate`, config.kind, t.labelSmoothing);
    // Token labels from the user's text become control pictures in attentionSpec (tokenLabel).
    const panels = attentionPanels(model as AnyModel, data.tok, attentionSrc, attentionTgt);
    await drawAttention(runDir, panels, `${title}: attention for ${JSON.stringify(controlPictures(data.tok.decode(attentionSrc)))}`);
    model.dispose();
    const shown = (s: string | undefined): string | undefined => (s === undefined ? undefined : controlPictures(s));
    const summary = {
      title: `${title} (${config.name})`,
      facts: facts.map(([k, v]): [string, string] => [k, controlPictures(v)]),
      samples: samples.map((x) => ({ ...x, input: controlPictures(x.input), reference: shown(x.reference), greedy: controlPictures(x.greedy), beam: shown(x.beam), sampled: shown(x.sampled) })),
      ...(config.kind === 'seq2seq' ? {} : { sampling: `temperature ${LM_SAMPLING.temperature}, top-k ${LM_SAMPLING.topK}` }),
    };
    await writeReport(runDir, summary);
    if (flags.landscape) {
      const began = performance.now();
      const workers = Math.max(1, flags.workers);
      let bar: Progress | null = null;
      await drawLandscape(runDir, {
        resolution: flags.resolution, workers, backend: backend.name,
        onProgress(done, total) {
          bar ??= createProgress({ label: 'landscape', total, training: false });
          bar.update(done);
        },
      }, `${title}: loss landscape`);
      (bar as Progress | null)?.stop();
      console.log(`loss landscape: ${flags.resolution}x${flags.resolution} grid per plane on ${workers} worker(s) in ${duration((performance.now() - began) / 1000)}`);
      await writeReport(runDir);
    }
    console.log(`wrote ${runDir}: config.json tokenizer.json model.safetensors metrics.jsonl loss.svg attention.svg${flags.landscape ? ' landscape.svg' : ''} report.html`);
  } finally {
    interruption.dispose();
  }
}
