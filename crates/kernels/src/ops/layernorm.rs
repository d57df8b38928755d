//! Layer normalisation over the last axis with learnable gamma (weight) and beta (bias).
//! Rows are independent, so both passes split over row blocks; the parameter gradients,
//! which sum over rows, split over column blocks instead and keep the row order (on one
//! thread the backward adds them row by row inside its row loop, in the same order).

use crate::ops::elementwise::{for_blocks, for_rows, STREAM_FLOPS};
use crate::parallel::{self, Parallel, SendPtr};
use crate::simd::{self, Isa};

/// inp, out: [rows, dim]; weight, bias: [dim]; mean, rstd: [rows] saved for backward.
/// out = (inp - mean) * rstd * weight + bias, rstd = 1/sqrt(var + eps), var biased (as PyTorch).
/// SIMD, three passes over the row (it sits in L1): a first mean m0, then the sums of x - m0
/// and of (x - m0)^2 give the corrected mean and the variance around it; shifting by m0
/// first keeps large offsets from cancelling (the sums are over small deviations).
#[allow(clippy::too_many_arguments)]
pub fn layernorm_forward(
    out: &mut [f32], mean: &mut [f32], rstd: &mut [f32],
    inp: &[f32], weight: &[f32], bias: &[f32], rows: usize, dim: usize, eps: f32, par: &dyn Parallel,
) {
    assert!(out.len() == rows * dim && inp.len() == rows * dim);
    assert!(mean.len() == rows && rstd.len() == rows && weight.len() == dim && bias.len() == dim);
    if dim == 0 {
        mean.fill(f32::NAN);
        rstd.fill(f32::NAN);
        return;
    }
    let n = dim as f64;
    let (po, pm, pr) = (SendPtr(out.as_mut_ptr()), SendPtr(mean.as_mut_ptr()), SendPtr(rstd.as_mut_ptr()));
    for_rows(rows, dim, par, &|r0, nr| {
        for r in r0..r0 + nr {
            let x = &inp[r * dim..(r + 1) * dim];
            let m0 = simd::sum(x) / dim as f32;
            let (s1, s2) = simd::dev_sums(x, m0);
            let (s1, s2) = (s1 as f64 / n, s2 as f64 / n);
            let mu = m0 as f64 + s1;
            let var = (s2 - s1 * s1).max(0.0);
            let rs = 1.0 / (var + eps as f64).sqrt();
            let (mu32, rs32) = (mu as f32, rs as f32);
            // SAFETY: row blocks are disjoint; row r's slots of mean, rstd and out are inside them.
            unsafe {
                pm.slice_mut(r, 1)[0] = mu32;
                pr.slice_mut(r, 1)[0] = rs32;
                simd::norm_affine(po.slice_mut(r * dim, dim), x, weight, bias, mu32, rs32);
            }
        }
    });
}

/// The parameter gradients' column blocks are multiples of this (of every vector width), so
/// each column is computed the same way whatever the split.
const PARAM_COLS: usize = 64;

/// Backward leaves the calling thread only from this many times the elements of a one-pass
/// stream (`STREAM_FLOPS`: ~250 K elements natively). Split over threads it makes two passes
/// (dinp by row blocks, then the parameter sums by column blocks over every row) where one
/// thread makes one, so threads pay only on large inputs: inside training steps
/// (bench/notes.md) [1024, 128] ran 0.85x as fast on two threads as on one, [2048, 384] 1.19x.
const BACKWARD_SPLIT_COST: u64 = 4;

/// Accumulates into dinp [rows, dim], dweight [dim], dbias [dim].
/// dinp = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dout * weight.
/// dweight and dbias add one row at a time, in row order, as a serial loop would.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(
    dinp: &mut [f32], dweight: &mut [f32], dbias: &mut [f32],
    dout: &[f32], inp: &[f32], weight: &[f32], mean: &[f32], rstd: &[f32],
    rows: usize, dim: usize, par: &dyn Parallel,
) {
    layernorm_backward_with(Isa::detect(), dinp, dweight, dbias, dout, inp, weight, mean, rstd, rows, dim, par)
}

/// [`layernorm_backward`] on an explicit instruction set (tests, benchmarks); panics if `isa`
/// is not available here.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward_with(
    isa: Isa, dinp: &mut [f32], dweight: &mut [f32], dbias: &mut [f32],
    dout: &[f32], inp: &[f32], weight: &[f32], mean: &[f32], rstd: &[f32],
    rows: usize, dim: usize, par: &dyn Parallel,
) {
    assert!(dinp.len() == rows * dim && dout.len() == rows * dim && inp.len() == rows * dim);
    assert!(dweight.len() == dim && dbias.len() == dim && weight.len() == dim);
    assert!(mean.len() == rows && rstd.len() == rows);
    if dim == 0 {
        return;
    }
    let row = |r: usize| r * dim..(r + 1) * dim;
    let dinp_row = |r: usize, di: &mut [f32]| {
        let (x, go, mu, rs) = (&inp[row(r)], &dout[row(r)], mean[r], rstd[r]);
        let (sum_g, sum_gx) = simd::ln_row_sums_with(isa, go, weight, x, mu, rs);
        let (mean_g, mean_gx) = (sum_g / dim as f32, sum_gx / dim as f32);
        simd::ln_row_dinp_with(isa, di, go, weight, x, (mu, rs), (mean_g, mean_gx));
    };
    let cost = (rows * dim) as u64 * STREAM_FLOPS;
    let threads = parallel::for_work(par, cost / BACKWARD_SPLIT_COST).threads();
    if threads == 1 {
        // One pass: each row's parameter gradients right after its dinp, while dout and inp's
        // row is in L1. Each column still sums the rows in order (the same bits).
        for (r, di) in dinp.chunks_exact_mut(dim).enumerate() {
            dinp_row(r, di);
            simd::ln_row_dparams_with(isa, dweight, dbias, &dout[row(r)], &inp[row(r)], mean[r], rstd[r]);
        }
        return;
    }
    let di = SendPtr(dinp.as_mut_ptr());
    for_rows(rows, dim, par, &|r0, nr| {
        for r in r0..r0 + nr {
            // SAFETY: row blocks are disjoint and inside dinp.
            dinp_row(r, unsafe { di.slice_mut(r * dim, dim) });
        }
    });
    let (dw, db) = (SendPtr(dweight.as_mut_ptr()), SendPtr(dbias.as_mut_ptr()));
    // One column block per thread: each sweeps whole rows of its columns.
    let cols = dim.div_ceil(threads).next_multiple_of(PARAM_COLS);
    for_blocks(dim, cols, rows as u64 * STREAM_FLOPS, par, &|c0, nc| {
        // SAFETY: column blocks are disjoint and inside dweight and dbias.
        let (dw, db) = unsafe { (dw.slice_mut(c0, nc), db.slice_mut(c0, nc)) };
        for r in 0..rows {
            let at = r * dim + c0..r * dim + c0 + nc;
            simd::ln_row_dparams_with(isa, dw, db, &dout[at.clone()], &inp[at], mean[r], rstd[r]);
        }
    });
}
