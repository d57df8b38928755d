//! Pointwise activations. GELU is the exact erf form (PyTorch's default).

pub fn relu_forward(out: &mut [f32], inp: &[f32]) {
    let _ = (out, inp);
    todo!()
}

/// Accumulates dinp += dout where inp > 0.
pub fn relu_backward(dinp: &mut [f32], dout: &[f32], inp: &[f32]) {
    let _ = (dinp, dout, inp);
    todo!()
}

/// out = 0.5 * x * (1 + erf(x / sqrt(2))).
pub fn gelu_forward(out: &mut [f32], inp: &[f32]) {
    let _ = (out, inp);
    todo!()
}

/// Accumulates dinp += dout * gelu'(inp).
pub fn gelu_backward(dinp: &mut [f32], dout: &[f32], inp: &[f32]) {
    let _ = (dinp, dout, inp);
    todo!()
}
