// The weights attentionWithProbs and MultiheadAttention(needWeights) return under dropout are
// the ones the output was computed from, as PyTorch's multi_head_attention_forward returns
// them: dropped weights 0, kept ones scaled by 1/(1-p), so output = weights @ v. The flash
// kernel never materialises them; these tests check that the TS side drops the same ones.
import { expect, it } from 'vitest';
import * as nn from '../ts/nn/index.js';
import * as ops from '../ts/ops/index.js';
import { tensor, type Tensor } from '../ts/tensor/tensor.js';
import { describeEachBackend } from './helpers/backends.js';
import { randomArray } from './helpers/naive.js';

describeEachBackend('attention weights under dropout', (ctx) => {
  // Tq 150 and Tk 150 cross the kernels' query (48) and key (128) tiles.
  const [b, h, t, d] = [2, 2, 150, 8];
  const p = 0.3;

  it('attentionWithProbs: output = probs @ v, probs = the p = 0 weights dropped and scaled by 1/(1-p)', () => {
    const be = ctx.backend;
    const make = (seed: number): Tensor => tensor(randomArray(b * h * t * d, seed), [b, h, t, d], { backend: be });
    const [q, k, v] = [make(11), make(12), make(13)];
    const keyMask = tensor(Array.from({ length: b * t }, (_, i) => (i % t) % 7 === 6 ? 0 : 1), [b, t], { dtype: 'u8', backend: be });
    const options = { keyMask, causal: true, dropout: p, seed: 77, offset: 1000 };
    const dropped = ops.attentionWithProbs(q, k, v, options);
    const plain = ops.attentionWithProbs(q, k, v, { keyMask, causal: true });

    const recomposed = ops.matmul(dropped.probs, v).data();
    const out = dropped.output.data();
    let scale = 0;
    let worst = 0;
    for (let i = 0; i < out.length; i++) {
      scale = Math.max(scale, Math.abs(out[i]!));
      worst = Math.max(worst, Math.abs(recomposed[i]! - out[i]!));
    }
    expect(worst / scale).toBeLessThan(1e-5);

    const got = dropped.probs.data();
    const want = plain.probs.data();
    let attended = 0;
    let zeroed = 0;
    const wrong: string[] = [];
    for (let i = 0; i < got.length; i++) {
      if (want[i] === 0) {
        if (got[i] !== 0) wrong.push(`${i}: masked weight ${got[i]}`);
        continue;
      }
      attended++;
      if (got[i] === 0) zeroed++;
      else if (Math.abs(got[i]! / want[i]! - 1 / (1 - p)) > 1e-5) wrong.push(`${i}: ${got[i]} is not ${want[i]} / (1 - ${p})`);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    // About p of the attended weights are dropped (tens of thousands of draws).
    expect(zeroed / attended).toBeGreaterThan(p - 0.02);
    expect(zeroed / attended).toBeLessThan(p + 0.02);
    for (const x of [q, k, v, keyMask, dropped.output, dropped.probs, plain.output, plain.probs]) x.dispose();
  });

  it('MultiheadAttention(needWeights): training-mode weights are the eval weights with dropout applied, eval rows sum to 1', () => {
    const be = ctx.backend;
    const [embed, heads, len] = [16, 4, 20];
    nn.manualSeed(5);
    const mha = new nn.MultiheadAttention(embed, heads, { dropout: 0.5, backend: be });
    const x = tensor(randomArray(b * len * embed, 21), [b, len, embed], { backend: be });
    mha.eval();
    const evalWeights = mha.forward(x, x, x, { causal: true, needWeights: true }).weights!.data();
    mha.train();
    const trainWeights = mha.forward(x, x, x, { causal: true, needWeights: true }).weights!.data();
    let attended = 0;
    let zeroed = 0;
    const wrong: string[] = [];
    for (let r = 0; r < b * heads * len; r++) {
      let rowSum = 0;
      for (let j = 0; j < len; j++) {
        const i = r * len + j;
        rowSum += evalWeights[i]!;
        if (evalWeights[i] === 0) continue;
        attended++;
        if (trainWeights[i] === 0) zeroed++;
        else if (Math.abs(trainWeights[i]! / evalWeights[i]! - 2) > 1e-5) wrong.push(`${i}: ${trainWeights[i]} is not 2 x ${evalWeights[i]}`);
      }
      if (Math.abs(rowSum - 1) > 1e-5) wrong.push(`eval row ${r} sums to ${rowSum}`);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(zeroed).toBeGreaterThan(attended * 0.4);
    expect(zeroed).toBeLessThan(attended * 0.6);
    mha.dispose();
    x.dispose();
  });
});
