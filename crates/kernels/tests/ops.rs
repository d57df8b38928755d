//! Pointwise, normalisation, loss and optimiser kernels against naive f64 twins, and every
//! backward kernel against finite differences of the naive forward (checked to accumulate).
mod common;
use common::*;
use ferroformer_kernels::ops::{activation::*, cross_entropy::*, dropout::*, elementwise::*, embedding::*, layernorm::*, softmax::*};
use ferroformer_kernels::optim::adam::adam_update;
use ferroformer_kernels::Serial;

const SIZES: [usize; 6] = [1, 7, 16, 65, 257, 1000];
const TOL: f64 = 1e-4;

/// Reference erf by its Maclaurin series / continued fraction would be overkill: use a
/// high-order series for |x| < 3 and 1 - tiny beyond (accurate far below 1e-10).
fn erf64(x: f64) -> f64 {
    if x.abs() > 6.0 {
        return x.signum();
    }
    // erf x = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)), fine in f64 for |x| <= 6
    // only with care; use the Kummer form erf x = 2x/sqrt(pi) e^{-x^2} sum 2^n x^{2n}/(1·3·…(2n+1)).
    let mut term = 1.0f64;
    let mut sum = 1.0f64;
    let x2 = x * x;
    for n in 1..200 {
        term *= 2.0 * x2 / (2 * n + 1) as f64;
        sum += term;
        if term < 1e-17 * sum {
            break;
        }
    }
    2.0 * x / std::f64::consts::PI.sqrt() * (-x2).exp() * sum
}
fn gelu64(x: f64) -> f64 {
    0.5 * x * (1.0 + erf64(x / std::f64::consts::SQRT_2))
}

#[test]
fn gelu_and_relu() {
    check_pointwise("gelu", 1, |o, x| gelu_forward(o, x, &Serial), |d, g, x| gelu_backward(d, g, x, &Serial), gelu64);
    let mut rng = Rng::new(1);
    for &n in &SIZES {
        let x: Vec<f32> = rng.vec(n).iter().map(|v| v * 6.0).collect();
        let mut out = vec![0.0; n];
        let dout = rng.vec(n);
        let base = rng.vec(n);
        relu_forward(&mut out, &x);
        let want: Vec<f64> = x.iter().map(|&v| (v as f64).max(0.0)).collect();
        assert_close("relu", &out, &want, 0.0);
        let mut dinp = base.clone();
        relu_backward(&mut dinp, &dout, &x);
        let g: Vec<f64> = x.iter().zip(&dout).map(|(&v, &go)| if v > 0.0 { go as f64 } else { 0.0 }).collect();
        assert_close("relu_backward", &dinp, &plus(&base, &g), 1e-7);
    }
    // Tails: relative precision in the far negative tail, exact limits.
    for &v in &[-5.0f32, -3.0, -1e-3, 0.0, 1e-3, 3.0, 5.0, 10.0] {
        let mut o = [0.0f32];
        gelu_forward(&mut o, &[v], &Serial);
        let w = gelu64(v as f64);
        assert!((o[0] as f64 - w).abs() <= 1e-6 * w.abs() + 1e-30, "gelu({v}) = {} want {w}", o[0]);
    }
    let mut o = [1.0f32];
    gelu_forward(&mut o, &[-10.0], &Serial);
    assert!(o[0] <= 0.0 && o[0] > -1e-20);
}

/// GPT-2's `gelu_new` in f64, written as in transformers' `NewGELUActivation`.
fn gelu_tanh64(x: f64) -> f64 {
    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
}

