//! Scaled dot-product attention: out = softmax(q·k^T * scale + masks) · v.
//!
//! Work is split over the B*H (batch, head) pairs: each task reads its own q/k/v slices and
//! writes only its own out/probs (forward) or dq/dk/dv (backward) slices, so the result is
//! the same for any thread count.
use crate::ops::matmul::sgemm_block;
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

/// Query rows per forward task: a multiple of every sgemm micro-kernel's MR (12, 6, 4).
const QUERY_BLOCK: usize = 48;

/// q: [B, H, Tq, D], k, v: [B, H, Tk, D], out: [B, H, Tq, D], probs: [B, H, Tq, Tk] saved
/// for backward. key_mask: [B, Tk], 1 attend / 0 padding, or None. `causal` masks key j > query
/// i (top-left aligned, as PyTorch's is_causal). A query row with no key left gets zeros.
///
/// Blocked: each task takes QUERY_BLOCK query rows of one (b, h) and the keys they may see
/// (all, or j < the block's last row + 1 when causal), computes their scores with the packed
/// sgemm straight into their probs rows, turns each row into probabilities (SIMD max, exp and
/// scale; masked and causal entries exactly 0), then out rows = probs rows · v with sgemm.
/// Blocks depend only on the shapes, so the result is the same for any thread count.
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
    if pairs == 0 || tq == 0 {
        return;
    }
    let blocks = tq.div_ceil(QUERY_BLOCK);
    let out_ptr = SendPtr(out.as_mut_ptr());
    let probs_ptr = SendPtr(probs.as_mut_ptr());
    par.for_each(pairs * blocks, &|task| {
        let (bh, blk) = (task / blocks, task % blocks);
        let batch = bh / h.max(1);
        let i0 = blk * QUERY_BLOCK;
        let rows = QUERY_BLOCK.min(tq - i0);
        // SAFETY: task (bh, blk) owns rows [i0, i0 + rows) of the [bh] slabs of out and
        // probs; regions of different tasks are disjoint and in bounds by the asserts above.
        let out_blk = unsafe { out_ptr.slice_mut((bh * tq + i0) * d, rows * d) };
        // SAFETY: as above.
        let probs_blk = unsafe { probs_ptr.slice_mut((bh * tq + i0) * tk, rows * tk) };
        let q_blk = &q[(bh * tq + i0) * d..(bh * tq + i0 + rows) * d];
        let k_bh = &k[bh * tk * d..(bh + 1) * tk * d];
        let v_bh = &v[bh * tk * d..(bh + 1) * tk * d];
        let mask_b = key_mask.map(|m| &m[batch * tk..(batch + 1) * tk]);
        // Keys any row of the block may see.
        let keys = if causal { (i0 + rows).min(tk) } else { tk };
        // scores[r, j] = q_r · k_j for j < keys (row stride tk).
        sgemm_block(probs_blk, tk, q_blk, d, 1, k_bh, 1, d, rows, d, keys, false);
        for r in 0..rows {
            let limit = if causal { (i0 + r + 1).min(tk) } else { tk };
            let (p, rest) = probs_blk[r * tk..(r + 1) * tk].split_at_mut(limit);
            rest.fill(0.0);
            softmax_scaled_row(p, scale, mask_b);
        }
        // out rows = probs rows [rows, keys] · v [keys, d].
        sgemm_block(out_blk, d, probs_blk, tk, 1, v_bh, d, 1, rows, keys, d, false);
    });
}

/// p = softmax(p * scale) over the allowed keys (mask[j] != 0), the rest exactly 0; a row
/// with no allowed key (or every score -inf) becomes zeros.
#[inline]
fn softmax_scaled_row(p: &mut [f32], scale: f32, mask: Option<&[u8]>) {
    crate::simd::scale(p, scale);
    if let Some(m) = mask {
        for (x, &keep) in p.iter_mut().zip(m) {
            if keep == 0 {
                *x = f32::NEG_INFINITY;
            }
        }
    }
    let max = crate::simd::max(p);
    if max == f32::NEG_INFINITY || max.is_nan() {
        p.fill(0.0);
        return;
    }
    let sum = crate::simd::exp_shift(p, max);
    crate::simd::scale(p, 1.0 / sum);
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
