// Exports a ferroformer seq2seq run (a folder written by `ferroformer train`) for PyTorch:
//
//   node examples/pytorch-ddp/export.mjs runs/<name> <out> [--steps 200]
//
// <out>/model.safetensors      the weights under PyTorch's names (train.modelToSafetensors)
// <out>/optimizer.safetensors  Adam's moments and steps under the same names
//                              (train.optimizerToSafetensors)
// <out>/batches.safetensors    `src` [steps * batch, Ts] and `tgt` [steps * batch, Tt] int32
//                              training rows from the run's own task (held-out examples left
//                              out), and the run's fixed evaluation rows `eval_src`, `eval_tgt`;
//                              padded with 0
// <out>/run.json               model config, the run's recipe, the step reached, and the
//                              held-out loss and last training losses ferroformer measured
//
// Reads the run's checkpoint.safetensors (model and optimiser), so the run must have
// finished or been interrupted after its first checkpoint. Run from a clone after
// `npm install` (it imports the built dist/).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { init, io, nn, optim, train } from '../../dist/index.js';
import { heldOut, makeTask, taskTokenizer } from '../../dist/cli/tasks.js';
import { buildModel, evalLoss, readConfig } from '../../dist/tools/run.js';

const [runDir, out, ...rest] = process.argv.slice(2);
if (!runDir || !out) {
  console.error('usage: node examples/pytorch-ddp/export.mjs <run folder> <out folder> [--steps N]');
  process.exit(2);
}
const stepsFlag = rest.indexOf('--steps');
const steps = stepsFlag >= 0 ? Number(rest[stepsFlag + 1]) : 200;
const config = readConfig(runDir);
if (config.kind !== 'seq2seq') throw new Error(`${runDir} is a ${config.kind} run; this example continues seq2seq runs`);
const checkpoint = join(runDir, 'checkpoint.safetensors');
if (!existsSync(checkpoint)) throw new Error(`${checkpoint} does not exist: the run has no checkpoint yet`);

await init({ backend: 'auto' });
const model = buildModel(config);
// The CLI's optimiser (ts/cli/train_command.ts): Adam with the paper's betas and eps.
const optimizer = new optim.Adam(model.parameters(), { betas: [0.9, 0.98], eps: 1e-9 });
const { step, extra } = await train.loadCheckpoint(checkpoint, { model, optimizer });
const evalBatch = JSON.parse(readFileSync(join(runDir, 'eval_batch.json'), 'utf8'));

// Training rows as the CLI draws them: the run's task, held-out sources skipped.
const task = makeTask(config.task);
const tok = taskTokenizer(task);
const held = heldOut(task, 500, config.heldOutSeed);
const rng = new nn.Rng(typeof extra.dataRng === 'number' ? extra.dataRng : config.train.seed);
const src = [];
const tgt = [];
while (src.length < steps * config.train.batchSize) {
  const e = task.sample(rng);
  if (held.has(e.src)) continue;
  src.push(tok.encode(e.src));
  tgt.push(tok.encode(e.tgt, { addBos: true, addEos: true }));
}
function int32Rows(rows) {
  const width = Math.max(...rows.map((r) => r.length));
  const data = new Int32Array(rows.length * width);
  rows.forEach((r, i) => data.set(r, i * width));
  return { dtype: 'I32', shape: [rows.length, width], data };
}

const metrics = existsSync(join(runDir, 'metrics.jsonl'))
  ? readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => typeof m.loss === 'number' && m.step <= step)
  : [];
const resolved = model.config;
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'model.safetensors'), train.modelToSafetensors(model));
writeFileSync(join(out, 'optimizer.safetensors'), train.optimizerToSafetensors(model, optimizer));
writeFileSync(join(out, 'batches.safetensors'), io.writeSafetensors({
  src: int32Rows(src), tgt: int32Rows(tgt), eval_src: int32Rows(evalBatch.src), eval_tgt: int32Rows(evalBatch.tgt),
}));
const heldOutLoss = evalLoss(model, evalBatch);
writeFileSync(join(out, 'run.json'), `${JSON.stringify({
  run: runDir, step, steps, model: resolved, train: config.train,
  ferroformer: { heldOutLoss, lastLosses: metrics.slice(-5).map((m) => ({ step: m.step, loss: m.loss })) },
}, null, 2)}\n`);
console.log(`exported ${runDir} at step ${step} (held-out loss ${heldOutLoss.toFixed(4)}) and ${steps} steps of batches to ${out}`);
