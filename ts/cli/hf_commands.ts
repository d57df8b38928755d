// The command line for Hugging Face GPT-2 checkpoints:
//   ferroformer generate <hf-folder | owner/name> "prompt" ...   continue prompts
//   ferroformer train --init <hf-folder | owner/name> --text file.txt   fine-tune
// A fine-tuning run writes runs/<name>/ as a Hugging Face folder (config.json,
// model.safetensors, the tokenizer files) that transformers loads, plus metrics.jsonl,
// loss.svg and run.json; runs/latest points at it once it is complete, and `generate` takes it.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, appendFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { generate, init, models, type Backend } from '../index.js';
import { drawLoss } from '../tools/pictures.js';
import { controlPictures } from '../tools/plots.js';
import { UsageError } from './errors.js';
import { Interruption } from './interrupt.js';
import { createProgress, duration } from './progress.js';
import { readTextFile, shellPath } from './text.js';

type BackendFlag = 'auto' | 'native' | 'wasm' | 'reference';

const HUB_REPO = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** Generated text for a terminal: control characters other than tab and newline (a model
 * can emit ESC and start an escape sequence) shown as their control pictures (U+241B). */
function printable(s: string): string {
  return s.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, (ch) => controlPictures(ch));
}

/** The folder a source names when it is a Hugging Face GPT-2 folder (config.json with
 * model_type "gpt2"), checking `<arg>` then `runs/<arg>` as run arguments do. */
function hfFolder(arg: string): string | null {
  for (const dir of [arg, join('runs', arg)]) {
    const config = join(dir, 'config.json');
    if (!existsSync(config) || !statSync(dir).isDirectory()) continue;
    try {
      const json = JSON.parse(readFileSync(config, 'utf8')) as { model_type?: unknown };
      return json.model_type === 'gpt2' ? resolve(dir) : null;
    } catch {
      return null;
    }
  }
  return null;
}

/** Whether `generate`'s run argument is a Hugging Face checkpoint: a GPT-2 folder, or an
 * 'owner/name' that is no local folder (the Hub). */
export function isHfSource(arg: string): boolean {
  if (hfFolder(arg) !== null) return true;
  return HUB_REPO.test(arg) && !existsSync(arg) && !existsSync(join('runs', arg)) && !arg.startsWith('runs/');
}

async function load(source: string, backendFlag: BackendFlag): Promise<{ model: models.GPT2LMHeadModel; backend: Backend }> {
  const backend = await init({ backend: backendFlag });
  const model = await models.GPT2LMHeadModel.fromPretrained(hfFolder(source) ?? source, { backend });
  return { model, backend };
}

export interface HfGenerateFlags {
  backend: BackendFlag;
  beam: number;
  /** Whether --beam was given (its default belongs to seq2seq runs). */
  beamGiven: boolean;
  maxTokens?: number;
  temperature: number;
  topK?: number;
  seed: number;
}

/** Continues each prompt: sampling (--temperature, --top-k, --seed), greedy with
 * --temperature 0, beam search with --beam n > 1; stops at the checkpoint's EOS token. */
export async function hfGenerateCommand(source: string, prompts: string[], flags: HfGenerateFlags): Promise<void> {
  if (prompts.length === 0) throw new UsageError('give at least one prompt, e.g. ferroformer generate <hf-folder> "Once upon a time"');
  const { model } = await load(source, flags.backend);
  try {
    const tok = model.tokenizer();
    const eos = model.config.eos_token_id;
    for (const prompt of prompts) {
      let ids = tok.encode(prompt);
      // An empty prompt starts from BOS, as transformers' generate does.
      if (ids.length === 0 && model.config.bos_token_id !== null) ids = [model.config.bos_token_id];
      const room = model.config.n_positions - ids.length;
      if (ids.length === 0 || room < 1) throw new UsageError(`prompt of ${ids.length} tokens: it must have between 1 and ${model.config.n_positions - 1} (n_positions ${model.config.n_positions})`);
      const maxTokens = Math.min(flags.maxTokens ?? 50, room);
      const options = { maxTokens, eosId: eos };
      const [hyp] = flags.beamGiven && flags.beam > 1
        ? generate.beamSearch(model, [ids], { ...options, beamSize: flags.beam })
        : flags.temperature === 0
          ? generate.greedy(model, [ids], options)
          : generate.sample(model, [ids], { ...options, temperature: flags.temperature, topK: flags.topK, seed: flags.seed });
      const tokens = hyp!.tokens.filter((t) => t !== eos);
      console.log(printable(`${prompt}${tok.decode(tokens)}`));
      if (prompts.length > 1) console.log('');
    }
  } finally {
    model.dispose();
  }
}

