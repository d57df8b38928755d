// A step decoder hides the model kind and the cache: it takes the new tokens of every row
// and returns next-token logits for each. With the KV cache, the prefix is fed once and
// then one token per step; without it, the whole prefix is recomputed every step (the
// reference the cached path must equal token for token).
import type { Backend } from '../backend/backend.js';
import { noGrad } from '../autograd/tape.js';
import { disposeCache, type AttentionCache } from '../nn/attention.js';
import { DecoderLM, disposeDecodingState, Transformer, type LMDecodingState, type Seq2SeqDecodingState } from '../nn/transformer.js';
import * as ops from '../ops/index.js';
import { ConfigError, checkOptions } from '../tensor/errors.js';
import { tidy } from '../tensor/memory.js';
import { Tensor, tensor } from '../tensor/tensor.js';

/** A decoder-only language model from outside nn (models.GPT2LMHeadModel): the same
 * decoding methods as DecoderLM, with its vocabulary size and padding token as properties. */
export interface CausalLM {
  readonly backend: Backend;
  readonly training: boolean;
  readonly vocabSize: number;
  /** A token generation must never emit, or null. */
  readonly padId: number | null;
  train(mode?: boolean): unknown;
  eval(): unknown;
  forward(ids: Tensor): Tensor;
  startDecoding(): LMDecodingState;
  decodeStep(state: LMDecodingState, tokens: Tensor): Tensor;
}

export type Model = Transformer | DecoderLM | CausalLM;

export interface StepDecoder {
  readonly rows: number;
  readonly vocab: number;
  /** Appends `tokens[r]` to row r and returns the logits after each row's last token. */
  step(tokens: readonly (readonly number[])[]): Float32Array[];
  /** Keeps rows `indices` (in that order, repeats allowed): beam search's reordering. */
  select(indices: readonly number[]): void;
  dispose(): void;
}

function idsTensor(rows: readonly (readonly number[])[], backend: Backend): Tensor {
  const t = rows[0]?.length ?? 0;
  if (rows.some((r) => r.length !== t)) throw new ConfigError('generate', 'rows must advance by the same number of tokens');
  const data = new Int32Array(rows.length * t);
  rows.forEach((r, i) => data.set(r, i * t));
  return tensor(data, [rows.length, t], { dtype: 'i32', backend });
}

/** Host copies of the logits at the last position of each row: logits [B, T, V]. */
function lastLogits(logits: Tensor): Float32Array[] {
  const [b, t, v] = logits.shape as [number, number, number];
  const all = logits.data();
  return Array.from({ length: b }, (_, i) => Float32Array.from(all.subarray((i * t + t - 1) * v, (i * t + t) * v)));
}

function selectRows(x: Tensor, indices: readonly number[]): Tensor {
  const idx = tensor(indices, [indices.length], { dtype: 'i32', backend: x.backend });
  const out = ops.indexSelect(x, idx);
  idx.dispose();
  return out;
}

function selectCache(cache: AttentionCache, indices: readonly number[]): void {
  if (cache.k === null || cache.v === null) return;
  const k = selectRows(cache.k, indices).keep();
  const v = selectRows(cache.v, indices).keep();
  disposeCache(cache);
  cache.k = k;
  cache.v = v;
}

/** `src` [B, Ts] (i32) for an encoder-decoder, or null for a decoder-only LM. */
export function stepDecoder(model: Model, src: Tensor | null, options: { useCache?: boolean } = {}): StepDecoder {
  checkOptions('stepDecoder', options, ['useCache', 'maxTokens', 'bosId', 'eosId', 'temperature', 'topK', 'topP', 'seed', 'beamSize', 'lengthPenalty']);
  const useCache = options.useCache ?? true;
  const backend = model.backend;
  const vocab = model instanceof Transformer ? model.config.tgtVocab : model instanceof DecoderLM ? model.config.vocab : model.vocabSize;
  if (model instanceof Transformer && src === null) throw new ConfigError('generate', 'an encoder-decoder needs source ids');
  let rows = src ? src.shape[0]! : 0;
  let prefixes: number[][] | null = null; // without cache: every row's tokens so far
  let source = src;
  let state: Seq2SeqDecodingState | LMDecodingState | null = null;
  const wasTraining = model.training;
  model.eval();

  const run = (tokens: readonly (readonly number[])[]): Float32Array[] =>
    noGrad(() =>
      tidy(() => {
        if (rows === 0) rows = tokens.length;
        if (tokens.length !== rows) throw new ConfigError('generate', `expected ${rows} rows of tokens, got ${tokens.length}`);
        if (useCache) {
          if (state === null) state = model instanceof Transformer ? model.startDecoding(source!) : model.startDecoding();
          const ids = idsTensor(tokens, backend);
          const logits = model instanceof Transformer ? model.decodeStep(state as Seq2SeqDecodingState, ids) : model.decodeStep(state as LMDecodingState, ids);
          return lastLogits(logits);
        }
        prefixes = prefixes === null ? tokens.map((r) => [...r]) : prefixes.map((p, i) => [...p, ...tokens[i]!]);
        const ids = idsTensor(prefixes, backend);
        const logits = model instanceof Transformer ? model.forward(source!, ids) : model.forward(ids);
        return lastLogits(logits);
      }),
    );

  return {
    get rows() {
      return rows;
    },
    vocab,
    step: run,
    select(indices) {
      noGrad(() => {
        if (prefixes !== null) prefixes = indices.map((i) => [...prefixes![i]!]);
        if (source !== null && (source.shape[0] !== indices.length || indices.some((v, i) => v !== i))) {
          const old = source;
          source = tensor(Array.from(indices, (i) => Array.from(old.data().subarray(i * old.shape[1]!, (i + 1) * old.shape[1]!))).flat(), [indices.length, old.shape[1]!], { dtype: 'i32', backend });
          if (old !== src) old.dispose();
        }
        if (state !== null) {
          if ('memory' in state) {
            const s = state;
            const memory = selectRows(s.memory, indices).keep();
            s.memory.dispose();
            s.memory = memory;
            if (s.memoryKeyMask) {
              const m = s.memoryKeyMask.data();
              const t = s.memoryKeyMask.shape[1]!;
              const picked = indices.flatMap((i) => Array.from(m.subarray(i * t, (i + 1) * t)));
              s.memoryKeyMask.dispose();
              s.memoryKeyMask = tensor(picked, [indices.length, t], { dtype: 'u8', backend }).keep();
            }
            for (const c of s.caches) {
              selectCache(c.self, indices);
              selectCache(c.cross, indices);
            }
          } else {
            for (const c of state.caches) selectCache(c, indices);
          }
        }
        rows = indices.length;
      });
    },
    dispose() {
      if (state !== null) disposeDecodingState(state);
      if (source !== null && source !== src) source.dispose();
      state = null;
      model.train(wasTraining);
    },
  };
}
