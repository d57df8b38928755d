//! The fused linear layer (`ops::linear`) forward and backward at the training benchmarks'
//! shapes, per thread count, as a training step calls them:
//! `cargo run --release -p ferroformer-kernels --example linear_bench -- [threads] [filter]`
//! (W4: DecoderLM, rows 1024, bias, ReLU MLP; W5: nanoGPT baby GPT, rows 768, bias, GELU MLP;
//! W6: nanoGPT 10.7M, rows 2048, no bias, GELU MLP). Median and best of 31 calls, wall clock
//! (CPU time cannot see the other threads), GFLOP/s counting the products only, and the
//! medians in ms of forward, backward and their sum, and of backward without its products
//! (the dpre pass and the bias gradient). `FERROFORMER_ISA=avx2` runs the AVX2
//! kernels on an AVX-512 machine (`Isa::detect`).
use ferroformer_kernels::ops::linear::{linear_backward, linear_forward, Activation};
use ferroformer_kernels::{pool, Parallel, Serial};
use std::time::Instant;

/// The addon's threads: `threads - 1` workers of the process-wide pool (crates/kernels/src/pool.rs)
/// beside the calling thread, as crates/node starts them.
fn start_pool(threads: usize) -> Box<dyn Parallel> {
    pool::start_os_threads(threads).expect("start the pool's threads");
    Box::new(pool::Pool)
}

/// (name, rows, in, out, bias, activation, scale of the inputs x).
fn cases() -> Vec<(String, usize, usize, usize, bool, Activation, f32)> {
    let mut v = Vec::new();
    for (i, o, act) in [(128, 384, Activation::Identity), (128, 512, Activation::Relu), (512, 128, Activation::Identity), (128, 1024, Activation::Identity)] {
        v.push((format!("W4 {i}->{o} {act:?}"), 1024, i, o, true, act, 1.0));
    }
    for (i, o, act) in [(128, 384, Activation::Identity), (128, 512, Activation::Gelu), (512, 128, Activation::Identity)] {
        v.push((format!("W5 {i}->{o} {act:?}"), 768, i, o, true, act, 1.0));
    }
    for (i, o, act) in [(384, 1152, Activation::Identity), (384, 1536, Activation::Gelu), (1536, 384, Activation::Identity)] {
        v.push((format!("W6 {i}->{o} {act:?}"), 2048, i, o, false, act, 1.0));
    }
    // The fill below gives W6's 384-deep products pre-activations up to about ±30, far into
    // GELU's tails; a tenth of the inputs keeps them within ±3.
    v.push(("W6 384->1536 Gelu x/10".to_string(), 2048, 384, 1536, false, Activation::Gelu, 0.1));
    v
}

/// (median, best) seconds of 31 calls after one warm-up.
fn time(mut f: impl FnMut()) -> (f64, f64) {
    f();
    let mut t: Vec<f64> = (0..31).map(|_| {
        let s = Instant::now();
        f();
        s.elapsed().as_secs_f64()
    }).collect();
    t.sort_by(f64::total_cmp);
    (t[15], t[0])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let filter = args.get(2).cloned().unwrap_or_default();
    let par: Box<dyn Parallel> = if threads > 1 { start_pool(threads) } else { Box::new(Serial) };
    for (name, rows, in_f, out_f, with_bias, act, x_scale) in cases() {
        if !name.contains(&filter) {
            continue;
        }
        let fill = |n: usize, seed: usize| -> Vec<f32> { (0..n).map(|i| (((i * 7 + seed) % 13) as f32 - 6.0) * 0.05).collect() };
        let x: Vec<f32> = fill(rows * in_f, 1).iter().map(|v| v * x_scale).collect();
        let (w, b) = (fill(out_f * in_f, 2), fill(out_f, 3));
        let bias = with_bias.then_some(&b[..]);
        let (mut out, mut act_grad) = (vec![0.0; rows * out_f], vec![0.0; rows * out_f]);
        let (mut dx, mut dw, mut db, mut dpre) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; out_f], vec![0.0; rows * out_f]);
        let dout = fill(rows * out_f, 4);
        let flops = 2.0 * (rows * in_f * out_f) as f64;
        let fwd = time(|| {
            let act_grad_arg = if act.saves_act_grad() { Some(&mut act_grad[..]) } else { None };
            linear_forward(&mut out, act_grad_arg, &x, &w, bias, rows, in_f, out_f, act, par.as_ref());
        });
        let saved = if act.saves_act_grad() { act_grad.clone() } else { out.clone() };
        let bwd = time(|| {
            let db_arg = if with_bias { Some(&mut db[..]) } else { None };
            linear_backward(Some(&mut dx), Some(&mut dw), db_arg, &mut dpre, &dout, &x, &w, &saved, rows, in_f, out_f, act, true, true, par.as_ref());
        });
        // Backward without the products: the dpre pass (dout ∘ act') and the bias gradient.
        let dpre_pass = time(|| {
            let db_arg = if with_bias { Some(&mut db[..]) } else { None };
            linear_backward(None, None, db_arg, &mut dpre, &dout, &x, &w, &saved, rows, in_f, out_f, act, true, true, par.as_ref());
        });
        println!("{name:<24} x{threads} fwd {:6.1} GFLOP/s (best {:6.1})  bwd {:6.1} (best {:6.1})  ms: fwd {:.3} bwd {:.3} sum {:.3} (dpre pass {:.3})",
            flops / fwd.0 / 1e9, flops / fwd.1 / 1e9, 2.0 * flops / bwd.0 / 1e9, 2.0 * flops / bwd.1 / 1e9,
            fwd.0 * 1e3, bwd.0 * 1e3, (fwd.0 + bwd.0) * 1e3, dpre_pass.0 * 1e3);
    }
}
