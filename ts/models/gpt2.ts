// GPT-2 with Hugging Face's names and files: `GPT2LMHeadModel.fromPretrained(folder | files |
// URL | 'owner/name')` reads config.json and model.safetensors as `save_pretrained` writes
// them, and `savePretrained(dir)` writes a folder `transformers` loads back.
//
// Parameter names are transformers' (`transformer.h.0.attn.c_attn.weight`, ...). Its Conv1D
// layers store weights [in, out], the transpose of nn.Linear; here every projection is kept
// in nn.Linear's layout [out, in] so it runs through the fused linear kernel (product, bias
// and activation in one call), and the files are transposed on the way in and out. Tensor
// shapes in comments: B batch, T positions, E n_embd, H n_head, D = E / H, V vocab_size.
import type { Backend } from '../backend/backend.js';
import { nodeBuiltin } from '../backend/node_builtin.js';
import { getDefaultBackend } from '../backend/registry.js';
import { type SafetensorsHeader, type SafetensorsTensor, writeSafetensors } from '../io/safetensors.js';
import { appendToCache, disposeCache, emptyCache, type AttentionCache } from '../nn/attention.js';
import { defaultRng, type Rng } from '../nn/init.js';
import { Dropout, LayerNorm } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import type { LMDecodingState } from '../nn/transformer.js';
import * as ops from '../ops/index.js';
import { ConfigError, FormatError, ShapeError } from '../tensor/errors.js';
import { Tensor, tensor, type Shape } from '../tensor/tensor.js';
import { writeFileAtomic } from '../train/checkpoint_file.js';
import { HFTokenizer } from '../tokenizers/hf.js';
import { streamSafetensors, type LoadStats, type WeightTarget } from './weights_stream.js';
import type { HubOptions } from './hub.js';
import { openPretrained, type PretrainedSource, type PretrainedFiles } from './sources.js';

/** config.json fields the model reads (transformers' GPT2Config names); others are kept
 * as they were and written back by savePretrained. */
export interface GPT2Config {
  vocab_size: number;
  n_positions: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  /** Feed-forward width; null = 4 * n_embd. */
  n_inner: number | null;
  activation_function: string;
  resid_pdrop: number;
  embd_pdrop: number;
  attn_pdrop: number;
  layer_norm_epsilon: number;
  initializer_range: number;
  scale_attn_weights: boolean;
  scale_attn_by_inverse_layer_idx: boolean;
  tie_word_embeddings: boolean;
  bos_token_id: number | null;
  eos_token_id: number | null;
  [key: string]: unknown;
}

/** GPT2Config's defaults (transformers), for fields a config.json leaves out. */
export const GPT2_DEFAULTS: Readonly<GPT2Config> = {
  vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12, n_inner: null,
  activation_function: 'gelu_new', resid_pdrop: 0.1, embd_pdrop: 0.1, attn_pdrop: 0.1, layer_norm_epsilon: 1e-5,
  initializer_range: 0.02, scale_attn_weights: true, scale_attn_by_inverse_layer_idx: false, tie_word_embeddings: true,
  bos_token_id: 50256, eos_token_id: 50256,
};

type KernelActivation = 'gelu_tanh' | 'gelu' | 'relu' | null;

/** transformers' ACT2FN names our kernels compute exactly. gelu_new, gelu_pytorch_tanh,
 * gelu_fast and gelu_accurate are one formula, 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))
 * (gelu_fast writes it x·c·(1 + 0.044715x²)); gelu and gelu_python are the erf form. */
const ACTIVATIONS: Readonly<Record<string, KernelActivation>> = {
  gelu_new: 'gelu_tanh', gelu_pytorch_tanh: 'gelu_tanh', gelu_fast: 'gelu_tanh', gelu_accurate: 'gelu_tanh',
  gelu: 'gelu', gelu_python: 'gelu', relu: 'relu', linear: null,
};

/** Names of the Conv1D projections, whose weights are stored [in, out]. */
const CONV1D = /\.(c_attn|c_proj|c_fc)\.weight$/;
/** Buffers older checkpoints carry beside the weights (the causal mask), not parameters. */
const BUFFER = /\.attn\.(bias|masked_bias)$/;

