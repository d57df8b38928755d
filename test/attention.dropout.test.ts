// Dropout on the attention weights (PyTorch's dropout_p), applied inside the flash kernels:
// on every backend the output and gradients equal softmax(q·kᵀ·scale, masks) ∘ M / (1 - p) · v
// computed here in float64, with M drawn from the counter RNG (splitmix64, written here
// with BigInt) at each weight's [B, H, Tq, Tk] index; the backends agree with each other (the
// same mask); nn.MultiheadAttention applies it in training mode only and advances its
// stream, and so do GPT-2 (attn_pdrop) and examples/nanogpt (attn_dropout); eval mode is
// the same as no dropout.
import { beforeAll, describe, expect, it } from 'vitest';
import { GPT, GPTConfig } from '../examples/nanogpt/model.js';
import type { Backend } from '../ts/backend/backend.js';
import { GPT2LMHeadModel } from '../ts/models/gpt2.js';
import * as nn from '../ts/nn/index.js';
import * as ops from '../ts/ops/index.js';
import { ConfigError } from '../ts/tensor/errors.js';
import { tensor, type Tensor } from '../ts/tensor/tensor.js';
import { describeEachBackend, getBackend, selectedBackends } from './helpers/backends.js';
import { randomArray } from './helpers/naive.js';

/** High 32 bits of splitmix64((seed << 32) | counter): dropout's RNG, spelled out. */
function randomU32(seed: number, counter: number): number {
  const mask = (1n << 64n) - 1n;
  let z = (((BigInt(seed) << 32n) | BigInt(counter >>> 0)) + 0x9e3779b97f4a7c15n) & mask;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask;
  z ^= z >> 31n;
  return Number(z >> 32n);
}

interface Case { b: number; h: number; tq: number; tk: number; d: number; causal: boolean; p: number; seed: number; offset: number }

interface Inputs { q: Float32Array; k: Float32Array; v: Float32Array; keep: number[]; weights: Float32Array }

function inputs(c: Case): Inputs {
  const { b, h, tq, tk, d } = c;
  return {
    q: randomArray(b * h * tq * d, 1),
    k: randomArray(b * h * tk * d, 2),
    v: randomArray(b * h * tk * d, 3),
    // Padding: every fourth key of the last batch.
    keep: Array.from({ length: b * tk }, (_, i) => (Math.floor(i / tk) === b - 1 && i % tk % 4 === 3 ? 0 : 1)),
    weights: randomArray(b * h * tq * d, 4),
  };
}

/** out and the gradients of sum(out ∘ weights) w.r.t. q, k, v, in float64. */
function explicit(c: Case, x: Inputs): { out: Float64Array; dq: Float64Array; dk: Float64Array; dv: Float64Array; dropped: number } {
  const { b, h, tq, tk, d, causal, p, seed, offset } = c;
  const scale = 1 / Math.sqrt(d);
  const threshold = Math.floor(Math.fround(p) * 2 ** 32);
  const keptScale = 1 / (1 - Math.fround(p));
  const out = new Float64Array(b * h * tq * d);
  const [dq, dk, dv] = [new Float64Array(x.q.length), new Float64Array(x.k.length), new Float64Array(x.v.length)];
  let dropped = 0;
  for (let bh = 0; bh < b * h; bh++) {
    const bi = Math.floor(bh / h);
    for (let i = 0; i < tq; i++) {
      const visible = (j: number): boolean => !(causal && j > i) && x.keep[bi * tk + j] === 1;
      const s = Array.from({ length: tk }, (_, j) => {
        let dot = 0;
        for (let c2 = 0; c2 < d; c2++) dot += x.q[(bh * tq + i) * d + c2]! * x.k[(bh * tk + j) * d + c2]!;
        return dot * scale;
      });
      let max = -Infinity;
      for (let j = 0; j < tk; j++) if (visible(j)) max = Math.max(max, s[j]!);
      if (max === -Infinity) continue;
      const e = s.map((v, j) => (visible(j) ? Math.exp(v - max) : 0));
      const sum = e.reduce((a, v) => a + v, 0);
      const prob = e.map((v) => v / sum);
      const factor = prob.map((_, j) => {
        const kept = randomU32(seed, (offset + (bh * tq + i) * tk + j) >>> 0) >= threshold;
        if (!kept) dropped++;
        return kept ? keptScale : 0;
      });
      const g = x.weights.subarray((bh * tq + i) * d, (bh * tq + i + 1) * d);
      // dL/dP_j = F_j (g · v_j); softmax backward.
      const dp = prob.map((_, j) => {
        let dot = 0;
        for (let c2 = 0; c2 < d; c2++) dot += g[c2]! * x.v[(bh * tk + j) * d + c2]!;
        return factor[j]! * dot;
      });
      const pdp = prob.reduce((a, pj, j) => a + pj * dp[j]!, 0);
      for (let j = 0; j < tk; j++) {
        const w = prob[j]! * factor[j]!;
        const ds = prob[j]! * (dp[j]! - pdp) * scale;
        for (let c2 = 0; c2 < d; c2++) {
          out[(bh * tq + i) * d + c2] += w * x.v[(bh * tk + j) * d + c2]!;
          dv[(bh * tk + j) * d + c2] += w * g[c2]!;
          dq[(bh * tq + i) * d + c2] += ds * x.k[(bh * tk + j) * d + c2]!;
          dk[(bh * tk + j) * d + c2] += ds * x.q[(bh * tq + i) * d + c2]!;
        }
      }
    }
  }
  return { out, dq, dk, dv, dropped: dropped / (b * h * tq * tk) };
}

