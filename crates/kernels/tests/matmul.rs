//! matmul against a naive f64 twin over odd sizes, every transpose combination, batch > 1,
//! accumulate on/off; backward against the analytic twin; thread determinism.
mod common;
use common::*;
use ferroformer_kernels::ops::matmul::*;
use ferroformer_kernels::simd::Isa;
use ferroformer_kernels::{Parallel, Serial};

/// out[b] = op(a) op(b) in f64.
fn naive(a: &[f32], b: &[f32], batch: usize, m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Vec<f64> {
    let mut out = vec![0.0f64; batch * m * n];
    for bi in 0..batch {
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0f64;
                for p in 0..k {
                    let av = if ta { a[bi * m * k + p * m + i] } else { a[bi * m * k + i * k + p] };
                    let bv = if tb { b[bi * k * n + j * k + p] } else { b[bi * k * n + p * n + j] };
                    acc += av as f64 * bv as f64;
                }
                out[bi * m * n + i * n + j] = acc;
            }
        }
    }
    out
}

const SHAPES: [(usize, usize, usize, usize); 10] = [
    (1, 50, 130, 460),
    (1, 1, 1, 1), (1, 7, 5, 3), (2, 1, 65, 1), (1, 65, 1, 33), (3, 17, 9, 31),
    (1, 65, 257, 70), (2, 33, 100, 65), (1, 130, 300, 129), (1, 257, 64, 7),
];

#[test]
fn forward_matches_naive() {
    let mut rng = Rng::new(10);
    for &(batch, m, k, n) in &SHAPES {
        let a = rng.vec(batch * m * k);
        let b = rng.vec(batch * k * n);
        for ta in [false, true] {
            for tb in [false, true] {
                let want = naive(&a, &b, batch, m, k, n, ta, tb);
                for isa in Isa::available() {
                    let what = format!("matmul {isa:?} {batch}x{m}x{k}x{n} ta={ta} tb={tb}");
                    let mut out = vec![f32::NAN; batch * m * n];
                    matmul_forward_with(isa, &mut out, &a, &b, batch, m, k, n, ta, tb, false, &Serial);
                    assert_close(&what, &out, &want, 1e-5);
                    let base = rng.vec(batch * m * n);
                    let mut out = base.clone();
                    matmul_forward_with(isa, &mut out, &a, &b, batch, m, k, n, ta, tb, true, &Serial);
                    assert_close(&format!("{what} accumulate"), &out, &plus(&base, &want), 1e-5);
                }
            }
        }
    }
}

#[test]
fn backward_matches_analytic() {
    let mut rng = Rng::new(11);
    for &(batch, m, k, n) in &SHAPES[..8] {
        let a = rng.vec(batch * m * k);
        let b = rng.vec(batch * k * n);
        let dout = rng.vec(batch * m * n);
        for ta in [false, true] {
            for tb in [false, true] {
                // d/da of sum(dout * op(a) op(b)) = dout op(b)^T, laid out as a.
                let mut ga = vec![0.0f64; a.len()];
                let mut gb = vec![0.0f64; b.len()];
                for bi in 0..batch { for i in 0..m { for j in 0..n { for p in 0..k {
                    let g = dout[bi * m * n + i * n + j] as f64;
                    let ai = if ta { bi * m * k + p * m + i } else { bi * m * k + i * k + p };
                    let bj = if tb { bi * k * n + j * k + p } else { bi * k * n + p * n + j };
                    ga[ai] += g * b[bj] as f64;
                    gb[bj] += g * a[ai] as f64;
                }}}}
                let (ba, bb) = (rng.vec(a.len()), rng.vec(b.len()));
                for isa in Isa::available() {
                    let (mut da, mut db) = (ba.clone(), bb.clone());
                    matmul_backward_with(isa, Some(&mut da), Some(&mut db), &dout, &a, &b, batch, m, k, n, ta, tb, &Serial);
                    assert_close(&format!("matmul da {isa:?}"), &da, &plus(&ba, &ga), 1e-5);
                    assert_close(&format!("matmul db {isa:?}"), &db, &plus(&bb, &gb), 1e-5);
                    let mut db2 = bb.clone();
                    matmul_backward_with(isa, None, Some(&mut db2), &dout, &a, &b, batch, m, k, n, ta, tb, &Serial);
                    assert_eq!(db, db2);
                }
                let mut da = ba.clone();
                matmul_backward(Some(&mut da), None, &dout, &a, &b, batch, m, k, n, ta, tb, &Serial);
                assert_close("matmul da (default isa)", &da, &plus(&ba, &ga), 1e-5);
            }
        }
    }
}

