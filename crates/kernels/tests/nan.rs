//! A NaN propagates as in PyTorch: relu(NaN) is NaN (not 0) in the pointwise and the fused
//! linear kernels, and a NaN score makes its attention row NaN, forward and backward.
use ferroformer_kernels::ops::activation::{relu_backward, relu_forward};
use ferroformer_kernels::ops::attention::{attention_backward, attention_forward};
use ferroformer_kernels::ops::linear::{linear_backward, linear_forward, Activation};
use ferroformer_kernels::Serial;

#[test]
fn relu_keeps_nan_and_passes_its_gradient() {
    let x = [f32::NAN, -1.0, 0.0, 2.0, -0.0];
    let mut out = [7.0f32; 5];
    relu_forward(&mut out, &x);
    assert!(out[0].is_nan());
    assert_eq!(&out[1..], &[0.0, 0.0, 2.0, 0.0]);
    let mut dx = [0.0f32; 5];
    relu_backward(&mut dx, &[1.0; 5], &x);
    // PyTorch's threshold_backward: gradient 0 where x <= 0, passed on elsewhere (NaN too).
    assert_eq!(dx, [1.0, 0.0, 0.0, 1.0, 0.0]);
}

#[test]
fn fused_linear_relu_keeps_nan() {
    // x [2, 2], weight [3, 2] with a NaN in row 1: output column 1 is NaN in both rows.
    let x = [1.0f32, 2.0, -1.0, 0.5];
    let w = [1.0f32, 0.0, f32::NAN, 1.0, -1.0, -1.0];
    let b = [0.0f32, 0.0, 0.0];
    let mut out = [7.0f32; 6];
    linear_forward(&mut out, None, &x, &w, Some(&b), 2, 2, 3, Activation::Relu, &Serial);
    assert_eq!(out[0], 1.0);
    assert!(out[1].is_nan() && out[4].is_nan(), "relu(NaN) must stay NaN, got {out:?}");
    assert_eq!(out[2], 0.0);
    let mut dx = [0.0f32; 4];
    let mut dpre = [0.0f32; 6];
    linear_backward(Some(&mut dx), None, None, &mut dpre, &[1.0; 6], &x, &w, &out, 2, 2, 3, Activation::Relu, true, true, &Serial);
    // dx = dpre · W: column 0 meets the NaN weight (its gradient was passed, not zeroed).
    assert!(dx[0].is_nan() && dx[2].is_nan(), "the NaN weight's gradient path reaches dx, got {dx:?}");
    assert!(dx[1].is_finite() && dx[3].is_finite(), "{dx:?}");
}

#[test]
fn attention_with_a_nan_score_gives_nan_rows_and_gradients() {
    let (b, h, tq, tk, d) = (1, 1, 3, 3, 2);
    let q: Vec<f32> = vec![0.1, 0.2, f32::NAN, 0.4, 0.5, 0.6];
    let k: Vec<f32> = vec![0.3, -0.2, 0.1, 0.7, -0.5, 0.2];
    let v: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    for causal in [false, true] {
        let mut out = vec![0.0f32; tq * d];
        let mut lse = vec![0.0f32; tq];
        attention_forward(&mut out, &mut lse, &q, &k, &v, None, b, h, tq, tk, d, causal, 0.5, 0.0, 0, 0, &Serial);
        // Row 1's query holds the NaN: its output is NaN; rows 0 and 2 are finite.
        assert!(out[2].is_nan() && out[3].is_nan(), "causal {causal}: {out:?}");
        assert!(out[0].is_finite() && out[4].is_finite() && out[5].is_finite(), "causal {causal}: {out:?}");
        let (mut dq, mut dk, mut dv) = (vec![0.0f32; 6], vec![0.0f32; 6], vec![0.0f32; 6]);
        attention_backward(&mut dq, &mut dk, &mut dv, &[1.0; 6], &q, &k, &v, &out, &lse, None, b, h, tq, tk, d, causal, 0.5, 0.0, 0, 0, &Serial);
        assert!(dq[2].is_nan() && dq[3].is_nan(), "causal {causal}: dq {dq:?}");
        assert!(dv.iter().any(|x| x.is_nan()), "causal {causal}: dv {dv:?}");
    }
}
