//! A Linear layer with its bias and activation fused: y = act(x · Wᵀ + b), PyTorch's layout
//! (weight [out, in]). One call does the product and then, on each block the product
//! finishes, the bias and activation; backward turns dout into the pre-activation gradient, the
//! bias gradient and both products in one call. The JS side crosses once per direction
//! instead of three times (matmul, bias add, activation). Forward saves what backward needs
//! in the form it needs it: nothing for ReLU (its backward reads the output), the derivative
//! act'(x · Wᵀ + b) for the GELUs, computed beside the value from the same intermediates, so
//! that backward is a plain product dout ∘ act' and never evaluates the GELU math.
use crate::ops::activation::POINTWISE_FLOPS;
use crate::ops::elementwise::bias_add_backward;
use crate::ops::matmul::{matmul_backward_into, matmul_forward, matmul_forward_epilogue};
use crate::parallel::{self, SendPtr};
use crate::simd::{self, Isa, Pointwise};
use crate::Parallel;

/// The activation applied after the bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Identity,
    Relu,
    /// Exact erf form, as `activation::gelu_forward`.
    Gelu,
    /// Tanh approximation (GPT-2's `gelu_new`), as `activation::gelu_tanh_forward`.
    GeluTanh,
}

impl Activation {
    /// The code the shims pass (0 identity, 1 ReLU, 2 GELU, 3 GELU tanh).
    pub fn from_code(code: u32) -> Option<Activation> {
        match code {
            0 => Some(Activation::Identity),
            1 => Some(Activation::Relu),
            2 => Some(Activation::Gelu),
            3 => Some(Activation::GeluTanh),
            _ => None,
        }
    }

    /// Whether forward saves the activation's derivative for backward (the GELUs; ReLU's
    /// backward reads the output).
    pub fn saves_act_grad(self) -> bool {
        matches!(self, Activation::Gelu | Activation::GeluTanh)
    }

    /// The vectorised function of the activations that save their derivative.
    fn pointwise(self) -> Option<Pointwise> {
        match self {
            Activation::Gelu => Some(Pointwise::Gelu),
            Activation::GeluTanh => Some(Pointwise::GeluTanh),
            Activation::Identity | Activation::Relu => None,
        }
    }
}

/// Rows per epilogue task: enough work to amortise a hand-off, small enough to stay in L2.
const EPILOGUE_ROWS: usize = 64;

/// Rough cost per element of forward's epilogue, in flops: a bias add and a ReLU are a couple
/// of instructions, the GELUs and their derivatives cost as any `simd::math` pass.
fn epilogue_flops(act: Activation) -> u64 {
    if act.saves_act_grad() { POINTWISE_FLOPS } else { 2 }
}

/// The flops of forward's epilogue over [rows, cols], for `parallel::for_work`.
fn epilogue_work(rows: usize, cols: usize, act: Activation) -> u64 {
    rows as u64 * cols as u64 * epilogue_flops(act)
}

/// The flops of backward's dpre pass over [rows, cols]: a select (ReLU) or a product (the
/// GELUs, from the saved derivative) per element.
fn dpre_work(rows: usize, cols: usize) -> u64 {
    rows as u64 * cols as u64 * 2
}

/// Runs `f(first_row, rows)` over blocks of EPILOGUE_ROWS rows of `cols` elements, in
/// parallel when large enough (pointwise work, so the split cannot change results).
fn for_row_blocks(rows: usize, cols: usize, par: &dyn Parallel, f: &(dyn Fn(usize, usize) + Sync)) {
    let blocks = rows.div_ceil(EPILOGUE_ROWS);
    let par = parallel::for_work(par, dpre_work(rows, cols));
    par.for_each(blocks, &|blk| {
        let r0 = blk * EPILOGUE_ROWS;
        f(r0, EPILOGUE_ROWS.min(rows - r0));
    });
}

