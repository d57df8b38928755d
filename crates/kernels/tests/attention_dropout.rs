//! Dropout on the attention weights: the flash kernels against an explicit f64 twin
//! (softmax, the mask drawn from `random_u32` at each weight's [B, H, Tq, Tk] index, the
//! product with v) forward and backward, against finite differences of that twin, against
//! dropout over the materialised weights, the undropped lse, and the same bits for any
//! thread count; on every instruction set available here (so all of them draw one mask).
#![allow(clippy::too_many_arguments)]
mod common;
use common::*;
use ferroformer_kernels::ops::attention::*;
use ferroformer_kernels::ops::dropout::{dropout_forward, random_u32};
use ferroformer_kernels::simd::Isa;
use ferroformer_kernels::Serial;

#[derive(Clone, Copy)]
struct Dims { b: usize, h: usize, tq: usize, tk: usize, d: usize }

#[derive(Clone, Copy)]
struct Drop { p: f32, seed: u32, offset: u32 }

/// Keep factor of weight `index` of [B, H, Tq, Tk], spelled out from dropout's recipe:
/// kept iff random_u32(seed, offset + index) >= floor(p · 2^32), kept weights times
/// 1/(1 - p) (the f32 factor).
fn factor(dr: Drop, index: usize) -> f64 {
    let threshold = (dr.p as f64 * 4_294_967_296.0).floor() as u64;
    let kept = random_u32(dr.seed, dr.offset.wrapping_add(index as u32)) as u64 >= threshold;
    if kept { (1.0f32 / (1.0f32 - dr.p)) as f64 } else { 0.0 }
}

struct Twin { out: Vec<f64>, probs: Vec<f64>, factors: Vec<f64>, lse: Vec<f64> }

/// out = (softmax(q·kᵀ·scale + masks) ∘ factors) · v in f64, one row at a time.
fn twin(q: &[f64], k: &[f64], v: &[f64], mask: Option<&[u8]>, s: Dims, causal: bool, scale: f64, dr: Drop) -> Twin {
    let Dims { b, h, tq, tk, d } = s;
    let mut t = Twin {
        out: vec![0.0; b * h * tq * d],
        probs: vec![0.0; b * h * tq * tk],
        factors: (0..b * h * tq * tk).map(|i| factor(dr, i)).collect(),
        lse: vec![f64::NEG_INFINITY; b * h * tq],
    };
    for bh in 0..b * h {
        for i in 0..tq {
            let visible: Vec<bool> = (0..tk).map(|j| (!causal || j <= i) && mask.is_none_or(|m| m[(bh / h) * tk + j] != 0)).collect();
            if !visible.iter().any(|&x| x) {
                continue;
            }
            let scores: Vec<f64> = (0..tk).map(|j| (0..d).map(|c| q[(bh * tq + i) * d + c] * k[(bh * tk + j) * d + c]).sum::<f64>() * scale).collect();
            let max = (0..tk).filter(|&j| visible[j]).map(|j| scores[j]).fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = (0..tk).map(|j| if visible[j] { (scores[j] - max).exp() } else { 0.0 }).collect();
            let sum: f64 = e.iter().sum();
            t.lse[bh * tq + i] = max + sum.ln();
            for j in 0..tk {
                let row = (bh * tq + i) * tk + j;
                t.probs[row] = e[j] / sum;
                let w = t.probs[row] * t.factors[row];
                for c in 0..d {
                    t.out[(bh * tq + i) * d + c] += w * v[(bh * tk + j) * d + c];
                }
            }
        }
    }
    t
}

