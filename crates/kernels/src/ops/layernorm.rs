//! Layer normalisation over the last axis with learnable gamma (weight) and beta (bias).

/// inp, out: [rows, dim]; weight, bias: [dim]; mean, rstd: [rows] saved for backward.
/// out = (inp - mean) * rstd * weight + bias, rstd = 1/sqrt(var + eps), var biased (as PyTorch).
/// Mean and variance are accumulated in f64 (two passes), so large offsets do not cancel.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_forward(
    out: &mut [f32], mean: &mut [f32], rstd: &mut [f32],
    inp: &[f32], weight: &[f32], bias: &[f32], rows: usize, dim: usize, eps: f32,
) {
    assert!(out.len() == rows * dim && inp.len() == rows * dim);
    assert!(mean.len() == rows && rstd.len() == rows && weight.len() == dim && bias.len() == dim);
    for r in 0..rows {
        let x = &inp[r * dim..(r + 1) * dim];
        let sum: f64 = x.iter().map(|&v| v as f64).sum();
        let mu = sum / dim as f64;
        let var: f64 = x.iter().map(|&v| (v as f64 - mu) * (v as f64 - mu)).sum::<f64>() / dim as f64;
        let rs = 1.0 / (var + eps as f64).sqrt();
        let (mu32, rs32) = (mu as f32, rs as f32);
        mean[r] = mu32;
        rstd[r] = rs32;
        let o = &mut out[r * dim..(r + 1) * dim];
        for i in 0..dim {
            o[i] = (x[i] - mu32) * rs32 * weight[i] + bias[i];
        }
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
