// Whole-model parity: weights loaded from the fixture's PyTorch names, then logits, loss,
// every parameter's gradient and (encoder-decoder) the parameters after one Adam step.
import { expect } from 'vitest';
import * as nn from '../../ts/nn/index.js';
import * as ops from '../../ts/ops/index.js';
import * as optim from '../../ts/optim/index.js';
import type { Tensor } from '../../ts/tensor/tensor.js';
import { expectClose, load, MODEL_TOL, type CaseContext, type Handler } from './cases.js';

function text(ctx: CaseContext, key: string): string {
  return String(ctx.c[key] ?? '');
}

/** The loss convention the case describes: `ignore pad <id>` and `label_smoothing <eps>`. */
function lossOptions(ctx: CaseContext): ops.CrossEntropyOptions {
  const loss = text(ctx, 'loss');
  const smoothing = /label_smoothing\s*([0-9.]+)/.exec(loss);
  const ignore = /ignore pad\s*(\d+)/.exec(loss);
  return {
    labelSmoothing: smoothing ? Number(smoothing[1]) : 0,
    ignoreIndex: ignore ? Number(ignore[1]) : undefined,
  };
}

function paramEntries(ctx: CaseContext, prefix: string): Map<string, nn.StateEntry> {
  const head = `${ctx.c.name}.${prefix}`;
  const out = new Map<string, nn.StateEntry>();
  for (const [k, t] of ctx.fx.tensors) if (k.startsWith(head)) out.set(k.slice(head.length), t);
  return out;
}

function checkGradients(ctx: CaseContext, model: nn.Module): void {
  const grads = paramEntries(ctx, 'grad.');
  const params = model.stateDict();
  expect(grads.size).toBe(params.size);
  for (const name of grads.keys()) {
    const p = params.get(name);
    if (!p?.grad) throw new Error(`${ctx.c.name}: no gradient for ${name}`);
    expectClose(ctx, p.grad, `grad.${name}`, MODEL_TOL);
  }
}

/** Adam's first step is ~lr * sign(g): where PyTorch's gradient is tiny against its tensor's
 * largest, float rounding can flip the sign, so only elements with |g| > 1e-4 * max|g| count. */
function checkStep1(ctx: CaseContext, model: nn.Module): void {
  const description = text(ctx, 'step1');
  const warmup = /min\(1,\s*1\*(\d+(?:\.\d+)?)\^-1\.5\)/.exec(description);
  const betas = /betas=\(([\d.]+),\s*([\d.]+)\)/.exec(description);
  const eps = /eps=([\d.e-]+)/.exec(description);
  if (!warmup || !betas || !eps) throw new Error(`${ctx.c.name}: cannot read the step1 recipe '${description}'`);
  const lr = optim.noam(Number(ctx.c['d_model']), Number(warmup[1]))(1);
  const opt = new optim.Adam(model.parameters(), { lr, betas: [Number(betas[1]), Number(betas[2])], eps: Number(eps[1]) });
  opt.step();
  const params = model.stateDict();
  for (const [name, expected] of paramEntries(ctx, 'step1.')) {
    const g = ctx.fx.get(`${ctx.c.name}.grad.${name}`).data as ArrayLike<number>;
    let gMax = 0;
    for (let i = 0; i < g.length; i++) gMax = Math.max(gMax, Math.abs(g[i]!));
    const got = params.get(name)!.data();
    const want = expected.data as ArrayLike<number>;
    let maxDiff = 0;
    let maxWant = 0;
    for (let i = 0; i < want.length; i++) {
      maxWant = Math.max(maxWant, Math.abs(want[i]!));
      if (Math.abs(g[i]!) > 1e-4 * gMax) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
    }
    const err = maxDiff / (maxWant + 1e-6);
    expect(err, `${ctx.c.name}.step1.${name} on ${ctx.backend.name}: relative error ${err}`).toBeLessThanOrEqual(MODEL_TOL);
  }
}

const transformerCase: Handler = (ctx) => {
  const c = ctx.c;
  const src = load(ctx, 'src');
  const tgtIn = load(ctx, 'tgt_in');
  const model = new nn.Transformer({
    srcVocab: Number(c['src_vocab']), tgtVocab: Number(c['tgt_vocab']), dModel: Number(c['d_model']), nHeads: Number(c['heads']),
    numEncoderLayers: Number(c['layers']), numDecoderLayers: Number(c['layers']), dFF: Number(c['d_ff']),
    dropout: Number(c['dropout'] ?? 0), activation: (c['activation'] ?? 'relu') as nn.Activation, normFirst: c['norm_first'] === true,
    finalNorm: c['final_norm'] === true, padId: c['pad_id'] === undefined ? null : Number(c['pad_id']),
    maxLen: Math.max(src.shape[1]!, tgtIn.shape[1]!),
  }, { backend: ctx.backend });
  model.loadStateDict(paramEntries(ctx, 'param.'));
  const logits: Tensor = model.forward(src, tgtIn).keep();
  expectClose(ctx, logits, 'logits', MODEL_TOL);
  const loss = ops.crossEntropy(logits, load(ctx, 'tgt_out'), lossOptions(ctx));
  expectClose(ctx, loss, 'loss', MODEL_TOL);
  loss.backward();
  checkGradients(ctx, model);
  checkStep1(ctx, model);
};

const decoderLMCase: Handler = (ctx) => {
  const c = ctx.c;
  const x = load(ctx, 'x');
  const model = new nn.DecoderLM({
    vocab: Number(c['vocab']), dModel: Number(c['d_model']), nHeads: Number(c['heads']), numLayers: Number(c['layers']),
    dFF: Number(c['d_ff']), dropout: Number(c['dropout'] ?? 0), activation: (c['activation'] ?? 'relu') as nn.Activation,
    normFirst: c['norm_first'] !== false, finalNorm: c['final_norm'] !== false, maxLen: x.shape[1]!,
  }, { backend: ctx.backend });
  model.loadStateDict(paramEntries(ctx, 'param.'));
  const logits = model.forward(x).keep();
  expectClose(ctx, logits, 'logits', MODEL_TOL);
  const loss = ops.crossEntropy(logits, load(ctx, 'y'), lossOptions(ctx));
  expectClose(ctx, loss, 'loss', MODEL_TOL);
  loss.backward();
  checkGradients(ctx, model);
};

export const MODEL_HANDLERS: Record<string, Handler> = {
  transformer: transformerCase,
  decoder_only_lm: decoderLMCase,
};