/// A pointwise activation against its f64 twin (forward), and its backward against central
/// differences of the twin, checked to accumulate.
fn check_pointwise(name: &str, seed: u64, fwd: fn(&mut [f32], &[f32]), bwd: fn(&mut [f32], &[f32], &[f32]), f64_twin: fn(f64) -> f64) {
    let mut rng = Rng::new(seed);
    for &n in &SIZES {
        let x: Vec<f32> = rng.vec(n).iter().map(|v| v * 6.0).collect();
        let mut out = vec![0.0; n];
        fwd(&mut out, &x);
        let want: Vec<f64> = x.iter().map(|&v| f64_twin(v as f64)).collect();
        assert_close(name, &out, &want, 1e-6);
        let dout = rng.vec(n);
        let base = rng.vec(n);
        let mut dinp = base.clone();
        bwd(&mut dinp, &dout, &x);
        let g: Vec<f64> = x.iter().zip(&dout).map(|(&v, &go)| {
            let h = 1e-5;
            go as f64 * (f64_twin(v as f64 + h) - f64_twin(v as f64 - h)) / (2.0 * h)
        }).collect();
        assert_close(&format!("{name}_backward"), &dinp, &plus(&base, &g), TOL);
    }
}

#[test]
fn gelu_tanh_against_f64() {
    check_pointwise("gelu_tanh", 11, |o, x| gelu_tanh_forward(o, x, &Serial), |d, g, x| gelu_tanh_backward(d, g, x, &Serial), gelu_tanh64);
    // It is not the erf form: they differ by up to ~2e-4 near |x| = 2.
    let (mut a, mut b) = ([0.0f32], [0.0f32]);
    gelu_tanh_forward(&mut a, &[-2.0], &Serial);
    gelu_forward(&mut b, &[-2.0], &Serial);
    assert!((a[0] - b[0]).abs() > 1e-5, "gelu_tanh(-2) = {} equals gelu(-2) = {}", a[0], b[0]);
    for &v in &[-10.0f32, -3.0, 0.0, 3.0, 10.0] {
        gelu_tanh_forward(&mut a, &[v], &Serial);
        let w = gelu_tanh64(v as f64);
        assert!((a[0] as f64 - w).abs() <= 1e-6 * w.abs() + 1e-30, "gelu_tanh({v}) = {} want {w}", a[0]);
    }
}

#[test]
fn dropout_matches_recipe() {
    // Known splitmix64 value: splitmix64 from state 0 first output is 0xE220A8397B1DCDAF.
    assert_eq!(random_u32(0, 0), 0xE220_A839);
    let n = 1000;
    let mut rng = Rng::new(2);
    let x = rng.vec(n);
    for &p in &[0.0f32, 0.1, 0.5, 0.9] {
        let (seed, offset) = (12345u32, u32::MAX - 10); // offset wraps within the call
        let mut out = vec![0.0; n];
        let mut keep = vec![7u8; n];
        dropout_forward(&mut out, &mut keep, &x, p, seed, offset);
        let thr = ((p as f64) * 4294967296.0).floor() as u64;
        let scale = 1.0f32 / (1.0f32 - p);
        let mut kept = 0;
        for i in 0..n {
            let r = random_u32(seed, offset.wrapping_add(i as u32));
            let k = (r as u64) >= thr;
            assert_eq!(keep[i], k as u8);
            assert_eq!(out[i], if k { x[i] * scale } else { 0.0 });
            kept += k as usize;
        }
        let frac = kept as f64 / n as f64;
        assert!((frac - (1.0 - p as f64)).abs() < 0.06, "p={p} kept {frac}");
        let base = rng.vec(n);
        let dout = rng.vec(n);
        let mut dinp = base.clone();
        dropout_backward(&mut dinp, &dout, &keep, p);
        for i in 0..n {
            let want = base[i] + if keep[i] != 0 { dout[i] * scale } else { 0.0 };
            assert_eq!(dinp[i], want);
        }
    }
}

