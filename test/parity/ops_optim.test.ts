// The optimiser, schedule and bias-free LayerNorm cases of PyTorch's ops set
// (FERRO_OPS_FIXTURES, a path without extension; default test/fixtures/ops_public) on every
// backend, each its own test `<case> [<backend>]`: AdamW with parameter groups, SGD with
// (Nesterov) momentum and weight decay, nanoGPT's get_lr, LayerNorm(bias=False). Shapes,
// groups and hyper-parameters come from the JSON. The set's other cases (broadcasting,
// reductions, views) need tensor ops that do not exist yet and are not run here.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import * as nn from '../../ts/nn/index.js';
import * as optim from '../../ts/optim/index.js';
import type { Tensor } from '../../ts/tensor/tensor.js';
import { describeEachBackend } from '../helpers/backends.js';
import { loadFixtures } from '../helpers/fixtures.js';
import { expectClose, load, want, type Handler } from './cases.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const env = process.env['FERRO_OPS_FIXTURES'];
const fx = loadFixtures(env ? path.resolve(env) : path.resolve(REPO, 'test/fixtures/ops_public'));

interface GroupCase {
  params: string[];
  weight_decay?: number;
  lr?: number;
}

/** Runs `steps` optimiser steps with the fixture's gradients, checking every parameter after
 * each step against PyTorch's values. */
function runSteps(ctx: Parameters<Handler>[0], names: string[], make: (params: Map<string, Tensor>) => { step(): void }): void {
  const params = new Map(names.map((n) => [n, load(ctx, `${n}.p0`, { requiresGrad: true })]));
  const opt = make(params);
  const steps = Number(ctx.c['steps']);
  expect(steps).toBeGreaterThan(0);
  for (let s = 1; s <= steps; s++) {
    for (const [n, p] of params) {
      p.grad?.dispose();
      p.grad = load(ctx, `${n}.g${s}`);
    }
    opt.step();
    for (const [n, p] of params) expectClose(ctx, p, `${n}.p${s}`);
  }
}

const adamwCase: Handler = (ctx) => {
  const groups = ctx.c['groups'] as GroupCase[];
  const betas = ctx.c['betas'] as [number, number];
  runSteps(ctx, groups.flatMap((g) => g.params), (params) =>
    new optim.AdamW(
      groups.map((g) => ({ params: g.params.map((n) => params.get(n)!), weightDecay: g.weight_decay ?? 0.01, ...(g.lr === undefined ? {} : { lr: g.lr }) })),
      { lr: Number(ctx.c['lr']), betas, eps: Number(ctx.c['eps']) },
    ),
  );
};

const sgdCase: Handler = (ctx) => {
  const shapes = ctx.c['shapes'] as Record<string, number[]>;
  runSteps(ctx, Object.keys(shapes), (params) => {
    for (const [n, shape] of Object.entries(shapes)) expect([...params.get(n)!.shape]).toEqual(shape);
    return new optim.SGD([...params.values()], {
      lr: Number(ctx.c['lr']),
      momentum: Number(ctx.c['momentum'] ?? 0),
      dampening: Number(ctx.c['dampening'] ?? 0),
      weightDecay: Number(ctx.c['weight_decay'] ?? 0),
      nesterov: Boolean(ctx.c['nesterov']),
    });
  });
};

const lrScheduleCase: Handler = (ctx) => {
  const config = {
    learningRate: Number(ctx.c['learning_rate']),
    minLr: Number(ctx.c['min_lr']),
    warmupIters: Number(ctx.c['warmup_iters']),
    lrDecayIters: Number(ctx.c['lr_decay_iters']),
  };
  const getLr = optim.cosineWithWarmup(config);
  const its = Array.from(want(ctx, 'it'));
  expect(its.length).toBeGreaterThan(0);
  expectClose(ctx, its.map(getLr), 'lr', 1e-6);
  expectClose(ctx, its.map((it) => optim.getLr(it, config)), 'lr', 1e-6);
};

const layerNormCase: Handler = (ctx) => {
  const inputs = ctx.c['inputs'] as Record<string, number[]>;
  const shape = ctx.c['normalized_shape'] as number[];
  expect(shape.length, 'normalized_shape over the last axis only').toBe(1);
  const withBias = 'bias' in inputs;
  const norm = new nn.LayerNorm(shape[0]!, Number(ctx.c['eps'] ?? 1e-5), { backend: ctx.backend, bias: withBias });
  // Without a bias there is no such parameter and no such state-dict key (PyTorch's bias=False).
  expect([...norm.stateDict().keys()]).toEqual(withBias ? ['weight', 'bias'] : ['weight']);
  norm.loadStateDict(withBias ? { weight: load(ctx, 'weight'), bias: load(ctx, 'bias') } : { weight: load(ctx, 'weight') });
  const x = load(ctx, 'x', { requiresGrad: true });
  const y = norm.forward(x);
  expectClose(ctx, y, 'y');
  y.backward(load(ctx, 'dy'));
  expectClose(ctx, x.grad!, 'dx');
  expectClose(ctx, norm.weight.grad!, 'dweight');
  if (withBias) expectClose(ctx, norm.bias!.grad!, 'dbias');
  norm.dispose();
};

const HANDLERS: Record<string, Handler> = { adamw: adamwCase, sgd: sgdCase, lr_schedule: lrScheduleCase, layer_norm: layerNormCase };
const cases = fx.cases.filter((c) => c.op in HANDLERS);

it('the ops set has optimiser, schedule and layer-norm cases', () => {
  expect(cases.length).toBeGreaterThan(0);
});

describeEachBackend('ops optim', (ctx) => {
  for (const c of cases) {
    it(`${c.name} [${ctx.name}]`, async () => {
      await HANDLERS[c.op]!({ backend: ctx.backend, fx, c });
    });
  }
});
