// nanoGPT's model.py (Andrej Karpathy, github.com/karpathy/nanoGPT) written on ferroformer's
// public API: the same modules, names, initialisation and optimiser groups, so its state
// dict has nanoGPT's keys (transformer.h.0.attn.c_attn.weight, ...) and loads into
// nanoGPT's GPT (and back). Shapes: B batch, T time, C n_embd, nh n_head, hs = C / nh.
//
// Differences, all forced by the library rather than chosen: attn_dropout drops the weights
// inside the flash attention kernel (as nanoGPT's flash path passes dropout_p), its mask
// drawn from the module's stream; the MLP's c_fc and GELU run as one fused kernel call;
// q, k and v are read by the attention kernel straight out of c_attn's output viewed as
// (B, T, 3, nh, hs), and it writes the heads side by side (B, T, nh, hs), flash-attn's
// qkvpacked layout (views of other strides are copies here, so split + view + transpose would
// copy);
// tensors that leave the graph are freed by backward() or by dispose()/tidy(), JavaScript
// having no reference counting.
import { ConfigError, noGrad, ShapeError, nn, ops, optim, tensor, tidy, type Backend, type Tensor } from 'ferroformer';

export interface GPTConfig {
  block_size: number;
  /** GPT-2's 50257 padded up to a multiple of 64 for efficiency. */
  vocab_size: number;
  n_layer: number;
  n_head: number;
  n_embd: number;
  dropout: number;
  /** true: bias in Linears and LayerNorms, like GPT-2. false: a bit better and faster. */
  bias: boolean;
}

/** nanoGPT's `@dataclass class GPTConfig` defaults, overridden by `config`. */
export function GPTConfig(config: Partial<GPTConfig> = {}): GPTConfig {
  return { block_size: 1024, vocab_size: 50304, n_layer: 12, n_head: 12, n_embd: 768, dropout: 0.0, bias: true, ...config };
}

export interface GPTOptions {
  backend?: Backend;
  /** The generator for the initial weights (default: the one nn.manualSeed seeds). */
  rng?: nn.Rng;
}

/** LayerNorm but with an optional bias (PyTorch's LayerNorm(bias=False), nanoGPT's own class). */
function LayerNorm(ndim: number, bias: boolean, backend: Backend): nn.LayerNorm {
  return new nn.LayerNorm(ndim, 1e-5, { backend, bias });
}

export class CausalSelfAttention extends nn.Module {
  readonly c_attn: nn.Linear;
  readonly c_proj: nn.Linear;
  readonly attn_dropout: nn.Dropout;
  readonly resid_dropout: nn.Dropout;
  readonly n_head: number;
  readonly n_embd: number;

  constructor(config: GPTConfig, options: GPTOptions = {}) {
    super(options.backend);
    if (config.n_embd % config.n_head !== 0) throw new ConfigError('CausalSelfAttention', `n_embd ${config.n_embd} must be divisible by n_head ${config.n_head}`);
    const o = { backend: this.backend, rng: options.rng, bias: config.bias };
    // key, query, value projections for all heads, but in a batch
    this.c_attn = this.registerModule('c_attn', new nn.Linear(config.n_embd, 3 * config.n_embd, o));
    // output projection
    this.c_proj = this.registerModule('c_proj', new nn.Linear(config.n_embd, config.n_embd, o));
    // regularization
    this.attn_dropout = this.registerModule('attn_dropout', new nn.Dropout(config.dropout, o));
    this.resid_dropout = this.registerModule('resid_dropout', new nn.Dropout(config.dropout, o));
    this.n_head = config.n_head;
    this.n_embd = config.n_embd;
  }

  forward(x: Tensor): Tensor {
    const [B, T, C] = x.shape as [number, number, number];
    // calculate query, key, values for all heads in batch and move head forward to be the batch dim
    const qkv = this.c_attn.forward(x); // [B, T, 3C]: q, k, v in that order
    const [nh, hs] = [this.n_head, C / this.n_head];
    // split(n_embd, dim=2) and view(B, T, nh, hs) as one view (B, T, 3, nh, hs); the kernel reads
    // each head's (T, hs) rows in place, so no transpose(1, 2) copies are made
    // causal self-attention; Self-attend: (B, nh, T, hs) x (B, nh, hs, T) -> (B, nh, T, T), flash style (never materialised)
    // dropout on the (B, nh, T, T) weights in training mode, inside the kernel
    let y = ops.attentionQkvPacked(ops.reshape(qkv, [B, T, 3, nh, hs]), { causal: true, ...this.attn_dropout.forAttention(B * this.n_head * T * T) });
    y = ops.reshape(y, [B, T, C]); // all head outputs side by side, as the kernel wrote them (B, T, nh, hs)
    // output projection
    return this.resid_dropout.forward(this.c_proj.forward(y));
  }
}

export class MLP extends nn.Module {
  readonly c_fc: nn.Linear;
  readonly c_proj: nn.Linear;
  readonly dropout: nn.Dropout;

