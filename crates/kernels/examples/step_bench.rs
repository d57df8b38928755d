//! One training step of the nanoGPT benchmarks (W5 and W6 of bench/, `examples/nanogpt`) made of
//! the kernel calls the TypeScript step makes, with no Node.js: for measuring how the kernels
//! scale with threads on machines that have no Node (a static binary, see the last lines).
//!
//! `cargo run --release -p ferroformer-kernels --example step_bench -- --workload=W5|W6
//!  [--threads=N] [--steps=S] [--by-kernel] [--trace]`
//!
//! Builds the model of bench/lib/common.mjs (`NANOGPT`, `NANOGPT_OPTIM`) with the same initial
//! bytes (`nanogptInitialState`: the seeded xorshift, std 0.02, c_proj weights
//! 0.02 / sqrt(2 n_layer), biases 0, layer-norm gains 1) and the same token ids, then runs two
//! warm-up steps and S timed ones (default 30 for W5, 5 for W6, as `bench/profile_kernels.mjs`):
//! forward, loss, backward, gradient-norm clip at 1.0, AdamW (lr 1e-3, betas (0.9, 0.99),
//! weight decay 0.1 on the 2-D parameters), in the order the TypeScript step calls them.
//! Prints each step's loss, ms/step (median, best, mean) and tokens/s, and with `--by-kernel`
//! the time per kernel function and step, named as the JavaScript backend's methods (the
//! linear calls by rows x in -> out and activation, as profile_kernels' `--by-shape`).
//! `--threads=N` starts N - 1 workers of the kernels' pool beside the calling thread, as the
//! addon's `setThreads(N)`; times are wall clock. `FERROFORMER_ISA=avx2` runs the AVX2 kernels
//! on an AVX-512 machine (`Isa::detect`). Measurements: bench/notes.md, "step_bench".
//!
//! How it was checked against the TypeScript step (examples/nanogpt/model.ts through
//! `nanogptTraining` in bench/lib/common.mjs, native backend): a proxy over the backend logged
//! every call of one step in order with its arguments (buffer identities and lengths, dims,
//! flags), and this file makes the same calls with the same dims, flags and buffer roles
//! (which buffer is overwritten, which accumulates, which is filled with 0 first). `--trace`
//! prints one step's calls by name (the linear ones with their shapes); the list is the
//! JavaScript one line for line: W5 278 calls, W6 254, counting the fills and copies the
//! backend does in JavaScript. Not mirrored: the `read`s of the ids, targets and loss (3 per
//! step) and the allocations (buffers here are allocated once up front, where JavaScript
//! takes a fresh one from its pool per result). Since the initial bytes and the kernels are
//! the same, each step's loss equals the JavaScript step's to the printed digits (W5 4.1946,
//! 3.8607, 3.7015, ...; W6 4.2682, 4.1831, 4.0387, ...), which checks the backward and AdamW
//! calls as well as the forward. `zeroGrad` makes no kernel call: each gradient is written
//! fresh by the next backward (an overwriting product, or a fill then accumulation), as here.
//!
//! Static binary for a machine without Node or Rust:
//! `RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p ferroformer-kernels
//!  --example step_bench --target x86_64-unknown-linux-gnu`
//! (target/x86_64-unknown-linux-gnu/release/examples/step_bench).
use ferroformer_kernels::ops::attention::{attention_packed_backward, attention_packed_forward};
use ferroformer_kernels::ops::cross_entropy::{cross_entropy_backward, cross_entropy_forward};
use ferroformer_kernels::ops::elementwise::{
    add_forward, bias_add_backward, bias_add_forward, narrow_backward, narrow_forward, scale_inplace, sum_squares,
};
use ferroformer_kernels::ops::embedding::{embedding_backward, embedding_forward};
use ferroformer_kernels::ops::layernorm::{layernorm_backward, layernorm_forward};
use ferroformer_kernels::ops::linear::{linear_backward, linear_forward, Activation};
use ferroformer_kernels::optim::adam::adam_update;
use ferroformer_kernels::simd::Isa;
use ferroformer_kernels::{pool, Parallel};
use std::time::{Duration, Instant};

/// nanoGPT's configuration of a workload (bench/lib/common.mjs `NANOGPT`).
#[derive(Clone, Copy)]
struct Config {
    n_layer: usize,
    n_head: usize,
    n_embd: usize,
    block_size: usize,
    batch_size: usize,
    vocab_size: usize,
    bias: bool,
    /// xorshift seed of the token ids (common.mjs `inputs`).
    token_seed: u32,
}