#[test]
fn thread_count_does_not_change_bits() {
    // Split every call, however small (the default runs small ones on the calling thread).
    ferroformer_kernels::parallel::set_min_parallel_flops(0);
    let mut rng = Rng::new(12);
    // The last two split columns (n > m), the others rows.
    for &(batch, m, k, n) in &[(1, 257, 300, 129), (3, 65, 70, 33), (1, 1, 513, 1000), (1, 40, 300, 200)] {
        let a = rng.vec(batch * m * k);
        let b = rng.vec(batch * k * n);
        for (ta, tb) in [(false, false), (true, true)] {
            for isa in Isa::available() {
                let mut want = vec![0.0f32; batch * m * n];
                matmul_forward_with(isa, &mut want, &a, &b, batch, m, k, n, ta, tb, false, &Serial);
                for t in 1..=3 {
                    let mut out = vec![0.0f32; batch * m * n];
                    matmul_forward_with(isa, &mut out, &a, &b, batch, m, k, n, ta, tb, false, &Threads(t));
                    assert!(out == want, "{isa:?} threads={t} changed bits");
                }
            }
        }
    }
}

#[test]
fn backward_thread_count_does_not_change_bits() {
    // Both gradients share one parallel job on an even thread count (half the threads each)
    // and run one after the other on an odd one: every count gives the bits of one thread.
    ferroformer_kernels::parallel::set_min_parallel_flops(0);
    let mut rng = Rng::new(13);
    for &(batch, m, k, n) in &[(1, 257, 300, 129), (2, 65, 70, 33), (1, 40, 300, 600)] {
        let (a, b, dout) = (rng.vec(batch * m * k), rng.vec(batch * k * n), rng.vec(batch * m * n));
        let (ba, bb) = (rng.vec(a.len()), rng.vec(b.len()));
        for (ta, tb) in [(false, true), (true, false)] {
            for isa in Isa::available() {
                let run = |par: &dyn Parallel| {
                    let (mut da, mut db) = (ba.clone(), bb.clone());
                    matmul_backward_with(isa, Some(&mut da), Some(&mut db), &dout, &a, &b, batch, m, k, n, ta, tb, par);
                    (da, db)
                };
                let want = run(&Serial);
                for t in 2..=4 {
                    assert!(run(&Threads(t)) == want, "{isa:?} threads={t} changed the backward's bits");
                }
            }
        }
    }
}

#[test]
fn zero_k_overwrites_or_keeps() {
    let mut out = vec![5.0f32; 6];
    matmul_forward(&mut out, &[], &[], 1, 2, 0, 3, false, false, true, &Serial);
    assert_eq!(out, vec![5.0; 6]);
    matmul_forward(&mut out, &[], &[], 1, 2, 0, 3, false, false, false, &Serial);
    assert_eq!(out, vec![0.0; 6]);
}

#[test]
fn available_isas_reported() {
    let isas: Vec<Isa> = Isa::available().collect();
    eprintln!("available ISAs: {isas:?}, detected best: {:?}", Isa::detect());
    assert!(isas.contains(&Isa::Scalar));
    assert!(isas.contains(&Isa::detect()));
}
