//! The vectorised f32 math of `simd::math`, through `simd::pointwise*_with` on every ISA
//! available here, against the f64 functions of `ops::unary` / `ops::activation` (the
//! reference the kernels ran before) over dense grids, at special values, and at every
//! position of a slice (vector body and scalar tail give the same bits, so a split of the
//! work cannot change a result).
mod common;
use common::*;
use ferroformer_kernels::ops::unary::{unary_grad_scalar, unary_scalar, UnaryOp};
use ferroformer_kernels::simd::{self, Isa, Pointwise};

fn grid(lo: f32, hi: f32, n: usize) -> Vec<f32> {
    (0..n).map(|i| lo + (hi - lo) * i as f32 / (n - 1) as f32).collect()
}

/// (function, its unary op and scalars, the input range).
const CASES: [(Pointwise, UnaryOp, f32, f32, f32, f32); 10] = [
    (Pointwise::Exp, UnaryOp::Exp, 0.0, 0.0, -103.0, 88.5),
    (Pointwise::Log, UnaryOp::Log, 0.0, 0.0, 1e-6, 1e4),
    (Pointwise::Tanh, UnaryOp::Tanh, 0.0, 0.0, -12.0, 12.0),
    (Pointwise::Sigmoid, UnaryOp::Sigmoid, 0.0, 0.0, -60.0, 60.0),
    (Pointwise::Silu, UnaryOp::Silu, 0.0, 0.0, -60.0, 60.0),
    (Pointwise::Softplus { beta: 1.0, threshold: 20.0 }, UnaryOp::Softplus, 1.0, 20.0, -60.0, 60.0),
    (Pointwise::Softplus { beta: 2.0, threshold: 0.5 }, UnaryOp::Softplus, 2.0, 0.5, -30.0, 30.0),
    (Pointwise::Gelu, UnaryOp::Gelu, 0.0, 0.0, -14.0, 14.0),
    (Pointwise::GeluTanh, UnaryOp::GeluTanh, 0.0, 0.0, -14.0, 14.0),
    (Pointwise::Gelu, UnaryOp::Gelu, 0.0, 0.0, -1.0, 1.0),
];

/// |got - want| <= 1e-6 |want| + floor at every grid point: a few ulp wherever the value is
/// not tiny. For the values `floor` is 1e-30, so GELU's and sigmoid's far tails keep their
/// relative precision too; GELU-tanh is held to 2e-6 relative above 1e-12: its argument 2u is
/// rounded to f32 (2-3 ulp of |2u| up to 12 where the value is below 1e-3, a relative error
/// of the result equal to 2u's absolute one), and its f64 reference, 1 + tanh u, cancels
/// below 1e-12. For the derivatives `floor` is 3e-7 (GELU' and SiLU' cross zero: there only
/// the absolute error can be small).
#[test]
fn every_function_and_derivative_matches_the_f64_reference() {
    for isa in Isa::available() {
        for &(f, op, p0, p1, lo, hi) in &CASES {
            let x = grid(lo, hi, 100_003);
            let mut value = vec![f32::NAN; x.len()];
            simd::pointwise_with(isa, &mut value, &x, f);
            let mut grad = vec![f32::NAN; x.len()];
            simd::pointwise_grad_with(isa, &mut grad, &vec![1.0; x.len()], &x, f, false);
            let (value_rel, value_floor) = if f == Pointwise::GeluTanh { (2e-6, 1e-12) } else { (1e-6, 1e-30) };
            for (i, &v) in x.iter().enumerate() {
                let want = unary_scalar(op, v, p0, p1) as f64;
                let err = (value[i] as f64 - want).abs();
                assert!(err <= value_rel * want.abs() + value_floor, "{isa:?} {f:?}({v}) = {} want {want}", value[i]);
                let want = unary_grad_scalar(op, v, p0, p1) as f64;
                let err = (grad[i] as f64 - want).abs();
                assert!(err <= 1e-6 * want.abs() + 3e-7, "{isa:?} {f:?}'({v}) = {} want {want}", grad[i]);
            }
        }
    }
}

