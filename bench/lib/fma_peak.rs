//! The machine's single-core FMA peak, the yardstick of the "fraction of peak" goals:
//! 12 independent chains of fused multiply-adds (enough to cover the FMA latency on every
//! x86 core of the last decade, with two FMA ports), with the widest vectors the CPU has.
//! Built and run by bench/lib/machine.mjs (`rustc -O -C target-cpu=native`); prints one JSON
//! line {"avx2": GFLOP/s | null, "avx512": GFLOP/s | null}, each the best of many short runs.

use std::time::Instant;

/// Chains per kernel: FMA latency 4 cycles x 2 ports = 8 in flight at least; 12 leaves slack.
const CHAINS: usize = 12;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::CHAINS;
    use std::arch::x86_64::*;

    /// 12 x 8 lanes x 2 flops per iteration.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2(iterations: u64) -> f32 {
        let (x, y) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); CHAINS];
        for _ in 0..iterations {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, x, y);
            }
        }
        let mut sum = _mm256_setzero_ps();
        for a in acc {
            sum = _mm256_add_ps(sum, a);
        }
        let mut lanes = [0.0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
        lanes.iter().sum()
    }

    /// 12 x 16 lanes x 2 flops per iteration.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512(iterations: u64) -> f32 {
        let (x, y) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); CHAINS];
        for _ in 0..iterations {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(*a, x, y);
            }
        }
        let mut sum = _mm512_setzero_ps();
        for a in acc {
            sum = _mm512_add_ps(sum, a);
        }
        _mm512_reduce_add_ps(sum)
    }
}

/// Best GFLOP/s over short runs (a few ms each) for about half a second: on a shared machine
/// the best run is the one no other process interrupted.
fn best(flops_per_iteration: f64, kernel: impl Fn(u64) -> f32) -> f64 {
    let iterations = 1_000_000u64;
    let mut best = 0.0f64;
    let started = Instant::now();
    let mut runs = 0;
    while runs < 20 || started.elapsed().as_secs_f64() < 0.5 {
        let t0 = Instant::now();
        std::hint::black_box(kernel(std::hint::black_box(iterations)));
        let seconds = t0.elapsed().as_secs_f64();
        best = best.max(flops_per_iteration * iterations as f64 / seconds / 1e9);
        runs += 1;
    }
    best
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    let (avx2, avx512) = {
        let avx2 = (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
            // SAFETY: the features were just detected.
            .then(|| best((CHAINS * 8 * 2) as f64, |n| unsafe { x86::avx2(n) }));
        let avx512 = is_x86_feature_detected!("avx512f")
            // SAFETY: as above.
            .then(|| best((CHAINS * 16 * 2) as f64, |n| unsafe { x86::avx512(n) }));
        (avx2, avx512)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let (avx2, avx512): (Option<f64>, Option<f64>) = (None, None);
    let json = |v: Option<f64>| v.map_or("null".to_string(), |g| format!("{g:.1}"));
    println!("{{\"avx2\": {}, \"avx512\": {}}}", json(avx2), json(avx512));
}
