//! Flash attention against a naive f64 twin (masks, causal, fully-masked rows, sizes across
//! the query and key tiles and the head-size slices), the weights rebuilt from lse, backward
//! against finite differences of the twin, thread determinism; on every instruction set
//! available here.
mod common;
use common::*;
use ferroformer_kernels::ops::attention::*;
use ferroformer_kernels::simd::Isa;
use ferroformer_kernels::Serial;

struct Dims { b: usize, h: usize, tq: usize, tk: usize, d: usize }

/// Returns (out, probs, lse) in f64.
fn naive(q: &[f64], k: &[f64], v: &[f64], mask: Option<&[u8]>, s: &Dims, causal: bool, scale: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let Dims { b, h, tq, tk, d } = *s;
    let mut out = vec![0.0; b * h * tq * d];
    let mut probs = vec![0.0; b * h * tq * tk];
    let mut lse = vec![f64::NEG_INFINITY; b * h * tq];
    for bh in 0..b * h {
        let bi = bh / h;
        for i in 0..tq {
            let keep: Vec<bool> = (0..tk).map(|j| (!causal || j <= i) && mask.is_none_or(|m| m[bi * tk + j] != 0)).collect();
            let scores: Vec<f64> = (0..tk).map(|j| (0..d).map(|c| q[(bh * tq + i) * d + c] * k[(bh * tk + j) * d + c]).sum::<f64>() * scale).collect();
            if !keep.iter().any(|&x| x) { continue; }
            let max = scores.iter().zip(&keep).filter(|p| *p.1).map(|p| *p.0).fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().zip(&keep).map(|(&x, &kk)| if kk { (x - max).exp() } else { 0.0 }).collect();
            let sum: f64 = e.iter().sum();
            lse[bh * tq + i] = max + sum.ln();
            for j in 0..tk {
                let p = e[j] / sum;
                probs[(bh * tq + i) * tk + j] = p;
                for c in 0..d { out[(bh * tq + i) * d + c] += p * v[(bh * tk + j) * d + c]; }
            }
        }
    }
    (out, probs, lse)
}

/// Analytic f64 gradients (dq, dk, dv) of sum(out ∘ dout), from the twin's probabilities.
fn naive_backward(q: &[f64], k: &[f64], v: &[f64], dout: &[f64], probs: &[f64], s: &Dims, scale: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let Dims { b, h, tq, tk, d } = *s;
    let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
    for bh in 0..b * h {
        for i in 0..tq {
            let g = &dout[(bh * tq + i) * d..(bh * tq + i + 1) * d];
            let p = &probs[(bh * tq + i) * tk..(bh * tq + i + 1) * tk];
            let dp: Vec<f64> = (0..tk).map(|j| (0..d).map(|c| g[c] * v[(bh * tk + j) * d + c]).sum()).collect();
            let pdp: f64 = p.iter().zip(&dp).map(|(a, b)| a * b).sum();
            for j in 0..tk {
                let ds = p[j] * (dp[j] - pdp) * scale;
                for c in 0..d {
                    dv[(bh * tk + j) * d + c] += p[j] * g[c];
                    dq[(bh * tq + i) * d + c] += ds * k[(bh * tk + j) * d + c];
                    dk[(bh * tk + j) * d + c] += ds * q[(bh * tq + i) * d + c];
                }
            }
        }
    }
    (dq, dk, dv)
}

/// What one instruction set computes for a case: forward, the weights rebuilt from its lse,
/// and backward accumulated onto `base` (dq, dk, dv).
struct Got { out: Vec<f32>, lse: Vec<f32>, probs: Vec<f32>, dq: Vec<f32>, dk: Vec<f32>, dv: Vec<f32> }

#[allow(clippy::too_many_arguments)]
fn run(isa: Isa, q: &[f32], k: &[f32], v: &[f32], dout: &[f32], m: Option<&[u8]>, s: &Dims, causal: bool, scale: f32,
    base: [&[f32]; 3]) -> Got {
    let Dims { b, h, tq, tk, d } = *s;
    let mut out = vec![5.0; q.len()];
    let mut lse = vec![9.0; b * h * tq];
    attention_forward_with(isa, &mut out, &mut lse, q, k, v, m, b, h, tq, tk, d, causal, scale, 0.0, 0, 0, &Serial);
    let mut probs = vec![9.0; b * h * tq * tk];
    attention_probs_with(isa, &mut probs, q, k, &lse, m, b, h, tq, tk, d, causal, scale, &Serial);
    let [mut dq, mut dk, mut dv] = base.map(<[f32]>::to_vec);
    attention_backward_with(isa, &mut dq, &mut dk, &mut dv, dout, q, k, v, &out, &lse, m, b, h, tq, tk, d, causal, scale, 0.0, 0, 0, &Serial);
    Got { out, lse, probs, dq, dk, dv }
}