const W5: Config = Config { n_layer: 4, n_head: 4, n_embd: 128, block_size: 64, batch_size: 12, vocab_size: 65, bias: true, token_seed: 51 };
const W6: Config = Config { n_layer: 6, n_head: 6, n_embd: 384, block_size: 256, batch_size: 8, vocab_size: 65, bias: false, token_seed: 61 };

/// common.mjs `NANOGPT_OPTIM`, and AdamW's eps (PyTorch's default).
const LEARNING_RATE: f64 = 1e-3;
const BETAS: (f64, f64) = (0.9, 0.99);
const WEIGHT_DECAY: f64 = 0.1;
const ADAM_EPS: f64 = 1e-8;
const GRAD_CLIP: f64 = 1.0;
const LN_EPS: f32 = 1e-5;

// ---- parameters --------------------------------------------------------------------------

/// One block's tensors (nanoGPT's names; biases empty when `bias` is false).
#[derive(Clone)]
struct LayerParams {
    ln_1_weight: Vec<f32>,
    ln_1_bias: Vec<f32>,
    c_attn_weight: Vec<f32>,
    c_attn_bias: Vec<f32>,
    attn_c_proj_weight: Vec<f32>,
    attn_c_proj_bias: Vec<f32>,
    ln_2_weight: Vec<f32>,
    ln_2_bias: Vec<f32>,
    c_fc_weight: Vec<f32>,
    c_fc_bias: Vec<f32>,
    mlp_c_proj_weight: Vec<f32>,
    mlp_c_proj_bias: Vec<f32>,
}

/// The model's parameters; the same type holds their gradients and AdamW's two moments.
/// wte is tied to lm_head (one [V, C] tensor).
#[derive(Clone)]
struct Params {
    wte: Vec<f32>,
    wpe: Vec<f32>,
    layers: Vec<LayerParams>,
    ln_f_weight: Vec<f32>,
    ln_f_bias: Vec<f32>,
}

impl Params {
    /// Every tensor zero-filled (biases empty when the model has none).
    fn zeros(cfg: &Config) -> Params {
        let (c, v) = (cfg.n_embd, cfg.vocab_size);
        let bias = |n: usize| vec![0.0; if cfg.bias { n } else { 0 }];
        let layer = LayerParams {
            ln_1_weight: vec![0.0; c],
            ln_1_bias: bias(c),
            c_attn_weight: vec![0.0; 3 * c * c],
            c_attn_bias: bias(3 * c),
            attn_c_proj_weight: vec![0.0; c * c],
            attn_c_proj_bias: bias(c),
            ln_2_weight: vec![0.0; c],
            ln_2_bias: bias(c),
            c_fc_weight: vec![0.0; 4 * c * c],
            c_fc_bias: bias(4 * c),
            mlp_c_proj_weight: vec![0.0; 4 * c * c],
            mlp_c_proj_bias: bias(c),
        };
        Params { wte: vec![0.0; v * c], wpe: vec![0.0; cfg.block_size * c], layers: vec![layer; cfg.n_layer], ln_f_weight: vec![0.0; c], ln_f_bias: bias(c) }
    }

    /// (name, 2-D?, tensor) in `model.parameters()` order (nanogptParameterShapes), biases
    /// skipped when absent; 2-D tensors are the ones configure_optimizers decays.
    fn tensors_mut(&mut self) -> Vec<(String, bool, &mut Vec<f32>)> {
        let mut out: Vec<(String, bool, &mut Vec<f32>)> = vec![("transformer.wte.weight".into(), true, &mut self.wte), ("transformer.wpe.weight".into(), true, &mut self.wpe)];
        for (l, p) in self.layers.iter_mut().enumerate() {
            let h = format!("transformer.h.{l}");
            out.push((format!("{h}.ln_1.weight"), false, &mut p.ln_1_weight));
            out.push((format!("{h}.ln_1.bias"), false, &mut p.ln_1_bias));
            out.push((format!("{h}.attn.c_attn.weight"), true, &mut p.c_attn_weight));
            out.push((format!("{h}.attn.c_attn.bias"), false, &mut p.c_attn_bias));
            out.push((format!("{h}.attn.c_proj.weight"), true, &mut p.attn_c_proj_weight));
            out.push((format!("{h}.attn.c_proj.bias"), false, &mut p.attn_c_proj_bias));
            out.push((format!("{h}.ln_2.weight"), false, &mut p.ln_2_weight));
            out.push((format!("{h}.ln_2.bias"), false, &mut p.ln_2_bias));
            out.push((format!("{h}.mlp.c_fc.weight"), true, &mut p.c_fc_weight));
            out.push((format!("{h}.mlp.c_fc.bias"), false, &mut p.c_fc_bias));
            out.push((format!("{h}.mlp.c_proj.weight"), true, &mut p.mlp_c_proj_weight));
            out.push((format!("{h}.mlp.c_proj.bias"), false, &mut p.mlp_c_proj_bias));
        }
        out.push(("transformer.ln_f.weight".into(), false, &mut self.ln_f_weight));
        out.push(("transformer.ln_f.bias".into(), false, &mut self.ln_f_bias));
        out.retain(|(_, _, t)| !t.is_empty());
        out
    }

