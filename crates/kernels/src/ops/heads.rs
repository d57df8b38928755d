//! Attention heads out of a packed projection: PyTorch's packed in-projection gives q, k and v
//! side by side in one [B, T, 3E] product; each of them is wanted as heads [B, H, T, D]. One
//! copy per head tensor does the narrow of the features and the head transpose together.

use crate::ops::elementwise::for_rows;
use crate::parallel::{Parallel, SendPtr};
use crate::simd;

/// out [a, c, b, d] = inp [a, b, dim, d] narrowed to [start, start + c) along axis 2, with
/// axes 1 and 2 swapped. For part p of a packed q/k/v projection [B, T, 3E]: a = B, b = T,
/// dim = 3H, c = H, d = D, start = p·H.
#[allow(clippy::too_many_arguments)]
pub fn split_heads_forward(out: &mut [f32], inp: &[f32], a: usize, b: usize, c: usize, d: usize, dim: usize, start: usize, par: &dyn Parallel) {
    assert!(start + c <= dim);
    assert!(out.len() == a * c * b * d && inp.len() == a * b * dim * d);
    let o = SendPtr(out.as_mut_ptr());
    // Tasks over output rows (ia, ic), each [b, d] contiguous in out.
    for_rows(a * c, b * d, par, &|r0, nr| {
        for row in r0..r0 + nr {
            let (ia, ic) = (row / c, row % c);
            for ib in 0..b {
                let src = ((ia * b + ib) * dim + start + ic) * d;
                // SAFETY: output rows are disjoint and inside out.
                unsafe { o.slice_mut((row * b + ib) * d, d) }.copy_from_slice(&inp[src..src + d]);
            }
        }
    });
}

/// Accumulates dinp [a, b, dim, d] at [start, start + c) along axis 2 += dout [a, c, b, d]
/// transposed back.
#[allow(clippy::too_many_arguments)]
pub fn split_heads_backward(dinp: &mut [f32], dout: &[f32], a: usize, b: usize, c: usize, d: usize, dim: usize, start: usize, par: &dyn Parallel) {
    assert!(start + c <= dim);
    assert!(dout.len() == a * c * b * d && dinp.len() == a * b * dim * d);
    let di = SendPtr(dinp.as_mut_ptr());
    // Tasks over dinp rows (ia, ib), each writing only its [start, start + c) window.
    for_rows(a * b, c * d, par, &|r0, nr| {
        for row in r0..r0 + nr {
            let (ia, ib) = (row / b, row % b);
            for ic in 0..c {
                let src = ((ia * c + ic) * b + ib) * d;
                // SAFETY: dinp rows are disjoint and inside dinp.
                simd::add_assign(unsafe { di.slice_mut((row * dim + start + ic) * d, d) }, &dout[src..src + d]);
            }
        }
    });
}