/** ops.attention with dropout on `backend`: output and gradients of sum(out ∘ weights). */
function flash(be: Backend, c: Case, x: Inputs): Float64Array[] {
  const { b, h, tq, tk, d, causal, p, seed, offset } = c;
  const q = tensor(x.q, [b, h, tq, d], { backend: be, requiresGrad: true });
  const k = tensor(x.k, [b, h, tk, d], { backend: be, requiresGrad: true });
  const v = tensor(x.v, [b, h, tk, d], { backend: be, requiresGrad: true });
  const keyMask = tensor(x.keep, [b, tk], { dtype: 'u8', backend: be });
  const out = ops.attention(q, k, v, { keyMask, causal, dropout: p, seed, offset });
  out.backward(tensor(x.weights, out.shape, { backend: be }));
  const result = [out.data(), q.grad!.data(), k.grad!.data(), v.grad!.data()].map((a) => Float64Array.from(a));
  for (const t of [q, k, v, keyMask, out]) t.dispose();
  return result;
}

const CASES: Case[] = [
  // Across the kernels' query (48) and key (128) tiles; the offset makes counters wrap.
  { b: 2, h: 2, tq: 70, tk: 140, d: 8, causal: true, p: 0.3, seed: 17, offset: 5 },
  { b: 1, h: 3, tq: 50, tk: 30, d: 16, causal: false, p: 0.6, seed: 0xfffffff0, offset: 0xffffff00 },
];

describeEachBackend('attention dropout', (ctx) => {
  for (const c of CASES) {
    it(`B${c.b} H${c.h} Tq${c.tq} Tk${c.tk} p ${c.p}${c.causal ? ' causal' : ''}: output and gradients equal softmax·mask·v in float64`, () => {
      const x = inputs(c);
      const want = explicit(c, x);
      expect(Math.abs(want.dropped - c.p)).toBeLessThan(0.05);
      const got = flash(ctx.backend, c, x);
      const tol = ctx.backend.name === 'reference' ? 1e-10 : 2e-5;
      for (const [i, what] of ['out', 'dq', 'dk', 'dv'].entries()) {
        expectClose(got[i]!, [want.out, want.dq, want.dk, want.dv][i]!, tol, what);
      }
    });
  }

  it('p = 0 gives the attention without dropout, bit for bit', () => {
    const c = { ...CASES[0]!, p: 0 };
    const x = inputs(c);
    const be = ctx.backend;
    const withZero = flash(be, c, x);
    const q = tensor(x.q, [c.b, c.h, c.tq, c.d], { backend: be });
    const k = tensor(x.k, [c.b, c.h, c.tk, c.d], { backend: be });
    const v = tensor(x.v, [c.b, c.h, c.tk, c.d], { backend: be });
    const keyMask = tensor(x.keep, [c.b, c.tk], { dtype: 'u8', backend: be });
    expect(Array.from(ops.attention(q, k, v, { keyMask, causal: true }).data())).toEqual(Array.from(withZero[0]!));
  });

  it('rejects a bad probability and a missing stream position', () => {
    const t = tensor(new Float32Array(8), [1, 1, 2, 4], { backend: ctx.backend });
    expect(() => ops.attention(t, t, t, { dropout: 1, seed: 1, offset: 0 })).toThrow(ConfigError);
    expect(() => ops.attention(t, t, t, { dropout: -0.1, seed: 1, offset: 0 })).toThrow(/dropout must be in \[0, 1\)/);
    expect(() => ops.attention(t, t, t, { dropout: 0.1 })).toThrow(/seed/);
    expect(() => ops.attention(t, t, t, { dropout: 0.1, seed: 1, offset: -1 })).toThrow(/offset must be a u32/);
  });

  it('nn.MultiheadAttention: dropout in training mode only, drawn from its own stream', () => {
    const be = ctx.backend;
    const [batch, t, e, heads] = [2, 9, 16, 4];
    const mha = new nn.MultiheadAttention(e, heads, { backend: be, rng: new nn.Rng(3), dropout: 0.4 });
    const plain = new nn.MultiheadAttention(e, heads, { backend: be, rng: new nn.Rng(4) });
    plain.loadStateDict(mha.stateDict());
    const x = tensor(randomArray(batch * t * e, 7), [batch, t, e], { backend: be });
    const run = (m: nn.MultiheadAttention): number[] => Array.from(m.forward(x, x, x, { causal: true }).output.data());
    const reference = run(plain);
    const before = mha.attnDropout!.rngState.counter;
    const trained = run(mha);
    // One draw per weight, [B, H, T, T].
    expect(mha.attnDropout!.rngState.counter).toBe(before + batch * heads * t * t);
    expect(trained).not.toEqual(reference);
    // The next call draws another mask.
    expect(run(mha)).not.toEqual(trained);
    // Restoring the stream position repeats the mask.
    mha.attnDropout!.rngState = { seed: mha.attnDropout!.rngState.seed, counter: before };
    expect(run(mha)).toEqual(trained);
    mha.eval();
    const counter = mha.attnDropout!.rngState.counter;
    expect(run(mha)).toEqual(reference);
    expect(mha.attnDropout!.rngState.counter).toBe(counter);
    for (const m of [mha, plain]) m.dispose();
  });
});

