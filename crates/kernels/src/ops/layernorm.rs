//! Layer normalisation over the last axis with learnable gamma (weight) and beta (bias).

/// inp, out: [rows, dim]; weight, bias: [dim]; mean, rstd: [rows] saved for backward.
/// out = (inp - mean) * rstd * weight + bias, rstd = 1/sqrt(var + eps), var biased (as PyTorch).
/// SIMD, three passes over the row (it sits in L1): a first mean m0, then the sums of x - m0
/// and of (x - m0)^2 give the corrected mean and the variance around it; shifting by m0
/// first keeps large offsets from cancelling (the sums are over small deviations).
#[allow(clippy::too_many_arguments)]
pub fn layernorm_forward(
    out: &mut [f32], mean: &mut [f32], rstd: &mut [f32],
    inp: &[f32], weight: &[f32], bias: &[f32], rows: usize, dim: usize, eps: f32,
) {
    assert!(out.len() == rows * dim && inp.len() == rows * dim);
    assert!(mean.len() == rows && rstd.len() == rows && weight.len() == dim && bias.len() == dim);
    if dim == 0 {
        mean.fill(f32::NAN);
        rstd.fill(f32::NAN);
        return;
    }
    let n = dim as f64;
    for r in 0..rows {
        let x = &inp[r * dim..(r + 1) * dim];
        let m0 = crate::simd::sum(x) / dim as f32;
        let (s1, s2) = crate::simd::dev_sums(x, m0);
        let (s1, s2) = (s1 as f64 / n, s2 as f64 / n);
        let mu = m0 as f64 + s1;
        let var = (s2 - s1 * s1).max(0.0);
        let rs = 1.0 / (var + eps as f64).sqrt();
        let (mu32, rs32) = (mu as f32, rs as f32);
        mean[r] = mu32;
        rstd[r] = rs32;
        crate::simd::norm_affine(&mut out[r * dim..(r + 1) * dim], x, weight, bias, mu32, rs32);
    }
}

/// Accumulates into dinp [rows, dim], dweight [dim], dbias [dim].
/// dinp = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dout * weight.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(
    dinp: &mut [f32], dweight: &mut [f32], dbias: &mut [f32],
    dout: &[f32], inp: &[f32], weight: &[f32], mean: &[f32], rstd: &[f32],
    rows: usize, dim: usize,
) {
    assert!(dinp.len() == rows * dim && dout.len() == rows * dim && inp.len() == rows * dim);
    assert!(dweight.len() == dim && dbias.len() == dim && weight.len() == dim);
    assert!(mean.len() == rows && rstd.len() == rows);
    if dim == 0 {
        return;
    }
    for r in 0..rows {
        let x = &inp[r * dim..(r + 1) * dim];
        let go = &dout[r * dim..(r + 1) * dim];
        let (mu, rs) = (mean[r], rstd[r]);
        let mut sum_g = 0.0f64;
        let mut sum_gx = 0.0f64;
        for i in 0..dim {
            let xhat = (x[i] - mu) * rs;
            let g = go[i] * weight[i];
            sum_g += g as f64;
            sum_gx += (g * xhat) as f64;
        }
        let mean_g = (sum_g / dim as f64) as f32;
        let mean_gx = (sum_gx / dim as f64) as f32;
        let di = &mut dinp[r * dim..(r + 1) * dim];
        for i in 0..dim {
            let xhat = (x[i] - mu) * rs;
            let g = go[i] * weight[i];
            dbias[i] += go[i];
            dweight[i] += go[i] * xhat;
            di[i] += (g - mean_g - xhat * mean_gx) * rs;
        }
    }
}