#[test]
fn elementwise_family() {
    let mut rng = Rng::new(3);
    for &n in &SIZES {
        let (a, b) = (rng.vec(n), rng.vec(n));
        let mut out = vec![0.0; n];
        add_forward(&mut out, &a, &b, &Serial);
        assert_close("add", &out, &a.iter().zip(&b).map(|(&x, &y)| x as f64 + y as f64).collect::<Vec<_>>(), 1e-7);
        mul_forward(&mut out, &a, &b, &Serial);
        assert_close("mul", &out, &a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).collect::<Vec<_>>(), 1e-7);
        scale_forward(&mut out, &a, 0.3, &Serial);
        assert_close("scale", &out, &a.iter().map(|&x| x as f64 * 0.3).collect::<Vec<_>>(), 1e-6);
        let mut x = a.clone();
        scale_inplace(&mut x, -2.5, &Serial);
        assert_close("scale_inplace", &x, &a.iter().map(|&v| v as f64 * -2.5).collect::<Vec<_>>(), 1e-6);
        for &alpha in &[1.0f32, -0.7] {
            let mut d = a.clone();
            accumulate(&mut d, &b, alpha, &Serial);
            assert_close("accumulate", &d, &a.iter().zip(&b).map(|(&x, &y)| x as f64 + alpha as f64 * y as f64).collect::<Vec<_>>(), 1e-6);
        }
        let s = sum_squares(&a, &Serial);
        let w: f64 = a.iter().map(|&v| (v as f64).powi(2)).sum();
        assert!((s - w).abs() <= 1e-12 * w.max(1.0));
    }
    for &(rows, cols) in &[(1, 1), (7, 5), (65, 33), (3, 257)] {
        let inp = rng.vec(rows * cols);
        let bias = rng.vec(cols);
        let mut out = vec![0.0; rows * cols];
        bias_add_forward(&mut out, &inp, &bias, rows, cols, &Serial);
        let want: Vec<f64> = (0..rows * cols).map(|i| inp[i] as f64 + bias[i % cols] as f64).collect();
        assert_close("bias_add", &out, &want, 1e-7);
        let base = rng.vec(cols);
        let mut db = base.clone();
        bias_add_backward(&mut db, &inp, rows, cols);
        let g: Vec<f64> = (0..cols).map(|c| (0..rows).map(|r| inp[r * cols + c] as f64).sum()).collect();
        assert_close("bias_add_backward", &db, &plus(&base, &g), 1e-5);
    }
    for &(a, b, c, d) in &[(1, 1, 1, 1), (2, 3, 5, 7), (3, 7, 2, 65)] {
        let inp = rng.vec(a * b * c * d);
        let mut out = vec![0.0; inp.len()];
        transpose12_forward(&mut out, &inp, a, b, c, d, &Serial);
        let mut want = vec![0.0f64; inp.len()];
        for ia in 0..a { for ib in 0..b { for ic in 0..c { for id in 0..d {
            want[((ia * c + ic) * b + ib) * d + id] = inp[((ia * b + ib) * c + ic) * d + id] as f64;
        }}}}
        assert_close("transpose12", &out, &want, 0.0);
        let base = rng.vec(inp.len());
        let mut dinp = base.clone();
        transpose12_backward(&mut dinp, &out, a, b, c, d, &Serial);
        assert_close("transpose12_backward", &dinp, &plus(&base, &to64(&inp)), 1e-7);
    }
    for &(outer, dim, inner, start, len) in &[(1, 1, 1, 0, 1), (2, 9, 3, 3, 3), (5, 12, 7, 8, 4)] {
        let inp = rng.vec(outer * dim * inner);
        let mut out = vec![0.0; outer * len * inner];
        narrow_forward(&mut out, &inp, outer, dim, inner, start, len, &Serial);
        let mut want = vec![0.0f64; out.len()];
        for o in 0..outer { for l in 0..len { for i in 0..inner {
            want[(o * len + l) * inner + i] = inp[(o * dim + start + l) * inner + i] as f64;
        }}}
        assert_close("narrow", &out, &want, 0.0);
        let base = rng.vec(inp.len());
        let mut dinp = base.clone();
        narrow_backward(&mut dinp, &out, outer, dim, inner, start, len, &Serial);
        let mut g = vec![0.0f64; inp.len()];
        for o in 0..outer { for l in 0..len { for i in 0..inner {
            g[(o * dim + start + l) * inner + i] = out[(o * len + l) * inner + i] as f64;
        }}}
        assert_close("narrow_backward", &dinp, &plus(&base, &g), 1e-7);
    }
}