/// The erf GELU's negative tail keeps its relative precision far below the largest value
/// (the value of the fit, the oracle's own error, is 1.2e-7).
#[test]
fn gelu_negative_tail_is_relatively_precise() {
    for isa in Isa::available() {
        let x = grid(-13.0, -3.0, 10_001);
        let mut value = vec![0.0; x.len()];
        simd::pointwise_with(isa, &mut value, &x, Pointwise::Gelu);
        let mut grad = vec![0.0; x.len()];
        simd::pointwise_grad_with(isa, &mut grad, &vec![1.0; x.len()], &x, Pointwise::Gelu, false);
        for (i, &v) in x.iter().enumerate() {
            let want = unary_scalar(UnaryOp::Gelu, v, 0.0, 0.0) as f64;
            assert!(want < 0.0 && (value[i] as f64 - want).abs() <= 1e-6 * want.abs(), "{isa:?} gelu({v}) = {} want {want}", value[i]);
            let want = unary_grad_scalar(UnaryOp::Gelu, v, 0.0, 0.0) as f64;
            assert!((grad[i] as f64 - want).abs() <= 2e-6 * want.abs(), "{isa:?} gelu'({v}) = {} want {want}", grad[i]);
        }
    }
}

/// Below x ~ -13 the erf GELU's value and derivative are denormal, and they reach 0 by -14.5
/// (where the fit stops): there they stay within a few of the smallest denormal (1.4e-45) of
/// the reference, never flush to zero early and never change sign. The derivative's slack is
/// larger because e^(-x²/2), already denormal there, is multiplied by up to 6 after rounding.
#[test]
fn gelu_denormal_tail_rounds_and_keeps_its_sign() {
    for isa in Isa::available() {
        let x = grid(-16.0, -12.5, 35_001);
        let mut value = vec![f32::NAN; x.len()];
        simd::pointwise_with(isa, &mut value, &x, Pointwise::Gelu);
        let mut grad = vec![f32::NAN; x.len()];
        simd::pointwise_grad_with(isa, &mut grad, &vec![1.0; x.len()], &x, Pointwise::Gelu, false);
        for (i, &v) in x.iter().enumerate() {
            let want = unary_scalar(UnaryOp::Gelu, v, 0.0, 0.0) as f64;
            assert!(value[i] <= 0.0 && (value[i] as f64 - want).abs() <= 1e-6 * want.abs() + 3e-45, "{isa:?} gelu({v}) = {:e} want {want:e}", value[i]);
            let want = unary_grad_scalar(UnaryOp::Gelu, v, 0.0, 0.0) as f64;
            assert!(grad[i] <= 0.0 && (grad[i] as f64 - want).abs() <= 2e-6 * want.abs() + 6e-45, "{isa:?} gelu'({v}) = {:e} want {want:e}", grad[i]);
        }
        // The last nonzero values (the reference's are denormals of a few units at -14).
        let (mut v, mut g) = ([0.0f32], [0.0f32]);
        simd::pointwise_with(isa, &mut v, &[-14.0], Pointwise::Gelu);
        simd::pointwise_grad_with(isa, &mut g, &[1.0], &[-14.0], Pointwise::Gelu, false);
        assert!(v[0] < 0.0 && g[0] < 0.0, "{isa:?} gelu(-14) = {:e}, gelu'(-14) = {:e}", v[0], g[0]);
    }
}

