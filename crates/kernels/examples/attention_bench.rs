//! Flash attention throughput at the W2 shape (B=1, H=8, T=512, D=64, causal) and
//! training-sized ones (nanoGPT W5: B 12, H 4, T 64, head 32; W6: B 8, H 6, T 256, head 64;
//! DecoderLM W4: B 16, H 4, T 64, head 32), forward and backward, on every instruction set
//! available here: `cargo run --release --example attention_bench [-- --only=avx2
//! --shape=1x8x512x64 --no-dropout --threads=2 --rounds=15]`. One thread is timed in CPU time
//! of the calling thread (other processes on a shared machine do not count), more threads by
//! the wall clock; best of `rounds`. GFLOP/s count the full 4·B·H·T²·D (forward) and
//! 8·B·H·T²·D (backward), as bench/ does for W2: the causal half of it is what is computed.
//! Each shape runs without and with dropout 0.1 on the weights (the mask is hashed per weight),
//! and on per-head tensors [B, H, T, D] and on the packed layout (qkv [B, T, 3, H, D] in,
//! [B, T, H, D] out) that nanoGPT and nn.MultiheadAttention use; the packed backward
//! overwrites its gradient, as a training step's does (the first gradient into qkv).
use ferroformer_kernels::ops::attention::{
    attention_backward_with, attention_forward_with, attention_packed_backward_with, attention_packed_forward_with,
};
use ferroformer_kernels::simd::Isa;
use ferroformer_kernels::{pool, Parallel, Serial};
use std::time::Instant;

/// The kernels' own pool with `threads` - 1 workers (as the addon starts it).
fn start_pool(threads: usize) -> Box<dyn Parallel> {
    pool::start_os_threads(threads).expect("start the pool's threads");
    Box::new(pool::Pool)
}

/// Seconds this thread has run on a CPU, so that other processes on a shared machine do not
/// count: clock_gettime(CLOCK_THREAD_CPUTIME_ID) (exact, where /proc's schedstat only moves
/// at scheduler ticks) on 64-bit Linux, the wall clock elsewhere.
fn cpu_seconds(start: Instant) -> f64 {
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    {
        #[repr(C)]
        struct Timespec {
            sec: i64,
            nsec: i64,
        }
        extern "C" {
            fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
        }
        const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
        let mut t = Timespec { sec: 0, nsec: 0 };
        // SAFETY: libc's clock_gettime writes one timespec (64-bit Linux layout) to `t`.
        if unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) } == 0 {
            return t.sec as f64 + t.nsec as f64 * 1e-9;
        }
    }
    start.elapsed().as_secs_f64()
}

/// Best of `rounds` rounds of `reps` calls, in seconds per call: CPU time of this thread, or
/// wall time when `wall` (several threads).
fn best_of<F: FnMut()>(rounds: usize, reps: usize, wall: bool, mut f: F) -> f64 {
    f();
    let origin = Instant::now();
    let now = || if wall { origin.elapsed().as_secs_f64() } else { cpu_seconds(origin) };
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let t = now();
        for _ in 0..reps {
            f();
        }
        best = best.min((now() - t) / reps as f64);
    }
    best
}

fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::args().find_map(|a| a.strip_prefix(name).map(|v| v.parse().ok().unwrap_or_else(|| panic!("bad {name}{v}"))))
}

fn main() {
    let only = std::env::args().find_map(|a| a.strip_prefix("--only=").map(str::to_lowercase));
    let threads: usize = arg("--threads=").unwrap_or(1);
    let rounds: usize = arg("--rounds=").unwrap_or(5);
    let par: Box<dyn Parallel> = if threads > 1 { start_pool(threads) } else { Box::new(Serial) };
    let dropouts: &[f32] = if std::env::args().any(|a| a == "--no-dropout") { &[0.0] } else { &[0.0, 0.1] };
    let shape: Option<Vec<usize>> = std::env::args()
        .find_map(|a| a.strip_prefix("--shape=").map(|s| s.split('x').map(|n| n.parse().expect("--shape=BxHxTxD")).collect()));
    for isa in Isa::available().filter(|&isa| isa != Isa::Scalar) {
        if only.as_ref().is_some_and(|o| *o != format!("{isa:?}").to_lowercase()) {
            continue;
        }
        for &(b, h, t, d) in &[(1usize, 8usize, 512usize, 64usize), (12, 4, 64, 32), (16, 4, 64, 32), (8, 6, 256, 64), (1, 4, 2048, 64)] {
            if shape.as_ref().is_some_and(|s| *s != [b, h, t, d]) {
                continue;
            }
            let n = b * h * t * d;
            let q: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.05).collect();
            let k: Vec<f32> = (0..n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.05).collect();
            let v: Vec<f32> = (0..n).map(|i| ((i * 3 % 7) as f32 - 3.0) * 0.1).collect();
            let (mut out, mut lse) = (vec![0.0f32; n], vec![0.0f32; b * h * t]);
            let scale = 1.0 / (d as f32).sqrt();
            let flops = 4.0 * (b * h * t * t * d) as f64;
            let reps = ((1e9 / flops) as usize).clamp(2, 200);
            // The same numbers packed: row (b, t) holds q, k, v of every head.
            let mut qkv = vec![0.0f32; 3 * n];
            for (part, x) in [&q, &k, &v].into_iter().enumerate() {
                for (i, row) in x.chunks_exact(d).enumerate() {
                    let (bh, ti) = (i / t, i % t);
                    let at = (((bh / h) * t + ti) * 3 + part) * h * d + (bh % h) * d;
                    qkv[at..at + d].copy_from_slice(row);
                }
            }
            for &p in dropouts {
                // Per-head and packed interleaved round by round, so that both see the same
                // moments of a shared machine.
                let (mut dq, mut dk, mut dv, mut dqkv) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; 3 * n]);
                let [mut fwd, mut bwd, mut packed_fwd, mut packed_bwd] = [f64::MAX; 4];
                for _ in 0..rounds {
                    let wall = threads > 1;
                    fwd = fwd.min(best_of(1, reps, wall, || attention_forward_with(isa, &mut out, &mut lse, &q, &k, &v, None, b, h, t, t, d, true, scale, p, 7, 0, par.as_ref())));
                    bwd = bwd.min(best_of(1, reps, wall, || attention_backward_with(isa, &mut dq, &mut dk, &mut dv, &q, &q, &k, &v, &out, &lse, None, b, h, t, t, d, true, scale, p, 7, 0, par.as_ref())));
                    packed_fwd = packed_fwd.min(best_of(1, reps, wall, || attention_packed_forward_with(isa, &mut out, &mut lse, &qkv, None, b, h, t, d, true, scale, p, 7, 0, par.as_ref())));
                    packed_bwd = packed_bwd.min(best_of(1, reps, wall, || attention_packed_backward_with(isa, &mut dqkv, &q, &qkv, &out, &lse, None, b, h, t, d, true, scale, p, 7, 0, false, par.as_ref())));
                }
                println!("{isa:?} {threads}T B{b} H{h} T{t} D{d} causal, dropout {p}: forward {:.1} GFLOP/s ({:.3} ms), backward {:.1} GFLOP/s ({:.3} ms); packed {:.3} ms ({:.2}x), {:.3} ms ({:.2}x)",
                    flops / fwd / 1e9, fwd * 1e3, 2.0 * flops / bwd / 1e9, bwd * 1e3, packed_fwd * 1e3, fwd / packed_fwd, packed_bwd * 1e3, bwd / packed_bwd);
            }
        }
    }
}
