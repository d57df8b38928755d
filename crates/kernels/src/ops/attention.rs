//! Scaled dot-product attention: out = softmax(q·k^T * scale + masks) · v.
//!
//! Forward tasks are (b, h, block of query rows), backward tasks are (b, h) pairs: each
//! task writes only its own out/probs (forward) or dq/dk/dv (backward) slices, and the
//! blocking depends only on the shapes, so the result is the same for any thread count.
use crate::ops::matmul::sgemm_block;
use crate::parallel::SendPtr;
use crate::Parallel;

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

/// Floats of the per-task scratch block of dS in backward (64 KiB of stack).
const DS_SCRATCH: usize = 16 * 1024;

/// Accumulates dq [B,H,Tq,D], dk [B,H,Tk,D], dv [B,H,Tk,D] from dout [B,H,Tq,D] and the
/// probs saved by forward (masked entries are 0 there, so no mask is needed here).
///
/// Blocked over query rows within each (b, h) task (tasks own their dq/dk/dv slabs): for a
/// block of rows and the keys up to the last nonzero probability in it, dP = dout·v^T goes
/// into a stack scratch, becomes dS = P ∘ (dP - rowsum(P ∘ dP)) * scale in place, then three
/// accumulating sgemms: dq += dS·k, dk += dS^T·q, dv += P^T·dout. Blocks depend only on the
/// shapes and the probs, so the result is the same for any thread count.
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
    if pairs == 0 || tq == 0 || tk == 0 || d == 0 {
        return;
    }
    // Query rows per block: as many as fit the scratch with every key (at least one).
    let block = (DS_SCRATCH / tk).clamp(1, QUERY_BLOCK);
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
        let mut scratch = [0.0f32; DS_SCRATCH];
        for i0 in (0..tq).step_by(block) {
            let rows = block.min(tq - i0);
            let p_blk = &probs_bh[i0 * tk..(i0 + rows) * tk];
            // Keys past the block's last nonzero probability contribute nothing.
            let keys = (0..rows)
                .map(|r| p_blk[r * tk..(r + 1) * tk].iter().rposition(|&x| x != 0.0).map_or(0, |j| j + 1))
                .max()
                .unwrap_or(0);
            if keys == 0 {
                continue;
            }
            let go_blk = &dout_bh[i0 * d..(i0 + rows) * d];
            let q_blk = &q_bh[i0 * d..(i0 + rows) * d];
            let ds = &mut scratch[..rows * keys];
            // dP[r, j] = dout_r · v_j.
            sgemm_block(ds, keys, go_blk, d, 1, v_bh, 1, d, rows, d, keys, false);
            for r in 0..rows {
                let p = &p_blk[r * tk..r * tk + keys];
                let dp = &mut ds[r * keys..(r + 1) * keys];
                let pdp = crate::simd::dot(p, dp);
                for (x, &pj) in dp.iter_mut().zip(p) {
                    *x = pj * (*x - pdp) * scale;
                }
            }
            let ds = &scratch[..rows * keys];
            // dq rows += dS · k[..keys]; dk[..keys] += dS^T · q rows; dv[..keys] += P^T · dout rows.
            sgemm_block(&mut dq_bh[i0 * d..(i0 + rows) * d], d, ds, keys, 1, k_bh, d, 1, rows, keys, d, true);
            sgemm_block(&mut dk_bh[..keys * d], d, ds, 1, keys, q_blk, d, 1, keys, rows, d, true);
            sgemm_block(&mut dv_bh[..keys * d], d, p_blk, 1, tk, go_blk, d, 1, keys, rows, d, true);
        }
    });
}
