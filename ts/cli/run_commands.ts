// The commands that work on a finished run folder: eval, generate, landscape; and bench.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate, init, nn } from '../index.js';
import { drawLandscape, writeReport } from '../tools/pictures.js';
import { evalLoss, loadRun, readConfig } from '../tools/run.js';
import { UsageError } from './errors.js';
import { createProgress, duration, type Progress } from './progress.js';
import { heldOut, makeTask, type TaskName } from './tasks.js';
import { exactMatch } from './train_command.js';

type BackendFlag = 'auto' | 'native' | 'wasm' | 'reference';

/** A run folder from an argument: a path, or a name under runs/ (default runs/latest). */
export function resolveRun(arg: string | undefined): string {
  const candidates = arg === undefined ? ['runs/latest'] : [arg, join('runs', arg)];
  for (const c of candidates) if (existsSync(join(c, 'config.json'))) return resolve(c);
  throw new UsageError(arg === undefined ? 'no run given and runs/latest does not exist; train one first (ferroformer train)' : `'${arg}' is not a run folder (no config.json in it or in runs/${arg})`);
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
    console.log(`exact match: greedy ${(em.greedy * 100).toFixed(1)}% of ${em.count}` + (em.beam !== null ? `, beam search (${flags.beam} beams) ${(em.beam * 100).toFixed(1)}% of ${em.beamCount}` : ''));
  }
  run.model.dispose();
}

export async function generateCommand(runArg: string | undefined, inputs: string[], flags: { backend: BackendFlag; beam: number; maxTokens?: number; temperature: number; topK?: number; seed: number }): Promise<void> {
  const dir = resolveRun(runArg);
  if (inputs.length === 0) throw new UsageError('give at least one input (for example: ferroformer generate runs/latest "March 5, 2021")');
  await init({ backend: flags.backend });
  const run = loadRun(dir);
  const tok = run.tokenizer;
  if (run.model instanceof nn.Transformer) {
    const maxTokens = flags.maxTokens ?? (run.config.maxTgtLen ?? 32) + 1;
    const maxLen = run.model.config.maxLen;
    for (const input of inputs) {
      const src = tok.encode(input);
      if (src.length === 0 || src.length > maxLen) throw new UsageError(`input ${JSON.stringify(input)} has ${src.length} characters; this model takes 1 to ${maxLen}`);
      const greedy = generate.greedy(run.model, [src], { maxTokens, bosId: tok.bosId, eosId: tok.eosId })[0]!;
      console.log(`input  ${JSON.stringify(input)}\ngreedy ${tok.decode(greedy.tokens)}`);
      if (flags.beam > 1) {
        const beam = generate.beamSearch(run.model, [src], { maxTokens, bosId: tok.bosId, eosId: tok.eosId, beamSize: flags.beam, lengthPenalty: 0.6 })[0]!;
        console.log(`beam   ${tok.decode(beam.tokens)}   (${flags.beam} beams, log-probability ${beam.logProb.toFixed(3)})`);
      }
    }
  } else {
    const lm = run.model as nn.DecoderLM;
    const maxTokens = flags.maxTokens ?? 100;
    for (const input of inputs) {
      const ids = tok.encode(input);
      if (ids.length === 0 || ids.length + maxTokens > lm.config.maxLen) throw new UsageError(`prompt length ${ids.length} + --max-tokens ${maxTokens} must be between 1 and the context ${lm.config.maxLen}`);
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
  let bar: Progress | null = null;
  const title = config.kind === 'seq2seq' ? `ferroformer: ${config.task} task: loss landscape` : `ferroformer: character LM on ${basename(config.text ?? '')}: loss landscape`;
  const landscape = await drawLandscape(dir, {
    resolution: flags.resolution, workers: flags.workers, backend: backend.name, seed: flags.seed,
    onProgress(done, total) {
      bar ??= createProgress({ label: 'landscape', total, training: false });
      bar.update(done);
    },
  }, title);
  (bar as Progress | null)?.stop();
  await writeReport(dir);
  const planes = landscape.planes.map((p) => p.kind).join(' and ');
  console.log(`loss landscape of ${basename(dir)}: ${planes} planes, ${flags.resolution}x${flags.resolution} each, ${flags.workers} worker(s), ${duration((performance.now() - began) / 1000)}; loss at the trained weights ${landscape.centerLoss.toFixed(4)}`);
  console.log(`wrote ${join(dir, 'landscape.svg')}, landscape.json and report.html`);
}

/** Runs the repository's benchmarks (`npm run bench`) when this checkout has them. */
export function benchCommand(args: string[]): number {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  let scripts: Record<string, string> = {};
  try {
    scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }).scripts ?? {};
  } catch {
    // not in a checkout
  }
  if (scripts['bench'] === undefined || !existsSync(join(root, 'bench'))) {
    console.error('ferroformer bench: benchmarks are not available yet in this installation (no bench/ suite and no `npm run bench` script)');
    return 1;
  }
  const r = spawnSync('npm', ['run', 'bench', ...(args.length > 0 ? ['--', ...args] : [])], { cwd: root, stdio: 'inherit' });
  return r.status ?? 1;
}
