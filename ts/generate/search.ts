// Decoding strategies over a StepDecoder: greedy, sampling (temperature, top-k, top-p) and
// beam search with GNMT's length penalty. Both model kinds: an encoder-decoder starts every
// row from [BOS]; a decoder-only LM from its prompt.
import { Rng } from '../nn/init.js';
import { DecoderLM, Transformer } from '../nn/transformer.js';
import { ConfigError, checkOptions } from '../tensor/errors.js';
import { Tensor, tensor } from '../tensor/tensor.js';
import { stepDecoder, type Model, type StepDecoder } from './decoders.js';

export interface GenerateOptions {
  /** Tokens to generate at most (EOS included). */
  maxTokens: number;
  /** Start token of the decoder (encoder-decoder only). */
  bosId?: number;
  /** Generation of a row stops after this token. */
  eosId?: number | null;
  /** Reuse keys and values of earlier positions (default true). */
  useCache?: boolean;
}

export interface SampleOptions extends GenerateOptions {
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
}

export interface BeamOptions extends GenerateOptions {
  beamSize: number;
  /** GNMT's alpha: scores are log P / ((5 + n) / 6)^alpha (0 = raw log-probability). */
  lengthPenalty?: number;
}

export interface Hypothesis {
  /** Generated tokens (without BOS or the prompt; EOS included when reached). */
  tokens: number[];
  /** Sum of log-probabilities of the tokens. */
  logProb: number;
  /** logProb under the length penalty (what beam search ranks by). */
  score: number;
}

/** Source ids [B, Ts] (Transformer) or prompts (DecoderLM), as the decoder's input. */
export type GenerateInput = Tensor | readonly (readonly number[])[];

/** The decoder and each row's first tokens; `decoder.dispose()` also frees a source tensor
 * made here from arrays. */
function prepare(model: Model, input: GenerateInput, options: GenerateOptions): { decoder: StepDecoder; prefixes: number[][] } {
  if (!(Number.isInteger(options.maxTokens) && options.maxTokens >= 1)) {
    throw new ConfigError('generate', `maxTokens must be a positive integer, got ${options.maxTokens}`);
  }
  if (model instanceof Transformer) {
    const src = input instanceof Tensor ? input : tensor((input as number[][]).flat(), [input.length, input[0]?.length ?? 0], { dtype: 'i32', backend: model.backend });
    if (options.bosId === undefined) throw new ConfigError('generate', 'an encoder-decoder needs bosId');
    const inner = stepDecoder(model, src, options);
    const decoder: StepDecoder = src === input ? inner : Object.assign(Object.create(inner) as StepDecoder, {
      dispose: () => {
        inner.dispose();
        src.dispose();
      },
    });
    return { decoder, prefixes: Array.from({ length: src.shape[0]! }, () => [options.bosId!]) };
  }
  if (input instanceof Tensor) throw new ConfigError('generate', 'a decoder-only model takes prompts as arrays of ids');
  const prompts = input.map((p) => [...p]);
  if (prompts.length === 0 || prompts[0]!.length === 0 || prompts.some((p) => p.length !== prompts[0]!.length)) {
    throw new ConfigError('generate', 'prompts must be non-empty and of equal length');
  }
  return { decoder: stepDecoder(model, null, options), prefixes: prompts };
}

/** Log-probabilities over the vocabulary; `banned` tokens (padding: a model must never
 * emit it, and the full-recomputation path would mask it as a key) get -Infinity. */
export function logSoftmax(logits: Float32Array, banned: number | null = null): Float64Array {
  let max = -Infinity;
  logits.forEach((x, i) => {
    if (i !== banned) max = Math.max(max, x);
  });
  let sum = 0;
  logits.forEach((x, i) => {
    if (i !== banned) sum += Math.exp(x - max);
  });
  const lse = max + Math.log(sum);
  return Float64Array.from(logits, (x, i) => (i === banned ? -Infinity : x - lse));
}

function padOf(model: Model): number | null {
  return model instanceof Transformer || model instanceof DecoderLM ? model.config.padId : model.padId;
}

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** Runs `pick` per row until every row has emitted EOS or maxTokens tokens. */
function decodeRows(model: Model, input: GenerateInput, options: GenerateOptions, pick: (logProbs: Float64Array) => number): Hypothesis[] {
  const { decoder, prefixes } = prepare(model, input, options);
  const eos = options.eosId ?? null;
  const out: Hypothesis[] = prefixes.map(() => ({ tokens: [], logProb: 0, score: 0 }));
  const done = prefixes.map(() => false);
  try {
    let next: number[][] = prefixes;
    for (let step = 0; step < options.maxTokens && done.includes(false); step++) {
      const logits = decoder.step(next);
      next = logits.map((l, r) => {
        // Finished rows keep stepping (the batch advances together) but their picks are dropped.
        const lp = logSoftmax(l, padOf(model));
        const token = pick(lp);
        if (!done[r]) {
          out[r]!.tokens.push(token);
          out[r]!.logProb += lp[token]!;
          if (token === eos) done[r] = true;
        }
        return [token];
      });
    }
  } finally {
    decoder.dispose();
  }
  for (const h of out) h.score = h.logProb;
  return out;
}

const GENERATE_KEYS = ['maxTokens', 'bosId', 'eosId', 'useCache'] as const satisfies readonly (keyof GenerateOptions)[];
const SAMPLE_KEYS = [...GENERATE_KEYS, 'temperature', 'topK', 'topP', 'seed'] as const satisfies readonly (keyof SampleOptions)[];
const BEAM_KEYS = [...GENERATE_KEYS, 'beamSize', 'lengthPenalty'] as const satisfies readonly (keyof BeamOptions)[];