#[test]
fn special_values_follow_ieee_and_pytorch() {
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    // (function, input, value, derivative); NaN means NaN.
    let cases: &[(Pointwise, f32, f32, f32)] = &[
        (Pointwise::Exp, inf, inf, inf),
        (Pointwise::Exp, -inf, 0.0, 0.0),
        (Pointwise::Exp, 89.0, inf, inf),
        (Pointwise::Exp, -104.0, 0.0, 0.0),
        (Pointwise::Exp, 0.0, 1.0, 1.0),
        (Pointwise::Log, 0.0, -inf, inf),
        (Pointwise::Log, -0.0, -inf, -inf),
        (Pointwise::Log, -1.0, nan, -1.0),
        (Pointwise::Log, inf, inf, 0.0),
        (Pointwise::Log, 1.0, 0.0, 1.0),
        (Pointwise::Tanh, inf, 1.0, 0.0),
        (Pointwise::Tanh, -inf, -1.0, 0.0),
        (Pointwise::Tanh, 0.0, 0.0, 1.0),
        (Pointwise::Sigmoid, inf, 1.0, 0.0),
        (Pointwise::Sigmoid, -inf, 0.0, 0.0),
        (Pointwise::Silu, inf, inf, nan),
        (Pointwise::Silu, -inf, nan, nan),
        (Pointwise::Softplus { beta: 1.0, threshold: 20.0 }, inf, inf, 1.0),
        (Pointwise::Softplus { beta: 1.0, threshold: 20.0 }, -inf, 0.0, 0.0),
        (Pointwise::Gelu, inf, inf, nan),
        (Pointwise::Gelu, -inf, nan, nan),
        (Pointwise::Gelu, 0.0, 0.0, 0.5),
        (Pointwise::GeluTanh, inf, inf, nan),
        (Pointwise::GeluTanh, -inf, nan, nan),
        (Pointwise::GeluTanh, 0.0, 0.0, 0.5),
    ];
    let same = |a: f32, b: f32| (a.is_nan() && b.is_nan()) || a == b;
    for isa in Isa::available() {
        for &(f, x, value, grad) in cases {
            let (mut v, mut g) = ([0.0f32], [0.0f32]);
            simd::pointwise_with(isa, &mut v, &[x], f);
            simd::pointwise_grad_with(isa, &mut g, &[1.0], &[x], f, false);
            assert!(same(v[0], value), "{isa:?} {f:?}({x}) = {} want {value}", v[0]);
            assert!(same(g[0], grad), "{isa:?} {f:?}'({x}) = {} want {grad}", g[0]);
        }
        // NaN in, NaN out, for every function and derivative (and in the vector body too).
        for &(f, ..) in &CASES {
            let x = [nan; 37];
            let (mut v, mut g) = ([0.0f32; 37], [0.0f32; 37]);
            simd::pointwise_with(isa, &mut v, &x, f);
            simd::pointwise_grad_with(isa, &mut g, &[1.0; 37], &x, f, false);
            assert!(v.iter().chain(&g).all(|y| y.is_nan()), "{isa:?} {f:?} of NaN: {v:?} {g:?}");
        }
        // Denormal results and arguments.
        let (mut v, mut g) = ([0.0f32], [0.0f32]);
        simd::pointwise_with(isa, &mut v, &[-100.0], Pointwise::Exp);
        assert!((v[0] as f64 - (-100f64).exp()).abs() <= 1.5e-45, "{isa:?} exp(-100) = {:e}", v[0]);
        simd::pointwise_with(isa, &mut v, &[1e-40], Pointwise::Log);
        assert!((v[0] as f64 - (1e-40f32 as f64).ln()).abs() <= 1e-5, "{isa:?} ln(1e-40) = {}", v[0]);
        simd::pointwise_grad_with(isa, &mut g, &[1.0], &[-100.0], Pointwise::Sigmoid, false);
        assert!(g[0] > 0.0 && g[0] < 1e-43, "{isa:?} sigmoid'(-100) = {:e}", g[0]);
    }
}

