//! Adam / AdamW parameter update, bias-corrected, as torch.optim.Adam / AdamW.

use crate::ops::elementwise::{for_blocks, CHUNK, STREAM_FLOPS};
use crate::parallel::{Parallel, SendPtr};
use crate::simd::{self, AdamStep};

/// Cost of one element's update in `parallel::for_work` flops: four streams and a square
/// root and a division (about twice a plain streaming pass).
const ADAM_FLOPS: u64 = 2 * STREAM_FLOPS;

/// One update of `param` in place, `m`, `v` moment buffers updated in place; `step` is the
/// 1-based step count after this update (bias correction 1 - beta^step; the shims refuse 0,
/// `check::step`).
/// `decoupled` = AdamW: param -= lr * weight_decay * param before the Adam step.
/// Otherwise (Adam) weight decay is L2: grad + weight_decay * param enters the moments.
///
/// Same arithmetic as torch's single-tensor path, vectorised (`simd::adam_step`, the same bits
/// on every instruction set and thread count): `m = b1*m + (1-b1)*g`,
/// `v = b2*v + (1-b2)*g*g`, `p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)`, with the bias
/// corrections `bc = 1 - beta^step` computed in f64.
#[allow(clippy::too_many_arguments)]
pub fn adam_update(
    param: &mut [f32], m: &mut [f32], v: &mut [f32], grad: &[f32],
    lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32, step: u32, decoupled: bool, par: &dyn Parallel,
) {
    let n = param.len();
    assert!(m.len() == n && v.len() == n && grad.len() == n);
    debug_assert!(step >= 1, "step is 1-based");
    let step = step as i32;
    let bc1 = 1.0 - (beta1 as f64).powi(step);
    let bc2 = 1.0 - (beta2 as f64).powi(step);
    let c = AdamStep {
        step_size: (lr as f64 / bc1) as f32,
        bc2_sqrt: bc2.sqrt() as f32,
        beta1,
        beta2,
        eps,
        weight_decay,
        decay: 1.0 - lr * weight_decay,
        decoupled,
    };
    let (pp, pm, pv) = (SendPtr(param.as_mut_ptr()), SendPtr(m.as_mut_ptr()), SendPtr(v.as_mut_ptr()));
    for_blocks(n, CHUNK, ADAM_FLOPS, par, &|s, len| {
        // SAFETY: chunks are disjoint and inside param, m and v (all of length n).
        let (p, m, v) = unsafe { (pp.slice_mut(s, len), pm.slice_mut(s, len), pv.slice_mut(s, len)) };
        simd::adam_step(p, m, v, &grad[s..s + len], &c);
    });
}
