//! Cross-entropy over logits with ignore index and label smoothing, mean over the targets
//! that are not ignored (PyTorch's reduction='mean'): per row
//! loss_r = (1 - eps) * (lse - x[t]) + eps * (lse - mean_j x[j]).
//!
//! Both directions split the rows over threads in blocks fixed by the sizes alone
//! ([`row_block`]); the forward sums each block's losses in f64, then the blocks in order, so
//! the loss has the same bits for any thread count.
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::ops::activation::POINTWISE_FLOPS;
use crate::ops::elementwise::{for_blocks, CHUNK as BLOCK_ELEMENTS};
use crate::parallel::SendPtr;
use crate::Parallel;

/// Floats per chunk that the exp helpers work on in a stack buffer (the logits are inputs,
/// so e^x cannot be written in place).
const CHUNK: usize = 256;

/// log-sum-exp of one row, max-subtracted: SIMD max and exp per chunk, chunk sums in f64.
#[inline]
pub(crate) fn row_lse(x: &[f32]) -> f64 {
    let max = crate::simd::max(x);
    if max == f32::NEG_INFINITY || max.is_nan() {
        return max as f64;
    }
    let mut buf = [0.0f32; CHUNK];
    let mut sum = 0.0f64;
    for chunk in x.chunks(CHUNK) {
        let e = &mut buf[..chunk.len()];
        e.copy_from_slice(chunk);
        sum += crate::simd::exp_shift(e, max) as f64;
    }
    max as f64 + sum.ln()
}

/// Most row blocks of one call: the forward keeps one partial sum per block on the stack.
const MAX_BLOCKS: usize = 64;

/// Rows per block: about BLOCK_ELEMENTS logits, and at most MAX_BLOCKS blocks.
fn row_block(rows: usize, vocab: usize) -> usize {
    rows.div_ceil(MAX_BLOCKS).max(BLOCK_ELEMENTS.div_ceil(vocab.max(1))).max(1)
}

/// The loss of one row whose target is not ignored, given its log-sum-exp `lse`.
fn row_loss(x: &[f32], target: usize, lse: f64, eps: f64) -> f64 {
    let mut loss = (1.0 - eps) * (lse - x[target] as f64);
    if eps != 0.0 {
        let mean_x = x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
        loss += eps * (lse - mean_x);
    }
    loss
}

/// logits: [rows, vocab], targets: [rows]; loss: [1] (the mean; NaN when every target is
/// ignored, as PyTorch); lse: [rows] log-sum-exp saved for backward (computed for every
/// row, ignored or not).
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy_forward(
    loss: &mut [f32], lse: &mut [f32], logits: &[f32], targets: &[i32],
    rows: usize, vocab: usize, ignore_index: i32, label_smoothing: f32, par: &dyn Parallel,
) {
    assert!(loss.len() == 1 && lse.len() == rows && targets.len() == rows);
    assert_eq!(logits.len(), rows * vocab);
    let eps = label_smoothing as f64;
    let per_block = row_block(rows, vocab);
    // Per block: its losses' sum (f64 bits) and how many rows counted.
    let sums: [AtomicU64; MAX_BLOCKS] = [const { AtomicU64::new(0) }; MAX_BLOCKS];
    let counts: [AtomicUsize; MAX_BLOCKS] = [const { AtomicUsize::new(0) }; MAX_BLOCKS];
    let lse_ptr = SendPtr(lse.as_mut_ptr());
    for_blocks(rows, per_block, vocab as u64 * POINTWISE_FLOPS, par, &|r0, n| {
        // SAFETY: blocks own disjoint rows [r0, r0 + n) of lse, in bounds (asserted above).
        let lse = unsafe { lse_ptr.slice_mut(r0, n) };
        let (mut total, mut count) = (0.0f64, 0usize);
        for (i, l_out) in lse.iter_mut().enumerate() {
            let r = r0 + i;
            let x = &logits[r * vocab..(r + 1) * vocab];
            let l = row_lse(x);
            *l_out = l as f32;
            if targets[r] != ignore_index {
                total += row_loss(x, targets[r] as usize, l, eps);
                count += 1;
            }
        }
        sums[r0 / per_block].store(total.to_bits(), Ordering::Relaxed);
        counts[r0 / per_block].store(count, Ordering::Relaxed);
    });
    let blocks = rows.div_ceil(per_block);
    let total: f64 = sums[..blocks].iter().map(|s| f64::from_bits(s.load(Ordering::Relaxed))).sum();
    let count: usize = counts[..blocks].iter().map(|c| c.load(Ordering::Relaxed)).sum();
    loss[0] = if count == 0 { f32::NAN } else { (total / count as f64) as f32 };
}

/// Accumulates dlogits += dloss[0] * (softmax - ((1-eps)·onehot + eps/vocab)) / count for
/// rows whose target is not ignored (count = number of such rows).
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy_backward(
    dlogits: &mut [f32], dloss: &[f32], logits: &[f32], lse: &[f32], targets: &[i32],
    rows: usize, vocab: usize, ignore_index: i32, label_smoothing: f32, par: &dyn Parallel,
) {
    assert!(dloss.len() == 1 && lse.len() == rows && targets.len() == rows);
    assert!(logits.len() == rows * vocab && dlogits.len() == rows * vocab);
    let count = targets.iter().filter(|&&t| t != ignore_index).count();
    if count == 0 {
        return;
    }
    let eps = label_smoothing as f64;
    let g = dloss[0] as f64 / count as f64;
    let smooth = eps / vocab as f64;
    let dlogits_ptr = SendPtr(dlogits.as_mut_ptr());
    for_blocks(rows, row_block(rows, vocab), vocab as u64 * POINTWISE_FLOPS, par, &|r0, n| {
        // SAFETY: blocks own disjoint rows [r0, r0 + n) of dlogits, in bounds (asserted above).
        let block = unsafe { dlogits_ptr.slice_mut(r0 * vocab, n * vocab) };
        for (i, d) in block.chunks_exact_mut(vocab.max(1)).enumerate() {
            let r = r0 + i;
            if targets[r] == ignore_index {
                continue;
            }
            let x = &logits[r * vocab..(r + 1) * vocab];
            // d += g * (softmax - smooth) with the SIMD exp per chunk. The target's element,
            // where p - (1 - eps) may cancel, is redone in f64.
            let t = targets[r] as usize;
            let d_t = d[t];
            let mut buf = [0.0f32; CHUNK];
            let s = smooth as f32;
            for (dc, xc) in d.chunks_mut(CHUNK).zip(x.chunks(CHUNK)) {
                let e = &mut buf[..xc.len()];
                e.copy_from_slice(xc);
                crate::simd::exp_shift(e, lse[r]);
                if s != 0.0 {
                    for v in e.iter_mut() {
                        *v -= s;
                    }
                }
                crate::simd::axpy(dc, g as f32, e);
            }
            let p_t = (x[t] as f64 - lse[r] as f64).exp();
            d[t] = d_t + (g * (p_t - (1.0 - eps) - smooth)) as f32;
        }
    });
}
