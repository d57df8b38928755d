//! Scaled dot-product attention: out = softmax(q·k^T * scale + masks) · v.
//!
//! Work is split over the B*H (batch, head) pairs: each task reads its own q/k/v slices and
//! writes only its own out/probs (forward) or dq/dk/dv (backward) slices, so the result is
//! the same for any thread count.
use crate::parallel::SendPtr;
use crate::Parallel;

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    crate::simd::dot(a, b)
}

#[inline]
fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    crate::simd::axpy(y, alpha, x)
}

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
    let pairs = b * h;
    assert!(out.len() == pairs * tq * d && q.len() == pairs * tq * d);
    assert!(k.len() == pairs * tk * d && v.len() == pairs * tk * d);
    assert_eq!(probs.len(), pairs * tq * tk);
    if let Some(m) = key_mask {
        assert_eq!(m.len(), b * tk);
    }
    let out_ptr = SendPtr(out.as_mut_ptr());
    let probs_ptr = SendPtr(probs.as_mut_ptr());
    par.for_each(pairs, &|bh| {
        let batch = bh / h.max(1);
        // SAFETY: task bh owns exactly the [bh] slabs of out and probs; slabs of different
        // tasks are disjoint and in bounds by the length asserts above.
        let out_bh = unsafe { out_ptr.slice_mut(bh * tq * d, tq * d) };
        // SAFETY: as above.
        let probs_bh = unsafe { probs_ptr.slice_mut(bh * tq * tk, tq * tk) };
        let q_bh = &q[bh * tq * d..(bh + 1) * tq * d];
        let k_bh = &k[bh * tk * d..(bh + 1) * tk * d];
        let v_bh = &v[bh * tk * d..(bh + 1) * tk * d];
        let mask_b = key_mask.map(|m| &m[batch * tk..(batch + 1) * tk]);
        for i in 0..tq {
            let qi = &q_bh[i * d..(i + 1) * d];
            let p = &mut probs_bh[i * tk..(i + 1) * tk];
            // Keys j < limit are causal-allowed; the rest stay exactly 0.
            let limit = if causal { (i + 1).min(tk) } else { tk };
            let allowed = |j: usize| mask_b.map_or(true, |m| m[j] != 0);
            let mut max = f32::NEG_INFINITY;
            for j in 0..limit {
                if allowed(j) {
                    let s = dot(qi, &k_bh[j * d..(j + 1) * d]) * scale;
                    p[j] = s;
                    if s > max {
                        max = s;
                    }
                }
            }
            let oi = &mut out_bh[i * d..(i + 1) * d];
            oi.fill(0.0);
            if max == f32::NEG_INFINITY {
                // No key left (or every score -inf): zeros, as documented.
                p.fill(0.0);
                continue;
            }
            let mut sum = 0.0f32;
            for j in 0..tk {
                let e = if j < limit && allowed(j) { (p[j] - max).exp() } else { 0.0 };
                p[j] = e;
                sum += e;
            }
            let inv = 1.0 / sum;
            for j in 0..limit {
                p[j] *= inv;
                if p[j] != 0.0 {
                    axpy(oi, p[j], &v_bh[j * d..(j + 1) * d]);
                }
            }
        }
    });
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
    let pairs = b * h;
    assert!(dq.len() == pairs * tq * d && dout.len() == pairs * tq * d && q.len() == pairs * tq * d);
    assert!(dk.len() == pairs * tk * d && dv.len() == pairs * tk * d);
    assert!(k.len() == pairs * tk * d && v.len() == pairs * tk * d);
    assert_eq!(probs.len(), pairs * tq * tk);
    let (dq_ptr, dk_ptr, dv_ptr) = (SendPtr(dq.as_mut_ptr()), SendPtr(dk.as_mut_ptr()), SendPtr(dv.as_mut_ptr()));
    par.for_each(pairs, &|bh| {
        // SAFETY: task bh owns exactly the [bh] slabs of dq, dk, dv; disjoint across tasks
        // and in bounds by the asserts above.
        let (dq_bh, dk_bh, dv_bh) = unsafe {
            (
                dq_ptr.slice_mut(bh * tq * d, tq * d),
                dk_ptr.slice_mut(bh * tk * d, tk * d),
                dv_ptr.slice_mut(bh * tk * d, tk * d),
            )
        };
        let q_bh = &q[bh * tq * d..(bh + 1) * tq * d];
        let k_bh = &k[bh * tk * d..(bh + 1) * tk * d];
        let v_bh = &v[bh * tk * d..(bh + 1) * tk * d];
        let dout_bh = &dout[bh * tq * d..(bh + 1) * tq * d];
        let probs_bh = &probs[bh * tq * tk..(bh + 1) * tq * tk];
        for i in 0..tq {
            let p = &probs_bh[i * tk..(i + 1) * tk];
            let go = &dout_bh[i * d..(i + 1) * d];
            // sum_j p_ij * dp_ij with dp_ij = dout_i · v_j (first pass; recomputed below so
            // no scratch row is needed).
            let mut pdp = 0.0f32;
            for j in 0..tk {
                if p[j] != 0.0 {
                    pdp += p[j] * dot(go, &v_bh[j * d..(j + 1) * d]);
                }
            }
            let qi = &q_bh[i * d..(i + 1) * d];
            for j in 0..tk {
                let pij = p[j];
                if pij == 0.0 {
                    continue;
                }
                let vj = &v_bh[j * d..(j + 1) * d];
                axpy(&mut dv_bh[j * d..(j + 1) * d], pij, go);
                let ds = pij * (dot(go, vj) - pdp) * scale;
                axpy(&mut dq_bh[i * d..(i + 1) * d], ds, &k_bh[j * d..(j + 1) * d]);
                axpy(&mut dk_bh[j * d..(j + 1) * d], ds, qi);
            }
        }
    });
}