describe('models that drop their attention weights', () => {
  const [batch, t, heads] = [2, 6, 2];
  const ids = (be: Backend): Tensor => tensor(Array.from({ length: batch * t }, (_, i) => (i * 7) % 11), [batch, t], { dtype: 'i32', backend: be });
  /** Logits of make(0.5) in training mode differ from make(0)'s (the same weights: both
   * draw the same seeds), are equal in eval mode, and each training call takes B·H·T·T
   * positions of the attention dropout's stream. */
  async function check(make: (p: number) => nn.Module & { forward(ids: Tensor): Tensor | [Tensor, Tensor | null] }): Promise<void> {
    const be = await getBackend('native');
    const logits = (m: ReturnType<typeof make>): number[] => {
      const r = m.forward(ids(be));
      return Array.from((Array.isArray(r) ? r[0] : r).data());
    };
    const [withDrop, without] = [make(0.5), make(0)];
    const stream = (m: nn.Module): nn.Dropout => m.namedModules().find(([name]) => name.endsWith('attn.attn_dropout'))![1] as nn.Dropout;
    const reference = logits(without);
    const before = stream(withDrop).rngState.counter;
    expect(logits(withDrop)).not.toEqual(reference);
    expect(stream(withDrop).rngState.counter).toBe(before + batch * heads * t * t);
    withDrop.eval();
    expect(logits(withDrop)).toEqual(reference);
    withDrop.dispose();
    without.dispose();
  }

  it('GPT-2: attn_pdrop in training mode', async () => {
    const be = await getBackend('native');
    const config = { model_type: 'gpt2', vocab_size: 11, n_positions: 8, n_embd: 8, n_layer: 1, n_head: heads, resid_pdrop: 0, embd_pdrop: 0 };
    await check((p) => new GPT2LMHeadModel({ ...config, attn_pdrop: p }, { backend: be, rng: new nn.Rng(5) }));
  });

  it('examples/nanogpt: attn_dropout in training mode', async () => {
    const be = await getBackend('native');
    // nanoGPT has one dropout for all: the twins differ in the others too, and the stream
    // shows the attention's own draws.
    const config = { block_size: 8, vocab_size: 11, n_layer: 1, n_head: heads, n_embd: 8, bias: true };
    await check((p) => new GPT(GPTConfig({ ...config, dropout: p }), { backend: be, rng: new nn.Rng(5) }));
  });
});

describe('attention dropout across backends', () => {
  let backends: Backend[] = [];
  beforeAll(async () => {
    backends = await Promise.all(selectedBackends().map(getBackend));
  });
  it('native, wasm and reference drop the same weights: outputs and gradients agree', () => {
    const c = CASES[0]!;
    const x = inputs(c);
    const results = backends.map((be) => flash(be, c, x));
    for (const r of results.slice(1)) {
      for (let i = 0; i < 4; i++) expectClose(r[i]!, results[0]![i]!, 2e-5, `${'out dq dk dv'.split(' ')[i]}`);
    }
  });
});

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  expect(got.length, what).toBe(want.length);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const diff = Math.abs(got[i]! - want[i]!);
    worst = Number.isNaN(diff) ? Infinity : Math.max(worst, diff);
  }
  expect(worst / Math.max(scale, 1e-30), what).toBeLessThan(tol);
}
