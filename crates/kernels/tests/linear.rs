//! Fused linear (bias + activation) against the unfused kernels it replaces (bit for bit),
//! against an f64 twin, backward against the twin's analytic gradients, the GELUs' saved
//! derivative against the f64 derivative into the far tails, thread determinism.
mod common;
use common::*;
use ferroformer_kernels::ops::activation::{gelu_backward, gelu_forward, gelu_tanh_backward, gelu_tanh_forward, relu_backward, relu_forward};
use ferroformer_kernels::ops::elementwise::{accumulate, bias_add_backward, bias_add_forward};
use ferroformer_kernels::ops::linear::*;
use ferroformer_kernels::ops::matmul::{matmul_backward, matmul_forward};
use ferroformer_kernels::ops::unary::{unary_grad_scalar, unary_scalar, UnaryOp};
use ferroformer_kernels::{Parallel, Serial};

const ACTS: [Activation; 4] = [Activation::Identity, Activation::Relu, Activation::Gelu, Activation::GeluTanh];

struct Case { rows: usize, in_f: usize, out_f: usize }

/// (out, act_grad) through the fused kernel (act_grad stays 7.0 unless the GELUs save it).
fn fused(x: &[f32], w: &[f32], b: Option<&[f32]>, c: &Case, act: Activation, par: &dyn Parallel) -> (Vec<f32>, Vec<f32>) {
    let mut out = vec![7.0; c.rows * c.out_f];
    let mut act_grad = vec![7.0; c.rows * c.out_f];
    let act_grad_arg = if act.saves_act_grad() { Some(&mut act_grad[..]) } else { None };
    linear_forward(&mut out, act_grad_arg, x, w, b, c.rows, c.in_f, c.out_f, act, par);
    (out, act_grad)
}

/// Gradients (dx, dw, db) through the fused backward, accumulated onto `base`.
#[allow(clippy::type_complexity)]
fn fused_backward(dout: &[f32], x: &[f32], w: &[f32], out: &[f32], act_grad: &[f32], c: &Case, act: Activation,
    base: (&[f32], &[f32], &[f32]), par: &dyn Parallel) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mut dx, mut dw, mut db) = (base.0.to_vec(), base.1.to_vec(), base.2.to_vec());
    let mut dpre = vec![3.0; dout.len()];
    let saved = if act.saves_act_grad() { act_grad } else { out };
    linear_backward(Some(&mut dx), Some(&mut dw), Some(&mut db), &mut dpre, dout, x, w, saved, c.rows, c.in_f, c.out_f, act, true, true, par);
    (dx, dw, db)
}

/// Unless accumulating, dx (dweight) is written: from a buffer of NaN, the values accumulating
/// into zeros gives, with the other gradients still accumulated; on one thread and on several
/// (where both gradients run as one parallel job).
#[test]
fn overwriting_equals_accumulating_into_zeros() {
    // Split every call, however small (results never depend on it).
    ferroformer_kernels::parallel::set_min_parallel_flops(0);
    let mut rng = Rng::new(43);
    for c in [Case { rows: 130, in_f: 33, out_f: 70 }, Case { rows: 64, in_f: 128, out_f: 512 }, Case { rows: 600, in_f: 40, out_f: 9 }, Case { rows: 3, in_f: 0, out_f: 4 }] {
        let (x, w, b) = (rng.vec(c.rows * c.in_f), rng.vec(c.out_f * c.in_f), rng.vec(c.out_f));
        let dout = rng.vec(c.rows * c.out_f);
        let (bx, bw, bb) = (rng.vec(x.len()), rng.vec(w.len()), rng.vec(b.len()));
        for act in ACTS {
            let (out, act_grad) = fused(&x, &w, Some(&b), &c, act, &Serial);
            let saved = if act.saves_act_grad() { &act_grad } else { &out };
            for (write_dx, write_dw) in [(true, false), (false, true), (true, true)] {
                let start = |write: bool, base: &[f32]| if write { vec![0.0; base.len()] } else { base.to_vec() };
                let want = fused_backward(&dout, &x, &w, &out, &act_grad, &c, act, (&start(write_dx, &bx), &start(write_dw, &bw), &bb), &Serial);
                let garbage = |write: bool, base: &[f32]| if write { vec![f32::NAN; base.len()] } else { base.to_vec() };
                for par in [&Serial as &dyn Parallel, &Threads(2), &Threads(3)] {
                    let (mut dx, mut dw, mut db) = (garbage(write_dx, &bx), garbage(write_dw, &bw), bb.clone());
                    let mut dpre = vec![3.0; dout.len()];
                    linear_backward(Some(&mut dx), Some(&mut dw), Some(&mut db), &mut dpre, &dout, &x, &w, saved, c.rows, c.in_f, c.out_f, act, !write_dx, !write_dw, par);
                    assert!((&dx, &dw, &db) == (&want.0, &want.1, &want.2),
                        "{act:?} rows {} in {}: writing dx {write_dx}, dweight {write_dw} on {} thread(s)", c.rows, c.in_f, par.threads());
                }
            }
        }
    }
}

