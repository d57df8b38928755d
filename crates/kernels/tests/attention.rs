//! Attention against a naive f64 twin (masks, causal, fully-masked rows), backward against
//! finite differences of the twin, thread determinism.
mod common;
use common::*;
use ferroformer_kernels::ops::attention::*;
use ferroformer_kernels::Serial;

struct Dims { b: usize, h: usize, tq: usize, tk: usize, d: usize }

/// Returns (out, probs) in f64.
fn naive(q: &[f64], k: &[f64], v: &[f64], mask: Option<&[u8]>, s: &Dims, causal: bool, scale: f64) -> (Vec<f64>, Vec<f64>) {
    let Dims { b, h, tq, tk, d } = *s;
    let mut out = vec![0.0; b * h * tq * d];
    let mut probs = vec![0.0; b * h * tq * tk];
    for bh in 0..b * h {
        let bi = bh / h;
        for i in 0..tq {
            let keep: Vec<bool> = (0..tk).map(|j| (!causal || j <= i) && mask.map_or(true, |m| m[bi * tk + j] != 0)).collect();
            let scores: Vec<f64> = (0..tk).map(|j| (0..d).map(|c| q[(bh * tq + i) * d + c] * k[(bh * tk + j) * d + c]).sum::<f64>() * scale).collect();
            if !keep.iter().any(|&x| x) { continue; }
            let max = scores.iter().zip(&keep).filter(|p| *p.1).map(|p| *p.0).fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().zip(&keep).map(|(&x, &kk)| if kk { (x - max).exp() } else { 0.0 }).collect();
            let sum: f64 = e.iter().sum();
            for j in 0..tk {
                let p = e[j] / sum;
                probs[(bh * tq + i) * tk + j] = p;
                for c in 0..d { out[(bh * tq + i) * d + c] += p * v[(bh * tk + j) * d + c]; }
            }
        }
    }
    (out, probs)
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
                let mut out = vec![0.0; q.len()];
                let mut probs = vec![9.0; b * h * tq * tk];
                attention_forward(&mut out, &mut probs, &q, &k, &v, m, b, h, tq, tk, d, causal, scale, &Serial);
                let (q64, k64, v64) = (to64(&q), to64(&k), to64(&v));
                let (wo, wp) = naive(&q64, &k64, &v64, m, s, causal, scale as f64);
                assert_close("attention out", &out, &wo, 1e-5);
                assert_close("attention probs", &probs, &wp, 1e-5);
                for i in 0..wp.len() {
                    if wp[i] == 0.0 { assert_eq!(probs[i], 0.0); }
                }
                let dout = rng.vec(out.len());
                let (bq, bk, bv) = (rng.vec(q.len()), rng.vec(k.len()), rng.vec(v.len()));
                let (mut dq, mut dk, mut dv) = (bq.clone(), bk.clone(), bv.clone());
                attention_backward(&mut dq, &mut dk, &mut dv, &dout, &q, &k, &v, &probs, b, h, tq, tk, d, scale, &Serial);
                let loss = |o: Vec<f64>| o.iter().zip(&dout).map(|(a, &g)| a * g as f64).sum::<f64>();
                let sc = scale as f64;
                let gq = fd_grad(|x| loss(naive(x, &k64, &v64, m, s, causal, sc).0), &q64, 1e-6);
                let gk = fd_grad(|x| loss(naive(&q64, x, &v64, m, s, causal, sc).0), &k64, 1e-6);
                let gv = fd_grad(|x| loss(naive(&q64, &k64, x, m, s, causal, sc).0), &v64, 1e-6);
                assert_close("attention dq", &dq, &plus(&bq, &gq), 1e-4);
                assert_close("attention dk", &dk, &plus(&bk, &gk), 1e-4);
                assert_close("attention dv", &dv, &plus(&bv, &gv), 1e-4);
            }
        }
    }
}

#[test]
fn thread_count_does_not_change_bits() {
    let mut rng = Rng::new(21);
    // tq spans three query blocks of the forward's tiling.
    let (b, h, tq, tk, d) = (2, 3, 101, 90, 24);
    let q = rng.vec(b * h * tq * d);
    let k = rng.vec(b * h * tk * d);
    let v = rng.vec(b * h * tk * d);
    let dout = rng.vec(q.len());
    let run = |par: &dyn ferroformer_kernels::Parallel| {
        let mut out = vec![0.0; q.len()];
        let mut probs = vec![0.0; b * h * tq * tk];
        attention_forward(&mut out, &mut probs, &q, &k, &v, None, b, h, tq, tk, d, true, 0.2, par);
        let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
        attention_backward(&mut dq, &mut dk, &mut dv, &dout, &q, &k, &v, &probs, b, h, tq, tk, d, 0.2, par);
        (out, probs, dq, dk, dv)
    };
    let want = run(&Serial);
    for t in 1..=3 {
        assert!(run(&Threads(t)) == want, "threads={t} changed bits");
    }
}

/// Sizes that cross the forward's query blocks (48 rows) and sgemm's k block (128 keys),
/// with Tq < Tk, Tq > Tk, masks and causal.
#[test]
fn forward_blocks_match_naive() {
    let mut rng = Rng::new(22);
    let cases = [
        Dims { b: 1, h: 2, tq: 100, tk: 130, d: 65 },
        Dims { b: 2, h: 1, tq: 150, tk: 49, d: 8 },
        Dims { b: 1, h: 1, tq: 48, tk: 48, d: 64 },
        Dims { b: 1, h: 1, tq: 257, tk: 257, d: 7 },
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
                let mut out = vec![5.0; q.len()];
                let mut probs = vec![9.0; b * h * tq * tk];
                attention_forward(&mut out, &mut probs, &q, &k, &v, m, b, h, tq, tk, d, causal, scale, &Serial);
                let (wo, wp) = naive(&to64(&q), &to64(&k), &to64(&v), m, s, causal, scale as f64);
                assert_close("attention out", &out, &wo, 1e-5);
                assert_close("attention probs", &probs, &wp, 1e-5);
                for i in 0..wp.len() {
                    if wp[i] == 0.0 { assert_eq!(probs[i], 0.0, "masked prob {i} not exactly 0"); }
                }
            }
        }
    }
}