/// The forward's out, weights (exactly 0 where the twin's are) and lse against the twin's.
fn check_forward(isa: Isa, got: &Got, (wo, wp, wl): &(Vec<f64>, Vec<f64>, Vec<f64>)) {
    assert_close(&format!("{isa:?} attention out"), &got.out, wo, 1e-5);
    assert_close(&format!("{isa:?} attention probs"), &got.probs, wp, 1e-5);
    for (i, (&g, &w)) in got.lse.iter().zip(wl).enumerate() {
        if w == f64::NEG_INFINITY {
            assert_eq!(g, f32::NEG_INFINITY, "{isa:?}: row {i} sees no key");
        } else {
            assert!((g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()), "{isa:?} lse {i}: {g} vs {w}");
        }
    }
    for (i, (&g, &w)) in got.probs.iter().zip(wp).enumerate() {
        if w == 0.0 {
            assert_eq!(g, 0.0, "{isa:?}: masked prob {i} not exactly 0");
        }
    }
}

#[test]
fn forward_and_backward_match_naive() {
    let mut rng = Rng::new(20);
    let cases = [
        Dims { b: 1, h: 1, tq: 1, tk: 1, d: 1 },
        Dims { b: 2, h: 3, tq: 5, tk: 7, d: 4 },
        Dims { b: 1, h: 2, tq: 9, tk: 9, d: 17 },
        Dims { b: 2, h: 1, tq: 7, tk: 5, d: 65 },
    ];
    for s in &cases {
        let Dims { b, h, tq, tk, d } = *s;
        let q = rng.vec(b * h * tq * d);
        let k = rng.vec(b * h * tk * d);
        let v = rng.vec(b * h * tk * d);
        let mut mask: Vec<u8> = (0..b * tk).map(|_| (rng.below(3) != 0) as u8).collect();
        mask[0] = 0; // batch 0 key 0 masked: with causal, query 0 of batch 0 has no key
        let scale = 1.0 / (d as f32).sqrt();
        for causal in [false, true] {
            for use_mask in [false, true] {
                let m = if use_mask { Some(&mask[..]) } else { None };
                let (q64, k64, v64) = (to64(&q), to64(&k), to64(&v));
                let want = naive(&q64, &k64, &v64, m, s, causal, scale as f64);
                let dout = rng.vec(q.len());
                let (bq, bk, bv) = (rng.vec(q.len()), rng.vec(k.len()), rng.vec(v.len()));
                let loss = |o: Vec<f64>| o.iter().zip(&dout).map(|(a, &g)| a * g as f64).sum::<f64>();
                let sc = scale as f64;
                let gq = fd_grad(|x| loss(naive(x, &k64, &v64, m, s, causal, sc).0), &q64, 1e-6);
                let gk = fd_grad(|x| loss(naive(&q64, x, &v64, m, s, causal, sc).0), &k64, 1e-6);
                let gv = fd_grad(|x| loss(naive(&q64, &k64, x, m, s, causal, sc).0), &v64, 1e-6);
                for isa in Isa::available() {
                    let got = run(isa, &q, &k, &v, &dout, m, s, causal, scale, [&bq, &bk, &bv]);
                    check_forward(isa, &got, &want);
                    assert_close(&format!("{isa:?} attention dq"), &got.dq, &plus(&bq, &gq), 1e-4);
                    assert_close(&format!("{isa:?} attention dk"), &got.dk, &plus(&bk, &gk), 1e-4);
                    assert_close(&format!("{isa:?} attention dv"), &got.dv, &plus(&bv, &gv), 1e-4);
                }
            }
        }
    }
}

#[test]
fn thread_count_does_not_change_bits() {
    // Split every call, however small (the default runs small ones on the calling thread).
    ferroformer_kernels::parallel::set_min_parallel_flops(0);
    let mut rng = Rng::new(21);
    // tq spans three query tiles, tk two key tiles.
    let (b, h, tq, tk, d) = (2, 3, 101, 190, 24);
    let mask: Vec<u8> = (0..b * tk).map(|_| (rng.below(5) != 0) as u8).collect();
    let q = rng.vec(b * h * tq * d);
    let k = rng.vec(b * h * tk * d);
    let v = rng.vec(b * h * tk * d);
    let dout = rng.vec(q.len());
    let run = |par: &dyn ferroformer_kernels::Parallel| {
        let mut out = vec![0.0; q.len()];
        let mut lse = vec![0.0; b * h * tq];
        attention_forward(&mut out, &mut lse, &q, &k, &v, Some(&mask), b, h, tq, tk, d, true, 0.2, 0.0, 0, 0, par);
        let mut probs = vec![0.0; b * h * tq * tk];
        attention_probs(&mut probs, &q, &k, &lse, Some(&mask), b, h, tq, tk, d, true, 0.2, par);
        let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
        attention_backward(&mut dq, &mut dk, &mut dv, &dout, &q, &k, &v, &out, &lse, Some(&mask), b, h, tq, tk, d, true, 0.2, 0.0, 0, 0, par);
        (out, lse, probs, dq, dk, dv)
    };
    let want = run(&Serial);
    for t in 1..=3 {
        assert!(run(&Threads(t)) == want, "threads={t} changed bits");
    }
}

