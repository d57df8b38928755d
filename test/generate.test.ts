// Generation on every backend: KV-cache decoding equals full recomputation token for token,
// and beam search finds the same best sequence as exhaustive search on a tiny model.
import { expect, it } from 'vitest';
import * as generate from '../ts/generate/index.js';
import * as nn from '../ts/nn/index.js';
import * as ops from '../ts/ops/index.js';
import { noGrad } from '../ts/autograd/tape.js';
import { tensor } from '../ts/tensor/tensor.js';
import { describeEachBackend } from './helpers/backends.js';

const BOS = 1;
const EOS = 2;

function tinyTransformer(backend: nn.Module['backend'], vocab: number, seed: number): nn.Transformer {
  return new nn.Transformer({ srcVocab: vocab, tgtVocab: vocab, dModel: 16, nHeads: 2, numEncoderLayers: 2, numDecoderLayers: 2, dFF: 32, dropout: 0.1, padId: 0, maxLen: 16 }, { backend, rng: new nn.Rng(seed) });
}

function tinyLM(backend: nn.Module['backend'], vocab: number, seed: number, normFirst: boolean): nn.DecoderLM {
  return new nn.DecoderLM({ vocab, dModel: 16, nHeads: 4, numLayers: 2, dFF: 32, dropout: 0.1, normFirst, maxLen: 16 }, { backend, rng: new nn.Rng(seed) });
}

/** Log-probability of `tokens` after [BOS] by one teacher-forced forward pass. */
function sequenceLogProb(model: nn.Transformer, src: number[], tokens: number[]): number {
  return noGrad(() => {
    const b = model.backend;
    const s = tensor(src, [1, src.length], { dtype: 'i32', backend: b });
    const input = [BOS, ...tokens.slice(0, -1)];
    const logits = model.forward(s, tensor(input, [1, input.length], { dtype: 'i32', backend: b }));
    const v = logits.shape[2]!;
    const data = logits.data();
    let total = 0;
    tokens.forEach((t, i) => {
      total += generate.logSoftmax(Float32Array.from(data.subarray(i * v, (i + 1) * v)), model.config.padId)[t]!;
    });
    return total;
  });
}

describeEachBackend('generate', (ctx) => {
  it('encoder-decoder: KV-cache greedy and sampling equal full recomputation', () => {
    const model = tinyTransformer(ctx.backend, 9, 7);
    const src = [[3, 4, 5, 6, 7, 0], [8, 3, 3, 5, 0, 0], [4, 4, 4, 4, 4, 4]];
    const options = { maxTokens: 10, bosId: BOS, eosId: EOS };
    const cached = generate.greedy(model, src, options);
    const full = generate.greedy(model, src, { ...options, useCache: false });
    expect(cached.map((h) => h.tokens)).toEqual(full.map((h) => h.tokens));
    cached.forEach((h, i) => expect(Math.abs(h.logProb - full[i]!.logProb)).toBeLessThan(1e-4));
    expect(cached[0]!.tokens.length).toBeGreaterThan(0);
    const s1 = generate.sample(model, src, { ...options, seed: 3, temperature: 1.5, topK: 5, topP: 0.9 });
    const s2 = generate.sample(model, src, { ...options, seed: 3, temperature: 1.5, topK: 5, topP: 0.9, useCache: false });
    expect(s1.map((h) => h.tokens)).toEqual(s2.map((h) => h.tokens));
    expect(model.training).toBe(true); // generation restores the mode
  });

  for (const normFirst of [true, false]) {
    it(`decoder-only (${normFirst ? 'pre' : 'post'}-LN): KV-cache decoding equals full decoding`, () => {
      const model = tinyLM(ctx.backend, 11, 5, normFirst);
      const prompts = [[1, 5, 6], [1, 9, 9]];
      const cached = generate.greedy(model, prompts, { maxTokens: 12 });
      const full = generate.greedy(model, prompts, { maxTokens: 12, useCache: false });
      expect(cached.map((h) => h.tokens)).toEqual(full.map((h) => h.tokens));
      expect(cached[0]!.tokens).toHaveLength(12);
      const beamCached = generate.beamSearch(model, prompts, { maxTokens: 5, beamSize: 3, eosId: 2 });
      const beamFull = generate.beamSearch(model, prompts, { maxTokens: 5, beamSize: 3, eosId: 2, useCache: false });
      expect(beamCached.map((h) => h.tokens)).toEqual(beamFull.map((h) => h.tokens));
    });
  }

  for (const alpha of [0, 0.6]) {
    it(`beam search returns the exhaustive-search best (length penalty ${alpha})`, () => {
      const vocab = 5; // pad, BOS, EOS, two symbols: with maxTokens 4 every sequence is enumerable
      const model = tinyTransformer(ctx.backend, vocab, 11).eval();
      const src = [3, 3, 3];
      const maxTokens = 4;
      const all: number[][] = [];
      const extend = (prefix: number[]) => {
        for (let t = 1; t < vocab; t++) {
          // (0 is padding, which generation never emits)
          const seq = [...prefix, t];
          if (t === EOS || seq.length === maxTokens) all.push(seq);
          else extend(seq);
        }
      };
      extend([]);
      let best = { tokens: [] as number[], score: -Infinity };
      for (const tokens of all) {
        const score = sequenceLogProb(model, src, tokens) / generate.lengthPenalty(tokens.length, alpha);
        if (score > best.score) best = { tokens, score };
      }
      const [found] = generate.beamSearch(model, [src], { maxTokens, beamSize: vocab ** (maxTokens - 1), bosId: BOS, eosId: EOS, lengthPenalty: alpha });
      expect(found!.tokens).toEqual(best.tokens);
      expect(Math.abs(found!.score - best.score)).toBeLessThan(1e-4);
    });
  }

  it('concat and indexSelect pass gradients back', () => {
    const a = tensor([1, 2, 3, 4], [2, 2], { backend: ctx.backend, requiresGrad: true });
    const b = tensor([5, 6], [1, 2], { backend: ctx.backend, requiresGrad: true });
    const c = ops.concat(a, b, 0);
    expect(c.toArray()).toEqual([1, 2, 3, 4, 5, 6]);
    const picked = ops.indexSelect(c, tensor([2, 0, 2], [3], { dtype: 'i32', backend: ctx.backend }));
    expect(picked.toArray()).toEqual([5, 6, 1, 2, 5, 6]);
    picked.backward(tensor([1, 1, 1, 1, 1, 1], [3, 2], { backend: ctx.backend }));
    expect(a.grad!.toArray()).toEqual([1, 1, 0, 0]);
    expect(b.grad!.toArray()).toEqual([2, 2]);
  });
});