export interface HfTrainFlags {
  init: string;
  text?: string;
  steps?: number;
  batchSize: number;
  batchSizeGiven: boolean;
  context: number;
  contextGiven: boolean;
  lr?: number;
  warmup?: number;
  backend: string;
  threads?: number;
  seed: number;
  out: string;
  name?: string;
  logEvery?: number;
  evalEvery?: number;
  /** train's flags that have no meaning with --init (refused). */
  task?: string;
  resume?: string;
}

function timestamp(): string {
  const d = new Date();
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** Fine-tunes a GPT-2 checkpoint on a text file and writes the run folder. */
export async function hfTrainCommand(flags: HfTrainFlags): Promise<void> {
  if (flags.task !== undefined || flags.resume !== undefined) throw new UsageError(`--init fine-tunes a checkpoint on --text; it does not take ${flags.task !== undefined ? '--task' : '--resume'}`);
  if (flags.text === undefined) throw new UsageError('--init needs --text <file>: the text to fine-tune on');
  const text = readTextFile(flags.text);
  const name = flags.name ?? `${basename(flags.init).replace(/[^A-Za-z0-9._-]/g, '_')}-ft-${timestamp()}`;
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name === 'latest' || name.startsWith('.')) throw new UsageError(`--name must be letters, digits, '.', '_' or '-' (and not 'latest'), got '${name}'`);
  const runDir = resolve(flags.out, name);
  if (existsSync(runDir) && readdirSync(runDir).length > 0) throw new UsageError(`run folder ${runDir} already exists; choose another --name`);
  const source = hfFolder(flags.init) ?? flags.init;
  if (hfFolder(flags.init) === null && !HUB_REPO.test(flags.init)) throw new UsageError(`--init: '${flags.init}' is neither a Hugging Face GPT-2 folder (config.json with model_type "gpt2") nor a Hub name 'owner/name'`);

  const backend = await init({ backend: flags.backend as BackendFlag, ...(flags.threads !== undefined ? { threads: flags.threads } : {}) });
  const model = await models.GPT2LMHeadModel.fromPretrained(source, { backend });
  const ids = Int32Array.from(model.tokenizer().encode(text));
  const steps = flags.steps ?? 200;
  const context = flags.contextGiven ? flags.context : Math.min(64, model.config.n_positions);
  if (context > model.config.n_positions) throw new UsageError(`--context ${context} exceeds the model's n_positions ${model.config.n_positions}`);
  const batchSize = flags.batchSizeGiven ? flags.batchSize : 8;
  if (ids.length < 2 * (context + 1)) throw new UsageError(`--text: the file has ${ids.length} tokens; fine-tuning with --context ${context} needs at least ${2 * (context + 1)}`);
  const logEvery = flags.logEvery ?? Math.max(1, Math.min(10, Math.floor(steps / 20)));
  const evalEvery = flags.evalEvery ?? Math.max(logEvery, Math.round(steps / 10 / logEvery) * logEvery);
  const lr = flags.lr ?? 5e-4;

  mkdirSync(runDir, { recursive: true });
  const metricsPath = join(runDir, 'metrics.jsonl');
  writeFileSync(metricsPath, '');
  const settings = { steps, batchSize, context, lr, warmup: flags.warmup ?? Math.max(1, Math.floor(steps / 10)), seed: flags.seed, logEvery, evalEvery };
  console.log(`fine-tuning ${flags.init} (${(model.numParameters() / 1e6).toFixed(2)}M parameters) on ${flags.text} (${ids.length} tokens) with ${backend.name}: ${steps} steps of ${batchSize} x ${context} tokens, AdamW lr ${lr}`);

  const run = new models.FineTuning(model, ids, { ...settings, heldOut: 0.1 });
  const interruption = new Interruption();
  const progress = createProgress({ label: 'fine-tune', total: steps });
  const started = performance.now();
  let before = NaN;
  let after = NaN;
  let stoppedAt: number | null = null;
  try {
    before = run.evaluate();
    appendFileSync(metricsPath, `${JSON.stringify({ step: 0, loss: before, lr: 0, valLoss: before })}\n`);
    for (let step = 1; step <= steps; step++) {
      const m = run.step();
      progress.update(step, { loss: m.loss, lr: m.lr, tokensPerSecond: m.tokensPerSecond });
      const evaluate = step % evalEvery === 0 || step === steps;
      if (step % logEvery === 0 || evaluate) {
        const record: Record<string, number> = { step, loss: m.loss, lr: m.lr, gradNorm: m.gradNorm, tokensPerSecond: m.tokensPerSecond };
        if (evaluate) record['valLoss'] = run.evaluate();
        if (step === steps) after = record['valLoss']!;
        appendFileSync(metricsPath, `${JSON.stringify(record)}\n`);
      }
      // Let a Ctrl-C reach its handler between steps.
      await new Promise((r) => setImmediate(r));
      if (interruption.signal !== null) {
        stoppedAt = step;
        break;
      }
    }
  } finally {
    progress.stop();
    run.dispose();
  }
  // Interrupted or not, the weights so far are a complete Hugging Face folder.
  await model.savePretrained(runDir);
  const summary = { format: 'ferroformer-hf-finetune', version: 1, init: flags.init, text: resolve(flags.text), ...settings, stoppedAt, heldOutBefore: before, heldOutAfter: after };
  writeFileSync(join(runDir, 'run.json'), `${JSON.stringify(summary, null, 2)}\n`);
  if (stoppedAt !== null) {
    interruption.dispose();
    model.dispose();
    console.error(`interrupted at step ${stoppedAt}; the weights so far are in ${shellPath(runDir)} (a Hugging Face folder; runs/latest not moved)`);
    process.exitCode = interruption.exitCode();
    return;
  }
  interruption.dispose();
  await drawLoss(runDir, `fine-tuning ${basename(flags.init)} on ${basename(flags.text)}`, 'lm', 0);
  // runs/latest moves only to a complete run.
  const temp = join(resolve(flags.out), `.latest.${process.pid}.tmp`);
  rmSync(temp, { force: true });
  symlinkSync(name, temp, 'dir');
  renameSync(temp, join(resolve(flags.out), 'latest'));
  const seconds = (performance.now() - started) / 1000;
  console.log(`held-out cross-entropy ${before.toFixed(4)} -> ${after.toFixed(4)} nats/token in ${duration(seconds)}`);
  const tok = model.tokenizer();
  const promptIds = Array.from(ids.subarray(0, Math.min(8, ids.length)));
  const [sample] = generate.sample(model, [promptIds], { maxTokens: Math.min(40, model.config.n_positions - promptIds.length), temperature: 0.8, topK: 40, seed: flags.seed, eosId: model.config.eos_token_id });
  console.log(`sample: ${printable(JSON.stringify(tok.decode([...promptIds, ...sample!.tokens])))}`);
  console.log(`wrote ${runDir}: config.json model.safetensors ${[...model.sideFiles.keys()].join(' ')} metrics.jsonl loss.svg run.json`);
  console.log(`continue text with: ferroformer generate ${shellPath(runDir)} "<prompt>"`);
  model.dispose();
}