/// Analytic gradients of sum(out ∘ dout): with W = P ∘ F, dv = Wᵀ·dout; the gradient
/// reaching P is F ∘ (dout·vᵀ); the softmax's backward gives dS.
fn twin_backward(q: &[f64], k: &[f64], v: &[f64], dout: &[f64], t: &Twin, s: Dims, scale: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let Dims { b, h, tq, tk, d } = s;
    let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
    for bh in 0..b * h {
        for i in 0..tq {
            let g = &dout[(bh * tq + i) * d..(bh * tq + i + 1) * d];
            let row = (bh * tq + i) * tk;
            let dp: Vec<f64> = (0..tk)
                .map(|j| t.factors[row + j] * (0..d).map(|c| g[c] * v[(bh * tk + j) * d + c]).sum::<f64>())
                .collect();
            let pdp: f64 = (0..tk).map(|j| t.probs[row + j] * dp[j]).sum();
            for j in 0..tk {
                let ds = t.probs[row + j] * (dp[j] - pdp) * scale;
                let w = t.probs[row + j] * t.factors[row + j];
                for c in 0..d {
                    dv[(bh * tk + j) * d + c] += w * g[c];
                    dq[(bh * tq + i) * d + c] += ds * k[(bh * tk + j) * d + c];
                    dk[(bh * tk + j) * d + c] += ds * q[(bh * tq + i) * d + c];
                }
            }
        }
    }
    (dq, dk, dv)
}

struct Run { out: Vec<f32>, lse: Vec<f32>, dq: Vec<f32>, dk: Vec<f32>, dv: Vec<f32> }

#[allow(clippy::too_many_arguments)]
fn run_with(isa: Isa, q: &[f32], k: &[f32], v: &[f32], dout: &[f32], mask: Option<&[u8]>, s: Dims, causal: bool, scale: f32,
    dr: Drop, par: &dyn ferroformer_kernels::Parallel) -> Run {
    let Dims { b, h, tq, tk, d } = s;
    let mut out = vec![5.0; q.len()];
    let mut lse = vec![9.0; b * h * tq];
    attention_forward_with(isa, &mut out, &mut lse, q, k, v, mask, b, h, tq, tk, d, causal, scale, dr.p, dr.seed, dr.offset, par);
    let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
    attention_backward_with(isa, &mut dq, &mut dk, &mut dv, dout, q, k, v, &out, &lse, mask, b, h, tq, tk, d, causal, scale,
        dr.p, dr.seed, dr.offset, par);
    Run { out, lse, dq, dk, dv }
}

/// [`run_with`] on this machine's best instruction set.
#[allow(clippy::too_many_arguments)]
fn run(q: &[f32], k: &[f32], v: &[f32], dout: &[f32], mask: Option<&[u8]>, s: Dims, causal: bool, scale: f32, dr: Drop,
    par: &dyn ferroformer_kernels::Parallel) -> Run {
    run_with(Isa::detect(), q, k, v, dout, mask, s, causal, scale, dr, par)
}

