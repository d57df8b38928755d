//! Adam / AdamW parameter update, bias-corrected, as torch.optim.Adam / AdamW.

/// One update of `param` in place, `m`, `v` moment buffers updated in place; `step` is the
/// 1-based step count after this update (bias correction 1 - beta^step; the shims refuse 0,
/// `check::step`).
/// `decoupled` = AdamW: param -= lr * weight_decay * param before the Adam step.
/// Otherwise (Adam) weight decay is L2: grad + weight_decay * param enters the moments.
///
/// Same arithmetic as torch's single-tensor path: `m = b1*m + (1-b1)*g`,
/// `v = b2*v + (1-b2)*g*g`, `p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)`, with the bias
/// corrections `bc = 1 - beta^step` computed in f64.
#[allow(clippy::too_many_arguments)]
pub fn adam_update(
    param: &mut [f32], m: &mut [f32], v: &mut [f32], grad: &[f32],
    lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32, step: u32, decoupled: bool,
) {
    let n = param.len();
    assert!(m.len() == n && v.len() == n && grad.len() == n);
    debug_assert!(step >= 1, "step is 1-based");
    let step = step as i32;
    let bc1 = 1.0 - (beta1 as f64).powi(step);
    let bc2 = 1.0 - (beta2 as f64).powi(step);
    let step_size = (lr as f64 / bc1) as f32;
    let bc2_sqrt = bc2.sqrt() as f32;
    let decay = 1.0 - lr * weight_decay;
    let (one_m_b1, one_m_b2) = (1.0 - beta1, 1.0 - beta2);
    for i in 0..n {
        let mut p = param[i];
        let mut g = grad[i];
        if decoupled {
            p *= decay;
        } else if weight_decay != 0.0 {
            g += weight_decay * p;
        }
        let mi = beta1 * m[i] + one_m_b1 * g;
        let vi = beta2 * v[i] + one_m_b2 * g * g;
        m[i] = mi;
        v[i] = vi;
        let denom = vi.sqrt() / bc2_sqrt + eps;
        param[i] = p - step_size * mi / denom;
    }
}
