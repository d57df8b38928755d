//! Single-thread sgemm throughput: `cargo run --release --example sgemm_bench`.
use ferroformer_kernels::ops::matmul::matmul_forward_with;
use ferroformer_kernels::simd::Isa;
use ferroformer_kernels::Serial;
use std::time::Instant;

fn main() {
    for isa in Isa::available() {
        for &s in &[128usize, 256, 512, 1024] {
            let a: Vec<f32> = (0..s * s).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.1).collect();
            let b: Vec<f32> = (0..s * s).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.1).collect();
            let mut c = vec![0.0f32; s * s];
            let flops = 2.0 * (s * s * s) as f64;
            let reps = ((2e9 / flops) as usize).clamp(2, 2000);
            if isa == Isa::Scalar && s > 512 {
                continue;
            }
            matmul_forward_with(isa, &mut c, &a, &b, 1, s, s, s, false, false, false, &Serial);
            let mut best = f64::MAX;
            for _ in 0..3 {
                let t = Instant::now();
                for _ in 0..reps {
                    matmul_forward_with(isa, &mut c, &a, &b, 1, s, s, s, false, false, false, &Serial);
                }
                best = best.min(t.elapsed().as_secs_f64() / reps as f64);
            }
            println!("{isa:?} {s}^3: {:.1} GFLOP/s", flops / best / 1e9);
        }
    }
}