fn check_against_twin(rng: &mut Rng, s: Dims, dr: Drop, finite_differences: bool) {
    let Dims { b, h, tq, tk, d } = s;
    let q = rng.vec(b * h * tq * d);
    let k = rng.vec(b * h * tk * d);
    let v = rng.vec(b * h * tk * d);
    let dout = rng.vec(q.len());
    let mut mask: Vec<u8> = (0..b * tk).map(|_| (rng.below(4) != 0) as u8).collect();
    mask[0] = 0;
    let scale = 0.8 / (d as f32).sqrt();
    let (q64, k64, v64, dout64) = (to64(&q), to64(&k), to64(&v), to64(&dout));
    for causal in [false, true] {
        for m in [None, Some(&mask[..])] {
            let want = twin(&q64, &k64, &v64, m, s, causal, scale as f64, dr);
            let dropped = want.factors.iter().filter(|&&f| f == 0.0).count() as f64 / want.factors.len() as f64;
            let (gq, gk, gv) = twin_backward(&q64, &k64, &v64, &dout64, &want, s, scale as f64);
            for isa in Isa::available() {
                let got = run_with(isa, &q, &k, &v, &dout, m, s, causal, scale, dr, &Serial);
                assert_close(&format!("{isa:?} dropout attention out"), &got.out, &want.out, 1e-5);
                // lse is the statistic of the undropped softmax.
                for (i, (&g, &w)) in got.lse.iter().zip(&want.lse).enumerate() {
                    if w == f64::NEG_INFINITY {
                        assert_eq!(g, f32::NEG_INFINITY, "{isa:?} lse {i}");
                    } else {
                        assert!((g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()), "{isa:?} lse {i}: {g} vs {w}");
                    }
                }
                assert_close(&format!("{isa:?} dropout attention dq"), &got.dq, &gq, 1e-4);
                assert_close(&format!("{isa:?} dropout attention dk"), &got.dk, &gk, 1e-4);
                assert_close(&format!("{isa:?} dropout attention dv"), &got.dv, &gv, 1e-4);
            }
            let got = run(&q, &k, &v, &dout, m, s, causal, scale, dr, &Serial);
            if finite_differences {
                // The twin's backward is checked by finite differences of its forward (fixed mask).
                let loss = |o: Vec<f64>| o.iter().zip(&dout64).map(|(a, g)| a * g).sum::<f64>();
                let sc = scale as f64;
                let fq = fd_grad(|x| loss(twin(x, &k64, &v64, m, s, causal, sc, dr).out), &q64, 1e-6);
                let fk = fd_grad(|x| loss(twin(&q64, x, &v64, m, s, causal, sc, dr).out), &k64, 1e-6);
                let fv = fd_grad(|x| loss(twin(&q64, &k64, x, m, s, causal, sc, dr).out), &v64, 1e-6);
                assert_close("dropout attention dq (finite differences)", &got.dq, &fq, 1e-4);
                assert_close("dropout attention dk (finite differences)", &got.dk, &fk, 1e-4);
                assert_close("dropout attention dv (finite differences)", &got.dv, &fv, 1e-4);
            }
            // The mask really drops about p of the weights (loose: small tensors).
            assert!((dropped - dr.p as f64).abs() < 0.15 + 3.0 / (want.factors.len() as f64).sqrt(),
                "dropped {dropped} of the weights for p = {}", dr.p);
        }
    }
}

#[test]
fn dropout_matches_twin_and_finite_differences() {
    let mut rng = Rng::new(40);
    check_against_twin(&mut rng, Dims { b: 2, h: 2, tq: 5, tk: 7, d: 4 }, Drop { p: 0.3, seed: 11, offset: 0 }, true);
    check_against_twin(&mut rng, Dims { b: 1, h: 2, tq: 9, tk: 6, d: 17 }, Drop { p: 0.5, seed: 7, offset: 1000 }, true);
    // Counters wrap past 2^32 inside the call, as dropout's do.
    check_against_twin(&mut rng, Dims { b: 1, h: 1, tq: 6, tk: 6, d: 3 }, Drop { p: 0.2, seed: 3, offset: u32::MAX - 10 }, true);
}

/// Sizes across the query (64) and key (64) tiles: the mask follows the weight's global
/// index, not the tile.
#[test]
fn dropout_across_tiles_matches_twin() {
    let mut rng = Rng::new(41);
    check_against_twin(&mut rng, Dims { b: 1, h: 2, tq: 100, tk: 130, d: 33 }, Drop { p: 0.1, seed: 5, offset: 77 }, false);
    check_against_twin(&mut rng, Dims { b: 2, h: 1, tq: 150, tk: 49, d: 8 }, Drop { p: 0.6, seed: 9, offset: 0 }, false);
    check_against_twin(&mut rng, Dims { b: 1, h: 1, tq: 130, tk: 130, d: 32 }, Drop { p: 0.2, seed: 2, offset: 3 }, false);
    check_against_twin(&mut rng, Dims { b: 1, h: 1, tq: 100, tk: 100, d: 64 }, Drop { p: 0.3, seed: 4, offset: 8 }, false);
}