    /// common.mjs `nanogptInitialState`: tensor i of the list above (uniform with the std)
    /// from `random_floats(size, 500 + i)`, 1-D tensors 0 except layer-norm gains 1.
    fn initial(cfg: &Config) -> Params {
        let mut p = Params::zeros(cfg);
        let c_proj_std = 0.02 / (2.0 * cfg.n_layer as f64).sqrt();
        for (i, (name, two_d, t)) in p.tensors_mut().into_iter().enumerate() {
            if two_d {
                let std = if name.ends_with("c_proj.weight") { c_proj_std } else { 0.02 };
                let r = random_floats(t.len(), 500 + i as u32);
                for (x, u) in t.iter_mut().zip(r) {
                    *x = (u as f64 * std * 3f64.sqrt()) as f32;
                }
            } else if name.contains(".ln_") && name.ends_with(".weight") {
                t.fill(1.0);
            }
        }
        p
    }
}

/// common.mjs `randomFloats`: uniform [-1, 1) from a 32-bit xorshift, as float32.
fn random_floats(n: usize, seed: u32) -> Vec<f32> {
    let mut s = ((seed as u64 * 2654435761) as u32).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            ((s as f64 / 4294967296.0) * 2.0 - 1.0) as f32
        })
        .collect()
}

/// common.mjs `nanogptTokens` and `rows`: inputs X and targets Y ([B, T] ids < vocab), Y being
/// X shifted by one in each row of T + 1 ids.
fn tokens(cfg: &Config) -> (Vec<i32>, Vec<i32>) {
    let (b, t, v) = (cfg.batch_size, cfg.block_size, cfg.vocab_size);
    let ids: Vec<i32> = random_floats(b * (t + 1), cfg.token_seed).iter().map(|&u| (((u as f64 + 1.0) / 2.0 * v as f64).floor() as i32).min(v as i32 - 1)).collect();
    let rows = |offset: usize| (0..b * t).map(|i| ids[i / t * (t + 1) + i % t + offset]).collect();
    (rows(0), rows(1))
}

// ---- activations and backward scratch ----------------------------------------------------

/// One block's forward outputs, kept for backward. BT = B * T rows.
struct LayerActs {
    ln_1: Vec<f32>,       // [BT, C]
    ln_1_mean: Vec<f32>,  // [BT]
    ln_1_rstd: Vec<f32>,  // [BT]
    qkv: Vec<f32>,        // [BT, 3C] = [B, T, 3, nh, hs], read in place by the attention
    atty: Vec<f32>,       // [BT, C] = [B, T, nh, hs], the heads side by side
    lse: Vec<f32>,        // [B, nh, T] log-sum-exp per query row
    attn_proj: Vec<f32>,  // [BT, C]
    x_mid: Vec<f32>,      // [BT, C] residual after attention
    ln_2: Vec<f32>,       // [BT, C]
    ln_2_mean: Vec<f32>,  // [BT]
    ln_2_rstd: Vec<f32>,  // [BT]
    fch_gelu: Vec<f32>,   // [BT, 4C] GELU(c_fc(ln_2))
    fch_act_grad: Vec<f32>, // [BT, 4C] GELU'(pre-activation), saved by the fused linear
    mlp_proj: Vec<f32>,   // [BT, C]
    x_out: Vec<f32>,      // [BT, C] residual after the MLP
}

struct Acts {
    tok_emb: Vec<f32>,   // [BT, C]
    pos_emb: Vec<f32>,   // [T, C]
    x0: Vec<f32>,        // [BT, C]
    layers: Vec<LayerActs>,
    ln_f: Vec<f32>,      // [BT, C]
    ln_f_mean: Vec<f32>, // [BT]
    ln_f_rstd: Vec<f32>, // [BT]
    logits: Vec<f32>,    // [BT, V]
    ce_lse: Vec<f32>,    // [BT]
    loss: Vec<f32>,      // [1]
    /// The layer norms' bias when the model has none (nn.LayerNorm passes zeros).
    zero_bias: Vec<f32>, // [C]
}

