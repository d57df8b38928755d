//! Cross-entropy over logits with ignore index and label smoothing, mean over the targets
//! that are not ignored (PyTorch's reduction='mean'): per row
//! loss_r = (1 - eps) * (lse - x[t]) + eps * (lse - mean_j x[j]).

/// log-sum-exp of one row in f64, max-subtracted.
#[inline]
fn row_lse(x: &[f32]) -> f64 {
    let max = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    if max == f64::NEG_INFINITY {
        return max;
    }
    let sum: f64 = x.iter().map(|&v| (v as f64 - max).exp()).sum();
    max + sum.ln()
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
        let l = lse[r] as f64;
        let x = &logits[r * vocab..(r + 1) * vocab];
        let d = &mut dlogits[r * vocab..(r + 1) * vocab];
        for j in 0..vocab {
            let p = (x[j] as f64 - l).exp();
            let target = if j == t as usize { 1.0 - eps } else { 0.0 };
            d[j] += (g * (p - target - smooth)) as f32;
        }
    }
}
