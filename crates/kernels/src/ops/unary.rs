//! Elementwise unary math with one op code, forward and backward, following PyTorch's
//! values and gradient conventions: relu and abs have gradient 0 at 0, clamp passes the
//! gradient only strictly inside (min, max), softplus returns x where beta * x > threshold,
//! NaN propagates (relu(NaN) = NaN, clamp(NaN) = NaN). `p0` / `p1` are the op's scalars
//! (the scalar operand, clamp's bounds, softplus's beta and threshold); unused ones are 0.
//! The transcendental ops (exp, log, tanh, sigmoid, SiLU, softplus, the GELUs) run the
//! vectorised f32 math of `simd::math`; the others, and [`unary_scalar`] /
//! [`unary_grad_scalar`] (their f64 reference in the tests), compute in f64 per element and
//! round once.

use super::activation::{gelu_grad_scalar, gelu_scalar, gelu_tanh_grad_scalar, gelu_tanh_scalar};
use super::activation::{pointwise_backward, pointwise_forward};
use super::elementwise::for_chunks;
use crate::parallel::{Parallel, SendPtr};
use crate::simd::Pointwise;

/// The ops of [`unary_forward`]; the code is what the kernel table passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum UnaryOp {
    Exp = 0,
    Log = 1,
    Sqrt = 2,
    Rsqrt = 3,
    Tanh = 4,
    Sigmoid = 5,
    Relu = 6,
    Gelu = 7,
    GeluTanh = 8,
    Silu = 9,
    /// p0 = beta, p1 = threshold.
    Softplus = 10,
    Abs = 11,
    Neg = 12,
    /// p0 = min, p1 = max (use ±inf for a missing bound).
    Clamp = 13,
    /// x + p0
    AddScalar = 14,
    /// p0 - x
    RsubScalar = 15,
    /// x * p0
    MulScalar = 16,
    /// x / p0
    DivScalar = 17,
    /// p0 / x
    RdivScalar = 18,
    /// x ** p0
    PowScalar = 19,
    /// p0 ** x
    RpowScalar = 20,
}

impl UnaryOp {
    pub fn from_code(code: u32) -> UnaryOp {
        use UnaryOp::*;
        const ALL: [UnaryOp; 21] = [
            Exp, Log, Sqrt, Rsqrt, Tanh, Sigmoid, Relu, Gelu, GeluTanh, Silu, Softplus, Abs, Neg, Clamp,
            AddScalar, RsubScalar, MulScalar, DivScalar, RdivScalar, PowScalar, RpowScalar,
        ];
        *ALL.get(code as usize).unwrap_or_else(|| panic!("unary op code {code} is not one of 0..21"))
    }

    /// The vectorised f32 function of this op, for the ops that have one.
    fn pointwise(self, p0: f32, p1: f32) -> Option<Pointwise> {
        use UnaryOp::*;
        Some(match self {
            Exp => Pointwise::Exp,
            Log => Pointwise::Log,
            Tanh => Pointwise::Tanh,
            Sigmoid => Pointwise::Sigmoid,
            Silu => Pointwise::Silu,
            Softplus => Pointwise::Softplus { beta: p0, threshold: p1 },
            Gelu => Pointwise::Gelu,
            GeluTanh => Pointwise::GeluTanh,
            _ => return None,
        })
    }
}

#[inline]
fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// y = op(x).
#[inline]
pub fn unary_scalar(op: UnaryOp, x: f32, p0: f32, p1: f32) -> f32 {
    use UnaryOp::*;
    let (xd, s) = (x as f64, p0 as f64);
    let y = match op {
        Exp => xd.exp(),
        Log => xd.ln(),
        Sqrt => xd.sqrt(),
        Rsqrt => 1.0 / xd.sqrt(),
        Tanh => xd.tanh(),
        Sigmoid => sigmoid(xd),
        // x <= 0 -> 0 keeps NaN (the comparison is false), as PyTorch's threshold does.
        Relu => if x <= 0.0 { 0.0 } else { xd },
        Gelu => return gelu_scalar(x),
        GeluTanh => return gelu_tanh_scalar(x),
        Silu => xd * sigmoid(xd),
        Softplus => {
            if s * xd > p1 as f64 { xd } else { (s * xd).exp().ln_1p() / s }
        }
        Abs => xd.abs(),
        Neg => -xd,
        Clamp => {
            if x < p0 { s } else if x > p1 { p1 as f64 } else { xd }
        }
        AddScalar => return x + p0,
        RsubScalar => return p0 - x,
        MulScalar => return x * p0,
        DivScalar => return x / p0,
        RdivScalar => return p0 / x,
        PowScalar => xd.powf(s),
        RpowScalar => s.powf(xd),
    };
    y as f32
}