/// Gradients of activations, one buffer per role, reused by every layer (JavaScript takes a
/// fresh buffer from its pool per call).
struct Scratch {
    dloss: Vec<f32>,     // [1]
    dlogits: Vec<f32>,   // [BT, V]
    dresidual: Vec<f32>, // [BT, C] the residual stream's gradient, layer norms' backward add into it
    dresid_copy: Vec<f32>, // [BT, C] its value entering a projection's backward
    dln: Vec<f32>,       // [BT, C] a layer norm's output gradient
    datty: Vec<f32>,     // [BT, C]
    dqkv: Vec<f32>,      // [BT, 3C]
    dfch: Vec<f32>,      // [BT, 4C]
    dpre: Vec<f32>,      // [BT, 4C] the GELU linear's pre-activation gradient
    dpos: Vec<f32>,      // [T, C] position embeddings' gradient (summed over B)
    /// The layer norms' bias gradient when the model has none (written, never read).
    dunused_bias: Vec<f32>, // [C]
}

impl Acts {
    fn new(cfg: &Config) -> Acts {
        let (bt, c, t) = (cfg.batch_size * cfg.block_size, cfg.n_embd, cfg.block_size);
        let layer = || LayerActs {
            ln_1: vec![0.0; bt * c], ln_1_mean: vec![0.0; bt], ln_1_rstd: vec![0.0; bt],
            qkv: vec![0.0; bt * 3 * c], atty: vec![0.0; bt * c], lse: vec![0.0; cfg.batch_size * cfg.n_head * t],
            attn_proj: vec![0.0; bt * c], x_mid: vec![0.0; bt * c],
            ln_2: vec![0.0; bt * c], ln_2_mean: vec![0.0; bt], ln_2_rstd: vec![0.0; bt],
            fch_gelu: vec![0.0; bt * 4 * c], fch_act_grad: vec![0.0; bt * 4 * c],
            mlp_proj: vec![0.0; bt * c], x_out: vec![0.0; bt * c],
        };
        Acts {
            tok_emb: vec![0.0; bt * c], pos_emb: vec![0.0; t * c], x0: vec![0.0; bt * c],
            layers: (0..cfg.n_layer).map(|_| layer()).collect(),
            ln_f: vec![0.0; bt * c], ln_f_mean: vec![0.0; bt], ln_f_rstd: vec![0.0; bt],
            logits: vec![0.0; bt * cfg.vocab_size], ce_lse: vec![0.0; bt], loss: vec![0.0; 1],
            zero_bias: vec![0.0; c],
        }
    }
}

impl Scratch {
    fn new(cfg: &Config) -> Scratch {
        let (bt, c) = (cfg.batch_size * cfg.block_size, cfg.n_embd);
        Scratch {
            dloss: vec![0.0; 1], dlogits: vec![0.0; bt * cfg.vocab_size],
            dresidual: vec![0.0; bt * c], dresid_copy: vec![0.0; bt * c], dln: vec![0.0; bt * c],
            datty: vec![0.0; bt * c], dqkv: vec![0.0; bt * 3 * c], dfch: vec![0.0; bt * 4 * c], dpre: vec![0.0; bt * 4 * c],
            dpos: vec![0.0; cfg.block_size * c], dunused_bias: vec![0.0; c],
        }
    }
}

// ---- timing per kernel -------------------------------------------------------------------

/// Time and calls per kernel name, summed over the timed steps (`--by-kernel`).
struct Profile {
    enabled: bool,
    /// `--trace`: also print each call's name as it returns (one step), for a diff against the
    /// JavaScript step's calls.
    trace: bool,
    totals: Vec<(String, Duration, usize, f64)>, // name, time, calls, flops
}

impl Profile {
    fn add(&mut self, name: String, elapsed: Duration, flops: f64) {
        if self.trace {
            println!("call {name}");
        }
        match self.totals.iter_mut().find(|e| e.0 == name) {
            Some(e) => {
                e.1 += elapsed;
                e.2 += 1;
                e.3 += flops;
            }
            None => self.totals.push((name, elapsed, 1, flops)),
        }
    }
}

/// Runs `call`, and under `--by-kernel` adds its wall time to `name` (evaluated only then).
macro_rules! timed {
    ($prof:expr, $name:expr, $call:expr) => {
        timed!($prof, $name, 0.0, $call)
    };
    ($prof:expr, $name:expr, $flops:expr, $call:expr) => {{
        let start = $prof.enabled.then(Instant::now);
        let out = $call;
        if let Some(start) = start {
            $prof.add($name.to_string(), start.elapsed(), $flops);
        }
        out
    }};
}

/// profile_kernels' `--by-shape` name of a linear call.
fn linear_name(kernel: &str, rows: usize, in_f: usize, out_f: usize, act: Activation) -> String {
    let act = match act {
        Activation::Identity => "identity",
        Activation::Relu => "relu",
        Activation::Gelu => "gelu",
        Activation::GeluTanh => "gelu_tanh",
    };
    format!("{kernel} {rows}x{in_f}->{out_f} {act}")
}

