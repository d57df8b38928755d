//! Cross-entropy over logits with ignore index and label smoothing, mean over the targets
//! that are not ignored (PyTorch's reduction='mean'): per row
//! loss_r = (1 - eps) * (lse - x[t]) + eps * (lse - mean_j x[j]).

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

/// logits: [rows, vocab], targets: [rows]; loss: [1] (the mean; NaN when every target is
/// ignored, as PyTorch); lse: [rows] log-sum-exp saved for backward (computed for every
/// row, ignored or not).
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy_forward(
    loss: &mut [f32], lse: &mut [f32], logits: &[f32], targets: &[i32],
    rows: usize, vocab: usize, ignore_index: i32, label_smoothing: f32,
) {
    assert!(loss.len() == 1 && lse.len() == rows && targets.len() == rows);
    assert_eq!(logits.len(), rows * vocab);
    let eps = label_smoothing as f64;
    let mut total = 0.0f64;
    let mut count = 0usize;
    for r in 0..rows {
        let x = &logits[r * vocab..(r + 1) * vocab];
        let l = row_lse(x);
        lse[r] = l as f32;
        let t = targets[r];
        if t == ignore_index {
            continue;
        }
        let xt = x[t as usize] as f64;
        let mut row_loss = (1.0 - eps) * (l - xt);
        if eps != 0.0 {
            let mean_x = x.iter().map(|&v| v as f64).sum::<f64>() / vocab as f64;
            row_loss += eps * (l - mean_x);
        }
        total += row_loss;
        count += 1;
    }
    loss[0] = if count == 0 { f32::NAN } else { (total / count as f64) as f32 };
}

/// Accumulates dlogits += dloss[0] * (softmax - ((1-eps)·onehot + eps/vocab)) / count for
/// rows whose target is not ignored (count = number of such rows).
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy_backward(
    dlogits: &mut [f32], dloss: &[f32], logits: &[f32], lse: &[f32], targets: &[i32],
    rows: usize, vocab: usize, ignore_index: i32, label_smoothing: f32,
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
    for r in 0..rows {
        let t = targets[r];
        if t == ignore_index {
            continue;
        }
        let x = &logits[r * vocab..(r + 1) * vocab];
        let d = &mut dlogits[r * vocab..(r + 1) * vocab];
        // d += g * (softmax - smooth) with the SIMD exp per chunk. The target's element,
        // where p - (1 - eps) may cancel, is redone in f64.
        let t = t as usize;
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
}