/// Each element's result is the same bits wherever it sits in a slice (vector body or scalar
/// tail) and on every thread split, and the backward accumulates when asked to.
#[test]
fn results_do_not_depend_on_position_and_grad_accumulates() {
    let mut rng = Rng::new(41);
    for isa in Isa::available() {
        for &(f, ..) in &CASES {
            for &n in &[0usize, 1, 3, 7, 16, 17, 33, 65, 257] {
                let x: Vec<f32> = rng.vec(n).iter().map(|v| v * 8.0 + 0.01).collect();
                let (dout, base) = (rng.vec(n), rng.vec(n));
                let mut whole = vec![0.0; n];
                simd::pointwise_with(isa, &mut whole, &x, f);
                let mut acc = base.clone();
                simd::pointwise_grad_with(isa, &mut acc, &dout, &x, f, true);
                for i in 0..n {
                    let (mut one, mut g) = ([0.0f32], [0.0f32]);
                    simd::pointwise_with(isa, &mut one, &x[i..=i], f);
                    assert_eq!(one[0].to_bits(), whole[i].to_bits(), "{isa:?} {f:?} n={n} i={i}");
                    simd::pointwise_grad_with(isa, &mut g, &dout[i..=i], &x[i..=i], f, false);
                    assert_eq!((base[i] + g[0]).to_bits(), acc[i].to_bits(), "{isa:?} {f:?}' n={n} i={i}");
                }
            }
        }
    }
}

/// The fused-linear epilogue: x = t + bias row by row, out = f(x), t = f'(x): the value and
/// the derivative (the unfused backward's for g = 1) bit for bit, on rows that take the erf
/// GELU's short form and on rows with a far input (|x| >= 12) in some chunks.
#[test]
fn bias_act_with_grad_adds_the_bias_then_gives_value_and_derivative() {
    let mut rng = Rng::new(42);
    for isa in Isa::available() {
        for &(rows, cols) in &[(1usize, 1usize), (3, 17), (5, 64), (2, 100), (3, 200)] {
            for scale in [4.0, 16.0] {
                let x: Vec<f32> = rng.vec(rows * cols).iter().map(|v| v * scale).collect();
                let bias = rng.vec(cols);
                for f in [Pointwise::Gelu, Pointwise::GeluTanh] {
                    for with_bias in [true, false] {
                        let (mut t, mut out) = (x.clone(), vec![0.0; rows * cols]);
                        simd::bias_act_with_grad_with(isa, &mut t, &mut out, with_bias.then_some(&bias[..]), cols, f);
                        let pre: Vec<f32> = (0..rows * cols).map(|i| x[i] + if with_bias { bias[i % cols] } else { 0.0 }).collect();
                        let mut want = vec![0.0; rows * cols];
                        simd::pointwise_with(isa, &mut want, &pre, f);
                        assert_eq!(out, want, "{isa:?} {f:?} out");
                        simd::pointwise_grad_with(isa, &mut want, &vec![1.0; pre.len()], &pre, f, false);
                        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&t), bits(&want), "{isa:?} {f:?} derivative, x up to {scale}");
                    }
                }
            }
        }
    }
}

/// The GELU and unary kernels split over threads in fixed blocks: 1, 2 and 3 threads give the
/// same bits, on a length that spans several blocks and ends in a partial one.
#[test]
fn pointwise_kernels_keep_their_bits_at_any_thread_count() {
    use ferroformer_kernels::ops::activation::{gelu_backward, gelu_forward, gelu_tanh_backward, gelu_tanh_forward};
    use ferroformer_kernels::ops::unary::{unary_backward, unary_forward};
    use ferroformer_kernels::{Parallel, Serial};
    ferroformer_kernels::parallel::set_min_parallel_flops(0);
    let mut rng = Rng::new(43);
    let n = 3 * 16 * 1024 + 77;
    let x: Vec<f32> = rng.vec(n).iter().map(|v| v * 6.0 + 0.01).collect();
    let (dout, base) = (rng.vec(n), rng.vec(n));
    let run = |par: &dyn Parallel| {
        let mut outs = Vec::new();
        let (mut y, mut d) = (vec![0.0; n], base.clone());
        gelu_forward(&mut y, &x, par);
        gelu_backward(&mut d, &dout, &x, par);
        outs.extend([y.clone(), d.clone()]);
        gelu_tanh_forward(&mut y, &x, par);
        gelu_tanh_backward(&mut d, &dout, &x, par);
        outs.extend([y.clone(), d.clone()]);
        // exp, tanh, softplus (vectorised) and abs (per element).
        for (op, p0, p1) in [(0u32, 0.0f32, 0.0f32), (4, 0.0, 0.0), (10, 2.0, 0.5), (11, 0.0, 0.0)] {
            unary_forward(&mut y, &x, op, p0, p1, par);
            unary_backward(&mut d, &dout, &x, op, p0, p1, par);
            outs.extend([y.clone(), d.clone()]);
        }
        outs
    };
    let want = run(&Serial);
    for t in 2..=3 {
        assert!(run(&Threads(t)) == want, "threads={t} changed bits");
    }
    ferroformer_kernels::parallel::set_min_parallel_flops(ferroformer_kernels::parallel::DEFAULT_MIN_PARALLEL_FLOPS);
}