export function greedy(model: Model, input: GenerateInput, options: GenerateOptions): Hypothesis[] {
  checkOptions('greedy', options, GENERATE_KEYS, ['maxTokens']);
  return decodeRows(model, input, options, argmax);
}

/** Samples from softmax(logits / temperature), restricted to the top-k tokens and to the
 * smallest set whose probability reaches top-p; seeded, so reproducible. */
export function sample(model: Model, input: GenerateInput, options: SampleOptions): Hypothesis[] {
  checkOptions('sample', options, SAMPLE_KEYS, ['maxTokens']);
  const temperature = options.temperature ?? 1;
  const topK = options.topK ?? 0;
  const topP = options.topP ?? 1;
  if (!(temperature > 0)) throw new ConfigError('sample', `temperature must be positive, got ${temperature}`);
  if (!(Number.isInteger(topK) && topK >= 0)) throw new ConfigError('sample', `topK must be a non-negative integer, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new ConfigError('sample', `topP must be in (0, 1], got ${topP}`);
  const rng = new Rng(options.seed ?? 0);
  return decodeRows(model, input, options, (logProbs) => {
    const order = Array.from(logProbs.keys()).sort((a, b) => logProbs[b]! - logProbs[a]! || a - b);
    const kept = topK > 0 ? order.slice(0, topK) : order;
    const weights = kept.map((i) => Math.exp(logProbs[i]! / temperature));
    const total = weights.reduce((s, w) => s + w, 0);
    let cut = kept.length;
    let cumulative = 0;
    for (let i = 0; i < kept.length; i++) {
      cumulative += weights[i]! / total;
      if (cumulative >= topP) {
        cut = i + 1;
        break;
      }
    }
    const mass = weights.slice(0, cut).reduce((s, w) => s + w, 0);
    let u = rng.next() * mass;
    for (let i = 0; i < cut; i++) {
      u -= weights[i]!;
      if (u <= 0) return kept[i]!;
    }
    return kept[cut - 1]!;
  });
}

export function lengthPenalty(length: number, alpha: number): number {
  return alpha === 0 ? 1 : ((5 + length) / 6) ** alpha;
}

/** Beam search per input row: keeps the beamSize best partial hypotheses by log-probability,
 * sets aside those that end in EOS, and returns the best by length-penalised score. */
export function beamSearch(model: Model, input: GenerateInput, options: BeamOptions): Hypothesis[] {
  checkOptions('beamSearch', options, BEAM_KEYS, ['maxTokens', 'beamSize']);
  const beamSize = options.beamSize;
  if (!(Number.isInteger(beamSize) && beamSize >= 1)) throw new ConfigError('beamSearch', `beamSize must be a positive integer, got ${beamSize}`);
  const alpha = options.lengthPenalty ?? 0;
  const eos = options.eosId ?? null;
  const rowsInput: GenerateInput[] = input instanceof Tensor
    ? Array.from({ length: input.shape[0]! }, (_, r) => [Array.from(input.data().subarray(r * input.shape[1]!, (r + 1) * input.shape[1]!))])
    : input.map((row) => [row]);
  return rowsInput.map((single) => {
    const { decoder, prefixes } = prepare(model, single, options);
    const finished: Hypothesis[] = [];
    let beams: Hypothesis[] = [{ tokens: [], logProb: 0, score: 0 }];
    try {
      let next: number[][] = prefixes;
      for (let step = 0; step < options.maxTokens && beams.length > 0; step++) {
        const logits = decoder.step(next);
        const candidates: { from: number; token: number; logProb: number }[] = [];
        logits.forEach((l, b) => {
          const lp = logSoftmax(l, padOf(model));
          for (let t = 0; t < lp.length; t++) if (lp[t] !== -Infinity) candidates.push({ from: b, token: t, logProb: beams[b]!.logProb + lp[t]! });
        });
        candidates.sort((a, b) => b.logProb - a.logProb || a.from - b.from || a.token - b.token);
        const alive: { from: number; token: number; logProb: number }[] = [];
        for (const c of candidates) {
          if (alive.length >= beamSize) break;
          const tokens = [...beams[c.from]!.tokens, c.token];
          if (c.token === eos || step === options.maxTokens - 1) {
            finished.push({ tokens, logProb: c.logProb, score: c.logProb / lengthPenalty(tokens.length, alpha) });
          }
          if (c.token !== eos) alive.push(c);
        }
        // Once beamSize hypotheses are finished and none alive can beat the best of them
        // (log-probabilities only fall), stop early.
        const best = Math.max(...finished.map((h) => h.score));
        const bound = Math.max(...alive.map((c) => c.logProb / lengthPenalty(options.maxTokens, alpha)), -Infinity);
        beams = alive.map((c) => ({ tokens: [...beams[c.from]!.tokens, c.token], logProb: c.logProb, score: 0 }));
        if (alpha === 0 && finished.length >= beamSize && bound <= best) break;
        if (beams.length === 0) break;
        decoder.select(alive.map((c) => c.from));
        next = alive.map((c) => [c.token]);
      }
    } finally {
      decoder.dispose();
    }
    finished.sort((a, b) => b.score - a.score);
    return finished[0] ?? { tokens: [], logProb: 0, score: 0 };
  });
}
