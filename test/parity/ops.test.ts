// PyTorch's ops set (FERRO_OPS_FIXTURES, a path without extension; default
// test/fixtures/ops_public) through the public tensor API on every backend, one test per case
// named `<case> [<backend>]`: broadcasting binary ops and their scalar forms, reductions with
// keepdim, unary math, views and indexing, matmul broadcasting, softmax / log-softmax on any
// dim, cross-entropy on [B, T, C], embedding with padding_idx. Shapes and options come from
// the JSON. Each case runs its op on the fixture's inputs, compares every output `y*`, then
// backpropagates the fixture's `dy*` and compares each input's gradient `d<input>`; then
// again on native and wasm with uninitialised outputs poisoned.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NativeBackend } from '../../ts/backend/native.js';
import type { WasmBackend } from '../../ts/backend/wasm.js';
import * as ops from '../../ts/ops/index.js';
import { Tensor } from '../../ts/tensor/tensor.js';
import { describeEachBackend, getBackend, relErr, selectedBackends } from '../helpers/backends.js';
import { loadFixtures, type FixtureCase } from '../helpers/fixtures.js';
import { KERNEL_TOL, load, want, type CaseContext } from './cases.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const env = process.env['FERRO_OPS_FIXTURES'];
const fx = loadFixtures(env ? path.resolve(env) : path.resolve(REPO, 'test/fixtures/ops_public'));

/** The set's optimiser, schedule and LayerNorm cases run in test/parity/ops_optim.test.ts. */
const RUN_ELSEWHERE = new Set(['adamw', 'sgd', 'lr_schedule', 'layer_norm']);

type Inputs = Record<string, Tensor>;
/** Runs a case's op on its float inputs (loaded with requiresGrad): its named outputs. */
type OpRun = (x: Inputs, ctx: CaseContext) => Record<string, Tensor>;