  constructor(config: GPTConfig, options: GPTOptions = {}) {
    super(options.backend);
    const o = { backend: this.backend, rng: options.rng, bias: config.bias };
    this.c_fc = this.registerModule('c_fc', new nn.Linear(config.n_embd, 4 * config.n_embd, o));
    this.c_proj = this.registerModule('c_proj', new nn.Linear(4 * config.n_embd, config.n_embd, o));
    this.dropout = this.registerModule('dropout', new nn.Dropout(config.dropout, o));
  }

  forward(x: Tensor): Tensor {
    // c_fc then GELU (exact, erf), fused into one kernel call
    const h = ops.linear(x, this.c_fc.weight, this.c_fc.bias, { activation: 'gelu' });
    return this.dropout.forward(this.c_proj.forward(h));
  }
}

export class Block extends nn.Module {
  readonly ln_1: nn.LayerNorm;
  readonly attn: CausalSelfAttention;
  readonly ln_2: nn.LayerNorm;
  readonly mlp: MLP;

  constructor(config: GPTConfig, options: GPTOptions = {}) {
    super(options.backend);
    const o = { backend: this.backend, rng: options.rng };
    this.ln_1 = this.registerModule('ln_1', LayerNorm(config.n_embd, config.bias, this.backend));
    this.attn = this.registerModule('attn', new CausalSelfAttention(config, o));
    this.ln_2 = this.registerModule('ln_2', LayerNorm(config.n_embd, config.bias, this.backend));
    this.mlp = this.registerModule('mlp', new MLP(config, o));
  }

  forward(x: Tensor): Tensor {
    x = ops.add(x, this.attn.forward(this.ln_1.forward(x)));
    x = ops.add(x, this.mlp.forward(this.ln_2.forward(x)));
    return x;
  }
}

/** nanoGPT's `self.transformer = nn.ModuleDict(dict(wte, wpe, drop, h, ln_f))`, as a class so
 * that each child keeps its type. */
class GPTBody extends nn.Module {
  readonly wte: nn.Embedding;
  readonly wpe: nn.Embedding;
  readonly drop: nn.Dropout;
  readonly h: nn.ModuleList<Block>;
  readonly ln_f: nn.LayerNorm;

  constructor(config: GPTConfig, options: GPTOptions & { backend: Backend }) {
    super(options.backend);
    this.wte = this.registerModule('wte', new nn.Embedding(config.vocab_size, config.n_embd, options));
    this.wpe = this.registerModule('wpe', new nn.Embedding(config.block_size, config.n_embd, options));
    this.drop = this.registerModule('drop', new nn.Dropout(config.dropout, options));
    this.h = this.registerModule('h', new nn.ModuleList(Array.from({ length: config.n_layer }, () => new Block(config, options)), { backend: options.backend }));
    this.ln_f = this.registerModule('ln_f', LayerNorm(config.n_embd, config.bias, options.backend));
  }
}

export class GPT extends nn.Module {
  readonly config: GPTConfig;
  readonly transformer: GPTBody;
  readonly lm_head: nn.Linear;

  constructor(config: GPTConfig, options: GPTOptions = {}) {
    super(options.backend);
    if (!(config.vocab_size > 0) || !(config.block_size > 0)) {
      throw new ConfigError('GPT', `vocab_size and block_size must be positive, got ${config.vocab_size} and ${config.block_size}`);
    }
    this.config = { ...config };
    const rng = options.rng ?? nn.defaultRng();
    const o = { backend: this.backend, rng };
    this.transformer = this.registerModule('transformer', new GPTBody(config, o));
    this.lm_head = this.registerModule('lm_head', new nn.Linear(config.n_embd, config.vocab_size, { ...o, bias: false }));
    // weight tying: one [V, C] tensor under both names (the embedding's own is freed)
    const untied = this.transformer.wte.weight;
    this.transformer.wte.weight = this.lm_head.weight; // https://paperswithcode.com/method/weight-tying
    untied.dispose();

    // init all weights
    this.apply((module) => this.initWeights(module, rng));
    // apply special scaled init to the residual projections, per GPT-2 paper
    for (const [pn, p] of this.namedParameters()) {
      if (pn.endsWith('c_proj.weight')) nn.init.normal_(p, { mean: 0, std: 0.02 / Math.sqrt(2 * config.n_layer), rng });
    }
  }

  /** Number of parameters in the model. For non-embedding count (default), the position
   * embeddings get subtracted. The token embeddings would too, except due to the parameter
   * sharing these params are actually used as weights in the final layer, so we include them. */
  getNumParams(nonEmbedding = true): number {
    let n = this.numParameters();
    if (nonEmbedding) n -= this.transformer.wpe.weight.size;
    return n;
  }

  private initWeights(module: nn.Module, rng: nn.Rng): void {
    if (module instanceof nn.Linear) {
      nn.init.normal_(module.weight, { mean: 0, std: 0.02, rng });
      if (module.bias !== null) nn.init.zeros_(module.bias);
    } else if (module instanceof nn.Embedding) {
      nn.init.normal_(module.weight, { mean: 0, std: 0.02, rng });
    }
  }

