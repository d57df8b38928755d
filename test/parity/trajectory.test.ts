// PyTorch's 40-step training runs (FERRO_TRAJ_FIXTURES, default test/fixtures/traj_public)
// reproduced through the public training API: per-step loss and pre-clipping gradient norm
// within 5e-4 relative, every final weight within 1e-3 relative (Frobenius). The model's
// structure is read from the fixture's tensor names and the case description, never assumed.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import type { Backend } from '../../ts/backend/backend.js';
import * as nn from '../../ts/nn/index.js';
import * as optim from '../../ts/optim/index.js';
import { lmBatch, lmLoss, seq2seqBatch, seq2seqLoss } from '../../ts/train/batching.js';
import { Trainer } from '../../ts/train/trainer.js';
import { dispose } from '../../ts/tensor/memory.js';
import { describeEachBackend, getBackend } from '../helpers/backends.js';
import { loadFixtures, type FixtureCase, type Fixtures } from '../helpers/fixtures.js';
import { expectFinalWeights, markSubEps, relative } from '../helpers/trajectory.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const base = process.env['FERRO_TRAJ_FIXTURES'] ? path.resolve(process.env['FERRO_TRAJ_FIXTURES']) : path.resolve(REPO, 'test/fixtures/traj_public');
const fx = loadFixtures(base);

function num(re: RegExp, s: string, what: string): number {
  const m = re.exec(s);
  if (!m) throw new Error(`trajectory: cannot read ${what} from '${s}'`);
  return Number(m[1]);
}

function tensorsWithPrefix(fx: Fixtures, prefix: string): Map<string, nn.StateEntry> {
  const out = new Map<string, nn.StateEntry>();
  for (const [k, t] of fx.tensors) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), t);
  return out;
}

function layerCount(names: Iterable<string>, stack: string): number {
  let n = 0;
  const re = new RegExp(`^${stack.replace('.', '\\.')}\\.layers\\.(\\d+)\\.`);
  for (const name of names) {
    const m = re.exec(name);
    if (m) n = Math.max(n, Number(m[1]) + 1);
  }
  return n;
}

interface Run {
  model: nn.Module;
  trainer: Trainer<unknown>;
  batch: (step: number) => object;
  /** Adam's eps, the scale below which float32 gradients carry no digits. */
  eps: number;
}

