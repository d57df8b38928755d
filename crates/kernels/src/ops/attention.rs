//! Scaled dot-product attention: out = softmax(q·k^T * scale + masks) · v.
use crate::Parallel;

/// q: [B, H, Tq, D], k, v: [B, H, Tk, D], out: [B, H, Tq, D], probs: [B, H, Tq, Tk] saved
/// for backward. key_mask: [B, Tk], 1 attend / 0 padding, or None. `causal` masks key j > query
/// i (top-left aligned, as PyTorch's is_causal). A query row with no key left gets zeros.
#[allow(clippy::too_many_arguments)]
pub fn attention_forward(
    out: &mut [f32], probs: &mut [f32],
    q: &[f32], k: &[f32], v: &[f32], key_mask: Option<&[u8]>,
    b: usize, h: usize, tq: usize, tk: usize, d: usize, causal: bool, scale: f32,
    par: &dyn Parallel,
) {
    let _ = (out, probs, q, k, v, key_mask, b, h, tq, tk, d, causal, scale, par);
    todo!()
}

/// Accumulates dq [B,H,Tq,D], dk [B,H,Tk,D], dv [B,H,Tk,D] from dout [B,H,Tq,D] and the
/// probs saved by forward (masked entries are 0 there, so no mask is needed here).
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    dq: &mut [f32], dk: &mut [f32], dv: &mut [f32],
    dout: &[f32], q: &[f32], k: &[f32], v: &[f32], probs: &[f32],
    b: usize, h: usize, tq: usize, tk: usize, d: usize, scale: f32,
    par: &dyn Parallel,
) {
    let _ = (dq, dk, dv, dout, q, k, v, probs, b, h, tq, tk, d, scale, par);
    todo!()
}
