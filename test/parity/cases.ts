// Parity handlers: one per fixture `op`, each checking a case through the public API
// (ops, nn, optim) on one backend against PyTorch's values. Shapes, flags and
// hyper-parameters come from the case and the tensors, never from the public set, so
// another fixture set of the same format runs unchanged.
import { expect } from 'vitest';
import type { Backend, DType } from '../../ts/backend/backend.js';
import * as ops from '../../ts/ops/index.js';
import * as nn from '../../ts/nn/index.js';
import * as optim from '../../ts/optim/index.js';
import { Tensor, tensor } from '../../ts/tensor/tensor.js';
import type { SafetensorsTensor } from '../../ts/io/safetensors.js';
import type { FixtureCase, Fixtures } from '../helpers/fixtures.js';
import { relErr } from '../helpers/backends.js';

export const KERNEL_TOL = 1e-4;
export const MODEL_TOL = 5e-4;

export interface CaseContext {
  backend: Backend;
  fx: Fixtures;
  c: FixtureCase;
}

export type Handler = (ctx: CaseContext) => void | Promise<void>;

const DTYPES: Record<string, DType> = { F32: 'f32', I32: 'i32', U8: 'u8', BOOL: 'u8' };

/** The fixture tensor `<case>.<key>` on the backend. */
export function load(ctx: CaseContext, key: string, options: { requiresGrad?: boolean } = {}): Tensor {
  const t: SafetensorsTensor = ctx.fx.get(`${ctx.c.name}.${key}`);
  const dtype = DTYPES[t.dtype];
  if (!dtype) throw new Error(`fixture ${ctx.c.name}.${key}: unsupported dtype ${t.dtype}`);
  return tensor(t.data as ArrayLike<number>, t.shape, { backend: ctx.backend, dtype, requiresGrad: options.requiresGrad });
}

export function want(ctx: CaseContext, key: string): ArrayLike<number> {
  return ctx.fx.get(`${ctx.c.name}.${key}`).data as ArrayLike<number>;
}

/** Asserts got ≈ fixture `<case>.<key>` within tol, with a message naming both. */
export function expectClose(ctx: CaseContext, got: Tensor | ArrayLike<number>, key: string, tol = KERNEL_TOL): void {
  const values = got instanceof Tensor ? got.data() : got;
  const expected = want(ctx, key);
  expect(values.length, `${ctx.c.name}.${key}: length`).toBe(expected.length);
  const err = relErr(values, expected);
  expect(err, `${ctx.c.name}.${key} on ${ctx.backend.name}: relative error ${err}`).toBeLessThanOrEqual(tol);
}

function gradOf(t: Tensor, what: string): Tensor {
  if (t.grad === null) throw new Error(`${what} has no gradient after backward()`);
  return t.grad;
}

/** Names of the `<case>.<prefix>*` tensors, without the case and prefix. */
function keysWithPrefix(ctx: CaseContext, prefix: string): string[] {
  const head = `${ctx.c.name}.${prefix}`;
  return [...ctx.fx.tensors.keys()].filter((k) => k.startsWith(head)).map((k) => k.slice(head.length));
}

/** Highest N among `<case>.<prefix>N` tensors. */
function maxIndex(ctx: CaseContext, prefix: string): number {
  return Math.max(...keysWithPrefix(ctx, prefix).map(Number).filter(Number.isInteger));
}

const matmulCase: Handler = (ctx) => {
  const a = load(ctx, 'a');
  expectClose(ctx, ops.matmul(a, load(ctx, 'b')), 'c');
  if (ctx.fx.has(`${ctx.c.name}.b_t`)) expectClose(ctx, ops.matmul(a, load(ctx, 'b_t'), { transB: true }), 'c');
};

const softmaxCase: Handler = (ctx) => {
  const x = load(ctx, 'x', { requiresGrad: true });
  const mask = ctx.fx.has(`${ctx.c.name}.mask`) ? load(ctx, 'mask') : null;
  const y = ops.softmax(x, mask);
  expectClose(ctx, y, 'y');
  y.backward(load(ctx, 'dy'));
  expectClose(ctx, gradOf(x, 'x'), 'dx');
};

const layernormCase: Handler = (ctx) => {
  const x = load(ctx, 'x', { requiresGrad: true });
  const gamma = load(ctx, 'gamma', { requiresGrad: true });
  const beta = load(ctx, 'beta', { requiresGrad: true });
  const y = ops.layerNorm(x, gamma, beta, Number(ctx.c['eps'] ?? 1e-5));
  expectClose(ctx, y, 'y');
  y.backward(load(ctx, 'dy'));
  expectClose(ctx, gradOf(x, 'x'), 'dx');
  expectClose(ctx, gradOf(gamma, 'gamma'), 'dgamma');
  expectClose(ctx, gradOf(beta, 'beta'), 'dbeta');
};

const attentionCase: Handler = (ctx) => {
  const q = load(ctx, 'q', { requiresGrad: true });
  const k = load(ctx, 'k', { requiresGrad: true });
  const v = load(ctx, 'v', { requiresGrad: true });
  const keyMask = ctx.fx.has(`${ctx.c.name}.key_mask`) ? load(ctx, 'key_mask') : null;
  const { output, probs } = ops.attentionWithProbs(q, k, v, { keyMask, causal: ctx.c['causal'] === true });
  expectClose(ctx, output, 'out');
  expectClose(ctx, probs, 'probs');
  output.backward(load(ctx, 'dout'));
  expectClose(ctx, gradOf(q, 'q'), 'dq');
  expectClose(ctx, gradOf(k, 'k'), 'dk');
  expectClose(ctx, gradOf(v, 'v'), 'dv');
};