  /** `logits, loss = model(idx, targets)`. idx and targets: [B, T] int32 ids. With targets,
   * logits at every position [B, T, V] and the mean cross-entropy (targets of -1 ignored);
   * without, inference-time mini-optimisation: only the last position's logits [B, 1, V],
   * and loss null. */
  forward(idx: Tensor, targets?: Tensor | null): [Tensor, Tensor | null] {
    if (idx.ndim !== 2) throw new ShapeError('GPT', `idx must be [B, T], got [${idx.shape.join(', ')}]`);
    const t = idx.shape[1]!;
    if (t > this.config.block_size) throw new ShapeError('GPT', `Cannot forward sequence of length ${t}, block size is only ${this.config.block_size}`);

    // forward the GPT model itself
    const tok_emb = ops.embedding(idx, this.transformer.wte.weight); // token embeddings of shape (b, t, n_embd)
    const pos_emb = ops.narrow(this.transformer.wpe.weight, 0, 0, t); // position embeddings of shape (t, n_embd)
    let x = this.transformer.drop.forward(ops.addBias(tok_emb, pos_emb));
    for (const block of this.transformer.h) x = block.forward(x);
    x = this.transformer.ln_f.forward(x);

    if (targets) {
      // if we are given some desired targets also calculate the loss
      const logits = this.lm_head.forward(x);
      const loss = ops.crossEntropy(logits, targets, { ignoreIndex: -1 });
      return [logits, loss];
    }
    // note: using list [-1] to preserve the time dim
    const logits = this.lm_head.forward(ops.narrow(x, 1, t - 1, 1));
    return [logits, null];
  }

  /** nanoGPT's configure_optimizers: every 2D parameter (matmul weights and embeddings)
   * decays, biases and layernorm gains do not; the tied wte/lm_head matrix counts once. */
  configureOptimizers(weightDecay: number, learningRate: number, betas: [number, number]): optim.AdamW {
    // start with all of the candidate parameters (a tied tensor once, as named_parameters())
    const params = this.parameters().filter((p) => p.requiresGrad);
    // create optim groups. Any parameters that is 2D will be weight decayed, otherwise no.
    const decay_params = params.filter((p) => p.ndim >= 2);
    const nodecay_params = params.filter((p) => p.ndim < 2);
    const optim_groups = [
      { params: decay_params, weightDecay },
      { params: nodecay_params, weightDecay: 0.0 },
    ];
    return new optim.AdamW(optim_groups, { lr: learningRate, betas });
  }

  /** Take a conditioning sequence of indices idx ([B, t] int32) and complete the sequence
   * maxNewTokens times, feeding the predictions back into the model each time. Sampling
   * (temperature, top-k) runs on the host over the last position's logits. */
  generate(idx: Tensor, maxNewTokens: number, options: { temperature?: number; topK?: number; rng?: nn.Rng } = {}): Tensor {
    const temperature = options.temperature ?? 1.0;
    const rng = options.rng ?? nn.defaultRng();
    const [B] = idx.shape as [number, number];
    const rows: number[][] = Array.from({ length: B }, (_, r) => Array.from(idx.data().slice(r * idx.shape[1]!, (r + 1) * idx.shape[1]!)));
    const wasTraining = this.training;
    this.eval();
    try {
      for (let step = 0; step < maxNewTokens; step++) {
        // if the sequence context is growing too long we must crop it at block_size
        const cond = rows.map((r) => r.slice(-this.config.block_size));
        const logits = tidy(() =>
          noGrad(() => {
            const ids = tensor(cond.flat(), [B, cond[0]!.length], { backend: this.backend, dtype: 'i32' });
            return this.forward(ids)[0].data();
          }),
        );
        const V = this.config.vocab_size;
        for (let r = 0; r < B; r++) rows[r]!.push(sample(logits.slice(r * V, (r + 1) * V), temperature, options.topK, rng));
      }
    } finally {
      this.train(wasTraining);
    }
    return tensor(rows.flat(), [B, rows[0]!.length], { backend: this.backend, dtype: 'i32' });
  }
}

/** One id from softmax(logits / temperature), optionally cropped to the top k. */
function sample(logits: ArrayLike<number>, temperature: number, topK: number | undefined, rng: nn.Rng): number {
  const scaled = Array.from(logits, (l) => l / temperature);
  if (topK !== undefined && topK < scaled.length) {
    const kth = [...scaled].sort((a, b) => b - a)[topK - 1]!;
    for (let i = 0; i < scaled.length; i++) if (scaled[i]! < kth) scaled[i] = -Infinity;
  }
  const max = Math.max(...scaled);
  const probs = scaled.map((l) => Math.exp(l - max));
  const total = probs.reduce((s, p) => s + p, 0);
  let u = rng.next() * total;
  for (let i = 0; i < probs.length; i++) {
    u -= probs[i]!;
    if (u <= 0) return i;
  }
  return probs.length - 1;
}