/// dy/dx at x (times nothing: the caller multiplies by dL/dy).
#[inline]
pub fn unary_grad_scalar(op: UnaryOp, x: f32, p0: f32, p1: f32) -> f32 {
    use UnaryOp::*;
    let (xd, s) = (x as f64, p0 as f64);
    let g = match op {
        Exp => xd.exp(),
        Log => 1.0 / xd,
        Sqrt => 0.5 / xd.sqrt(),
        Rsqrt => -0.5 / (xd * xd.sqrt()),
        Tanh => {
            let t = xd.tanh();
            1.0 - t * t
        }
        Sigmoid => {
            let sg = sigmoid(xd);
            sg * (1.0 - sg)
        }
        // threshold_backward: 0 where x <= 0; NaN passes the gradient on.
        Relu => if x <= 0.0 { 0.0 } else { 1.0 },
        Gelu => return gelu_grad_scalar(x),
        GeluTanh => return gelu_tanh_grad_scalar(x),
        Silu => {
            let sg = sigmoid(xd);
            sg * (1.0 + xd * (1.0 - sg))
        }
        Softplus => {
            if s * xd > p1 as f64 { 1.0 } else { sigmoid(s * xd) }
        }
        // sign(x): 0 at 0, NaN at NaN.
        Abs => if xd > 0.0 { 1.0 } else if xd < 0.0 { -1.0 } else if xd == 0.0 { 0.0 } else { f64::NAN },
        Neg => -1.0,
        Clamp => if x > p0 && x < p1 { 1.0 } else { 0.0 },
        AddScalar => 1.0,
        RsubScalar => -1.0,
        MulScalar => s,
        DivScalar => 1.0 / s,
        RdivScalar => -s / (xd * xd),
        PowScalar => if s == 0.0 { 0.0 } else { s * xd.powf(s - 1.0) },
        RpowScalar => {
            // PyTorch: 0 where base == 0 and exponent >= 0.
            if s == 0.0 && xd >= 0.0 { 0.0 } else { s.powf(xd) * s.ln() }
        }
    };
    g as f32
}

/// out = op(inp) elementwise; `op` is a [`UnaryOp`] code. Split over threads in blocks
/// (elementwise, so the split cannot change a result).
pub fn unary_forward(out: &mut [f32], inp: &[f32], op: u32, p0: f32, p1: f32, par: &dyn Parallel) {
    assert_eq!(out.len(), inp.len(), "unary_forward: out and inp lengths");
    let op = UnaryOp::from_code(op);
    if let Some(f) = op.pointwise(p0, p1) {
        return pointwise_forward(out, inp, f, par);
    }
    let o = SendPtr(out.as_mut_ptr());
    for_chunks(out.len(), par, &|s, n| {
        // SAFETY: chunks are disjoint and inside out.
        let out = unsafe { o.slice_mut(s, n) };
        for (o, &x) in out.iter_mut().zip(&inp[s..s + n]) {
            *o = unary_scalar(op, x, p0, p1);
        }
    });
}

/// Accumulates dinp += dout * op'(inp), split over threads as [`unary_forward`].
pub fn unary_backward(dinp: &mut [f32], dout: &[f32], inp: &[f32], op: u32, p0: f32, p1: f32, par: &dyn Parallel) {
    assert!(dinp.len() == dout.len() && dinp.len() == inp.len(), "unary_backward: lengths");
    let op = UnaryOp::from_code(op);
    if let Some(f) = op.pointwise(p0, p1) {
        return pointwise_backward(dinp, dout, inp, f, par);
    }
    let d = SendPtr(dinp.as_mut_ptr());
    for_chunks(dinp.len(), par, &|s, n| {
        // SAFETY: chunks are disjoint and inside dinp.
        let dinp = unsafe { d.slice_mut(s, n) };
        for ((d, &g), &x) in dinp.iter_mut().zip(&dout[s..s + n]).zip(&inp[s..s + n]) {
            *d += g * unary_grad_scalar(op, x, p0, p1);
        }
    });
}