/// What the kernels of one step run with.
struct Ctx<'a> {
    cfg: Config,
    par: &'a dyn Parallel,
    prof: Profile,
}

impl Ctx<'_> {
    /// `ops.linear` forward: out [rows, out_f] = act(x [rows, in_f] · weightᵀ + bias).
    #[allow(clippy::too_many_arguments)]
    fn linear_forward(&mut self, out: &mut [f32], act_grad: Option<&mut [f32]>, x: &[f32], weight: &[f32], bias: &[f32], rows: usize, in_f: usize, out_f: usize, act: Activation) {
        let bias = (!bias.is_empty()).then_some(bias);
        let flops = 2.0 * (rows * in_f * out_f) as f64;
        timed!(self.prof, linear_name("linearForward", rows, in_f, out_f, act), flops,
            linear_forward(out, act_grad, x, weight, bias, rows, in_f, out_f, act, self.par));
    }

    /// Its backward as the autograd calls it: dx and dweight overwritten, dbias (filled with
    /// 0 first when the layer has a bias) accumulated.
    #[allow(clippy::too_many_arguments)]
    fn linear_backward(&mut self, dx: &mut [f32], dweight: &mut [f32], dbias: &mut [f32], dpre: &mut [f32], dout: &[f32], x: &[f32], weight: &[f32], saved: &[f32], rows: usize, in_f: usize, out_f: usize, act: Activation) {
        let dbias = if dbias.is_empty() {
            None
        } else {
            timed!(self.prof, "fill", dbias.fill(0.0));
            Some(dbias)
        };
        let flops = 4.0 * (rows * in_f * out_f) as f64;
        timed!(self.prof, linear_name("linearBackward", rows, in_f, out_f, act), flops,
            linear_backward(Some(dx), Some(dweight), dbias, dpre, dout, x, weight, saved, rows, in_f, out_f, act, false, false, self.par));
    }

    #[allow(clippy::too_many_arguments)]
    fn layernorm_forward(&mut self, out: &mut [f32], mean: &mut [f32], rstd: &mut [f32], inp: &[f32], weight: &[f32], bias: &[f32], zero_bias: &[f32]) {
        let (bt, c) = (self.cfg.batch_size * self.cfg.block_size, self.cfg.n_embd);
        let bias = if bias.is_empty() { zero_bias } else { bias };
        timed!(self.prof, "layernormForward", layernorm_forward(out, mean, rstd, inp, weight, bias, bt, c, LN_EPS, self.par));
    }

    /// dinp accumulates (the residual stream's gradient); dweight and dbias are filled with 0
    /// first (dbias not when the model has no bias: then a scratch the result is dropped in).
    #[allow(clippy::too_many_arguments)]
    fn layernorm_backward(&mut self, dinp: &mut [f32], dweight: &mut [f32], dbias: &mut [f32], dunused_bias: &mut [f32], dout: &[f32], inp: &[f32], weight: &[f32], mean: &[f32], rstd: &[f32]) {
        let (bt, c) = (self.cfg.batch_size * self.cfg.block_size, self.cfg.n_embd);
        timed!(self.prof, "fill", dweight.fill(0.0));
        let dbias = if dbias.is_empty() {
            dunused_bias
        } else {
            timed!(self.prof, "fill", dbias.fill(0.0));
            dbias
        };
        timed!(self.prof, "layernormBackward", layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, bt, c, self.par));
    }

    fn attention_scale(&self) -> f32 {
        (1.0 / ((self.cfg.n_embd / self.cfg.n_head) as f64).sqrt()) as f32
    }
}

// ---- forward -----------------------------------------------------------------------------

