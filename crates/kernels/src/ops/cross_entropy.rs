//! Cross-entropy over logits with ignore index and label smoothing, mean over the targets
//! that are not ignored (PyTorch's reduction='mean'): per row
//! loss_r = (1 - eps) * (lse - x[t]) + eps * (lse - mean_j x[j]).

/// logits: [rows, vocab], targets: [rows]; loss: [1] (the mean; NaN when every target is
/// ignored, as PyTorch); lse: [rows] log-sum-exp saved for backward.
pub fn cross_entropy_forward(
    loss: &mut [f32], lse: &mut [f32], logits: &[f32], targets: &[i32],
    rows: usize, vocab: usize, ignore_index: i32, label_smoothing: f32,
) {
    let _ = (loss, lse, logits, targets, rows, vocab, ignore_index, label_smoothing);
    todo!()
}

/// Accumulates dlogits += dloss[0] * (softmax - ((1-eps)·onehot + eps/vocab)) / count for
/// rows whose target is not ignored (count = number of such rows).
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy_backward(
    dlogits: &mut [f32], dloss: &[f32], logits: &[f32], lse: &[f32], targets: &[i32],
    rows: usize, vocab: usize, ignore_index: i32, label_smoothing: f32,
) {
    let _ = (dlogits, dloss, logits, lse, targets, rows, vocab, ignore_index, label_smoothing);
    todo!()
}
