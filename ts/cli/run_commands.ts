// The commands that work on a finished run folder: eval, generate, landscape; and bench.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate, init, io, nn } from '../index.js';
import { drawLandscape, writeReport } from '../tools/pictures.js';
import { controlPictures } from '../tools/plots.js';
import { evalLoss, loadRun, readConfig } from '../tools/run.js';
import { UsageError } from './errors.js';
import { isHfSource } from './hf_commands.js';
import { Interruption } from './interrupt.js';
import { createProgress, duration, type Progress } from './progress.js';
import { heldOut, makeTask, type TaskName } from './tasks.js';
import { shellPath, unknownCharacters, unknownCharactersWarning } from './text.js';
import { exactMatch, exactMatchLine } from './train_command.js';

type BackendFlag = 'auto' | 'native' | 'wasm' | 'reference';

const isFolder = (path: string): boolean => existsSync(path) && statSync(path).isDirectory();

/** The folder a run argument names: a path to a folder; or, for a bare name (no '/'), that
 * folder in the current one or else under runs/; runs/latest when there is no argument.
 * Throws a UsageError unless it is a finished run (config.json and model.safetensors). */
export function resolveRun(arg: string | undefined): string {
  let folder: string | undefined;
  if (arg === undefined) {
    if (!isFolder(join('runs', 'latest'))) throw new UsageError('no run given and runs/latest does not exist (it points at the last finished run); train one (ferroformer train) or finish an interrupted one (ferroformer train --resume runs/<name>/checkpoint.safetensors)');
    folder = join('runs', 'latest');
  } else {
    const bareName = !/[\\/]/.test(arg) && arg !== '.' && arg !== '..';
    folder = [arg, ...(bareName ? [join('runs', arg)] : [])].find(isFolder);
    if (folder === undefined) throw new UsageError(`no run folder '${arg}'${bareName ? ` (nor ${join('runs', arg)})` : ''}; a run is a folder written by ferroformer train, or its name under runs/`);
  }
  const dir = realpathSync(folder);
  if (!existsSync(join(dir, 'config.json'))) throw new UsageError(`'${arg ?? folder}' is not a run folder (no config.json in it)`);
  // `train --init` writes a Hugging Face folder, and runs/latest may point at it.
  if (isHfSource(dir)) {
    throw new UsageError(`'${arg ?? folder}' is a Hugging Face GPT-2 folder (as ferroformer train --init writes), not a run of ferroformer train --task or --text; eval and landscape take those. Continue its text with: ferroformer generate ${shellPath(dir)} "<prompt>"`);
  }
  if (!existsSync(join(dir, 'model.safetensors'))) throw new UsageError(incompleteRun(dir));
  return dir;
}

/** Why a run folder has no model yet, and the command that finishes it. */
function incompleteRun(dir: string): string {
  const config = readConfig(dir);
  const checkpoint = join(dir, 'checkpoint.safetensors');
  if (!existsSync(checkpoint)) return `run ${basename(dir)} is incomplete: training stopped before its first checkpoint and it has no model.safetensors; train it again`;
  let step = '?';
  try {
    step = io.readSafetensors(new Uint8Array(readFileSync(checkpoint))).metadata['step'] ?? '?';
  } catch {
    // an unreadable checkpoint is reported by train --resume itself
  }
  return `run ${basename(dir)} is incomplete: training stopped at step ${step} of ${config.train.steps} and it has no model.safetensors yet; resume it with: ferroformer train --resume ${shellPath(checkpoint)}`;
}

export async function evalCommand(runArg: string | undefined, flags: { backend: BackendFlag; examples: number; beam: number }): Promise<void> {
  const dir = resolveRun(runArg);
  const backend = await init({ backend: flags.backend });
  const run = loadRun(dir);
  const loss = evalLoss(run.model, run.evalBatch);
  console.log(`${basename(dir)} on ${backend.name}: held-out cross-entropy ${loss.toFixed(4)} nats/token (perplexity ${Math.exp(loss).toFixed(3)})`);
  if (run.model instanceof nn.Transformer && run.config.task !== null) {
    const task = makeTask(run.config.task as TaskName);
    const examples = heldOut(task, flags.examples, run.config.heldOutSeed!).examples;
    const em = exactMatch(run.model, run.tokenizer, examples, run.config.maxTgtLen! + 1, flags.beam, Math.min(100, examples.length));
    console.log(`exact match: ${exactMatchLine(em, flags.beam)}`);
  }
  run.model.dispose();
}