/// Block.forward: x_mid = x_in + c_proj(attention(c_attn(ln_1(x_in)))),
/// x_out = x_mid + mlp.c_proj(gelu(c_fc(ln_2(x_mid)))). All [BT, C] but qkv [BT, 3C] and the
/// MLP's hidden [BT, 4C].
fn block_forward(k: &mut Ctx, p: &LayerParams, a: &mut LayerActs, x_in: &[f32], zero_bias: &[f32]) {
    let cfg = k.cfg;
    let (b, t, c, nh) = (cfg.batch_size, cfg.block_size, cfg.n_embd, cfg.n_head);
    let bt = b * t;
    k.layernorm_forward(&mut a.ln_1, &mut a.ln_1_mean, &mut a.ln_1_rstd, x_in, &p.ln_1_weight, &p.ln_1_bias, zero_bias);
    k.linear_forward(&mut a.qkv, None, &a.ln_1, &p.c_attn_weight, &p.c_attn_bias, bt, c, 3 * c, Activation::Identity);
    let scale = k.attention_scale();
    timed!(k.prof, "attentionPackedForward", attention_packed_forward(&mut a.atty, &mut a.lse, &a.qkv, None, b, nh, t, c / nh, true, scale, 0.0, 0, 0, k.par));
    k.linear_forward(&mut a.attn_proj, None, &a.atty, &p.attn_c_proj_weight, &p.attn_c_proj_bias, bt, c, c, Activation::Identity);
    timed!(k.prof, "addForward", add_forward(&mut a.x_mid, x_in, &a.attn_proj, k.par));
    k.layernorm_forward(&mut a.ln_2, &mut a.ln_2_mean, &mut a.ln_2_rstd, &a.x_mid, &p.ln_2_weight, &p.ln_2_bias, zero_bias);
    k.linear_forward(&mut a.fch_gelu, Some(&mut a.fch_act_grad), &a.ln_2, &p.c_fc_weight, &p.c_fc_bias, bt, c, 4 * c, Activation::Gelu);
    k.linear_forward(&mut a.mlp_proj, None, &a.fch_gelu, &p.mlp_c_proj_weight, &p.mlp_c_proj_bias, bt, 4 * c, c, Activation::Identity);
    timed!(k.prof, "addForward", add_forward(&mut a.x_out, &a.x_mid, &a.mlp_proj, k.par));
}

/// GPT.forward with targets: logits [BT, V] = ln_f(blocks(wte[X] + wpe[:T])) · wteᵀ, and the
/// mean cross-entropy against Y. Returns the loss.
fn gpt_forward(k: &mut Ctx, p: &Params, a: &mut Acts, x: &[i32], y: &[i32]) -> f32 {
    let cfg = k.cfg;
    let (b, t, c, v) = (cfg.batch_size, cfg.block_size, cfg.n_embd, cfg.vocab_size);
    timed!(k.prof, "embeddingForward", embedding_forward(&mut a.tok_emb, x, &p.wte, c));
    timed!(k.prof, "narrowForward", narrow_forward(&mut a.pos_emb, &p.wpe, 1, cfg.block_size, c, 0, t, k.par));
    timed!(k.prof, "biasAddForward", bias_add_forward(&mut a.x0, &a.tok_emb, &a.pos_emb, b, t * c, k.par));
    for l in 0..cfg.n_layer {
        let (done, rest) = a.layers.split_at_mut(l);
        let x_in = if l == 0 { &a.x0 } else { &done[l - 1].x_out };
        block_forward(k, &p.layers[l], &mut rest[0], x_in, &a.zero_bias);
    }
    let x_last = &a.layers[cfg.n_layer - 1].x_out;
    k.layernorm_forward(&mut a.ln_f, &mut a.ln_f_mean, &mut a.ln_f_rstd, x_last, &p.ln_f_weight, &p.ln_f_bias, &a.zero_bias);
    k.linear_forward(&mut a.logits, None, &a.ln_f, &p.wte, &[], b * t, c, v, Activation::Identity);
    timed!(k.prof, "crossEntropyForward", cross_entropy_forward(&mut a.loss, &mut a.ce_lse, &a.logits, y, b * t, v, -1, 0.0, k.par));
    a.loss[0]
}

// ---- backward ----------------------------------------------------------------------------

