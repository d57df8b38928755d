//! The erf GELU's fused-linear epilogue at the training benchmarks' row widths: its chunked
//! two-pass form gives the bits of the one-element-at-a-time forms, whatever sits in the
//! neighbouring chunks.

mod common;
use common::*;
use ferroformer_kernels::simd::{self, Isa, Pointwise};

/// Rows of W5's and W6's MLP widths (512, 1536) and an odd one (1000, a partial last chunk),
/// with a bias: x = t + bias in [-12, 12) (the short form's whole range), and a far input
/// (|x| >= 12, NaN, inf) in every third chunk, which sends that chunk alone the long way.
/// out and the saved derivative must equal the value and g = 1 derivative of the unfused
/// kernels, which take each element through the same formula one chunk of their own at a time.
#[test]
fn gelu_epilogue_matches_the_unfused_forms_bit_for_bit() {
    let mut rng = Rng::new(7);
    let far = [30.0, -13.7, 12.0, -12.0, f32::NAN, f32::INFINITY, -200.0];
    for isa in Isa::available() {
        for cols in [512usize, 1536, 1000] {
            let rows = 3;
            let bias: Vec<f32> = rng.vec(cols).iter().map(|v| v * 0.5).collect();
            // |x + bias| < 12 (rng.vec is in [-1, 1)), and a far value at element 17 of every
            // third chunk of the flat array.
            let mut x: Vec<f32> = rng.vec(rows * cols).iter().map(|v| v * 11.49).collect();
            for (k, i) in (17..rows * cols).step_by(64 * 3).enumerate() {
                x[i] = far[k % far.len()];
            }
            let (mut t, mut out) = (x.clone(), vec![0.0f32; rows * cols]);
            simd::bias_act_with_grad_with(isa, &mut t, &mut out, Some(&bias), cols, Pointwise::Gelu);
            let pre: Vec<f32> = (0..rows * cols).map(|i| x[i] + bias[i % cols]).collect();
            let (mut value, mut grad) = (vec![0.0f32; pre.len()], vec![0.0f32; pre.len()]);
            simd::pointwise_with(isa, &mut value, &pre, Pointwise::Gelu);
            simd::pointwise_grad_with(isa, &mut grad, &vec![1.0; pre.len()], &pre, Pointwise::Gelu, false);
            for i in 0..pre.len() {
                assert_eq!(out[i].to_bits(), value[i].to_bits(), "{isa:?} cols {cols}: gelu({}) = {} want {}", pre[i], out[i], value[i]);
                assert_eq!(t[i].to_bits(), grad[i].to_bits(), "{isa:?} cols {cols}: gelu'({}) = {} want {}", pre[i], t[i], grad[i]);
            }
        }
    }
}
