#!/usr/bin/env node
// The `ferroformer` command: train, generate, eval, landscape, bench. Flags are parsed by
// commander; a bad flag or value prints one line and exits with code 2 (a runtime failure
// exits with 1), with a stack trace only when FERRO_DEBUG is set.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { UsageError } from './errors.js';
import { hfGenerateCommand, hfTrainCommand, isHfSource } from './hf_commands.js';
import { benchAvailable, benchCommand, evalCommand, generateCommand, landscapeCommand } from './run_commands.js';
import { PRESETS, trainCommand, type TrainFlags } from './train_command.js';
import { TASK_NAMES } from './tasks.js';

const BACKENDS = ['auto', 'native', 'wasm', 'reference'];

function int(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}, got '${value}'`);
    return n;
  };
}

function num(min: number, max = Infinity, { exclusiveMin = false } = {}) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || (exclusiveMin && n === min) || n > max) {
      throw new InvalidArgumentError(`expected a number ${exclusiveMin ? '>' : '>='} ${min}${max < Infinity ? ` and <= ${max}` : ''}, got '${value}'`);
    }
    return n;
  };
}

const backendOption = (): Option => new Option('--backend <name>', 'kernel backend').choices(BACKENDS).default('auto');

export function buildProgram(): Command {
  const program = new Command('ferroformer')
    .description('Train and run Transformers in Node.js (Rust kernels: native addon or WebAssembly SIMD)')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str) });

  program
    .command('train')
    .description('train a model and write runs/<name>/ (config, tokenizer, weights, metrics, checkpoints, pictures, report.html)')
    .addOption(new Option('--task <name>', 'built-in sequence-to-sequence task (default: dates)').choices(TASK_NAMES))
    .option('--text <file>', 'train a character-level language model on this text file instead')
    .option('--init <hf-folder>', 'fine-tune a Hugging Face GPT-2 checkpoint (folder or owner/name) on --text instead')
    .option('--lr <x>', 'peak learning rate of --init fine-tuning (AdamW, warm-up and cosine decay)', num(0, Infinity, { exclusiveMin: true }), 5e-4)
    .addOption(new Option('--preset <name>', 'model size').choices(Object.keys(PRESETS)).default('small'))
    .option('--d-model <n>', 'model width (overrides the preset)', int(2))
    .option('--heads <n>', 'attention heads', int(1))
    .option('--layers <n>', 'layers in the encoder and in the decoder (LM: layers)', int(1))
    .option('--d-ff <n>', 'feed-forward width', int(1))
    .option('--dropout <p>', 'dropout probability', num(0, 0.9), 0.1)
    .option('--context <n>', 'language model: context length in characters', int(2), 64)
    .option('--steps <n>', 'optimiser steps (default: dates 1200, copy/reverse 600, text 2000)', int(1))
    .option('--batch-size <n>', 'examples per step', int(1), 64)
    .addOption(backendOption())
    .option('--threads <n>', 'kernel threads (default: the backend\'s)', int(1))
    .option('--seed <n>', 'seed for weights and data', int(0), 1)
    .option('--out <dir>', 'parent folder of the run folder', 'runs')
    .option('--name <name>', 'run folder name (default: <task>-<date>-<time>)')
    .option('--resume <checkpoint>', 'continue a run from its checkpoint.safetensors (same folder and config; --steps may raise the total)')
    .option('--warmup <n>', 'Noam schedule warmup steps (default: min(400, steps/3))', int(1))
    .option('--lr-factor <x>', 'Noam schedule factor', num(0, Infinity, { exclusiveMin: true }), 1)
    .option('--label-smoothing <x>', 'label smoothing', num(0, 0.99), 0.1)
    .option('--log-every <n>', 'steps between metrics records', int(1))
    .option('--eval-every <n>', 'steps between held-out losses', int(1))
    .option('--checkpoint-every <n>', 'steps between saved checkpoints (the landscape\'s path)', int(1))
    .option('--held-out <n>', 'held-out examples for exact match (seq2seq)', int(1), 500)
    .option('--samples <n>', 'sample outputs to print', int(0), 5)
    .option('--beam <n>', 'beam size for the beam-search samples (1 = off)', int(1), 4)
    .option('--no-landscape', 'skip the loss landscape')
    .option('--resolution <n>', 'landscape grid points per axis', int(2), 15)
    .option('--workers <n>', 'worker threads for the landscape (1 = this thread)', int(1), 2)
    .action(async (flags: TrainFlags & { init?: string; lr: number }, command: Command) => {
      if (flags.init !== undefined) {
        const given = (name: string): boolean => command.getOptionValueSource(name) === 'cli';
        await hfTrainCommand({ ...flags, init: flags.init, batchSizeGiven: given('batchSize'), contextGiven: given('context') });
        return;
      }
      await trainCommand(flags);
    });

  program
    .command('generate')
    .description('decode inputs with a trained run (seq2seq: greedy, and beam search with --beam; LM: continue prompts)')
    .argument('<run>', 'run folder, or its name under runs/ (runs/latest: the last finished run); or a Hugging Face GPT-2 folder or owner/name')
    .argument('[inputs...]', 'source strings (seq2seq) or prompts (LM)')
    .addOption(backendOption())
    .option('--beam <n>', 'beam size (seq2seq; 1 = greedy only)', int(1), 4)
    .option('--max-tokens <n>', 'tokens to generate at most (default: seq2seq the task\'s longest target; LM what fills the context, at most 100)', int(1))
    .option('--temperature <t>', 'LM: sampling temperature (0 = greedy)', num(0), 0.8)
    .option('--top-k <k>', 'LM: sample among the k most likely', int(1))
    .option('--seed <n>', 'LM: sampling seed', int(0), 1)
    .action(async (run: string, inputs: string[], flags, command: Command) => {
      if (isHfSource(run)) {
        await hfGenerateCommand(run, inputs, { ...flags, beamGiven: command.getOptionValueSource('beam') === 'cli' });
        return;
      }
      await generateCommand(run, inputs, flags);
    });

  program
    .command('eval')
    .description('held-out loss of a run (and exact match for seq2seq tasks)')
    .argument('[run]', 'run folder, or its name under runs/ (default: runs/latest, the last finished run)')
    .addOption(backendOption())
    .option('--examples <n>', 'held-out examples for exact match', int(1), 500)
    .option('--beam <n>', 'beam size for beam-search exact match (1 = off)', int(1), 4)
    .action(async (run: string | undefined, flags) => {
      await evalCommand(run, flags);
    });

  program
    .command('landscape')
    .description('(re)draw the loss landscape of a run (Li et al. 2018): random filter-normalised plane and trajectory PCA plane')
    .argument('[run]', 'run folder, or its name under runs/ (default: runs/latest, the last finished run)')
    .addOption(backendOption())
    .option('--resolution <n>', 'grid points per axis', int(2), 21)
    .option('--workers <n>', 'worker threads (1 = this thread)', int(1), 2)
    .option('--seed <n>', 'seed of the random directions', int(0), 2018)
    .action(async (run: string | undefined, flags) => {
      await landscapeCommand(run, flags);
    });

  // The benchmarks live in the repository's bench/ folder, which an installed package does
  // not have: there the command is left out of --help and only says where to find them.
  program
    .command('bench', { hidden: !benchAvailable() })
    .description('run the benchmark suites of a repository checkout (npm run bench)')
    .allowUnknownOption()
    .argument('[args...]', 'passed to the benchmark runner')
    .action((args: string[]) => {
      process.exitCode = benchCommand(args);
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version exit 0; every parsing error (already printed by commander) exits 2.
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    if (process.env['FERRO_DEBUG']) console.error(e);
    else console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

const code = await main(process.argv);
process.exitCode = code;
