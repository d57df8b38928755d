//! Softmax over the last axis, with an optional keep-mask. Rows are independent: both
//! passes split over row blocks through the SIMD helpers.

use crate::ops::elementwise::for_rows;
use crate::parallel::{Parallel, SendPtr};
use crate::simd;

/// Softmax of one row into `out`; entries with `keep(j) == false` get exactly 0, and a row
/// with nothing kept gives all zeros. Max-subtracted for stability.
#[inline]
pub(crate) fn softmax_row(out: &mut [f32], inp: &[f32], keep: impl Fn(usize) -> bool) {
    let mut max = f32::NEG_INFINITY;
    let mut any = false;
    for (j, &x) in inp.iter().enumerate() {
        if keep(j) {
            any = true;
            if x > max {
                max = x;
            }
        }
    }
    if !any {
        out.fill(0.0);
        return;
    }
    if max.is_finite() && (0..inp.len()).all(&keep) {
        // Every entry kept: the vectorised exp (as the attention kernels use).
        out.copy_from_slice(inp);
        let sum = simd::exp_shift(out, max);
        simd::scale(out, 1.0 / sum);
        return;
    }
    let mut sum = 0.0f32;
    for (j, (o, &x)) in out.iter_mut().zip(inp).enumerate() {
        let e = if keep(j) { (x - max).exp() } else { 0.0 };
        *o = e;
        sum += e;
    }
    simd::scale(out, 1.0 / sum);
}

/// out[r, :] = softmax(inp[r, :]) over `cols`, rows independent. `mask` (same [rows, cols]
/// shape, 1 keeps, 0 sets the logit to -inf) may be None. A row with every entry masked
/// gives all zeros (PyTorch would give NaN; zeros keep training finite).
pub fn softmax_forward(out: &mut [f32], inp: &[f32], mask: Option<&[u8]>, rows: usize, cols: usize, par: &dyn Parallel) {
    assert!(out.len() == rows * cols && inp.len() == rows * cols);
    if let Some(m) = mask {
        assert_eq!(m.len(), rows * cols);
    }
    let o = SendPtr(out.as_mut_ptr());
    for_rows(rows, cols, par, &|r0, nr| {
        for r in r0..r0 + nr {
            let range = r * cols..(r + 1) * cols;
            // SAFETY: row blocks are disjoint and inside out.
            let orow = unsafe { o.slice_mut(r * cols, cols) };
            match mask {
                Some(m) => {
                    let mrow = &m[range.clone()];
                    softmax_row(orow, &inp[range], |j| mrow[j] != 0)
                }
                None => softmax_row(orow, &inp[range], |_| true),
            }
        }
    });
}

/// Accumulates dinp += out * (dout - sum(dout * out)) per row.
pub fn softmax_backward(dinp: &mut [f32], dout: &[f32], out: &[f32], rows: usize, cols: usize, par: &dyn Parallel) {
    assert!(dinp.len() == rows * cols && dout.len() == rows * cols && out.len() == rows * cols);
    let di = SendPtr(dinp.as_mut_ptr());
    for_rows(rows, cols, par, &|r0, nr| {
        for r in r0..r0 + nr {
            let (go, y) = (&dout[r * cols..(r + 1) * cols], &out[r * cols..(r + 1) * cols]);
            let dot = simd::dot(go, y);
            // SAFETY: row blocks are disjoint and inside dinp.
            for ((d, &g), &p) in unsafe { di.slice_mut(r * cols, cols) }.iter_mut().zip(go).zip(y) {
                *d += p * (g - dot);
            }
        }
    });
}