/// Block backward, in the tape's order: the MLP branch, ln_2 (adding into dresidual), the
/// attention branch, ln_1. dresidual holds d(x_out) on entry and d(x_in) on return.
fn block_backward(k: &mut Ctx, p: &LayerParams, g: &mut LayerParams, a: &LayerActs, x_in: &[f32], s: &mut Scratch) {
    let cfg = k.cfg;
    let (b, t, c, nh) = (cfg.batch_size, cfg.block_size, cfg.n_embd, cfg.n_head);
    let bt = b * t;
    timed!(k.prof, "copy", s.dresid_copy.copy_from_slice(&s.dresidual));
    k.linear_backward(&mut s.dfch, &mut g.mlp_c_proj_weight, &mut g.mlp_c_proj_bias, &mut [], &s.dresid_copy, &a.fch_gelu, &p.mlp_c_proj_weight, &[], bt, 4 * c, c, Activation::Identity);
    k.linear_backward(&mut s.dln, &mut g.c_fc_weight, &mut g.c_fc_bias, &mut s.dpre, &s.dfch, &a.ln_2, &p.c_fc_weight, &a.fch_act_grad, bt, c, 4 * c, Activation::Gelu);
    k.layernorm_backward(&mut s.dresidual, &mut g.ln_2_weight, &mut g.ln_2_bias, &mut s.dunused_bias, &s.dln, &a.x_mid, &p.ln_2_weight, &a.ln_2_mean, &a.ln_2_rstd);
    timed!(k.prof, "copy", s.dresid_copy.copy_from_slice(&s.dresidual));
    k.linear_backward(&mut s.datty, &mut g.attn_c_proj_weight, &mut g.attn_c_proj_bias, &mut [], &s.dresid_copy, &a.atty, &p.attn_c_proj_weight, &[], bt, c, c, Activation::Identity);
    let scale = k.attention_scale();
    timed!(k.prof, "attentionPackedBackward", attention_packed_backward(&mut s.dqkv, &s.datty, &a.qkv, &a.atty, &a.lse, None, b, nh, t, c / nh, true, scale, 0.0, 0, 0, false, k.par));
    k.linear_backward(&mut s.dln, &mut g.c_attn_weight, &mut g.c_attn_bias, &mut [], &s.dqkv, &a.ln_1, &p.c_attn_weight, &[], bt, c, 3 * c, Activation::Identity);
    k.layernorm_backward(&mut s.dresidual, &mut g.ln_1_weight, &mut g.ln_1_bias, &mut s.dunused_bias, &s.dln, x_in, &p.ln_1_weight, &a.ln_1_mean, &a.ln_1_rstd);
}

/// loss.backward(): every gradient of `g` written (the tied wte/lm_head one by the logits'
/// product, then the embedding's scatter added).
fn gpt_backward(k: &mut Ctx, p: &Params, g: &mut Params, a: &Acts, x: &[i32], y: &[i32], s: &mut Scratch) {
    let cfg = k.cfg;
    let (b, t, c, v) = (cfg.batch_size, cfg.block_size, cfg.n_embd, cfg.vocab_size);
    let bt = b * t;
    timed!(k.prof, "fill", s.dloss.fill(1.0));
    timed!(k.prof, "crossEntropyBackward", cross_entropy_backward(&mut s.dlogits, &s.dloss, &a.logits, &a.ce_lse, y, bt, v, -1, 0.0, false, k.par));
    k.linear_backward(&mut s.dln, &mut g.wte, &mut [], &mut [], &s.dlogits, &a.ln_f, &p.wte, &[], bt, c, v, Activation::Identity);
    timed!(k.prof, "fill", s.dresidual.fill(0.0));
    let x_last = &a.layers[cfg.n_layer - 1].x_out;
    k.layernorm_backward(&mut s.dresidual, &mut g.ln_f_weight, &mut g.ln_f_bias, &mut s.dunused_bias, &s.dln, x_last, &p.ln_f_weight, &a.ln_f_mean, &a.ln_f_rstd);
    for l in (0..cfg.n_layer).rev() {
        let x_in = if l == 0 { &a.x0 } else { &a.layers[l - 1].x_out };
        block_backward(k, &p.layers[l], &mut g.layers[l], &a.layers[l], x_in, s);
    }
    timed!(k.prof, "fill", s.dpos.fill(0.0));
    timed!(k.prof, "biasAddBackward", bias_add_backward(&mut s.dpos, &s.dresidual, b, t * c));
    timed!(k.prof, "fill", g.wpe.fill(0.0));
    timed!(k.prof, "narrowBackward", narrow_backward(&mut g.wpe, &s.dpos, 1, cfg.block_size, c, 0, t, k.par));
    timed!(k.prof, "embeddingBackward", embedding_backward(&mut g.wte, &s.dresidual, x, c));
}

// ---- optimiser ---------------------------------------------------------------------------

/// optim.clipGradNorm: the total norm over every gradient (f64 sum of each one's sum of
/// squares), all scaled by max / (norm + 1e-6) when that is below 1. Returns the norm.
fn clip_grad_norm(k: &mut Ctx, g: &mut Params) -> f64 {
    let mut grads = g.tensors_mut();
    let mut sum_sq = 0.0;
    for (_, _, t) in grads.iter() {
        sum_sq += timed!(k.prof, "sumSquares", sum_squares(t, k.par));
    }
    let total = sum_sq.sqrt();
    let coef = GRAD_CLIP / (total + 1e-6);
    if total.is_finite() && coef < 1.0 {
        for (_, _, t) in grads.iter_mut() {
            timed!(k.prof, "scaleInplace", scale_inplace(t, coef as f32, k.par));
        }
    }
    total
}