#[test]
fn equals_the_unfused_kernels_bit_for_bit() {
    let mut rng = Rng::new(40);
    // The last two span several k blocks and column panels of the sgemm (whose epilogue does
    // the bias and activation per finished block), and none (in_f 0: out = act(bias)).
    let cases = [Case { rows: 130, in_f: 33, out_f: 70 }, Case { rows: 1, in_f: 5, out_f: 3 }, Case { rows: 64, in_f: 128, out_f: 512 },
                 Case { rows: 100, in_f: 300, out_f: 1100 }, Case { rows: 3, in_f: 0, out_f: 4 }];
    for c in cases {
        let (x, w, b) = (rng.vec(c.rows * c.in_f), rng.vec(c.out_f * c.in_f), rng.vec(c.out_f));
        let dout = rng.vec(c.rows * c.out_f);
        let (bx, bw, bb) = (rng.vec(x.len()), rng.vec(w.len()), rng.vec(b.len()));
        for act in ACTS {
            let (out, act_grad) = fused(&x, &w, Some(&b), &c, act, &Serial);
            // matmul, then bias add, then the activation: three tensors, three calls.
            let n = c.rows * c.out_f;
            let mut mm = vec![0.0; n];
            matmul_forward(&mut mm, &x, &w, 1, c.rows, c.in_f, c.out_f, false, true, false, &Serial);
            let mut biased = vec![0.0; n];
            bias_add_forward(&mut biased, &mm, &b, c.rows, c.out_f, &Serial);
            let mut want = vec![0.0; n];
            match act {
                Activation::Identity => want.copy_from_slice(&biased),
                Activation::Relu => relu_forward(&mut want, &biased),
                Activation::Gelu => gelu_forward(&mut want, &biased, &Serial),
                Activation::GeluTanh => gelu_tanh_forward(&mut want, &biased, &Serial),
            }
            assert!(out == want, "{act:?} forward differs from the unfused kernels");
            if act.saves_act_grad() {
                // The derivative saved is the unfused backward's for dout = 1, bit for bit.
                let mut want_grad = vec![0.0; n];
                match act {
                    Activation::Gelu => gelu_backward(&mut want_grad, &vec![1.0; n], &biased, &Serial),
                    _ => gelu_tanh_backward(&mut want_grad, &vec![1.0; n], &biased, &Serial),
                }
                assert!(act_grad == want_grad, "{act:?} saved derivative");
            }
            let (dx, dw, db) = fused_backward(&dout, &x, &w, &out, &act_grad, &c, act, (&bx, &bw, &bb), &Serial);
            let mut dbiased = vec![0.0; n];
            match act {
                Activation::Identity => dbiased.copy_from_slice(&dout),
                Activation::Relu => relu_backward(&mut dbiased, &dout, &biased),
                Activation::Gelu => gelu_backward(&mut dbiased, &dout, &biased, &Serial),
                Activation::GeluTanh => gelu_tanh_backward(&mut dbiased, &dout, &biased, &Serial),
            }
            let mut dmm = vec![0.0; n];
            accumulate(&mut dmm, &dbiased, 1.0, &Serial);
            let (mut wx, mut ww, mut wb) = (bx.clone(), bw.clone(), bb.clone());
            bias_add_backward(&mut wb, &dbiased, c.rows, c.out_f);
            matmul_backward(Some(&mut wx), Some(&mut ww), &dmm, &x, &w, 1, c.rows, c.in_f, c.out_f, false, true, &Serial);
            assert!(dx == wx && dw == ww && db == wb, "{act:?} backward differs from the unfused kernels");
        }
    }
}