#[test]
fn embedding_roundtrip() {
    let mut rng = Rng::new(4);
    let (vocab, dim, n) = (11, 13, 40);
    let table = rng.vec(vocab * dim);
    let ids: Vec<i32> = (0..n).map(|_| rng.below(vocab) as i32).collect();
    let mut out = vec![0.0; n * dim];
    embedding_forward(&mut out, &ids, &table, dim);
    for i in 0..n {
        assert_eq!(&out[i * dim..(i + 1) * dim], &table[ids[i] as usize * dim..(ids[i] as usize + 1) * dim]);
    }
    let dout = rng.vec(n * dim);
    let base = rng.vec(vocab * dim);
    let mut dt = base.clone();
    embedding_backward(&mut dt, &dout, &ids, dim);
    let mut g = vec![0.0f64; vocab * dim];
    for i in 0..n { for c in 0..dim { g[ids[i] as usize * dim + c] += dout[i * dim + c] as f64; } }
    assert_close("embedding_backward", &dt, &plus(&base, &g), 1e-6);
}

fn softmax64(x: &[f64], keep: &[bool]) -> Vec<f64> {
    if !keep.iter().any(|&k| k) {
        return vec![0.0; x.len()];
    }
    let max = x.iter().zip(keep).filter(|p| *p.1).map(|p| *p.0).fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().zip(keep).map(|(&v, &k)| if k { (v - max).exp() } else { 0.0 }).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

#[test]
fn softmax_forward_backward() {
    let mut rng = Rng::new(5);
    for &(rows, cols) in &[(1, 1), (3, 7), (5, 65), (2, 257)] {
        let inp: Vec<f32> = rng.vec(rows * cols).iter().map(|v| v * 8.0).collect();
        let mut mask: Vec<u8> = (0..rows * cols).map(|_| (rng.below(4) != 0) as u8).collect();
        // one fully-masked row
        for c in 0..cols { mask[c] = 0; }
        for masked in [false, true] {
            let m = if masked { Some(&mask[..]) } else { None };
            let mut out = vec![0.0; rows * cols];
            softmax_forward(&mut out, &inp, m, rows, cols, &Serial);
            let mut want = Vec::new();
            for r in 0..rows {
                let keep: Vec<bool> = (0..cols).map(|c| !masked || mask[r * cols + c] != 0).collect();
                want.extend(softmax64(&to64(&inp[r * cols..(r + 1) * cols]), &keep));
            }
            assert_close("softmax", &out, &want, 1e-6);
            for i in 0..rows * cols {
                if want[i] == 0.0 { assert_eq!(out[i], 0.0, "masked entry must be exactly 0"); }
            }
            let dout = rng.vec(rows * cols);
            let base = rng.vec(rows * cols);
            let mut dinp = base.clone();
            softmax_backward(&mut dinp, &dout, &out, rows, cols, &Serial);
            let x64 = to64(&inp);
            let loss = |x: &[f64]| -> f64 {
                let mut l = 0.0;
                for r in 0..rows {
                    let keep: Vec<bool> = (0..cols).map(|c| !masked || mask[r * cols + c] != 0).collect();
                    let y = softmax64(&x[r * cols..(r + 1) * cols], &keep);
                    l += y.iter().zip(&dout[r * cols..(r + 1) * cols]).map(|(a, &b)| a * b as f64).sum::<f64>();
                }
                l
            };
            let g = fd_grad(loss, &x64, 1e-6);
            assert_close("softmax_backward", &dinp, &plus(&base, &g), TOL);
        }
    }
}

fn layernorm64(x: &[f64], w: &[f64], b: &[f64], rows: usize, dim: usize, eps: f64) -> Vec<f64> {
    let mut out = vec![0.0; rows * dim];
    for r in 0..rows {
        let row = &x[r * dim..(r + 1) * dim];
        let mu = row.iter().sum::<f64>() / dim as f64;
        let var = row.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / dim as f64;
        let rs = 1.0 / (var + eps).sqrt();
        for i in 0..dim {
            out[r * dim + i] = (row[i] - mu) * rs * w[i] + b[i];
        }
    }
    out
}

#[test]
fn layernorm_forward_backward() {
    let mut rng = Rng::new(6);
    let eps = 1e-5f32;
    for &(rows, dim, offset) in &[(1, 1, 100.0), (3, 7, 100.0), (4, 65, 100.0), (2, 257, 100.0), (3, 512, 1000.0), (2, 1000, -300.0)] {
        // Offset inputs so a naive one-pass f32 variance would lose digits.
        let inp: Vec<f32> = rng.vec(rows * dim).iter().map(|v| offset + v).collect();
        let w = rng.vec(dim);
        let b = rng.vec(dim);
        let (mut out, mut mean, mut rstd) = (vec![0.0; rows * dim], vec![0.0; rows], vec![0.0; rows]);
        layernorm_forward(&mut out, &mut mean, &mut rstd, &inp, &w, &b, rows, dim, eps, &Serial);
        let want = layernorm64(&to64(&inp), &to64(&w), &to64(&b), rows, dim, eps as f64);
        assert_close("layernorm", &out, &want, 1e-4);
        let dout = rng.vec(rows * dim);
        let (bi, bw, bb) = (rng.vec(rows * dim), rng.vec(dim), rng.vec(dim));
        let (mut di, mut dw, mut db) = (bi.clone(), bw.clone(), bb.clone());
        layernorm_backward(&mut di, &mut dw, &mut db, &dout, &inp, &w, &mean, &rstd, rows, dim, &Serial);
        let dot = |y: Vec<f64>| y.iter().zip(&dout).map(|(a, &b)| a * b as f64).sum::<f64>();
        let (x64, w64, b64) = (to64(&inp), to64(&w), to64(&b));
        let gx = fd_grad(|x| dot(layernorm64(x, &w64, &b64, rows, dim, eps as f64)), &x64, 1e-6);
        let gw = fd_grad(|ww| dot(layernorm64(&x64, ww, &b64, rows, dim, eps as f64)), &w64, 1e-6);
        let gb = fd_grad(|bbb| dot(layernorm64(&x64, &w64, bbb, rows, dim, eps as f64)), &b64, 1e-6);
        assert_close("layernorm dinp", &di, &plus(&bi, &gx), 1e-3);
        assert_close("layernorm dweight", &dw, &plus(&bw, &gw), TOL);
        assert_close("layernorm dbias", &db, &plus(&bb, &gb), TOL);
    }
}

fn ce64(x: &[f64], t: &[i32], rows: usize, vocab: usize, ignore: i32, eps: f64) -> f64 {
    let (mut total, mut count) = (0.0, 0);
    for r in 0..rows {
        if t[r] == ignore { continue; }
        let row = &x[r * vocab..(r + 1) * vocab];
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        let mean = row.iter().sum::<f64>() / vocab as f64;
        total += (1.0 - eps) * (lse - row[t[r] as usize]) + eps * (lse - mean);
        count += 1;
    }
    total / count as f64
}

#[test]
fn cross_entropy_forward_backward() {
    let mut rng = Rng::new(7);
    for &(rows, vocab) in &[(1, 1), (5, 7), (9, 65), (3, 257), (2, 1000)] {
        for &eps in &[0.0f32, 0.1] {
            let logits: Vec<f32> = rng.vec(rows * vocab).iter().map(|v| v * 5.0).collect();
            let mut targets: Vec<i32> = (0..rows).map(|_| rng.below(vocab) as i32).collect();
            if rows > 1 { targets[1] = -100; }
            let (mut loss, mut lse) = ([0.0f32], vec![0.0; rows]);
            cross_entropy_forward(&mut loss, &mut lse, &logits, &targets, rows, vocab, -100, eps, &Serial);
            let want = ce64(&to64(&logits), &targets, rows, vocab, -100, eps as f64);
            assert_close("ce", &loss, &[want], 1e-6);
            let base = rng.vec(rows * vocab);
            let mut dl = base.clone();
            cross_entropy_backward(&mut dl, &[1.7], &logits, &lse, &targets, rows, vocab, -100, eps, true, &Serial);
            let g: Vec<f64> = fd_grad(|x| 1.7 * ce64(x, &targets, rows, vocab, -100, eps as f64), &to64(&logits), 1e-6);
            assert_close("ce backward", &dl, &plus(&base, &g), TOL);
            if rows > 1 {
                // ignored row untouched
                assert_eq!(&dl[vocab..2 * vocab], &base[vocab..2 * vocab]);
            }
        }
    }
    // every target ignored: NaN loss, no gradient
    let (mut loss, mut lse) = ([0.0f32], [0.0f32; 2]);
    let logits = [0.1f32, 0.2, 0.3, 0.4];
    cross_entropy_forward(&mut loss, &mut lse, &logits, &[-1, -1], 2, 2, -1, 0.0, &Serial);
    assert!(loss[0].is_nan());
    let mut dl = [1.0f32; 4];
    cross_entropy_backward(&mut dl, &[1.0], &logits, &lse, &[-1, -1], 2, 2, -1, 0.0, true, &Serial);
    assert_eq!(dl, [1.0; 4]);
}

/// Split over threads, in blocks fixed by the sizes, cross-entropy gives the same bits as on
/// one thread, and the loss still matches the f64 formula (many blocks, ignored rows).
#[test]
fn cross_entropy_is_the_same_for_any_thread_count() {
    let mut rng = Rng::new(71);
    let (rows, vocab) = (300, 1000);
    let logits: Vec<f32> = rng.vec(rows * vocab).iter().map(|v| v * 4.0).collect();
    let targets: Vec<i32> = (0..rows).map(|r| if r % 7 == 3 { -100 } else { rng.below(vocab) as i32 }).collect();
    for eps in [0.0f32, 0.1] {
        let run = |par: &dyn ferroformer_kernels::Parallel| {
            let (mut loss, mut lse) = ([0.0f32], vec![0.0; rows]);
            cross_entropy_forward(&mut loss, &mut lse, &logits, &targets, rows, vocab, -100, eps, par);
            let mut dl = vec![0.5f32; rows * vocab];
            cross_entropy_backward(&mut dl, &[1.3], &logits, &lse, &targets, rows, vocab, -100, eps, true, par);
            (loss, lse, dl)
        };
        let one = run(&Serial);
        for threads in [2, 3, 5] {
            let many = run(&Threads(threads));
            assert_eq!(one.0[0].to_bits(), many.0[0].to_bits(), "loss, {threads} threads, eps {eps}");
            assert!(one.1.iter().zip(&many.1).all(|(a, b)| a.to_bits() == b.to_bits()), "lse, {threads} threads");
            assert!(one.2.iter().zip(&many.2).all(|(a, b)| a.to_bits() == b.to_bits()), "dlogits, {threads} threads");
        }
        let want = ce64(&to64(&logits), &targets, rows, vocab, -100, eps as f64);
        assert_close("ce, many blocks", &one.0, &[want], 1e-6);
    }
}

#[test]
fn adam_matches_torch_formula() {
    let mut rng = Rng::new(8);
    for &n in &SIZES {
        for &decoupled in &[false, true] {
            let (lr, b1, b2, eps, wd) = (1e-2f32, 0.9f32, 0.999f32, 1e-8f32, 0.05f32);
            let mut p = rng.vec(n);
            let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
            let (mut p64, mut m64, mut v64) = (to64(&p), vec![0.0f64; n], vec![0.0f64; n]);
            for step in 1..=5u32 {
                let g = rng.vec(n);
                adam_update(&mut p, &mut m, &mut v, &g, lr, b1, b2, eps, wd, step, decoupled, &Serial);
                let (lr, b1, b2, eps, wd) = (lr as f64, b1 as f64, b2 as f64, eps as f64, wd as f64);
                let bc1 = 1.0 - b1.powi(step as i32);
                let bc2 = 1.0 - b2.powi(step as i32);
                for i in 0..n {
                    let mut gi = g[i] as f64;
                    if decoupled { p64[i] *= 1.0 - lr * wd; } else { gi += wd * p64[i]; }
                    m64[i] = b1 * m64[i] + (1.0 - b1) * gi;
                    v64[i] = b2 * v64[i] + (1.0 - b2) * gi * gi;
                    p64[i] -= lr / bc1 * m64[i] / (v64[i].sqrt() / bc2.sqrt() + eps);
                }
            }
            assert_close("adam param", &p, &p64, 1e-5);
            assert_close("adam m", &m, &m64, 1e-5);
            assert_close("adam v", &v, &v64, 1e-5);
        }
    }
}
