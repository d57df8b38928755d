// nanoGPT's train.py (single process) on ferroformer's public API: a character-level GPT on
// the text the repository ships (data/ferrous_notes.txt), with train.py's loop: get_lr
// (warmup, then cosine to min_lr), AdamW groups from configure_optimizers, gradient
// accumulation, clipping at grad_clip, evaluation every eval_interval, a checkpoint under
// nanoGPT's state-dict names, and a sample at the end (sample.py's temperature and top_k).
// Not here: DDP, autocast/GradScaler, torch.compile, wandb, MFU, resuming.
//
//   npm run example:nanogpt                      (after npm install)
//   npm run example:nanogpt -- --max_iters=200 --n_layer=2 --backend=wasm
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, init, nn, noGrad, ops, optim, tensor, tidy, train, type Tensor } from 'ferroformer';
import { GPT, GPTConfig } from './model.js';

// -----------------------------------------------------------------------------
// default config values: config/train_shakespeare_char.py's baby GPT, scaled down for a CPU
// as nanoGPT's README suggests (block 64, batch 12, 4 layers, 4 heads, 128 wide, no dropout)
const defaults = {
  out_dir: 'runs/nanogpt-ferrous-char',
  eval_interval: 100,
  log_interval: 10,
  eval_iters: 20,
  always_save_checkpoint: false, // if true, always save a checkpoint after each eval
  // data
  dataset: 'data/ferrous_notes.txt',
  gradient_accumulation_steps: 1, // used to simulate larger batch sizes
  batch_size: 12, // if gradient_accumulation_steps > 1, this is the micro-batch size
  block_size: 64,
  // model
  n_layer: 4,
  n_head: 4,
  n_embd: 128,
  dropout: 0.0, // for pretraining 0 is good, for finetuning try 0.1+
  bias: false, // do we use bias inside LayerNorm and Linear layers?
  // adamw optimizer
  learning_rate: 1e-3, // with baby networks can afford to go a bit higher
  max_iters: 600, // total number of training iterations
  weight_decay: 1e-1,
  beta1: 0.9,
  beta2: 0.99, // make a bit bigger because number of tokens per iter is small
  grad_clip: 1.0, // clip gradients at this value, or disable if == 0.0
  // learning rate decay settings
  decay_lr: true, // whether to decay the learning rate
  warmup_iters: 100, // how many steps to warm up for
  lr_decay_iters: 600, // should be ~= max_iters per Chinchilla
  min_lr: 1e-4, // minimum learning rate, should be ~= learning_rate/10 per Chinchilla
  // system
  backend: 'auto', // 'native', 'wasm', 'reference' or 'auto'
  seed: 1337,
  // sampling at the end (sample.py)
  max_new_tokens: 300,
  temperature: 0.8,
  top_k: 200,
};
type Config = typeof defaults;

/** nanoGPT's configurator: `--key=value` overrides a default of the same type. */
function configure(args: string[], log: (line: string) => void): Config {
  const config: Record<string, unknown> = { ...defaults };
  for (const arg of args) {
    const m = /^--([a-z_0-9]+)=(.*)$/.exec(arg);
    if (!m) throw new ConfigError('train', `expected --key=value, got '${arg}'`);
    const [, key, raw] = m as unknown as [string, string, string];
    if (!(key in defaults)) throw new ConfigError('train', `Unknown config key: ${key} (keys: ${Object.keys(defaults).join(', ')})`);
    const kind = typeof defaults[key as keyof Config];
    const value = kind === 'number' ? Number(raw) : kind === 'boolean' ? raw === 'true' : raw;
    if (kind === 'number' && !Number.isFinite(value)) throw new ConfigError('train', `--${key} must be a number, got '${raw}'`);
    if (kind === 'boolean' && raw !== 'true' && raw !== 'false') throw new ConfigError('train', `--${key} must be true or false, got '${raw}'`);
    log(`Overriding: ${key} = ${raw}`);
    config[key] = value;
  }
  return config as Config;
}

export interface TrainResult {
  /** estimate_loss() at every eval_interval. */
  evals: { iter: number; train: number; val: number }[];
  sample: string;
}