const requireInt = (name: string, v: unknown, min: number): number => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new ConfigError('GPT2Config', `${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return v;
};

/** Validates a config.json object (transformers' names) and fills GPT2Config's defaults. */
export function gpt2Config(json: Record<string, unknown>): GPT2Config {
  if (json['model_type'] !== undefined && json['model_type'] !== 'gpt2') {
    throw new ConfigError('GPT2Config', `model_type is ${JSON.stringify(json['model_type'])}; this class reads GPT-2 ('gpt2') checkpoints`);
  }
  const c = { ...GPT2_DEFAULTS, ...json } as GPT2Config;
  for (const [name, min] of [['vocab_size', 1], ['n_positions', 1], ['n_embd', 1], ['n_layer', 0], ['n_head', 1]] as const) requireInt(name, c[name], min);
  if (c.n_inner !== null) requireInt('n_inner', c.n_inner, 1);
  if (c.n_embd % c.n_head !== 0) throw new ConfigError('GPT2Config', `n_embd ${c.n_embd} must be divisible by n_head ${c.n_head}`);
  if (!Object.prototype.hasOwnProperty.call(ACTIVATIONS, c.activation_function)) {
    throw new ConfigError('GPT2Config', `activation_function ${JSON.stringify(c.activation_function)} is not supported; supported: ${Object.keys(ACTIVATIONS).join(', ')}`);
  }
  if (!(c.layer_norm_epsilon > 0)) throw new ConfigError('GPT2Config', `layer_norm_epsilon must be positive, got ${c.layer_norm_epsilon}`);
  for (const p of ['resid_pdrop', 'embd_pdrop', 'attn_pdrop'] as const) {
    if (!(c[p] >= 0 && c[p] < 1)) throw new ConfigError('GPT2Config', `${p} must be in [0, 1), got ${c[p]}`);
  }
  if (json['add_cross_attention'] === true) throw new ConfigError('GPT2Config', 'add_cross_attention (GPT-2 as a decoder of an encoder-decoder) is not supported');
  return c;
}

/** A zero-filled parameter (loading fills it; fromConfig initialises it). */
function parameter(backend: Backend, shape: Shape): Tensor {
  return new Tensor(backend.alloc('f32', shape.reduce((a, b) => a * b, 1)), shape, backend, { requiresGrad: true });
}

/** A projection in nn.Linear's layout: weight [out, in], bias [out]. */
class Projection extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(inFeatures: number, outFeatures: number, backend: Backend) {
    super(backend);
    this.weight = this.registerParameter('weight', parameter(backend, [outFeatures, inFeatures]));
    this.bias = this.registerParameter('bias', parameter(backend, [outFeatures]));
  }
  forward(x: Tensor, activation: KernelActivation = null): Tensor {
    return ops.linear(x, this.weight, this.bias, { activation });
  }
}

/** A lookup table [rows, E] (wte, wpe). */
class Table extends Module {
  readonly weight: Tensor;
  constructor(rows: number, dim: number, backend: Backend) {
    super(backend);
    this.weight = this.registerParameter('weight', parameter(backend, [rows, dim]));
  }
}

/** Causal self-attention: c_attn [E -> 3E] (q; k; v), heads, c_proj [E -> E]. */
class GPT2Attention extends Module {
  readonly c_attn: Projection;
  readonly c_proj: Projection;
  readonly attn_dropout: Dropout;
  readonly resid_dropout: Dropout;
  private readonly heads: number;
  private readonly scale: number;
  constructor(config: GPT2Config, layerIndex: number, backend: Backend, rng: Rng) {
    super(backend);
    const e = config.n_embd;
    this.c_attn = this.registerModule('c_attn', new Projection(e, 3 * e, backend));
    this.c_proj = this.registerModule('c_proj', new Projection(e, e, backend));
    this.attn_dropout = this.registerModule('attn_dropout', new Dropout(config.attn_pdrop, { backend, rng }));
    this.resid_dropout = this.registerModule('resid_dropout', new Dropout(config.resid_pdrop, { backend, rng }));
    this.heads = config.n_head;
    // transformers' _attn: scores / sqrt(D) when scale_attn_weights, and / (layer_idx + 1)
    // when scale_attn_by_inverse_layer_idx.
    let scale = config.scale_attn_weights ? 1 / Math.sqrt(e / config.n_head) : 1;
    if (config.scale_attn_by_inverse_layer_idx) scale /= layerIndex + 1;
    this.scale = scale;
  }

  /** x [B, T, E] -> [B, T, E]. With a cache, keys and values of earlier positions are
   * reused and this call's appended (the prompt first, then one position at a time). */
  forward(x: Tensor, cache?: AttentionCache): Tensor {
    const [b, t, e] = x.shape as [number, number, number];
    const d = e / this.heads;
    const qkv = this.c_attn.forward(x); // [B, T, 3E]
    // [B, T, E] slice -> [B, H, T, D]
    const split = (i: number): Tensor => ops.transpose12(ops.reshape(ops.narrow(qkv, 2, i * e, e), [b, t, this.heads, d]));
    const q = split(0);
    let k = split(1);
    let v = split(2);
    let causal = true;
    if (cache !== undefined) ({ k, v, causal } = appendToCache('GPT2Attention', cache, k, v, t, causal));
    // attn_pdrop on the weights [B, H, T, Tk] in training mode, inside the kernel.
    const heads = ops.attention(q, k, v, { causal, scale: this.scale, ...this.attn_dropout.forAttention(b * this.heads * t * k.shape[2]!) });
    const merged = ops.reshape(ops.transpose12(heads), [b, t, e]);
    return this.resid_dropout.forward(this.c_proj.forward(merged));
  }
}

/** c_fc [E -> n_inner] with the activation fused, c_proj [n_inner -> E]. */
class GPT2MLP extends Module {
  readonly c_fc: Projection;
  readonly c_proj: Projection;
  readonly dropout: Dropout;
  private readonly activation: KernelActivation;
  constructor(config: GPT2Config, backend: Backend, rng: Rng) {
    super(backend);
    const inner = config.n_inner ?? 4 * config.n_embd;
    this.c_fc = this.registerModule('c_fc', new Projection(config.n_embd, inner, backend));
    this.c_proj = this.registerModule('c_proj', new Projection(inner, config.n_embd, backend));
    this.dropout = this.registerModule('dropout', new Dropout(config.resid_pdrop, { backend, rng }));
    this.activation = ACTIVATIONS[config.activation_function]!;
  }
  forward(x: Tensor): Tensor {
    return this.dropout.forward(this.c_proj.forward(this.c_fc.forward(x, this.activation)));
  }
}

/** Pre-LN block: x + attn(ln_1(x)), then + mlp(ln_2(x)). */
class GPT2Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: GPT2Attention;
  readonly ln_2: LayerNorm;
  readonly mlp: GPT2MLP;
  constructor(config: GPT2Config, layerIndex: number, backend: Backend, rng: Rng) {
    super(backend);
    this.ln_1 = this.registerModule('ln_1', new LayerNorm(config.n_embd, config.layer_norm_epsilon, { backend }));
    this.attn = this.registerModule('attn', new GPT2Attention(config, layerIndex, backend, rng));
    this.ln_2 = this.registerModule('ln_2', new LayerNorm(config.n_embd, config.layer_norm_epsilon, { backend }));
    this.mlp = this.registerModule('mlp', new GPT2MLP(config, backend, rng));
  }
  forward(x: Tensor, cache?: AttentionCache): Tensor {
    const h = ops.add(x, this.attn.forward(this.ln_1.forward(x), cache));
    return ops.add(h, this.mlp.forward(this.ln_2.forward(h)));
  }
}

/** The blocks under their indices (`h.0`, `h.1`, ...), as torch's ModuleList names them. */
class Blocks extends Module {
  readonly list: GPT2Block[];
  constructor(blocks: GPT2Block[], backend: Backend) {
    super(backend);
    this.list = blocks.map((block, i) => this.registerModule(String(i), block));
  }
}

/** transformers' GPT2Model: embeddings, blocks, final layer norm. */
export class GPT2Model extends Module {
  readonly wte: Table;
  readonly wpe: Table;
  readonly drop: Dropout;
  readonly h: Blocks;
  readonly ln_f: LayerNorm;
  constructor(readonly config: GPT2Config, backend: Backend, rng: Rng) {
    super(backend);
    this.wte = this.registerModule('wte', new Table(config.vocab_size, config.n_embd, backend));
    this.wpe = this.registerModule('wpe', new Table(config.n_positions, config.n_embd, backend));
    this.drop = this.registerModule('drop', new Dropout(config.embd_pdrop, { backend, rng }));
    this.h = this.registerModule('h', new Blocks(Array.from({ length: config.n_layer }, (_, i) => new GPT2Block(config, i, backend, rng)), backend));
    this.ln_f = this.registerModule('ln_f', new LayerNorm(config.n_embd, config.layer_norm_epsilon, { backend }));
  }

  /** ids [B, T] (i32) at positions past..past+T-1 -> hidden states [B, T, E]. */
  forward(ids: Tensor, past = 0, caches?: AttentionCache[]): Tensor {
    const [b, t] = ids.shape as [number, number];
    if (past + t > this.config.n_positions) {
      throw new ConfigError('GPT2Model', `positions ${past}..${past + t - 1} exceed n_positions ${this.config.n_positions}`);
    }
    // Positions past..past+T-1 are consecutive rows of wpe: a slice [T, E] broadcast over B.
    let x = this.drop.forward(ops.addBias(ops.embedding(ids, this.wte.weight), ops.narrow(this.wpe.weight, 0, past, t)));
    this.h.list.forEach((block, i) => {
      x = block.forward(x, caches?.[i]);
    });
    return this.ln_f.forward(x);
  }
}

export interface FromPretrainedOptions {
  backend?: Backend;
  /** Hub revision (branch, tag or commit) for 'owner/name' sources; default 'main'. */
  revision?: string;
  /** Hub settings for 'owner/name' sources (endpoint, cache folder, offline, progress bar). */
  hub?: HubOptions;
  /** Progress of the weights' download or read, in bytes (total null when unknown). */
  onProgress?: (loaded: number, total: number | null) => void;
}

/** What savePretrained copies beside the weights so the folder is complete for transformers. */
const SIDE_FILES = ['tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt', 'special_tokens_map.json', 'generation_config.json'];

/**
 * GPT-2 with its language-model head (transformers' GPT2LMHeadModel). The head is tied to
 * `transformer.wte.weight` unless config.tie_word_embeddings is false (then `lm_head.weight`
 * is its own parameter). Dropout as transformers': embedding, residual and (inside the
 * attention kernel) attn_pdrop on the weights, in training mode.
 */
export class GPT2LMHeadModel extends Module {
  readonly config: GPT2Config;
  readonly transformer: GPT2Model;
  /** The head's weight [V, E]: wte's tensor itself when tied. */
  readonly lmHeadWeight: Tensor;
  /** The files read beside the weights (tokenizer, generation config), written back by
   * savePretrained. */
  sideFiles = new Map<string, Uint8Array>();
  /** What the last fromPretrained allocated besides the weights. */
  loadStats: LoadStats | null = null;

  constructor(config: GPT2Config | Record<string, unknown>, options: { backend?: Backend; rng?: Rng; init?: boolean } = {}) {
    super(options.backend ?? getDefaultBackend());
    this.config = gpt2Config(config);
    const rng = options.rng ?? defaultRng();
    this.transformer = this.registerModule('transformer', new GPT2Model(this.config, this.backend, rng));
    if (this.config.tie_word_embeddings) {
      this.lmHeadWeight = this.transformer.wte.weight;
    } else {
      this.lmHeadWeight = this.registerModule('lm_head', new Table(this.config.vocab_size, this.config.n_embd, this.backend)).weight;
    }
    if (options.init ?? true) this.initWeights(rng);
  }

  /** transformers' _init_weights: N(0, initializer_range) for projections and tables, zero
   * biases, unit layer norms, and c_proj weights scaled by 1/sqrt(2 n_layer) (GPT-2's
   * residual scaling). */
  private initWeights(rng: Rng): void {
    const std = this.config.initializer_range;
    for (const [name, p] of this.namedParameters()) {
      if (name.endsWith('.bias') || /ln_\d|ln_f/.test(name)) continue; // zeros; LayerNorm weights are already 1
      const s = name.endsWith('c_proj.weight') ? std / Math.sqrt(2 * this.config.n_layer) : std;
      this.backend.write(p.storage, rng.normal(p.size, s));
    }
  }

  /** The tokenizer read with the model (tokenizer.json, else vocab.json + merges.txt). */
  tokenizer(): HFTokenizer {
    const text = (name: string) => {
      const bytes = this.sideFiles.get(name);
      return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
    };
    const files = { tokenizerJson: text('tokenizer.json'), tokenizerConfig: text('tokenizer_config.json'), vocabJson: text('vocab.json'), mergesTxt: text('merges.txt') };
    if (files.tokenizerJson === undefined && (files.vocabJson === undefined || files.mergesTxt === undefined)) {
      throw new ConfigError('GPT2LMHeadModel.tokenizer', 'the checkpoint had neither tokenizer.json nor vocab.json with merges.txt');
    }
    return HFTokenizer.fromFiles(Object.fromEntries(Object.entries(files).filter(([, v]) => v !== undefined)));
  }

  /** V, for the generation layer. */
  get vocabSize(): number {
    return this.config.vocab_size;
  }

  /** GPT-2 has no padding token to keep out of generated text (pad_token_id, when set, is
   * often EOS itself). */
  get padId(): null {
    return null;
  }

  /** ids [B, T] (i32) -> logits [B, T, V]. */
  forward(ids: Tensor): Tensor {
    return this.logits(this.transformer.forward(ids));
  }

  private logits(hidden: Tensor): Tensor {
    return ops.linear(hidden, this.lmHeadWeight, null);
  }

  /**
   * transformers' loss for `model(input_ids, labels=labels)`: the logits at position t
   * predict labels[t + 1] (the shift happens here, as in transformers), mean cross-entropy
   * over labels that are not -100. ids and labels are [B, T]; labels default to the ids.
   */
  loss(ids: Tensor, labels?: Tensor | readonly (readonly number[])[]): Tensor {
    const [b, t] = ids.shape as [number, number];
    const given = labels === undefined ? ids.data() : labels instanceof Tensor ? labels.data() : Int32Array.from(labels.flat());
    if (given.length !== b * t) throw new ShapeError('GPT2LMHeadModel.loss', `labels must be [${b}, ${t}] like the ids, got ${given.length} values`, [b, t], given.length);
    const shifted = new Int32Array(b * t).fill(-100);
    for (let r = 0; r < b; r++) for (let i = 0; i + 1 < t; i++) shifted[r * t + i] = given[r * t + i + 1]!;
    const targets = tensor(shifted, [b, t], { dtype: 'i32', backend: this.backend });
    let loss: Tensor;
    try {
      loss = ops.crossEntropy(this.forward(ids), targets, { ignoreIndex: -100 });
    } catch (e) {
      targets.dispose();
      throw e;
    }
    const node = loss.gradFn;
    if (node === null) {
      targets.dispose(); // no graph (noGrad): nothing reads the targets again
    } else {
      // crossEntropy's backward reads the targets: they are freed with its saved buffers.
      loss.gradFn = { ...node, backward: node.backward, saved: [...node.saved, targets.storage] };
    }
    return loss;
  }

  startDecoding(): LMDecodingState {
    return { caches: this.transformer.h.list.map(() => emptyCache()), length: 0 };
  }

  /** Logits [B, 1, V] after the last of `tokens` [B, T] (the prompt first, then one position
   * at a time): generation reads no other position, so the head (V x E per position, the
   * largest product of a step) runs on the last one only. */
  decodeStep(state: LMDecodingState, tokens: Tensor): Tensor {
    const hidden = this.transformer.forward(tokens, state.length, state.caches);
    const t = tokens.shape[1]!;
    state.length += t;
    return this.logits(t === 1 ? hidden : ops.narrow(hidden, 1, t - 1, 1));
  }

  /** Frees a decoding state's caches. */
  static disposeDecoding(state: LMDecodingState): void {
    for (const c of state.caches) disposeCache(c);
  }

  /**
   * Loads a GPT-2 family checkpoint: a folder (Node), a folder URL, an 'owner/name' on the
   * Hugging Face Hub, or the files themselves ({ 'config.json': ..., 'model.safetensors':
   * ... }). Weights are streamed into the backend tensor by tensor (F32, F16, BF16 or F64,
   * converted to float32), never holding the file: besides the weights, at most one more copy
   * of the largest tensor is allocated (`loadStats`).
   */
  static async fromPretrained(source: PretrainedSource, options: FromPretrainedOptions = {}): Promise<GPT2LMHeadModel> {
    const files = await openPretrained(source, options);
    const configJson = JSON.parse(new TextDecoder().decode(await files.read('config.json'))) as Record<string, unknown>;
    const model = new GPT2LMHeadModel(configJson, { backend: options.backend, init: false });
    try {
      const weights = await files.stream('model.safetensors', options.onProgress);
      model.loadStats = await streamSafetensors(weights.chunks, model.backend, weights.name, weights.length, (header) => model.plan(header, weights.name));
      for (const name of SIDE_FILES) {
        const bytes = await files.readOptional(name);
        if (bytes !== null) model.sideFiles.set(name, bytes);
      }
    } catch (e) {
      model.dispose();
      throw e;
    }
    return model;
  }

  /** Maps each tensor of a checkpoint's header to its parameter, after checking names and
   * shapes (all problems listed in one error, before any data is read). */
  private plan(header: SafetensorsHeader, source: string): Map<string, WeightTarget> {
    const own = new Map(this.namedParameters());
    const targets = new Map<string, WeightTarget>();
    const unexpected: string[] = [];
    const mismatched: string[] = [];
    const tied = this.config.tie_word_embeddings;
    const loaded = new Set<string>();
    for (const [fileName, entry] of header.entries) {
      // GPT2Model checkpoints (openai-community/gpt2) omit the `transformer.` prefix.
      const name = fileName.startsWith('transformer.') || fileName.startsWith('lm_head.') ? fileName : `transformer.${fileName}`;
      if (BUFFER.test(name)) continue;
      // A tied head is wte itself: its copy in the file (stored twice) is skipped, unless
      // the file stores the head alone.
      const target = name === 'lm_head.weight' && tied ? (header.entries.has('transformer.wte.weight') || header.entries.has('wte.weight') ? null : 'transformer.wte.weight') : name;
      if (target === null) continue;
      const param = own.get(target);
      if (param === undefined) {
        unexpected.push(fileName);
        continue;
      }
      const transpose = CONV1D.test(target);
      const want = transpose ? [...param.shape].reverse() : param.shape;
      if (entry.shape.length !== want.length || entry.shape.some((d, i) => d !== want[i])) {
        mismatched.push(`${fileName}: expected [${want.join(', ')}], got [${entry.shape.join(', ')}]`);
        continue;
      }
      targets.set(fileName, { storage: param.storage, transpose });
      loaded.add(target);
    }
    const missing = [...own.keys()].filter((n) => !loaded.has(n));
    if (missing.length || unexpected.length || mismatched.length) {
      const show = (list: string[]) => `${list.slice(0, 5).join(', ')}${list.length > 5 ? ` and ${list.length - 5} more` : ''}`;
      const parts = [
        missing.length ? `${missing.length} missing (${show(missing)})` : '',
        unexpected.length ? `${unexpected.length} unexpected (${show(unexpected)})` : '',
        mismatched.length ? `${mismatched.length} with the wrong shape (${show(mismatched)})` : '',
      ].filter(Boolean);
      throw new FormatError(`${source}: tensors do not match config.json's GPT-2: ${parts.join('; ')}`);
    }
    return targets;
  }

  /** config.json as transformers writes it: the fields read, and every other field as it was. */
  configJson(): Record<string, unknown> {
    const json: Record<string, unknown> = { ...this.config };
    // Weights are written float32 whatever the file read held.
    for (const key of ['dtype', 'torch_dtype']) if (key in json) json[key] = 'float32';
    return json;
  }

  /** The weights as transformers stores them: HF names, Conv1D weights [in, out], a tied
   * head stored once as transformer.wte.weight, float32. */
  stateDictHF(): Map<string, SafetensorsTensor> {
    const out = new Map<string, SafetensorsTensor>();
    for (const [name, p] of this.namedParameters()) {
      const values = p.data() as Float32Array;
      if (CONV1D.test(name)) {
        const [rows, cols] = p.shape as [number, number];
        const t = new Float32Array(values.length);
        for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = values[r * cols + c]!;
        out.set(name, { dtype: 'F32', shape: [cols, rows], data: t });
      } else {
        out.set(name, { dtype: 'F32', shape: [...p.shape], data: Float32Array.from(values) });
      }
    }
    return out;
  }

  /** The folder's files as bytes: config.json, model.safetensors (metadata format "pt", as
   * save_pretrained writes) and the side files read with the model. */
  toFiles(): Map<string, Uint8Array> {
    const files = new Map<string, Uint8Array>();
    files.set('config.json', new TextEncoder().encode(`${JSON.stringify(this.configJson(), null, 2)}\n`));
    files.set('model.safetensors', writeSafetensors(this.stateDictHF(), { format: 'pt' }));
    for (const [name, bytes] of this.sideFiles) files.set(name, bytes);
    return files;
  }

  /** Writes a folder transformers' GPT2LMHeadModel.from_pretrained loads (Node). */
  async savePretrained(dir: string): Promise<void> {
    await nodeBuiltin('fs/promises', 'savePretrained').mkdir(dir, { recursive: true });
    for (const [name, bytes] of this.toFiles()) await writeFileAtomic(nodeBuiltin('path', 'savePretrained').join(dir, name), bytes);
  }
}

export type { LoadStats, PretrainedFiles, PretrainedSource };
