//! Single-thread flash attention throughput at the W2 shape (B=1, H=8, T=512, D=64, causal)
//! and a training-sized one, forward and backward:
//! `cargo run --release --example attention_bench`. GFLOP/s count the full 4·B·H·T²·D
//! (forward) and 8·B·H·T²·D (backward), as bench/ does for W2. Each shape runs without and
//! with dropout 0.1 on the weights (the mask is hashed per weight).
use ferroformer_kernels::ops::attention::{attention_backward, attention_forward};
use ferroformer_kernels::Serial;
use std::time::Instant;

fn best_of<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    f();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..reps {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / reps as f64);
    }
    best
}

fn main() {
    for &(b, h, t, d) in &[(1usize, 8usize, 512usize, 64usize), (16, 4, 64, 32), (1, 4, 2048, 64)] {
        let n = b * h * t * d;
        let q: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.05).collect();
        let k: Vec<f32> = (0..n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.05).collect();
        let v: Vec<f32> = (0..n).map(|i| ((i * 3 % 7) as f32 - 3.0) * 0.1).collect();
        let (mut out, mut lse) = (vec![0.0f32; n], vec![0.0f32; b * h * t]);
        let scale = 1.0 / (d as f32).sqrt();
        let flops = 4.0 * (b * h * t * t * d) as f64;
        let reps = ((1e9 / flops) as usize).clamp(2, 200);
        for p in [0.0, 0.1] {
            let fwd = best_of(reps, || attention_forward(&mut out, &mut lse, &q, &k, &v, None, b, h, t, t, d, true, scale, p, 7, 0, &Serial));
            let (mut dq, mut dk, mut dv) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
            let bwd = best_of(reps, || attention_backward(&mut dq, &mut dk, &mut dv, &q, &q, &k, &v, &out, &lse, None, b, h, t, t, d, true, scale, p, 7, 0, &Serial));
            println!("B{b} H{h} T{t} D{d} causal, dropout {p}: forward {:.1} GFLOP/s ({:.2} ms), backward {:.1} GFLOP/s ({:.2} ms)",
                flops / fwd / 1e9, fwd * 1e3, 2.0 * flops / bwd / 1e9, bwd * 1e3);
        }
    }
}