/// out [rows, out_f] = act(x [rows, in_f] · weight [out_f, in_f]ᵀ + bias [out_f]).
/// `act_grad` [rows, out_f] receives act'(x·Wᵀ + b) for the GELUs, the factor their backward
/// multiplies dout by; it must be None for the other activations, whose backward reads `out`.
#[allow(clippy::too_many_arguments)]
pub fn linear_forward(
    out: &mut [f32], act_grad: Option<&mut [f32]>, x: &[f32], weight: &[f32], bias: Option<&[f32]>,
    rows: usize, in_f: usize, out_f: usize, act: Activation, par: &dyn Parallel,
) {
    assert!(out.len() == rows * out_f && x.len() == rows * in_f && weight.len() == out_f * in_f);
    if let Some(b) = bias {
        assert_eq!(b.len(), out_f);
    }
    assert_eq!(act_grad.is_some(), act.saves_act_grad(), "linear_forward: act_grad is for the GELUs only");
    if out_f == 0 {
        return;
    }
    // The product goes to `act_grad` for the GELUs (the epilogue then writes out and
    // overwrites it with the derivative), else to out itself.
    let (target, out_ptr) = match act_grad {
        Some(a) => {
            assert_eq!(a.len(), out.len());
            (a, SendPtr(out.as_mut_ptr()))
        }
        None => {
            let p = SendPtr(out.as_mut_ptr());
            (out, p)
        }
    };
    if bias.is_none() && act == Activation::Identity {
        matmul_forward(target, x, weight, 1, rows, in_f, out_f, false, true, false, par);
        return;
    }
    let target_ptr = SendPtr(target.as_mut_ptr());
    // Bias and activation on each block of the product as the sgemm finishes it (in L2),
    // one row segment [c0, c0 + cols) at a time.
    let epilogue = |r0: usize, n: usize, c0: usize, cols: usize| {
        let b = bias.map(|b| &b[c0..c0 + cols]);
        for r in r0..r0 + n {
            // SAFETY: the sgemm hands each block of [rows, out_f] to the task that wrote it,
            // exactly once, so no two calls touch the same elements; in bounds because the
            // block lies in the output. For the GELUs target is `act_grad`, a different
            // buffer from out, read and written at the same indices.
            let t = unsafe { target_ptr.slice_mut(r * out_f + c0, cols) };
            if let Some(f) = act.pointwise() {
                // SAFETY: as above; out is distinct from act_grad here.
                let o = unsafe { out_ptr.slice_mut(r * out_f + c0, cols) };
                simd::bias_act_with_grad(t, o, b, cols, f);
                continue;
            }
            if let Some(b) = b {
                simd::add_assign(t, b);
            }
            if act == Activation::Relu {
                simd::relu_inplace(t);
            }
        }
    };
    matmul_forward_epilogue(target, x, weight, rows, in_f, out_f, false, true, false, &epilogue, epilogue_work(rows, out_f, act), par);
}

/// Rows of dpre computed per block on one thread before their bias-gradient sum
/// (`simd::column_sums_add` loads and stores dbias once per block of 16 rows).
const DBIAS_ROWS: usize = 16;

/// Backward of [`linear_forward`]: accumulates dx [rows, in_f] += dpre · W, dweight
/// [out_f, in_f] += dpreᵀ · x and dbias += Σ_rows dpre, where dpre = dout ∘ act'(·). Unless
/// `accumulate_dx` (`accumulate_dweight`), dx (dweight) is overwritten instead: a gradient
/// buffer nothing has written yet (an activation's, or a weight's after zero_grad set it to
/// none) then needs no zero fill.
/// `saved` is the forward's `out` (ReLU: out > 0 where the pre-activation was) or `act_grad`
/// (the GELUs: dpre = dout ∘ act_grad); it and the scratch `dpre` [rows, out_f] (overwritten)
/// are unused, and may be empty, for the identity, where dpre is dout itself.
#[allow(clippy::too_many_arguments)]
pub fn linear_backward(
    dx: Option<&mut [f32]>, dweight: Option<&mut [f32]>, mut dbias: Option<&mut [f32]>,
    dpre: &mut [f32], dout: &[f32], x: &[f32], weight: &[f32], saved: &[f32],
    rows: usize, in_f: usize, out_f: usize, act: Activation, accumulate_dx: bool, accumulate_dweight: bool, par: &dyn Parallel,
) {
    assert!(dout.len() == rows * out_f && x.len() == rows * in_f && weight.len() == out_f * in_f);
    let products = |dpre: &[f32]| {
        matmul_backward_into(Isa::detect(), dx, accumulate_dx, dweight, accumulate_dweight, dpre, x, weight, 1, rows, in_f, out_f, false, true, par)
    };
    if act == Activation::Identity {
        if let Some(db) = dbias {
            bias_add_backward(db, dout, rows, out_f);
        }
        products(dout);
        return;
    }
    assert!(dpre.len() == dout.len() && saved.len() == dout.len());
    // dpre = dout ∘ act' over rows [r0, r0 + n).
    let dpre_rows = |d: &mut [f32], r0: usize, n: usize| {
        let range = r0 * out_f..(r0 + n) * out_f;
        let (g, s) = (&dout[range.clone()], &saved[range]);
        if act.saves_act_grad() {
            simd::mul_to(d, g, s);
        } else {
            simd::relu_grad_to(d, g, s);
        }
    };
    if parallel::for_work(par, dpre_work(rows, out_f)).threads() == 1 {
        // On one thread the bias gradient sums each block of dpre rows right after computing
        // it, while it is in cache, in the row order of bias_add_backward (the same bits).
        let block = DBIAS_ROWS * out_f.max(1);
        for (i, d) in dpre[..rows * out_f].chunks_mut(block).enumerate() {
            dpre_rows(d, i * DBIAS_ROWS, d.len() / out_f.max(1));
            if let Some(db) = dbias.as_deref_mut() {
                simd::column_sums_add(db, d, out_f);
            }
        }
    } else {
        let dpre_ptr = SendPtr(dpre.as_mut_ptr());
        for_row_blocks(rows, out_f, par, &|r0, n| {
            // SAFETY: each block owns rows [r0, r0 + n) of dpre; in bounds by the assert.
            dpre_rows(unsafe { dpre_ptr.slice_mut(r0 * out_f, n * out_f) }, r0, n);
        });
        if let Some(db) = dbias {
            bias_add_backward(db, dpre, rows, out_f);
        }
    }
    products(dpre);
}
