//! Softmax over the last axis, with an optional keep-mask.

/// Softmax of one row into `out`; entries with `keep(j) == false` get exactly 0, and a row
/// with nothing kept gives all zeros. Max-subtracted for stability.
#[inline]
pub(crate) fn softmax_row(out: &mut [f32], inp: &[f32], keep: impl Fn(usize) -> bool) {
    let mut max = f32::NEG_INFINITY;
    let mut any = false;
    for (j, &x) in inp.iter().enumerate() {
        if keep(j) {
            any = true;
            if x > max {
                max = x;
            }
        }
    }
    if !any {
        out.fill(0.0);
        return;
    }
    let mut sum = 0.0f32;
    for (j, (o, &x)) in out.iter_mut().zip(inp).enumerate() {
        let e = if keep(j) { (x - max).exp() } else { 0.0 };
        *o = e;
        sum += e;
    }
    crate::simd::scale(out, 1.0 / sum);
}

/// out[r, :] = softmax(inp[r, :]) over `cols`, rows independent. `mask` (same [rows, cols]
/// shape, 1 keeps, 0 sets the logit to -inf) may be None. A row with every entry masked
/// gives all zeros (PyTorch would give NaN; zeros keep training finite).
pub fn softmax_forward(out: &mut [f32], inp: &[f32], mask: Option<&[u8]>, rows: usize, cols: usize) {
    assert!(out.len() == rows * cols && inp.len() == rows * cols);
    if let Some(m) = mask {
        assert_eq!(m.len(), rows * cols);
    }
    for r in 0..rows {
        let range = r * cols..(r + 1) * cols;
        match mask {
            Some(m) => {
                let mrow = &m[range.clone()];
                softmax_row(&mut out[range.clone()], &inp[range], |j| mrow[j] != 0)
            }
            None => softmax_row(&mut out[range.clone()], &inp[range], |_| true),
        }
    }
}

/// Accumulates dinp += out * (dout - sum(dout * out)) per row.
pub fn softmax_backward(dinp: &mut [f32], dout: &[f32], out: &[f32], rows: usize, cols: usize) {
    assert!(dinp.len() == rows * cols && dout.len() == rows * cols && out.len() == rows * cols);
    if cols == 0 {
        return;
    }
    for ((di, go), y) in dinp.chunks_exact_mut(cols).zip(dout.chunks_exact(cols)).zip(out.chunks_exact(cols)) {
        let dot = crate::simd::dot(go, y);
        for ((d, &g), &p) in di.iter_mut().zip(go).zip(y) {
            *d += p * (g - dot);
        }
    }
}