/// AdamW over configure_optimizers' groups: the 2-D tensors (weight decay 0.1), then the
/// others (none), each in parameters() order.
fn adamw_step(k: &mut Ctx, p: &mut Params, g: &mut Params, m: &mut Params, v: &mut Params, step: u32) {
    let tensors = p.tensors_mut().into_iter().zip(g.tensors_mut()).zip(m.tensors_mut()).zip(v.tensors_mut());
    let (mut decay, mut no_decay): (Vec<_>, Vec<_>) = tensors.partition(|(((p, _), _), _)| p.1);
    for (((p, g), m), v) in decay.iter_mut().chain(no_decay.iter_mut()) {
        let wd = if p.1 { WEIGHT_DECAY } else { 0.0 };
        timed!(k.prof, "adamUpdate", adam_update(p.2, m.2, v.2, g.2, LEARNING_RATE as f32, BETAS.0 as f32, BETAS.1 as f32, ADAM_EPS as f32, wd as f32, step, true, k.par));
    }
}

// ---- main --------------------------------------------------------------------------------

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let workload = arg(&args, "--workload").unwrap_or("W5");
    let cfg = match workload {
        "W5" => W5,
        "W6" => W6,
        other => panic!("--workload must be W5 or W6, got {other}"),
    };
    let threads: usize = arg(&args, "--threads").map_or(1, |s| s.parse().expect("--threads=N"));
    let steps: usize = arg(&args, "--steps").map_or(if workload == "W6" { 5 } else { 30 }, |s| s.parse().expect("--steps=S"));
    let by_kernel = args.iter().any(|a| a == "--by-kernel");
    let trace = args.iter().any(|a| a == "--trace");
    // The addon's threads: `threads - 1` workers of the process-wide pool beside the calling
    // thread, every kernel given pool::Pool (crates/node/src/lib.rs `with_parallel`).
    pool::start_os_threads(threads).expect("start the pool's threads");
    let mut k = Ctx { cfg, par: &pool::Pool, prof: Profile { enabled: false, trace: false, totals: Vec::new() } };

    let mut params = Params::initial(&cfg);
    let (mut grads, mut m, mut v) = (Params::zeros(&cfg), Params::zeros(&cfg), Params::zeros(&cfg));
    let n_params: usize = params.tensors_mut().iter().map(|t| t.2.len()).sum();
    let (x, y) = tokens(&cfg);
    let (mut acts, mut scratch) = (Acts::new(&cfg), Scratch::new(&cfg));
    let tokens_per_step = cfg.batch_size * cfg.block_size;
    println!("{workload}: L{} h{} d{} T{} B{} V{}{}, {n_params} parameters; {threads} thread(s), {:?}",
        cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.batch_size, cfg.vocab_size, if cfg.bias { " bias" } else { "" }, Isa::detect());

    let mut times = Vec::new();
    for step in 1..=2 + steps {
        k.prof.trace = trace && step == 3;
        k.prof.enabled = (by_kernel && step > 2) || k.prof.trace;
        let start = Instant::now();
        let loss = gpt_forward(&mut k, &params, &mut acts, &x, &y);
        gpt_backward(&mut k, &params, &mut grads, &acts, &x, &y, &mut scratch);
        let norm = clip_grad_norm(&mut k, &mut grads);
        adamw_step(&mut k, &mut params, &mut grads, &mut m, &mut v, step as u32);
        let elapsed = start.elapsed().as_secs_f64();
        let kind = if step > 2 { "" } else { " (warm-up)" };
        println!("step {step:3}: loss {loss:.4}  grad norm {norm:.4}  {:.2} ms{kind}", elapsed * 1e3);
        if step > 2 {
            times.push(elapsed);
        }
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!("{workload} x{threads}: {:.2} ms/step median, {:.2} best, {:.2} mean; {:.0} tokens/s (median)",
        median * 1e3, times[0] * 1e3, mean * 1e3, tokens_per_step as f64 / median);

    if by_kernel {
        let mut rows = k.prof.totals;
        rows.sort_by_key(|r| std::cmp::Reverse(r.1));
        let in_kernels: f64 = rows.iter().map(|r| r.1.as_secs_f64()).sum::<f64>() / steps as f64;
        println!("kernels {:.2} ms/step, outside kernels {:.2} ms", in_kernels * 1e3, (mean - in_kernels) * 1e3);
        println!("{:<48}{:>10}{:>8}{:>12}  GFLOP/s", "kernel", "ms/step", "share", "calls/step");
        for (name, time, calls, flops) in rows {
            let ms = time.as_secs_f64() * 1e3 / steps as f64;
            let rate = if flops > 0.0 { format!("{:9.1}", flops / time.as_secs_f64() / 1e9) } else { String::new() };
            println!("{name:<48}{ms:>10.3}{:>7.1}%{:>12}{rate}", 100.0 * ms / (mean * 1e3), calls as f64 / steps as f64);
        }
    }
}