/// The same output as dropout_forward over the materialised weights (attention_probs)
/// with the same p, seed and offset, times v.
#[test]
fn dropout_is_dropout_of_the_materialised_weights() {
    let mut rng = Rng::new(42);
    let s = Dims { b: 2, h: 3, tq: 60, tk: 140, d: 16 };
    let Dims { b, h, tq, tk, d } = s;
    let (q, k, v) = (rng.vec(b * h * tq * d), rng.vec(b * h * tk * d), rng.vec(b * h * tk * d));
    let dr = Drop { p: 0.25, seed: 1234, offset: 99 };
    let got = run(&q, &k, &v, &vec![0.0; q.len()], None, s, true, 0.25, dr, &Serial);
    let mut probs = vec![0.0; b * h * tq * tk];
    attention_probs(&mut probs, &q, &k, &got.lse, None, b, h, tq, tk, d, true, 0.25, &Serial);
    let (mut dropped, mut keep) = (vec![0.0; probs.len()], vec![0u8; probs.len()]);
    dropout_forward(&mut dropped, &mut keep, &probs, dr.p, dr.seed, dr.offset);
    let mut want = vec![0.0f64; q.len()];
    for bh in 0..b * h {
        for i in 0..tq {
            for j in 0..tk {
                let w = dropped[(bh * tq + i) * tk + j] as f64;
                for c in 0..d {
                    want[(bh * tq + i) * d + c] += w * v[(bh * tk + j) * d + c] as f64;
                }
            }
        }
    }
    assert_close("dropout attention vs dropout of the weights", &got.out, &want, 1e-5);
}

#[test]
fn dropout_thread_count_does_not_change_bits() {
    ferroformer_kernels::parallel::set_min_parallel_flops(0);
    let mut rng = Rng::new(43);
    let s = Dims { b: 2, h: 3, tq: 101, tk: 190, d: 24 };
    let Dims { b, h, tq, tk, d } = s;
    let mask: Vec<u8> = (0..b * tk).map(|_| (rng.below(5) != 0) as u8).collect();
    let (q, k, v) = (rng.vec(b * h * tq * d), rng.vec(b * h * tk * d), rng.vec(b * h * tk * d));
    let dout = rng.vec(q.len());
    let dr = Drop { p: 0.4, seed: 77, offset: 5 };
    let bits = |r: &Run| [&r.out, &r.lse, &r.dq, &r.dk, &r.dv].map(|x| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>());
    let want = bits(&run(&q, &k, &v, &dout, Some(&mask), s, true, 0.2, dr, &Serial));
    for t in 1..=3 {
        let got = run(&q, &k, &v, &dout, Some(&mask), s, true, 0.2, dr, &Threads(t));
        assert!(bits(&got) == want, "threads={t} changed bits");
    }
    // Another seed or offset draws another mask.
    let other = run(&q, &k, &v, &dout, Some(&mask), s, true, 0.2, Drop { offset: 6, ..dr }, &Serial);
    assert!(bits(&other)[0] != want[0]);
}

/// p = 0 draws nothing: the same bits whatever the seed and offset.
#[test]
fn zero_probability_is_no_dropout() {
    let mut rng = Rng::new(44);
    let s = Dims { b: 1, h: 2, tq: 50, tk: 70, d: 8 };
    let Dims { b, h, tq, tk, d } = s;
    let (q, k, v) = (rng.vec(b * h * tq * d), rng.vec(b * h * tk * d), rng.vec(b * h * tk * d));
    let dout = rng.vec(q.len());
    let got = run(&q, &k, &v, &dout, None, s, true, 0.3, Drop { p: 0.0, seed: 99, offset: 12345 }, &Serial);
    let mut out = vec![0.0; q.len()];
    let mut lse = vec![0.0; b * h * tq];
    attention_forward(&mut out, &mut lse, &q, &k, &v, None, b, h, tq, tk, d, true, 0.3, 0.0, 0, 0, &Serial);
    let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
    attention_backward(&mut dq, &mut dk, &mut dv, &dout, &q, &k, &v, &out, &lse, None, b, h, tq, tk, d, true, 0.3, 0.0, 0, 0, &Serial);
    assert!(got.out == out && got.lse == lse && got.dq == dq && got.dk == dk && got.dv == dv);
}
