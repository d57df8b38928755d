//! Pointwise activations. GELU is the exact erf form (PyTorch's default); `gelu_tanh` is the
//! tanh approximation (GPT-2's `gelu_new`, PyTorch's `approximate='tanh'`).
//! The GELU kernels run the vectorised f32 math of `simd::math`; the f64 `*_scalar`
//! functions here are its reference (`unary_scalar`, the tests).

use crate::ops::elementwise::{for_blocks, CHUNK};
use crate::parallel::{Parallel, SendPtr};
use crate::simd::{self, Pointwise};

/// The cost of one element of a `simd::math` pass in the flops of `parallel::for_work`:
/// GELU takes about 4 ns per element on one AVX-512 core, the time of some 200 sgemm flops;
/// 128 lets a pass of more than about 125 K elements leave the calling thread.
pub(crate) const POINTWISE_FLOPS: u64 = 128;

/// out = f(inp), split over threads in CHUNK blocks (pointwise, so the split cannot change
/// a result).
pub(crate) fn pointwise_forward(out: &mut [f32], inp: &[f32], f: Pointwise, par: &dyn Parallel) {
    assert_eq!(out.len(), inp.len());
    let o = SendPtr(out.as_mut_ptr());
    for_blocks(out.len(), CHUNK, POINTWISE_FLOPS, par, &|s, n| {
        // SAFETY: blocks are disjoint and inside out.
        simd::pointwise(unsafe { o.slice_mut(s, n) }, &inp[s..s + n], f);
    });
}

/// dinp += dout * f'(inp), split over threads as [`pointwise_forward`].
pub(crate) fn pointwise_backward(dinp: &mut [f32], dout: &[f32], inp: &[f32], f: Pointwise, par: &dyn Parallel) {
    assert!(dinp.len() == dout.len() && dinp.len() == inp.len());
    let d = SendPtr(dinp.as_mut_ptr());
    for_blocks(dinp.len(), CHUNK, POINTWISE_FLOPS, par, &|s, n| {
        // SAFETY: blocks are disjoint and inside dinp.
        simd::pointwise_grad(unsafe { d.slice_mut(s, n) }, &dout[s..s + n], &inp[s..s + n], f, true);
    });
}

/// out = max(x, 0), NaN kept (PyTorch's relu): the test is `x <= 0`, false for NaN, where
/// `x > 0` or `f32::max(x, 0.0)` would turn a NaN into 0 and hide it from the loss.
pub fn relu_forward(out: &mut [f32], inp: &[f32]) {
    assert_eq!(out.len(), inp.len());
    for (o, &x) in out.iter_mut().zip(inp) {
        *o = relu_scalar(x);
    }
}

#[inline(always)]
pub(crate) fn relu_scalar(x: f32) -> f32 {
    if x <= 0.0 { 0.0 } else { x }
}

/// The gradient ReLU lets through, given its input or its output (the same sign): 0 where
/// x <= 0, else `g`, so a NaN input passes the gradient on as PyTorch's threshold_backward.
#[inline(always)]
pub(crate) fn relu_grad(g: f32, x: f32) -> f32 {
    if x <= 0.0 { 0.0 } else { g }
}

/// Accumulates dinp += dout where inp > 0 (or is NaN).
pub fn relu_backward(dinp: &mut [f32], dout: &[f32], inp: &[f32]) {
    assert!(dinp.len() == dout.len() && dinp.len() == inp.len());
    // Branch-free (adds 0 where x <= 0) so that it vectorises.
    for ((di, &go), &x) in dinp.iter_mut().zip(dout).zip(inp) {
        *di += relu_grad(go, x);
    }
}

const FRAC_1_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2 pi), the standard normal density at 0.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// erfc(z) for z >= 0, Chebyshev-fitted (Numerical Recipes `erfcc`), fractional error
/// below 1.2e-7 everywhere. Evaluated in f64 so the f32 result is limited by the fit only.
#[inline]
fn erfc_nonneg(z: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    t * (-z * z + poly).exp()
}

/// Standard normal CDF Phi(x) = 0.5 * (1 + erf(x / sqrt 2)). Uses erfc of |x| on both sides,
/// so the tail for negative x keeps its relative precision (no 1 - erf cancellation).
#[inline]
fn normal_cdf(x: f64) -> f64 {
    let half_erfc = 0.5 * erfc_nonneg(x.abs() * FRAC_1_SQRT_2);
    if x >= 0.0 { 1.0 - half_erfc } else { half_erfc }
}

/// GELU of one value (exact erf form), in f64.
#[inline]
pub(crate) fn gelu_scalar(x: f32) -> f32 {
    let x = x as f64;
    (x * normal_cdf(x)) as f32
}

/// d/dx GELU(x) = Phi(x) + x * phi(x).
#[inline]
pub(crate) fn gelu_grad_scalar(x: f32) -> f32 {
    let x = x as f64;
    let pdf = (-0.5 * x * x).exp() * INV_SQRT_2PI;
    (normal_cdf(x) + x * pdf) as f32
}

/// out = 0.5 * x * (1 + erf(x / sqrt(2))).
pub fn gelu_forward(out: &mut [f32], inp: &[f32], par: &dyn Parallel) {
    pointwise_forward(out, inp, Pointwise::Gelu, par);
}

/// Accumulates dinp += dout * gelu'(inp).
pub fn gelu_backward(dinp: &mut [f32], dout: &[f32], inp: &[f32], par: &dyn Parallel) {
    pointwise_backward(dinp, dout, inp, Pointwise::Gelu, par);
}

/// sqrt(2 / pi), the slope of GELU's tanh approximation.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient of GELU's tanh approximation (Hendrycks & Gimpel).
const GELU_TANH_CUBIC: f64 = 0.044_715;

/// GELU's tanh approximation of one value, in f64:
/// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
#[inline]
pub(crate) fn gelu_tanh_scalar(x: f32) -> f32 {
    let x = x as f64;
    let u = SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x * x * x);
    (0.5 * x * (1.0 + u.tanh())) as f32
}

/// d/dx of [`gelu_tanh_scalar`]: 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 c x^2),
/// t = tanh(u).
#[inline]
pub(crate) fn gelu_tanh_grad_scalar(x: f32) -> f32 {
    let x = x as f64;
    let t = (SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x * x * x)).tanh();
    let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_CUBIC * x * x);
    (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du) as f32
}

/// out = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))).
pub fn gelu_tanh_forward(out: &mut [f32], inp: &[f32], par: &dyn Parallel) {
    pointwise_forward(out, inp, Pointwise::GeluTanh, par);
}

/// Accumulates dinp += dout * gelu_tanh'(inp).
pub fn gelu_tanh_backward(dinp: &mut [f32], dout: &[f32], inp: &[f32], par: &dyn Parallel) {
    pointwise_backward(dinp, dout, inp, Pointwise::GeluTanh, par);
}