/// Sizes that cross the query tiles (64 rows) and key tiles (64 keys), with Tq < Tk,
/// Tq > Tk, masks and causal; head sizes that are not a multiple of any vector width, the
/// training ones (32, 64), and one past the 128 packed at a time (130: two depth slices).
#[test]
fn tiles_match_naive() {
    let mut rng = Rng::new(22);
    let cases = [
        Dims { b: 1, h: 2, tq: 100, tk: 130, d: 65 },
        Dims { b: 2, h: 1, tq: 150, tk: 49, d: 8 },
        Dims { b: 1, h: 1, tq: 48, tk: 48, d: 64 },
        Dims { b: 1, h: 1, tq: 257, tk: 257, d: 7 },
        Dims { b: 1, h: 2, tq: 129, tk: 129, d: 32 },
        Dims { b: 1, h: 2, tq: 130, tk: 70, d: 64 },
        Dims { b: 1, h: 1, tq: 70, tk: 66, d: 130 },
        // The training shapes' heads: nanoGPT baby (T 64, head 32) and Shakespeare-char (T 256,
        // head 64), whose causal diagonal tiles skip their hidden register tiles.
        Dims { b: 1, h: 2, tq: 64, tk: 64, d: 32 },
        Dims { b: 1, h: 1, tq: 256, tk: 256, d: 64 },
    ];
    for s in &cases {
        let Dims { b, h, tq, tk, d } = *s;
        let q = rng.vec(b * h * tq * d);
        let k = rng.vec(b * h * tk * d);
        let v = rng.vec(b * h * tk * d);
        let mut mask: Vec<u8> = (0..b * tk).map(|_| (rng.below(4) != 0) as u8).collect();
        mask[0] = 0;
        let scale = 0.7 / (d as f32).sqrt();
        for causal in [false, true] {
            for use_mask in [false, true] {
                let m = if use_mask { Some(&mask[..]) } else { None };
                let (q64, k64, v64) = (to64(&q), to64(&k), to64(&v));
                let want = naive(&q64, &k64, &v64, m, s, causal, scale as f64);
                let dout = rng.vec(q.len());
                let (gq, gk, gv) = naive_backward(&q64, &k64, &v64, &to64(&dout), &want.1, s, scale as f64);
                let zeros = [vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]];
                for isa in Isa::available() {
                    // Backward over the same tiles, against the twin's analytic gradients.
                    let got = run(isa, &q, &k, &v, &dout, m, s, causal, scale, [&zeros[0], &zeros[1], &zeros[2]]);
                    check_forward(isa, &got, &want);
                    assert_close(&format!("{isa:?} attention dq"), &got.dq, &gq, 1e-4);
                    assert_close(&format!("{isa:?} attention dk"), &got.dk, &gk, 1e-4);
                    assert_close(&format!("{isa:?} attention dv"), &got.dv, &gv, 1e-4);
                }
            }
        }
    }
}

/// Causal: query i sees keys j <= i only, so changing the keys and values from some position on
/// leaves the earlier rows' out, lse and dq bit for bit as they were (the diagonal tiles skip
/// work past the diagonal; nothing there may leak in). The cut falls inside a 16-row chunk and
/// inside register tiles, and the sizes cross the 64-row query and key tiles.
#[test]
fn causal_rows_ignore_later_keys() {
    let mut rng = Rng::new(23);
    for (t, d, cut) in [(64, 32, 37), (100, 64, 70), (150, 24, 81)] {
        let (b, h) = (2, 2);
        let q = rng.vec(b * h * t * d);
        let k = rng.vec(q.len());
        let v = rng.vec(q.len());
        let dout = rng.vec(q.len());
        // The same keys and values before `cut`, other (larger) ones from it on.
        let later = |x: &[f32], rng: &mut Rng| -> Vec<f32> {
            x.chunks(d).enumerate().flat_map(|(row, r)| {
                let fresh: Vec<f32> = rng.vec(d).iter().map(|u| 8.0 * u).collect();
                if row % t >= cut { fresh } else { r.to_vec() }
            }).collect()
        };
        let (k2, v2) = (later(&k, &mut rng), later(&v, &mut rng));
        let zeros = [vec![0.0; q.len()], vec![0.0; q.len()], vec![0.0; q.len()]];
        let s = Dims { b, h, tq: t, tk: t, d };
        let scale = 1.0 / (d as f32).sqrt();
        for isa in Isa::available() {
            let a = run(isa, &q, &k, &v, &dout, None, &s, true, scale, [&zeros[0], &zeros[1], &zeros[2]]);
            let c = run(isa, &q, &k2, &v2, &dout, None, &s, true, scale, [&zeros[0], &zeros[1], &zeros[2]]);
            for bh in 0..b * h {
                let rows = bh * t * d..(bh * t + cut) * d;
                assert!(a.out[rows.clone()] == c.out[rows.clone()], "{isa:?} T{t}: out rows before {cut} changed");
                assert!(a.dq[rows.clone()] == c.dq[rows], "{isa:?} T{t}: dq rows before {cut} changed");
                assert!(a.lse[bh * t..bh * t + cut] == c.lse[bh * t..bh * t + cut], "{isa:?} T{t}: lse before {cut} changed");
            }
        }
    }
}
