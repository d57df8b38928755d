// Brings a run continued in PyTorch (train_ddp.py) back into ferroformer, as a new run
// folder that the CLI resumes, evaluates and samples from:
//
//   node examples/pytorch-ddp/import.mjs runs/<name> <out> runs/<name>-ddp
//   ferroformer train --resume runs/<name>-ddp/checkpoint.safetensors --steps <more>
//
// Copies the original run folder, loads <out>/model.after.safetensors and
// <out>/optimizer.after.safetensors (PyTorch's weights and Adam state under parameter
// names) into the run's model and Adam, and writes them as the new folder's
// checkpoint.safetensors (at PyTorch's step) and model.safetensors.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { init, optim, train } from '../../dist/index.js';
import { buildModel, evalLoss, readConfig } from '../../dist/tools/run.js';

const [runDir, out, into] = process.argv.slice(2);
if (!runDir || !out || !into) {
  console.error('usage: node examples/pytorch-ddp/import.mjs <run folder> <out folder> <new run folder>');
  process.exit(2);
}
if (existsSync(into)) throw new Error(`${into} exists already`);
const pytorch = JSON.parse(readFileSync(join(out, 'pytorch.json'), 'utf8'));

await init({ backend: 'auto' });
const config = readConfig(runDir);
const model = buildModel(config);
const optimizer = new optim.Adam(model.parameters(), { betas: [0.9, 0.98], eps: 1e-9 });
// The original checkpoint first, for what PyTorch does not carry (the data RNG position).
const { extra } = await train.loadCheckpoint(join(runDir, 'checkpoint.safetensors'), { model, optimizer });
train.loadModelSafetensors(model, new Uint8Array(readFileSync(join(out, 'model.after.safetensors'))));
train.loadOptimizerSafetensors(model, optimizer, new Uint8Array(readFileSync(join(out, 'optimizer.after.safetensors'))));

cpSync(runDir, into, { recursive: true, dereference: true });
// The per-step weights of the original run are not this run's path.
rmSync(join(into, 'checkpoints'), { recursive: true, force: true });
mkdirSync(join(into, 'checkpoints'));
const name = basename(resolve(into));
writeFileSync(join(into, 'config.json'), `${JSON.stringify({ ...config, name, train: { ...config.train, steps: Math.max(config.train.steps, pytorch.step) } }, null, 2)}\n`);
await train.saveCheckpoint(join(into, 'checkpoint.safetensors'), { model, optimizer, step: pytorch.step, extra: { ...extra, continuedIn: 'pytorch-ddp' } });
await train.writeFileAtomic(join(into, 'model.safetensors'), train.modelToSafetensors(model, { format: 'pt' }));
const evalBatch = JSON.parse(readFileSync(join(into, 'eval_batch.json'), 'utf8'));
console.log(`imported step ${pytorch.step} into ${into}: held-out loss in ferroformer ${evalLoss(model, evalBatch).toFixed(4)} (PyTorch measured ${pytorch.heldOutLoss[1].toFixed(4)})`);