/** Loads `<case>.param.*` into a module and checks `<case>.grad.*` after backward. */
function loadParams(ctx: CaseContext, module: nn.Module): void {
  const entries = new Map(keysWithPrefix(ctx, 'param.').map((k) => [k, ctx.fx.get(`${ctx.c.name}.param.${k}`)] as const));
  module.loadStateDict(entries as Map<string, nn.StateEntry>);
}

function expectParamGrads(ctx: CaseContext, module: nn.Module, tol: number): void {
  const params = module.stateDict();
  const names = keysWithPrefix(ctx, 'grad.');
  expect(names.length).toBeGreaterThan(0);
  for (const name of names) {
    const p = params.get(name);
    if (!p) throw new Error(`${ctx.c.name}: fixture gradient for unknown parameter ${name}`);
    expectClose(ctx, gradOf(p, name), `grad.${name}`, tol);
  }
}

const mhaCase: Handler = (ctx) => {
  const embedDim = Number(ctx.c['embed_dim']);
  const mha = new nn.MultiheadAttention(embedDim, Number(ctx.c['num_heads']), { backend: ctx.backend });
  loadParams(ctx, mha);
  const query = load(ctx, 'query', { requiresGrad: true });
  const kv = load(ctx, 'kv', { requiresGrad: true });
  const keyMask = ctx.fx.has(`${ctx.c.name}.key_mask`) ? load(ctx, 'key_mask') : null;
  const { output } = mha.forward(query, kv, kv, { keyMask });
  expectClose(ctx, output, 'out');
  output.backward(load(ctx, 'dout'));
  expectClose(ctx, gradOf(query, 'query'), 'dquery');
  expectClose(ctx, gradOf(kv, 'kv'), 'dkv');
  expectParamGrads(ctx, mha, KERNEL_TOL);
};

const ffnCase: Handler = (ctx) => {
  const w1 = ctx.fx.get(`${ctx.c.name}.W1`);
  const [dFF, dModel] = w1.shape as [number, number];
  const activation = (ctx.c['activation'] ?? 'relu') as nn.Activation;
  const ffn = new nn.FeedForward(dModel, dFF, { backend: ctx.backend, activation });
  const names: Record<string, string> = { W1: 'linear1.weight', b1: 'linear1.bias', W2: 'linear2.weight', b2: 'linear2.bias' };
  ffn.loadStateDict(new Map(Object.entries(names).map(([k, n]) => [n, ctx.fx.get(`${ctx.c.name}.${k}`)])) as Map<string, nn.StateEntry>);
  const x = load(ctx, 'x', { requiresGrad: true });
  const y = ffn.forward(x);
  expectClose(ctx, y, 'y');
  y.backward(load(ctx, 'dy'));
  expectClose(ctx, gradOf(x, 'x'), 'dx');
  for (const [k, n] of Object.entries(names)) expectClose(ctx, gradOf(ffn.stateDict().get(n)!, n), `d${k}`);
};

const crossEntropyCase: Handler = (ctx) => {
  const logits = load(ctx, 'logits', { requiresGrad: true });
  const loss = ops.crossEntropy(logits, load(ctx, 'targets'), {
    ignoreIndex: ctx.c['ignore_index'] === undefined ? undefined : Number(ctx.c['ignore_index']),
    labelSmoothing: Number(ctx.c['label_smoothing'] ?? 0),
  });
  expectClose(ctx, loss, 'loss');
  loss.backward();
  expectClose(ctx, gradOf(logits, 'logits'), 'dlogits');
};

function optimizerCase(kind: 'adam' | 'adamw' | 'adam_l2'): Handler {
  return (ctx) => {
    const h = ctx.c['hparams'] as { lr: number; betas: [number, number]; eps: number; weight_decay?: number };
    const p = load(ctx, 'p0', { requiresGrad: true });
    const config = { lr: h.lr, betas: h.betas, eps: h.eps, weightDecay: h.weight_decay ?? 0 };
    const opt = kind === 'adamw' ? new optim.AdamW([p], config) : new optim.Adam([p], config);
    const steps = Number(ctx.c['steps'] ?? maxIndex(ctx, 'g'));
    for (let s = 1; s <= steps; s++) {
      p.grad = load(ctx, `g${s}`);
      opt.step();
      expectClose(ctx, p, `p${s}`);
    }
  };
}

const noamCase: Handler = (ctx) => {
  const schedule = optim.noam(Number(ctx.c['d_model']), Number(ctx.c['warmup']), Number(ctx.c['factor'] ?? 1));
  const steps = Array.from(want(ctx, 'steps'));
  expectClose(ctx, steps.map(schedule), 'lr');
};

const clipCase: Handler = (ctx) => {
  const n = maxIndex(ctx, 'g') + 1;
  const params = Array.from({ length: n }, (_, i) => {
    const g = load(ctx, `g${i}`);
    const p = tensor(new Float32Array(g.size), g.shape, { backend: ctx.backend, requiresGrad: true });
    p.grad = g;
    return p;
  });
  const total = optim.clipGradNorm(params, Number(ctx.c['max_norm']));
  expectClose(ctx, [total], 'total_norm');
  params.forEach((p, i) => expectClose(ctx, p.grad!, `clipped${i}`));
};

export const HANDLERS: Record<string, Handler> = {
  matmul: matmulCase,
  bmm: matmulCase,
  softmax: softmaxCase,
  layernorm: layernormCase,
  attention: attentionCase,
  multihead_attention: mhaCase,
  ffn: ffnCase,
  cross_entropy: crossEntropyCase,
  adam: optimizerCase('adam'),
  adamw: optimizerCase('adamw'),
  adam_l2: optimizerCase('adam_l2'),
  noam: noamCase,
  clip_grad_norm: clipCase,
};