/// The erf GELU runs a chunk of 64 inputs in a shorter form when none of them is far out
/// (|x| < 12): a far input in the same chunk must not change any other element's bits, forward
/// or backward (g · GELU', overwritten or accumulated), here up to |x| = 12 where the two forms
/// take different routes to the same results.
#[test]
fn gelu_results_do_not_depend_on_a_far_input_beside_them() {
    let mut rng = Rng::new(53);
    let n = 64 * 40;
    let near: Vec<f32> = rng.vec(n).iter().map(|v| v * 11.99).collect();
    let mut mixed = near.clone();
    for i in (63..n).step_by(64) {
        mixed[i] = if i % 128 == 63 { 30.0 } else { -13.7 };
    }
    let g: Vec<f32> = rng.vec(n).iter().map(|v| v * 3.0).collect();
    let base = rng.vec(n);
    for isa in Isa::available() {
        let run = |x: &[f32]| {
            let mut value = vec![0.0f32; n];
            simd::pointwise_with(isa, &mut value, x, Pointwise::Gelu);
            let mut grad = vec![0.0f32; n];
            simd::pointwise_grad_with(isa, &mut grad, &g, x, Pointwise::Gelu, false);
            let mut acc = base.clone();
            simd::pointwise_grad_with(isa, &mut acc, &g, x, Pointwise::Gelu, true);
            [value, grad, acc]
        };
        let (a, b) = (run(&near), run(&mixed));
        for (what, (a, b)) in ["value", "g · grad", "accumulated"].iter().zip(a.iter().zip(&b)) {
            for i in (0..n).filter(|i| i % 64 != 63) {
                assert_eq!(a[i].to_bits(), b[i].to_bits(), "{isa:?} gelu {what} at x = {}", near[i]);
            }
        }
    }
}

/// The backward's g · GELU' in the far negative tail, where GELU' alone would be denormal, is
/// the product rounded once: within half the smallest denormal of g times the reference (whose
/// own rounding to f32, a denormal there, |g| scales), plus the relative error of the normal
/// range, for a g of either sign and far from 1, up to
/// x = -14.4 (from -14.5 the derivative is 0, as `gelu_denormal_tail_rounds_and_keeps_its_sign`
/// allows).
#[test]
fn gelu_backward_rounds_g_times_the_denormal_derivative_once() {
    for isa in Isa::available() {
        let x = grid(-14.4, -12.0, 20_001);
        for g in [0.37f32, -2.5, 1e-3] {
            let mut d = vec![f32::NAN; x.len()];
            simd::pointwise_grad_with(isa, &mut d, &vec![g; x.len()], &x, Pointwise::Gelu, false);
            for (i, &v) in x.iter().enumerate() {
                let want = g as f64 * unary_grad_scalar(UnaryOp::Gelu, v, 0.0, 0.0) as f64;
                let err = (d[i] as f64 - want).abs();
                let half_denormal = 0.71e-45;
                assert!(err <= 2e-6 * want.abs() + half_denormal * (1.0 + g.abs() as f64), "{isa:?} {g} · gelu'({v}) = {:e} want {want:e}", d[i]);
            }
        }
    }
}