#[test]
fn matches_an_f64_twin_with_and_without_bias() {
    let mut rng = Rng::new(41);
    let c = Case { rows: 67, in_f: 19, out_f: 45 };
    let (x, w, b) = (rng.vec(c.rows * c.in_f), rng.vec(c.out_f * c.in_f), rng.vec(c.out_f));
    let dout = rng.vec(c.rows * c.out_f);
    let zeros = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; b.len()]);
    for act in ACTS {
        for bias in [Some(&b[..]), None] {
            let (out, act_grad) = fused(&x, &w, bias, &c, act, &Serial);
            // f64 twin: pre = x·Wᵀ + b, y = act(pre), and the chain rule by hand.
            let mut want = vec![0.0f64; out.len()];
            let mut dpre = vec![0.0f64; out.len()];
            for r in 0..c.rows {
                for o in 0..c.out_f {
                    let p = (0..c.in_f).map(|i| x[r * c.in_f + i] as f64 * w[o * c.in_f + i] as f64).sum::<f64>()
                        + bias.map_or(0.0, |b| b[o] as f64);
                    let g = dout[r * c.out_f + o] as f64;
                    let (y, dy) = match act {
                        Activation::Identity => (p, 1.0),
                        Activation::Relu => (p.max(0.0), if p > 0.0 { 1.0 } else { 0.0 }),
                        Activation::Gelu => {
                            let cdf = 0.5 * (1.0 + erf(p / std::f64::consts::SQRT_2));
                            let pdf = (-0.5 * p * p).exp() / (2.0 * std::f64::consts::PI).sqrt();
                            (p * cdf, cdf + p * pdf)
                        }
                        Activation::GeluTanh => (gelu_tanh64(p), gelu_tanh_grad64(p)),
                    };
                    want[r * c.out_f + o] = y;
                    dpre[r * c.out_f + o] = g * dy;
                }
            }
            assert_close(&format!("{act:?} out"), &out, &want, 1e-5);
            let (dx, dw, db) = fused_backward(&dout, &x, &w, &out, &act_grad, &c, act, (&zeros.0, &zeros.1, &zeros.2), &Serial);
            let wdx: Vec<f64> = (0..x.len()).map(|k| {
                let (r, i) = (k / c.in_f, k % c.in_f);
                (0..c.out_f).map(|o| dpre[r * c.out_f + o] * w[o * c.in_f + i] as f64).sum()
            }).collect();
            let wdw: Vec<f64> = (0..w.len()).map(|k| {
                let (o, i) = (k / c.in_f, k % c.in_f);
                (0..c.rows).map(|r| dpre[r * c.out_f + o] * x[r * c.in_f + i] as f64).sum()
            }).collect();
            let wdb: Vec<f64> = (0..c.out_f).map(|o| (0..c.rows).map(|r| dpre[r * c.out_f + o]).sum()).collect();
            assert_close(&format!("{act:?} dx"), &dx, &wdx, 1e-5);
            assert_close(&format!("{act:?} dw"), &dw, &wdw, 1e-5);
            assert_close(&format!("{act:?} db"), &db, &wdb, 1e-5);
        }
    }
}

/// GELU's tanh approximation and its derivative, f64 (GPT-2's `gelu_new`).
fn gelu_tanh64(x: f64) -> f64 {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * x * (1.0 + (c * (x + 0.044715 * x.powi(3))).tanh())
}
fn gelu_tanh_grad64(x: f64) -> f64 {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    let t = (c * (x + 0.044715 * x.powi(3))).tanh();
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x)
}