function build(c: FixtureCase, backend: Backend): Run {
  const model = String(c['model']);
  const recipe = String(c['optim']);
  const lossText = String(c['loss']);
  const init = tensorsWithPrefix(fx, `${c.name}.init.`);
  const names = [...init.keys()];
  const shape = (name: string) => init.get(name)!.shape;
  const heads = num(/heads (\d+)/, model, 'heads');
  const normFirst = /pre-LN/.test(model);
  const dropout = /dropout ([0-9.]+)/.exec(model) ? num(/dropout ([0-9.]+)/, model, 'dropout') : 0;
  const smoothing = /label_smoothing ([0-9.]+)/.exec(lossText) ? num(/label_smoothing ([0-9.]+)/, lossText, 'label smoothing') : 0;
  const ignore = /ignore (\d+)/.exec(lossText) ? num(/ignore (\d+)/, lossText, 'ignore index') : undefined;
  const betas: [number, number] = [num(/betas \(([0-9.]+),/, recipe, 'beta1'), num(/betas \([0-9.]+,\s*([0-9.]+)\)/, recipe, 'beta2')];
  const eps = num(/eps ([0-9.e-]+)/, recipe, 'eps');
  const clipNorm = num(/clip_grad_norm ([0-9.]+)/, recipe, 'clip norm');
  const batches = Number(c['steps']);
  let net: nn.Module;
  let loss;
  let batch: (step: number) => object;
  if (names.some((n) => n.startsWith('encoder.'))) {
    const [vocabSrc, dModel] = shape('src_embed.weight') as [number, number];
    const srcShape = fx.get(`${c.name}.batch0.src`).shape;
    const tgtShape = fx.get(`${c.name}.batch0.tgt`).shape;
    const padId = num(/pad (\d+)/, model, 'pad id');
    net = new nn.Transformer({
      srcVocab: vocabSrc, tgtVocab: shape('tgt_embed.weight')[0]!, dModel, nHeads: heads, dFF: shape('encoder.layers.0.linear1.weight')[0]!,
      numEncoderLayers: layerCount(names, 'encoder'), numDecoderLayers: layerCount(names, 'decoder'), dropout, normFirst,
      finalNorm: names.includes('encoder.norm.weight'), padId, maxLen: Math.max(srcShape[1]!, tgtShape[1]!),
    }, { backend });
    loss = seq2seqLoss({ padId: ignore ?? padId, labelSmoothing: smoothing });
    batch = (k) => seq2seqBatch(fx.get(`${c.name}.batch${k}.src`).data as Int32Array, fx.get(`${c.name}.batch${k}.tgt`).data as Int32Array, {
      padId, backend, srcShape: srcShape as [number, number], tgtShape: tgtShape as [number, number],
    });
  } else {
    const [vocab, dModel] = shape('embed.weight') as [number, number];
    const xShape = fx.get(`${c.name}.batch0.x`).shape as [number, number];
    net = new nn.DecoderLM({
      vocab, dModel, nHeads: heads, dFF: shape('blocks.layers.0.linear1.weight')[0]!, numLayers: layerCount(names, 'blocks'),
      dropout, normFirst, finalNorm: names.includes('blocks.norm.weight'), maxLen: xShape[1],
    }, { backend });
    loss = lmLoss({ ignoreIndex: ignore, labelSmoothing: smoothing });
    batch = (k) => lmBatch(fx.get(`${c.name}.batch${k}.x`).data as Int32Array, { backend, shape: xShape });
  }
  net.loadStateDict(init);
  let optimizer: optim.Adam;
  let schedule: optim.Schedule;
  if (/^AdamW/.test(recipe)) {
    const wd = num(/weight_decay ([0-9.]+)/, recipe, 'weight decay');
    optimizer = new optim.AdamW(optim.decayGroups(net, wd), { betas, eps });
    const warmup = num(/warmup (\d+) steps/, recipe, 'warmup steps');
    const peak = num(/warmup \d+ steps to ([0-9.e-]+)/, recipe, 'peak lr');
    const total = num(/at step (\d+)/, recipe, 'decay end');
    schedule = optim.warmupDecay(peak, warmup, total, { decay: /cosine/.test(recipe) ? 'cosine' : 'linear' });
  } else {
    optimizer = new optim.Adam(net.parameters(), { betas, eps });
    schedule = optim.noam(num(/noam\(d=(\d+)/, recipe, 'noam d'), num(/warmup=(\d+)/, recipe, 'noam warmup'), num(/factor=([0-9.]+)/, recipe, 'noam factor'));
  }
  expect(batches).toBeGreaterThan(0);
  const trainer = new Trainer<object>({ model: net, optimizer, loss: loss as never, schedule, clipNorm });
  return { model: net, trainer: trainer as Trainer<unknown>, batch, eps };
}

/** Runs the case's steps, asserting lr, loss and gradient norm per step; returns the final
 * parameters and, per parameter, the elements whose gradient was at some step non-zero,
 * within ten times Adam's eps and below 1e-4 of its tensor's largest. */
function runTrajectory(c: FixtureCase, backend: Backend): { params: Map<string, Float64Array | Float32Array>; subEps: Map<string, Uint8Array> } {
  const run = build(c, backend);
  const losses = fx.get(`${c.name}.loss`).data as Float32Array;
  const norms = fx.get(`${c.name}.grad_norm`).data as Float32Array;
  const lrs = fx.get(`${c.name}.lr`).data as Float32Array;
  const subEps = new Map<string, Uint8Array>();
  const params = run.model.stateDict();
  for (let k = 0; k < Number(c['steps']); k++) {
    const batch = run.batch(k);
    const m = run.trainer.trainStep(batch);
    dispose(batch);
    markSubEps(subEps, params, run.eps);
    expect(relative(m.lr, lrs[k]!), `${c.name} step ${k + 1} lr ${m.lr} vs ${lrs[k]}`).toBeLessThan(1e-5);
    expect(relative(m.loss, losses[k]!), `${c.name} step ${k + 1} loss ${m.loss} vs ${losses[k]} on ${backend.name}`).toBeLessThanOrEqual(5e-4);
    expect(relative(m.gradNorm, norms[k]!), `${c.name} step ${k + 1} grad norm ${m.gradNorm} vs ${norms[k]} on ${backend.name}`).toBeLessThanOrEqual(5e-4);
  }
  const out = new Map([...params].map(([name, p]) => [name, p.data() as Float64Array | Float32Array]));
  run.model.dispose();
  return { params: out, subEps };
}

describeEachBackend('trajectory', (ctx) => {
  for (const c of fx.cases) {
    it(`${c.name} [${ctx.name}]`, async () => {
      const { params } = runTrajectory(c, ctx.backend);
      // A gradient element below 1e-4 of its tensor's largest (a ReLU unit at the edge of
      // activity, a cancelling sum) has no correct digits in float32 (the rule the issue
      // itself applies to step1). When it is also within ten times Adam's eps, where
      // g / (|g| + eps) is not yet saturated at ±1, Adam turns whatever it holds into a step
      // of up to lr. Such elements follow round-off, not the math, so float32 backends leave
      // them out of the final-weight comparison. They are found with the float64 reference
      // backend on the same run; the reference backend itself is held to the bound with no
      // exclusion.
      const excluded = ctx.backend.capabilities.has('float64') ? new Map<string, Uint8Array>() : runTrajectory(c, await getBackend('reference')).subEps;
      const finals = tensorsWithPrefix(fx, `${c.name}.final.`);
      expect(finals.size).toBe(params.size);
      expectFinalWeights(`${c.name} [${ctx.name}]`, finals, params, excluded);
    });
  }
});
