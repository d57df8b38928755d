//! Adam / AdamW parameter update, bias-corrected, as torch.optim.Adam / AdamW.

/// One update of `param` in place, `m`, `v` moment buffers updated in place; `step` is the
/// 1-based step count after this update (bias correction 1 - beta^step).
/// `decoupled` = AdamW: param -= lr * weight_decay * param before the Adam step.
/// Otherwise (Adam) weight decay is L2: grad + weight_decay * param enters the moments.
#[allow(clippy::too_many_arguments)]
pub fn adam_update(
    param: &mut [f32], m: &mut [f32], v: &mut [f32], grad: &[f32],
    lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32, step: u32, decoupled: bool,
) {
    let _ = (param, m, v, grad, lr, beta1, beta2, eps, weight_decay, step, decoupled);
    todo!()
}