/// erf by its Maclaurin series (|z| is small here), f64.
fn erf(z: f64) -> f64 {
    if z.abs() > 5.0 {
        return z.signum();
    }
    let (mut sum, mut term, mut n) = (0.0f64, z, 0.0f64);
    while term.abs() > 1e-17 * sum.abs().max(1e-300) || n < 3.0 {
        sum += term / (2.0 * n + 1.0);
        n += 1.0;
        term *= -z * z / n;
        if n > 200.0 { break; }
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn thread_count_does_not_change_bits() {
    // Split every call, however small (the default runs small ones on the calling thread).
    ferroformer_kernels::parallel::set_min_parallel_flops(0);
    let mut rng = Rng::new(42);
    let c = Case { rows: 300, in_f: 40, out_f: 90 };
    let (x, w, b) = (rng.vec(c.rows * c.in_f), rng.vec(c.out_f * c.in_f), rng.vec(c.out_f));
    let dout = rng.vec(c.rows * c.out_f);
    let zeros = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; b.len()]);
    for act in ACTS {
        let run = |par: &dyn Parallel| {
            let (out, act_grad) = fused(&x, &w, Some(&b), &c, act, par);
            let grads = fused_backward(&dout, &x, &w, &out, &act_grad, &c, act, (&zeros.0, &zeros.1, &zeros.2), par);
            (out, act_grad, grads)
        };
        let want = run(&Serial);
        for t in 2..=3 {
            assert!(run(&Threads(t)) == want, "{act:?}: threads={t} changed bits");
        }
    }
}

/// The GELUs' saved derivative, and the dpre backward forms from it (read here as dbias, one
/// row: dbias = dout ∘ act'), against the f64 functions over pre-activations from -16 to 16,
/// with the tolerances of tests/math.rs: for the erf form a relative 1e-6 (value) and 2e-6
/// (derivative) down to its denormal tail (the derivative is denormal from -13.4 and 0 from
/// -14.5), there within a few of the smallest denormal (1.4e-45), scaled by |g| in the
/// product, and the derivative within 3e-7 from -5 up (it crosses zero at -0.75, where only
/// the absolute error can be small); the tanh form's f64 reference cancels far out, so it is
/// held to 2e-6 relative above 1e-12 for the value and 1e-6 above 3e-7 for the derivative.
/// pre = weight · 1 exactly (in 1, out 20001, no bias), so each column is one input.
#[test]
fn saved_derivative_matches_the_f64_derivative_into_the_tails() {
    let n = 20_001;
    let pre: Vec<f32> = (0..n).map(|i| -16.0 + 32.0 * i as f32 / (n - 1) as f32).collect();
    let c = Case { rows: 1, in_f: 1, out_f: n };
    // (activation, its unary op, (relative, floor) for the value, for the derivative (the
    // floor from -5 up, beyond -5)).
    let cases = [(Activation::Gelu, UnaryOp::Gelu, (1e-6, 3e-45), (2e-6, 3e-7, 6e-45)), (Activation::GeluTanh, UnaryOp::GeluTanh, (2e-6, 1e-12), (1e-6, 3e-7, 3e-7))];
    for (act, op, (value_rel, value_floor), (rel, near_floor, far_floor)) in cases {
        let floor = |p: f32| if p >= -5.0 { near_floor } else { far_floor };
        let (out, act_grad) = fused(&[1.0], &pre, None, &c, act, &Serial);
        for (i, &p) in pre.iter().enumerate() {
            let want = unary_scalar(op, p, 0.0, 0.0) as f64;
            assert!((out[i] as f64 - want).abs() <= value_rel * want.abs() + value_floor, "{act:?}({p}) = {:e} want {want:e}", out[i]);
            let want = unary_grad_scalar(op, p, 0.0, 0.0) as f64;
            assert!((act_grad[i] as f64 - want).abs() <= rel * want.abs() + floor(p), "{act:?}'({p}) = {:e} want {want:e}", act_grad[i]);
        }
        for g in [0.37f32, -2.5, 1e-3] {
            let dout = vec![g; n];
            let (_, _, db) = fused_backward(&dout, &[1.0], &pre, &out, &act_grad, &c, act, (&[0.0], &vec![0.0; n], &vec![0.0; n]), &Serial);
            for (i, &p) in pre.iter().enumerate() {
                let want = g as f64 * unary_grad_scalar(op, p, 0.0, 0.0) as f64;
                assert!((db[i] as f64 - want).abs() <= rel * want.abs() + floor(p) * (1.0 + g.abs() as f64), "{g} · {act:?}'({p}) = {:e} want {want:e}", db[i]);
            }
        }
    }
}
