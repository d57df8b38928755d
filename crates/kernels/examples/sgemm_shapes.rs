//! sgemm throughput at the benchmark's W1 shapes and at the products of the W4 / W6 linear
//! layers, one line per case (`bench/sgemm_shapes.py` prints the same cases for numpy and
//! PyTorch, so the two can be run alternately and compared line by line):
//! `cargo run --release --example sgemm_shapes -- [avx2|avx512|scalar] [threads] [filter | MxKxN]`
//! (a filter keeps the cases whose name contains one of its `|`-separated parts).
//! Best of 25 timed loops of 2e8 FLOP (~2 ms) or one call (short, so that some land between bursts of other
//! processes on a shared machine); GFLOP/s counts 2·m·k·n. One thread is timed by
//! the thread's CPU clock, not the wall clock, so that time the scheduler gives to other
//! processes on a shared machine does not count (cache sharing still does); more threads by
//! the wall clock.
use ferroformer_kernels::ops::matmul::matmul_forward_with;
use ferroformer_kernels::simd::Isa;
use ferroformer_kernels::{pool, Parallel, Serial};
use std::time::Instant;

/// The addon's threads: `threads - 1` workers of the process-wide pool (crates/kernels/src/pool.rs)
/// beside the calling thread, as crates/node starts them.
fn start_pool(threads: usize) -> Box<dyn Parallel> {
    pool::start_os_threads(threads).expect("start the pool's threads");
    Box::new(pool::Pool)
}

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// Seconds of CPU time this thread has used (Linux's CLOCK_THREAD_CPUTIME_ID).
fn thread_cpu_seconds() -> f64 {
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: ts is a valid out-pointer; clock 3 is CLOCK_THREAD_CPUTIME_ID on Linux.
    let rc = unsafe { clock_gettime(3, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.sec as f64 + ts.nsec as f64 * 1e-9
}

/// One product: name, m, k, n, op(a) transposed, op(b) transposed, accumulate.
type Case = (String, usize, usize, usize, bool, bool, bool);

/// The three products of a linear layer of `rows` rows, `in_f` -> `out_f` (ops/linear.rs):
/// forward y = x·Wᵀ, backward dX += dY·W and dW += dYᵀ·X.
fn linear_cases(tag: &str, rows: usize, in_f: usize, out_f: usize) -> Vec<Case> {
    vec![
        (format!("{tag} fwd {rows}x{in_f}->{out_f}"), rows, in_f, out_f, false, true, false),
        (format!("{tag} dX  {rows}x{in_f}->{out_f}"), rows, out_f, in_f, false, false, true),
        (format!("{tag} dW  {rows}x{in_f}->{out_f}"), out_f, rows, in_f, true, false, true),
    ]
}

pub fn cases() -> Vec<Case> {
    let mut v: Vec<Case> = [
        (128, 128, 128), (256, 256, 256), (512, 512, 512), (1024, 1024, 1024),
        (512, 512, 2048), (512, 2048, 512), (4096, 512, 512),
    ]
    .iter()
    .map(|&(m, k, n)| (format!("W1 {m}x{k}x{n}"), m, k, n, false, false, false))
    .collect();
    // W4: rows = batch 16 x seq 64; d_model 128, feed-forward 512, vocabulary 1024.
    for (i, o) in [(128, 384), (128, 128), (128, 512), (512, 128), (128, 1024)] {
        v.extend(linear_cases("W4", 1024, i, o));
    }
    // W6: rows = batch 8 x block 256; n_embd 384, 4·384, vocabulary 65.
    for (i, o) in [(384, 1152), (384, 384), (384, 1536), (1536, 384), (384, 65)] {
        v.extend(linear_cases("W6", 2048, i, o));
    }
    v
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let isa = match args.get(1).map(String::as_str) {
        Some("avx2") => Isa::Avx2,
        Some("scalar") => Isa::Scalar,
        Some("avx512") => Isa::Avx512,
        _ => Isa::detect(),
    };
    let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let filter = args.get(3).cloned().unwrap_or_default();
    let par: Box<dyn Parallel> = if threads > 1 { start_pool(threads) } else { Box::new(Serial) };
    // A filter of the form MxKxN runs that one plain product instead of the table.
    let dims: Vec<usize> = filter.split('x').filter_map(|d| d.parse().ok()).collect();
    let table = if dims.len() == 3 {
        vec![(filter.clone(), dims[0], dims[1], dims[2], false, false, false)]
    } else {
        cases()
    };
    for (name, m, k, n, ta, tb, acc) in table {
        if !filter.split('|').any(|f| name.contains(f)) {
            continue;
        }
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.1).collect();
        let mut c = vec![0.0f32; m * n];
        let flops = 2.0 * (m * k * n) as f64;
        let reps = ((2e8 / flops) as usize).clamp(1, 5000);
        let mut run = || matmul_forward_with(isa, &mut c, &a, &b, 1, m, k, n, ta, tb, acc, par.as_ref());
        run();
        let mut best = f64::MAX;
        for _ in 0..25 {
            let (wall, cpu) = (Instant::now(), thread_cpu_seconds());
            for _ in 0..reps {
                run();
            }
            let seconds = if threads > 1 { wall.elapsed().as_secs_f64() } else { thread_cpu_seconds() - cpu };
            best = best.min(seconds / reps as f64);
        }
        println!("{name:<28} {:7.1} GFLOP/s", flops / best / 1e9);
    }
}