export async function generateCommand(runArg: string, inputs: string[], flags: { backend: BackendFlag; beam: number; maxTokens?: number; temperature: number; topK?: number; seed: number }): Promise<void> {
  if (inputs.length === 0) {
    // `generate "March 5, 2021"`: the one argument is the run; say so rather than look it up.
    const isRun = [runArg, join('runs', runArg)].some((c) => existsSync(join(c, 'config.json')));
    throw new UsageError(isRun
      ? `give at least one input after the run (for example: ferroformer generate ${runArg} "March 5, 2021")`
      : `generate takes the run first, then the inputs: ferroformer generate runs/latest ${JSON.stringify(runArg)}`);
  }
  const dir = resolveRun(runArg);
  await init({ backend: flags.backend });
  const run = loadRun(dir);
  const tok = run.tokenizer;
  for (const input of inputs) {
    const unknown = unknownCharacters(tok, input);
    if (unknown.length > 0) console.error(unknownCharactersWarning(unknown, input));
  }
  if (run.model instanceof nn.Transformer) {
    const maxTokens = flags.maxTokens ?? (run.config.maxTgtLen ?? 32) + 1;
    const maxLen = run.model.config.maxLen;
    // copy and reverse train on one length only: another length decodes, but wrongly.
    const trainedLength = run.config.task !== null ? makeTask(run.config.task as TaskName).srcLength : undefined;
    for (const input of inputs) {
      const src = tok.encode(input);
      if (src.length === 0 || src.length > maxLen) throw new UsageError(`input ${JSON.stringify(input)} has ${src.length} characters; this model takes 1 to ${maxLen}`);
      if (trainedLength !== undefined && src.length !== trainedLength) {
        console.error(`warning: ${JSON.stringify(input)} has ${src.length} characters; the ${run.config.task} task trains on strings of exactly ${trainedLength}, so the model never learned this length`);
      }
      const greedy = generate.greedy(run.model, [src], { maxTokens, bosId: tok.bosId, eosId: tok.eosId })[0]!;
      console.log(`input  ${JSON.stringify(input)}\ngreedy ${tok.decode(greedy.tokens)}`);
      if (flags.beam > 1) {
        const beam = generate.beamSearch(run.model, [src], { maxTokens, bosId: tok.bosId, eosId: tok.eosId, beamSize: flags.beam, lengthPenalty: 0.6 })[0]!;
        console.log(`beam   ${tok.decode(beam.tokens)}   (${flags.beam} beams, log-probability ${beam.logProb.toFixed(3)})`);
      }
    }
  } else {
    const lm = run.model as nn.DecoderLM;
    const context = lm.config.maxLen;
    for (const input of inputs) {
      const ids = tok.encode(input);
      if (ids.length === 0 || ids.length >= context) throw new UsageError(`prompt ${JSON.stringify(input)} has ${ids.length} characters; this model's context is ${context}, so a prompt takes 1 to ${context - 1}`);
      // By default the continuation fills the context (at most 100 characters).
      const maxTokens = flags.maxTokens ?? Math.min(100, context - ids.length);
      if (ids.length + maxTokens > context) throw new UsageError(`prompt length ${ids.length} + --max-tokens ${maxTokens} is more than the context ${context}`);
      const out = flags.temperature > 0
        ? generate.sample(lm, [ids], { maxTokens, eosId: null, temperature: flags.temperature, ...(flags.topK !== undefined ? { topK: flags.topK } : {}), seed: flags.seed })[0]!
        : generate.greedy(lm, [ids], { maxTokens, eosId: null })[0]!;
      console.log(input + tok.decode(out.tokens));
    }
  }
  run.model.dispose();
}

export async function landscapeCommand(runArg: string | undefined, flags: { backend: BackendFlag; resolution: number; workers: number; seed: number }): Promise<void> {
  const dir = resolveRun(runArg);
  const config = readConfig(dir);
  const backend = await init({ backend: flags.backend });
  const began = performance.now();
  const interruption = new Interruption();
  interruption.exitNow(() => `interrupted: the loss landscape of ${basename(dir)} was not redrawn`);
  let bar: Progress | null = null;
  const title = config.kind === 'seq2seq' ? `ferroformer: ${config.task} task: loss landscape` : `ferroformer: character LM on ${controlPictures(basename(config.text ?? ''))}: loss landscape`;
  const landscape = await drawLandscape(dir, {
    resolution: flags.resolution, workers: flags.workers, backend: backend.name, seed: flags.seed,
    onProgress(done, total) {
      bar ??= createProgress({ label: 'landscape', total, training: false });
      bar.update(done);
    },
  }, title);
  (bar as Progress | null)?.stop();
  await writeReport(dir);
  interruption.dispose();
  const planes = landscape.planes.map((p) => p.kind).join(' and ');
  console.log(`loss landscape of ${basename(dir)}: ${planes} planes, ${flags.resolution}x${flags.resolution} each, ${flags.workers} worker(s), ${duration((performance.now() - began) / 1000)}; loss at the trained weights ${landscape.centerLoss.toFixed(4)}`);
  console.log(`wrote ${join(dir, 'landscape.svg')}, landscape.json and report.html`);
}

/** The package root: dist/cli/main.js -> the folder above dist/. */
const packageRoot = (): string => resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Whether this is a repository checkout with the benchmarks (bench/run.mjs and the
 * `npm run bench` script); an installed package has neither. */
export function benchAvailable(root = packageRoot()): boolean {
  try {
    const scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }).scripts ?? {};
    return scripts['bench'] !== undefined && existsSync(join(root, 'bench', 'run.mjs'));
  } catch {
    return false;
  }
}

/** Runs the repository's benchmarks (`npm run bench`, which installs their peers on first use). */
export function benchCommand(args: string[]): number {
  const root = packageRoot();
  if (!benchAvailable(root)) {
    console.error('error: ferroformer bench runs the benchmarks of a repository checkout (its bench/ folder, npm run bench); an installed package does not include them');
    return 2;
  }
  const r = spawnSync('npm', ['run', 'bench', ...(args.length > 0 ? ['--', ...args] : [])], { cwd: root, stdio: 'inherit' });
  return r.status ?? 1;
}