/** train.py with `--key=value` overrides; lines go to `log`. */
export async function main(args: string[], log: (line: string) => void = console.log): Promise<TrainResult> {
  const config = configure(args, log);
  const backend = await init({ backend: config.backend as 'auto' });
  log(`backend: ${backend.name}`);
  const tokens_per_iter = config.gradient_accumulation_steps * config.batch_size * config.block_size;
  log(`tokens per iteration will be: ${tokens_per_iter}`);
  mkdirSync(config.out_dir, { recursive: true });
  nn.manualSeed(config.seed);
  const rng = new nn.Rng(config.seed + 1);

  // data: data/shakespeare_char/prepare.py's character vocabulary and 90/10 split, in memory
  const text = readFileSync(config.dataset, 'utf8');
  const chars = [...new Set(Array.from(text))].sort();
  const stoi = new Map(chars.map((ch, i) => [ch, i]));
  const encode = (s: string): number[] => Array.from(s, (c) => stoi.get(c)!);
  const decode = (l: ArrayLike<number>): string => Array.from(l, (i) => chars[i]).join('');
  const data = Int32Array.from(encode(text));
  const n = Math.floor(0.9 * data.length);
  const splits = { train: data.subarray(0, n), val: data.subarray(n) };
  log(`vocab size: ${chars.length}; train has ${splits.train.length} tokens, val has ${splits.val.length} tokens`);
  for (const [name, d] of Object.entries(splits)) {
    if (d.length <= config.block_size) throw new ConfigError('train', `${config.dataset}: the ${name} split has ${d.length} characters, block_size ${config.block_size} needs more`);
  }

  function get_batch(split: 'train' | 'val'): [Tensor, Tensor] {
    const d = splits[split];
    const x = new Int32Array(config.batch_size * config.block_size);
    const y = new Int32Array(config.batch_size * config.block_size);
    for (let b = 0; b < config.batch_size; b++) {
      const i = Math.floor(rng.next() * (d.length - config.block_size));
      x.set(d.subarray(i, i + config.block_size), b * config.block_size);
      y.set(d.subarray(i + 1, i + 1 + config.block_size), b * config.block_size);
    }
    const shape = [config.batch_size, config.block_size];
    return [tensor(x, shape, { backend, dtype: 'i32' }), tensor(y, shape, { backend, dtype: 'i32' })];
  }

  // model init
  const model_args = GPTConfig({
    n_layer: config.n_layer, n_head: config.n_head, n_embd: config.n_embd, block_size: config.block_size,
    bias: config.bias, vocab_size: chars.length, dropout: config.dropout,
  });
  const model = new GPT(model_args, { backend });
  log(`number of parameters: ${(model.getNumParams() / 1e6).toFixed(2)}M`);

  // optimizer
  const optimizer = model.configureOptimizers(config.weight_decay, config.learning_rate, [config.beta1, config.beta2]);
  const get_lr = optim.cosineWithWarmup({
    learningRate: config.learning_rate, minLr: config.min_lr, warmupIters: config.warmup_iters, lrDecayIters: config.lr_decay_iters,
  });

  // helps estimate an arbitrarily accurate loss over either split using many batches
  function estimate_loss(): { train: number; val: number } {
    const out = { train: 0, val: 0 };
    model.eval();
    for (const split of ['train', 'val'] as const) {
      let total = 0;
      for (let k = 0; k < config.eval_iters; k++) {
        total += tidy(() => noGrad(() => model.forward(...get_batch(split))[1]!.item()));
      }
      out[split] = total / config.eval_iters;
    }
    model.train();
    return out;
  }

  function save_checkpoint(iter_num: number, best_val_loss: number): void {
    const metadata = { model_args: JSON.stringify(model_args), iter_num: String(iter_num), best_val_loss: String(best_val_loss), config: JSON.stringify(config) };
    // nanoGPT's state-dict names; the tied wte/lm_head matrix is stored once (as save_model).
    writeFileSync(path.join(config.out_dir, 'model.safetensors'), train.modelToSafetensors(model, metadata));
    writeFileSync(path.join(config.out_dir, 'optimizer.safetensors'), train.optimizerToSafetensors(model, optimizer));
    writeFileSync(path.join(config.out_dir, 'meta.json'), JSON.stringify({ vocab_size: chars.length, itos: chars }));
    log(`saving checkpoint to ${config.out_dir}`);
  }

  // training loop
  let [X, Y] = get_batch('train'); // fetch the very first batch
  let t0 = performance.now();
  let iter_num = 0;
  let best_val_loss = 1e9;
  const evals: TrainResult['evals'] = [];
  for (;;) {
    // determine and set the learning rate for this iteration
    const lr = config.decay_lr ? get_lr(iter_num) : config.learning_rate;
    optimizer.setLr(lr);

    // evaluate the loss on train/val sets and write checkpoints
    if (iter_num % config.eval_interval === 0) {
      const losses = estimate_loss();
      log(`step ${iter_num}: train loss ${losses.train.toFixed(4)}, val loss ${losses.val.toFixed(4)}`);
      evals.push({ iter: iter_num, ...losses });
      if (losses.val < best_val_loss || config.always_save_checkpoint) {
        best_val_loss = losses.val;
        if (iter_num > 0) save_checkpoint(iter_num, best_val_loss);
      }
    }

    // forward backward update, with optional gradient accumulation to simulate larger batch size
    let lossf = 0;
    for (let micro_step = 0; micro_step < config.gradient_accumulation_steps; micro_step++) {
      const [, rawLoss] = model.forward(X, Y);
      // scale the loss to account for gradient accumulation
      const loss = config.gradient_accumulation_steps > 1 ? ops.scale(rawLoss!, 1 / config.gradient_accumulation_steps) : rawLoss!;
      lossf += loss.item();
      // fetch the next batch (backward still reads this one's targets)
      const [nextX, nextY] = get_batch('train');
      loss.backward();
      loss.dispose();
      X.dispose();
      Y.dispose();
      [X, Y] = [nextX, nextY];
    }
    // clip the gradient
    if (config.grad_clip !== 0.0) optim.clipGradNorm(model.parameters(), config.grad_clip);
    // step the optimizer
    optimizer.step();
    // flush the gradients as soon as we can, no need for this memory anymore
    optimizer.zeroGrad();

    // timing and logging
    const t1 = performance.now();
    const dt = t1 - t0;
    t0 = t1;
    if (iter_num % config.log_interval === 0) log(`iter ${iter_num}: loss ${lossf.toFixed(4)}, time ${dt.toFixed(2)}ms, lr ${lr.toExponential(3)}`);
    iter_num += 1;

    // termination conditions
    if (iter_num > config.max_iters) break;
  }
  X.dispose();
  Y.dispose();

  // sample from the model (sample.py), starting from a newline (or the first character)
  const start = tensor(encode(stoi.has('\n') ? '\n' : chars[0]!), [1, 1], { backend, dtype: 'i32' });
  const y = model.generate(start, config.max_new_tokens, { temperature: config.temperature, topK: config.top_k, rng });
  const sample = decode(y.data());
  y.dispose();
  start.dispose();
  log('---------------');
  log(sample);
  log('---------------');
  model.dispose();
  optimizer.dispose();
  return { evals, sample };
}

// run as a script: node examples/nanogpt/build/train.js [--key=value ...]
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) await main(process.argv.slice(2));