const num = (c: FixtureCase, key: string): number => {
  const v = c[key];
  if (v === '-inf') return -Infinity;
  if (v === 'inf') return Infinity;
  if (typeof v !== 'number') throw new Error(`${c.name}: option ${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
};
const dims = (c: FixtureCase): number | number[] | null => (c['dim'] === null ? null : (c['dim'] as number | number[]));
const keepdim = (c: FixtureCase): { keepdim: boolean } => ({ keepdim: c['keepdim'] === true });
const y = (t: Tensor): Record<string, Tensor> => ({ y: t });

const binaryRun = (f: (a: Tensor, b: Tensor) => Tensor): OpRun => (x) => y(f(x['a']!, x['b']!));
const unaryRun = (f: (t: Tensor) => Tensor): OpRun => (x) => y(f(x['x']!));

/** The scalar forms by the case's `form` (x + s, s - x, x ** s, ...). */
const scalarRun: OpRun = (x, { c }) => {
  const s = num(c, 'scalar');
  const t = x['x']!;
  const forms: Record<string, () => Tensor> = {
    'x + s': () => t.add(s), 'x - s': () => t.sub(s), 's - x': () => ops.sub(s, t), 'x * s': () => t.mul(s),
    'x / s': () => t.div(s), 's / x': () => ops.div(s, t), 'x ** s': () => t.pow(s), 's ** x': () => ops.pow(s, t),
  };
  const form = forms[String(c['form'])];
  if (!form) throw new Error(`${c.name}: unknown scalar form ${String(c['form'])}`);
  return y(form());
};

/** Inputs named in the case's `order` (cat, stack). */
const ordered = (x: Inputs, c: FixtureCase): Tensor[] => (c['order'] as string[]).map((n) => x[n]!);

const RUNS: Record<string, OpRun> = {
  add: binaryRun((a, b) => a.add(b)),
  sub: binaryRun((a, b) => a.sub(b)),
  mul: binaryRun((a, b) => a.mul(b)),
  div: binaryRun((a, b) => a.div(b)),
  pow: binaryRun((a, b) => a.pow(b)),
  maximum: binaryRun((a, b) => a.maximum(b)),
  minimum: binaryRun((a, b) => a.minimum(b)),
  matmul: binaryRun((a, b) => a.matmul(b)),
  add_scalar: scalarRun, sub_scalar: scalarRun, rsub_scalar: scalarRun, mul_scalar: scalarRun,
  div_scalar: scalarRun, rdiv_scalar: scalarRun, pow_scalar: scalarRun, rpow_scalar: scalarRun,
  sum: (x, { c }) => y(x['x']!.sum(dims(c), keepdim(c))),
  mean: (x, { c }) => y(x['x']!.mean(dims(c), keepdim(c))),
  var: (x, { c }) => y(x['x']!.var(dims(c), { ...keepdim(c), correction: num(c, 'correction') })),
  amax: (x, { c }) => y(x['x']!.amax(dims(c), keepdim(c))),
  amin: (x, { c }) => y(x['x']!.amin(dims(c), keepdim(c))),
  logsumexp: (x, { c }) => y(x['x']!.logsumexp(dims(c), keepdim(c))),
  max_dim: (x, { c }) => {
    const { values, indices } = x['x']!.max(num(c, 'dim'), keepdim(c));
    return { y: values, idx: indices };
  },
  exp: unaryRun((t) => t.exp()),
  log: unaryRun((t) => t.log()),
  sqrt: unaryRun((t) => t.sqrt()),
  rsqrt: unaryRun((t) => t.rsqrt()),
  tanh: unaryRun((t) => t.tanh()),
  sigmoid: unaryRun((t) => t.sigmoid()),
  relu: unaryRun((t) => t.relu()),
  gelu: unaryRun((t) => t.gelu()),
  gelu_tanh: unaryRun((t) => t.gelu({ approximate: 'tanh' })),
  silu: unaryRun((t) => t.silu()),
  abs: unaryRun((t) => t.abs()),
  neg: unaryRun((t) => t.neg()),
  softplus: (x, { c }) => y(x['x']!.softplus({ beta: num(c, 'beta'), threshold: num(c, 'threshold') })),
  clamp: (x, { c }) => y(x['x']!.clamp(c['min'] === null ? null : num(c, 'min'), c['max'] === null ? null : num(c, 'max'))),
  reshape: (x, { c }) => y(x['x']!.reshape(c['shape'] as number[])),
  permute: (x, { c }) => y(x['x']!.permute(...(c['perm'] as number[]))),
  transpose: (x, { c }) => y(x['x']!.transpose(num(c, 'dim0'), num(c, 'dim1'))),
  slice: (x, { c }) => y(x['x']!.slice(num(c, 'dim'), c['start'] as number | null, c['stop'] as number | null, (c['step'] as number | null) ?? 1)),
  narrow: (x, { c }) => y(x['x']!.narrow(num(c, 'dim'), num(c, 'start'), num(c, 'length'))),
  expand: (x, { c }) => y(x['x']!.expand(...(c['sizes'] as number[]))),
  tril: (x, { c }) => y(x['x']!.tril(num(c, 'diagonal'))),
  triu: (x, { c }) => y(x['x']!.triu(num(c, 'diagonal'))),
  cat: (x, { c }) => y(ops.cat(ordered(x, c), num(c, 'dim'))),
  stack: (x, { c }) => y(ops.stack(ordered(x, c), num(c, 'dim'))),
  split: (x, { c }) => {
    const pieces = x['x']!.split(c['split_size_or_sections'] as number | number[], num(c, 'dim'));
    return Object.fromEntries(pieces.map((p, i) => [`y${i}`, p]));
  },
  index_select: (x, ctx) => y(x['x']!.indexSelect(num(ctx.c, 'dim'), load(ctx, 'index'))),
  gather: (x, ctx) => y(x['x']!.gather(num(ctx.c, 'dim'), load(ctx, 'index'))),
  scatter_add: (x, ctx) => y(x['x']!.scatterAdd(num(ctx.c, 'dim'), load(ctx, 'index'), x['src']!)),
  masked_fill: (x, ctx) => {
    // The set's mask is 1 where x is kept (y = x.masked_fill(mask == 0, value)); ours, as
    // PyTorch's masked_fill, marks the positions to fill.
    const keep = ctx.fx.get(`${ctx.c.name}.mask`);
    const fill = new Tensor(ctx.backend.fromArray('u8', Array.from(keep.data as ArrayLike<number>, (v) => (v === 0 ? 1 : 0))), keep.shape, ctx.backend);
    return y(x['x']!.maskedFill(fill, num(ctx.c, 'value')));
  },
  where: (x, ctx) => y(ops.where(load(ctx, 'cond'), x['a']!, x['b']!)),
  softmax: (x, { c }) => y(x['x']!.softmax(num(c, 'dim'))),
  log_softmax: (x, { c }) => y(x['x']!.logSoftmax(num(c, 'dim'))),
  cross_entropy: (x, ctx) => y(ops.crossEntropy(x['logits']!, load(ctx, 'target'), {
    ignoreIndex: num(ctx.c, 'ignore_index'),
    labelSmoothing: num(ctx.c, 'label_smoothing'),
  })),
  embedding: (x, ctx) => {
    const p = ctx.c['padding_idx'];
    return y(ops.embedding(load(ctx, 'idx'), x['weight']!, { paddingIdx: p === null ? null : Number(p) }));
  },
};

/** relErr, except that infinities (a masked_fill with -inf) must match exactly. */
function expectMatches(ctx: CaseContext, got: Tensor, key: string): void {
  const values = Array.from(got.data());
  const expected = Array.from(want(ctx, key));
  const where = `${ctx.c.name}.${key} on ${ctx.backend.name}`;
  expect(values.length, `${where}: length`).toBe(expected.length);
  const infinite = expected.map((v, i) => (Number.isFinite(v) ? -1 : i)).filter((i) => i >= 0);
  for (const i of infinite) expect(values[i], `${where}[${i}]`).toBe(expected[i]);
  const finite = (v: number[]): number[] => v.filter((_, i) => Number.isFinite(expected[i]!));
  const err = relErr(finite(values), finite(expected));
  expect(err, `${where}: relative error ${err}`).toBeLessThanOrEqual(KERNEL_TOL);
}

async function runCase(ctx: CaseContext): Promise<void> {
  const { c } = ctx;
  const run = RUNS[c.op];
  if (!run) throw new Error(`${c.name}: no runner for op ${c.op}`);
  const inputs: Inputs = {};
  for (const name of Object.keys(c['inputs'] as Record<string, number[]>)) inputs[name] = load(ctx, name, { requiresGrad: true });
  for (const [name, t] of Object.entries(inputs)) {
    expect([...t.shape], `${c.name}: input ${name} shape`).toEqual((c['inputs'] as Record<string, number[]>)[name]);
  }
  const outputs = run(inputs, ctx);
  const outputShapes = c['outputs'] as Record<string, number[]>;
  for (const [name, shape] of Object.entries(outputShapes)) {
    const got = outputs[name];
    if (!got) throw new Error(`${c.name}: the runner gave no output ${name}`);
    expect([...got.shape], `${c.name}.${name} shape`).toEqual(shape);
    expectMatches(ctx, got, name);
  }
  if (ctx.fx.has(`${c.name}.idx`) && outputs['idx']) {
    expect(Array.from(outputs['idx'].data()), `${c.name}.idx`).toEqual(Array.from(want(ctx, 'idx')));
  }
  // Backward: sum over outputs of <y_i, dy_i>, so several outputs (split) get their own dy.
  const names = Object.keys(outputShapes).filter((n) => ctx.fx.has(`${c.name}.d${n}`));
  if (names.length === 0) return;
  if (names.length === 1) outputs[names[0]!]!.backward(load(ctx, `d${names[0]}`));
  else names.map((n) => outputs[n]!.mul(load(ctx, `d${n}`)).sum()).reduce((a, b) => a.add(b)).backward();
  let checked = 0;
  for (const [name, t] of Object.entries(inputs)) {
    if (!ctx.fx.has(`${c.name}.d${name}`)) continue;
    if (t.grad === null) throw new Error(`${c.name}: ${name} has no gradient after backward()`);
    expectMatches(ctx, t.grad, `d${name}`);
    checked++;
  }
  expect(checked, `${c.name}: gradients checked`).toBeGreaterThan(0);
}

const cases = fx.cases.filter((c) => !RUN_ELSEWHERE.has(c.op));

it('the ops set has tensor-op cases', () => {
  expect(cases.length).toBeGreaterThan(0);
});

describeEachBackend('ops', (ctx) => {
  for (const c of cases) {
    it(`${c.name} [${ctx.name}]`, async () => {
      await runCase({ backend: ctx.backend, fx, c });
    });
  }
});

// Again with uninitialised outputs poisoned (NaN / junk), so an op whose kernel leaves part
// of its output unwritten fails instead of passing on storage that happened to be zero.
for (const name of selectedBackends().filter((n) => n !== 'reference')) {
  describe(`ops, uninitialised outputs poisoned [${name}]`, () => {
    let backend: NativeBackend | WasmBackend;
    beforeAll(async () => {
      backend = (await getBackend(name)) as NativeBackend | WasmBackend;
      backend.setPoisonUninitialised(true);
    });
    afterAll(() => backend.setPoisonUninitialised(false));
    for (const c of cases) {
      it(`${c.name} [${name}, poisoned]`, async () => {
        await runCase({ backend, fx, c });
      });
    }
  });
}
