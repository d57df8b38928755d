//! Throughput of the vectorised pointwise math per instruction set, in elements per ns, beside
//! the f64 per-element reference (`unary_scalar`, what the GELU kernels ran before):
//!   cargo run --release -p ferroformer-kernels --example pointwise_bench [-- elements [name [lo hi]]]
//! (`name`, e.g. `gelu`, times that function only, `all` every one; `lo hi` draws the inputs'
//! magnitudes from [lo, hi), e.g. `10 40` for GELU's far tails, instead of inputs in [-5, 5)).
//! For the GELUs, `fwd+grad` is the fused linear's epilogue (`simd::bias_act_with_grad`,
//! value and derivative in one pass, no bias) after a copy of the inputs it overwrites.
//! One linear-epilogue block of W6's MLP (64 rows x 1536) is 98,304 elements.
use ferroformer_kernels::ops::unary::{unary_grad_scalar, unary_scalar, UnaryOp};
use ferroformer_kernels::ops::cross_entropy::{cross_entropy_backward_with, cross_entropy_forward_with};
use ferroformer_kernels::simd::{self, Isa, Pointwise};
use ferroformer_kernels::Serial;
use std::hint::black_box;
use std::time::Instant;

/// Best of 7 rounds of `reps` calls, in elements per ns.
fn rate(n: usize, reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut best = f64::INFINITY;
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..reps {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / reps as f64);
    }
    n as f64 / (best * 1e9)
}

fn main() {
    let n: usize = std::env::args().nth(1).map_or(98_304, |s| s.parse().expect("elements"));
    let only = std::env::args().nth(2);
    let reps = (50_000_000 / n).max(1);
    // Spread over [0, 1) in a fixed scattered order.
    let spread = |i: usize| ((i * 7919) % 2000) as f32 / 2000.0;
    let x: Vec<f32> = match (std::env::args().nth(3), std::env::args().nth(4)) {
        (Some(lo), Some(hi)) => {
            let (lo, hi): (f32, f32) = (lo.parse().expect("lo"), hi.parse().expect("hi"));
            println!("{n} elements, |inputs| in [{lo}, {hi}), signs alternating; elements per ns (best of 7)");
            (0..n).map(|i| (lo + (hi - lo) * spread(i)) * if i % 2 == 0 { 1.0 } else { -1.0 }).collect()
        }
        _ => {
            println!("{n} elements, inputs in [-5, 5); elements per ns (best of 7)");
            (0..n).map(|i| 10.0 * spread(i) - 5.0).collect()
        }
    };
    let g = vec![1.0f32; n];
    let (mut y, mut t) = (vec![0.0f32; n], vec![0.0f32; n]);
    for (name, f, op) in [("gelu", Pointwise::Gelu, UnaryOp::Gelu), ("gelu_tanh", Pointwise::GeluTanh, UnaryOp::GeluTanh),
                          ("exp", Pointwise::Exp, UnaryOp::Exp), ("tanh", Pointwise::Tanh, UnaryOp::Tanh),
                          ("sigmoid", Pointwise::Sigmoid, UnaryOp::Sigmoid)] {
        if only.as_deref().is_some_and(|only| only != name && only != "all") {
            continue;
        }
        let mut row = format!("{name:>10}");
        for isa in Isa::available() {
            let fwd = rate(n, reps, || simd::pointwise_with(isa, black_box(&mut y), black_box(&x), f));
            let bwd = rate(n, reps, || simd::pointwise_grad_with(isa, black_box(&mut y), black_box(&g), black_box(&x), f, false));
            row += &format!("  {isa:?} fwd {fwd:6.2} bwd {bwd:6.2}");
            if matches!(f, Pointwise::Gelu | Pointwise::GeluTanh) {
                let both = rate(n, reps, || {
                    t.copy_from_slice(black_box(&x));
                    simd::bias_act_with_grad_with(isa, black_box(&mut t), black_box(&mut y), None, n, f);
                });
                row += &format!(" fwd+grad {both:6.2}");
            }
        }
        let fwd = rate(n, reps / 8 + 1, || {
            for (o, &v) in y.iter_mut().zip(black_box(&x)) {
                *o = unary_scalar(op, v, 0.0, 0.0);
            }
        });
        let bwd = rate(n, reps / 8 + 1, || {
            for (o, &v) in y.iter_mut().zip(black_box(&x)) {
                *o = unary_grad_scalar(op, v, 0.0, 0.0);
            }
        });
        row += &format!("  f64-reference fwd {fwd:6.3} bwd {bwd:6.3}");
        println!("{row}");
    }
    if only.as_deref().is_none_or(|only| only == "cross_entropy" || only == "all") {
        cross_entropy_rates();
    }
}

/// Cross-entropy forward and backward (one thread) per instruction set at the training
/// benchmarks' logits: W4 [1024, 1024], W5 [768, 65], W6 [2048, 65]; logits in [-5, 5), no
/// target ignored; without and with label smoothing; the backward writing dlogits against a
/// zero fill followed by the accumulating backward.
fn cross_entropy_rates() {
    for (name, rows, vocab) in [("W4", 1024, 1024), ("W5", 768, 65), ("W6", 2048, 65)] {
        let n = rows * vocab;
        let logits: Vec<f32> = (0..n).map(|i| ((i * 7919) % 2000) as f32 / 200.0 - 5.0).collect();
        let targets: Vec<i32> = (0..rows).map(|r| ((r * 31) % vocab) as i32).collect();
        let (mut loss, mut lse, mut dlogits) = ([0.0f32], vec![0.0f32; rows], vec![0.0f32; n]);
        let reps = (20_000_000 / n).max(1);
        for isa in Isa::available() {
            let mut row = format!("cross_entropy {name} [{rows}, {vocab}] {isa:?}");
            for eps in [0.0, 0.1] {
                let fwd = rate(n, reps, || {
                    cross_entropy_forward_with(isa, &mut loss, &mut lse, black_box(&logits), &targets, rows, vocab, -100, eps, &Serial)
                });
                // The backward into a zero-filled gradient (fill, then add), and writing it.
                let bwd_fill = rate(n, reps, || {
                    dlogits.fill(0.0);
                    cross_entropy_backward_with(isa, &mut dlogits, &[1.0], black_box(&logits), &lse, &targets, rows, vocab, -100, eps, true, &Serial)
                });
                let bwd = rate(n, reps, || {
                    cross_entropy_backward_with(isa, &mut dlogits, &[1.0], black_box(&logits), &lse, &targets, rows, vocab, -100, eps, false, &Serial)
                });
                row += &format!("  eps {eps}: fwd {fwd:5.2} bwd fill+add {bwd_fill:5.2} write {bwd:5.2}");
            }
            println!("{row}");
        }
    }
}
