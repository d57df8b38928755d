//! Scaled dot-product attention, out = softmax(q·k^T * scale + masks) · v, flash style: the
//! [Tq, Tk] score matrix is never materialised. Forward keeps an online softmax over key
//! blocks and saves one log-sum-exp per query row; backward recomputes each block of
//! probabilities from q, k and that statistic. Memory is O(T) per head instead of O(T²).
//!
//! Tiling: QUERY_BLOCK query rows x KEY_BLOCK keys, scores and products through the packed
//! sgemm. Forward tasks are (b, h, query block), backward tasks are (b, h) pairs: each task
//! writes only its own out/lse (forward) or dq/dk/dv (backward) slices, and the tiling depends
//! only on the shapes, so the result is the same for any thread count.
//!
//! Dropout on the weights (as PyTorch's `dropout_p`): after the softmax, weight (b, h, i, j)
//! is kept (times 1/(1-p)) or zeroed by the dropout recipe (`ops::dropout`) at counter
//! `offset + ((b·H + h)·Tq + i)·Tk + j`, the element's index in [B, H, Tq, Tk], so the mask
//! is that of a dropout over the materialised weights, whatever the tiling or thread count.
//! lse stays the statistic of the undropped softmax. p = 0 runs exactly the code without it.
use crate::ops::dropout::DropoutMask;
use crate::ops::matmul::sgemm_block;
use crate::parallel::{self, SendPtr};
use crate::Parallel;

/// Floating-point operations of `products` score-sized products ([tq, d] · [d, tk] or the
/// like) over `pairs` (batch, head) pairs; a causal mask skips about half of them.
fn products_flops(products: u64, pairs: usize, tq: usize, tk: usize, d: usize, causal: bool) -> u64 {
    let all = products * 2 * pairs as u64 * tq as u64 * tk as u64 * d as u64;
    if causal { all / 2 } else { all }
}

/// Query rows per tile: a multiple of every sgemm micro-kernel's MR (12, 6, 4).
const QUERY_BLOCK: usize = 48;
/// Keys per tile: a multiple of every micro-kernel's NR (32, 16, 8, 4); with QUERY_BLOCK it
/// sets the score scratch, 48 x 128 floats = 24 KiB on the stack (two of them in backward).
const KEY_BLOCK: usize = 128;

/// Checks the common shapes (the shims have already refused bad lengths with a message).
#[allow(clippy::too_many_arguments)]
fn assert_shapes(q: &[f32], k: &[f32], v: &[f32], per_row: &[f32], key_mask: Option<&[u8]>,
    b: usize, h: usize, tq: usize, tk: usize, d: usize) {
    let pairs = b * h;
    assert!(q.len() == pairs * tq * d && k.len() == pairs * tk * d && v.len() == pairs * tk * d);
    assert_eq!(per_row.len(), pairs * tq);
    if let Some(m) = key_mask {
        assert_eq!(m.len(), b * tk);
    }
}

/// The weights' dropout of a call (None when p = 0) and the counter of weight (bh, i, j).
#[derive(Clone, Copy)]
struct WeightDropout {
    mask: DropoutMask,
    offset: u32,
    tq: usize,
    tk: usize,
}

impl WeightDropout {
    fn new(p: f32, seed: u32, offset: u32, tq: usize, tk: usize) -> Option<Self> {
        (p != 0.0).then(|| WeightDropout { mask: DropoutMask::new(p, seed), offset, tq, tk })
    }

    /// Counter of weight (bh, i, j): its index in [B, H, Tq, Tk] after `offset`, modulo 2^32
    /// as dropout's (wrapping arithmetic, so a 32-bit usize gives the same low bits).
    #[inline]
    fn counter(&self, bh: usize, i: usize, j: usize) -> u32 {
        let index = bh.wrapping_mul(self.tq).wrapping_add(i).wrapping_mul(self.tk).wrapping_add(j);
        self.offset.wrapping_add(index as u32)
    }
}

/// Keys a tile of query rows [i0, i0 + rows) may see: all, or up to the last row when causal.
#[inline]
fn visible_keys(causal: bool, i0: usize, rows: usize, tk: usize) -> usize {
    if causal { (i0 + rows).min(tk) } else { tk }
}

/// Scaled, masked scores of one tile, in place: s[r, c] (row stride `cols`) holds q_(i0+r) ·
/// k_(j0+c); it becomes that times `scale`, or -inf where key j0+c is padding or, when causal,
/// lies after query i0+r.
#[allow(clippy::too_many_arguments)]
#[inline]
fn scale_and_mask(s: &mut [f32], rows: usize, cols: usize, i0: usize, j0: usize,
    scale: f32, causal: bool, mask: Option<&[u8]>) {
    crate::simd::scale(&mut s[..rows * cols], scale);
    if let Some(m) = mask {
        for (c, &keep) in m[j0..j0 + cols].iter().enumerate() {
            if keep == 0 {
                for r in 0..rows {
                    s[r * cols + c] = f32::NEG_INFINITY;
                }
            }
        }
    }
    if causal && j0 + cols > i0 + 1 {
        for r in 0..rows {
            // Keys j > i0 + r are in the future of this row.
            let first_hidden = (i0 + r + 1).saturating_sub(j0);
            if first_hidden < cols {
                s[r * cols + first_hidden..(r + 1) * cols].fill(f32::NEG_INFINITY);
            }
        }
    }
}

/// q: [B, H, Tq, D], k, v: [B, H, Tk, D], out: [B, H, Tq, D], lse: [B, H, Tq] saved for
/// backward (log Σ_j e^(scaled score), -inf for a row with no key left). key_mask: [B, Tk],
/// 1 attend / 0 padding, or None. `causal` masks key j > query i (top-left aligned, as
/// PyTorch's is_causal). A query row with no key left gets zeros.
///
/// Per task (b, h, block of QUERY_BLOCK rows), over its visible keys KEY_BLOCK at a time:
/// scores by sgemm into a stack tile, running row max m and sum l updated online (the old
/// partial output is rescaled by e^(m_old - m_new)), out rows += tile · v_block by sgemm;
/// finally out /= l and lse = m + ln l.
///
/// Dropout p in [0, 1) on the weights (module docs): out = (P ∘ M / (1 - p)) · v, lse that
/// of P. Per tile, the weights are dropped after the online softmax has summed them and
/// before the product with v; p = 0 skips it.
#[allow(clippy::too_many_arguments)]
pub fn attention_forward(
    out: &mut [f32], lse: &mut [f32],
    q: &[f32], k: &[f32], v: &[f32], key_mask: Option<&[u8]>,
    b: usize, h: usize, tq: usize, tk: usize, d: usize, causal: bool, scale: f32,
    dropout_p: f32, seed: u32, offset: u32,
    par: &dyn Parallel,
) {
    let dropout = WeightDropout::new(dropout_p, seed, offset, tq, tk);
    assert_shapes(q, k, v, lse, key_mask, b, h, tq, tk, d);
    assert_eq!(out.len(), q.len());
    let pairs = b * h;
    if pairs == 0 || tq == 0 {
        return;
    }
    // Two products: scores q·kᵀ and probabilities · v.
    let par = parallel::for_work(par, products_flops(2, pairs, tq, tk, d, causal));
    let blocks = tq.div_ceil(QUERY_BLOCK);
    let out_ptr = SendPtr(out.as_mut_ptr());
    let lse_ptr = SendPtr(lse.as_mut_ptr());
    par.for_each(pairs * blocks, &|task| {
        let (bh, blk) = (task / blocks, task % blocks);
        let i0 = blk * QUERY_BLOCK;
        let rows = QUERY_BLOCK.min(tq - i0);
        // SAFETY: task (bh, blk) owns rows [i0, i0 + rows) of the [bh] slabs of out and lse;
        // regions of different tasks are disjoint and in bounds by the asserts above.
        let out_blk = unsafe { out_ptr.slice_mut((bh * tq + i0) * d, rows * d) };
        // SAFETY: as above.
        let lse_blk = unsafe { lse_ptr.slice_mut(bh * tq + i0, rows) };
        let q_blk = &q[(bh * tq + i0) * d..(bh * tq + i0 + rows) * d];
        let mask_b = key_mask.map(|m| &m[(bh / h) * tk..(bh / h + 1) * tk]);
        out_blk.fill(0.0);
        let mut row_max = [f32::NEG_INFINITY; QUERY_BLOCK];
        let mut row_sum = [0.0f32; QUERY_BLOCK];
        let mut tile = [0.0f32; QUERY_BLOCK * KEY_BLOCK];
        let keys = visible_keys(causal, i0, rows, tk);
        for j0 in (0..keys).step_by(KEY_BLOCK) {
            let cols = KEY_BLOCK.min(keys - j0);
            let s = &mut tile[..rows * cols];
            let k_blk = &k[(bh * tk + j0) * d..(bh * tk + j0 + cols) * d];
            let v_blk = &v[(bh * tk + j0) * d..(bh * tk + j0 + cols) * d];
            // s[r, c] = q_r · k_c.
            sgemm_block(s, cols, q_blk, d, 1, k_blk, 1, d, rows, d, cols, false);
            scale_and_mask(s, rows, cols, i0, j0, scale, causal, mask_b);
            for r in 0..rows {
                let srow = &mut s[r * cols..(r + 1) * cols];
                let tile_max = crate::simd::max(srow);
                // A NaN score must reach the sum so that the row's output is NaN, as PyTorch's
                // softmax gives; but f32::max and comparisons drop it, so the max may miss it
                // (harmless beside a finite max: the exp below carries it into the sum).
                let mut new_max = if tile_max.is_nan() { tile_max } else { row_max[r].max(tile_max) };
                if new_max == f32::NEG_INFINITY {
                    if srow.iter().any(|x| x.is_nan()) {
                        new_max = f32::NAN;
                    } else {
                        // Nothing visible yet: the row contributes nothing to this tile.
                        srow.fill(0.0);
                        continue;
                    }
                }
                let tile_sum = crate::simd::exp_shift(srow, new_max);
                if let Some(drop) = &dropout {
                    drop.mask.apply(srow, drop.counter(bh, i0 + r, j0));
                }
                // e^(-inf) = 0 on the first visible tile, where out and the sum are still 0.
                let rescale = crate::simd::exp_approx(row_max[r] - new_max);
                if rescale != 1.0 {
                    crate::simd::scale(&mut out_blk[r * d..(r + 1) * d], rescale);
                }
                row_sum[r] = row_sum[r] * rescale + tile_sum;
                row_max[r] = new_max;
            }
            // out rows += tile [rows, cols] · v_blk [cols, d].
            sgemm_block(out_blk, d, s, cols, 1, v_blk, d, 1, rows, cols, d, true);
        }
        for r in 0..rows {
            if row_sum[r] > 0.0 {
                crate::simd::scale(&mut out_blk[r * d..(r + 1) * d], 1.0 / row_sum[r]);
                lse_blk[r] = row_max[r] + row_sum[r].ln();
            } else {
                // No visible key (or NaN scores): zeros, as the materialised softmax gave.
                // A NaN lse makes backward's rebuilt probabilities, hence the gradients, NaN.
                let nan = row_sum[r].is_nan();
                out_blk[r * d..(r + 1) * d].fill(if nan { f32::NAN } else { 0.0 });
                lse_blk[r] = if nan { f32::NAN } else { f32::NEG_INFINITY };
            }
        }
    });
}

/// Turns a tile of scaled, masked scores into probabilities e^(s - lse_row) (exactly 0 where
/// masked, and for rows whose lse is -inf).
#[inline]
fn probs_from_lse(s: &mut [f32], rows: usize, cols: usize, lse: &[f32]) {
    for r in 0..rows {
        let srow = &mut s[r * cols..(r + 1) * cols];
        if lse[r] == f32::NEG_INFINITY {
            srow.fill(0.0);
        } else {
            crate::simd::exp_shift(srow, lse[r]);
        }
    }
}

/// The attention weights [B, H, Tq, Tk] of a forward pass, rebuilt from q, k and its lse:
/// for visualisation (attention maps); training never needs them.
#[allow(clippy::too_many_arguments)]
pub fn attention_probs(
    probs: &mut [f32], q: &[f32], k: &[f32], lse: &[f32], key_mask: Option<&[u8]>,
    b: usize, h: usize, tq: usize, tk: usize, d: usize, causal: bool, scale: f32,
    par: &dyn Parallel,
) {
    assert_shapes(q, k, k, lse, key_mask, b, h, tq, tk, d);
    assert_eq!(probs.len(), b * h * tq * tk);
    let pairs = b * h;
    if pairs == 0 || tq == 0 {
        return;
    }
    let par = parallel::for_work(par, products_flops(1, pairs, tq, tk, d, causal));
    let blocks = tq.div_ceil(QUERY_BLOCK);
    let probs_ptr = SendPtr(probs.as_mut_ptr());
    par.for_each(pairs * blocks, &|task| {
        let (bh, blk) = (task / blocks, task % blocks);
        let i0 = blk * QUERY_BLOCK;
        let rows = QUERY_BLOCK.min(tq - i0);
        // SAFETY: task (bh, blk) owns rows [i0, i0 + rows) of the [bh] slab of probs.
        let p = unsafe { probs_ptr.slice_mut((bh * tq + i0) * tk, rows * tk) };
        let q_blk = &q[(bh * tq + i0) * d..(bh * tq + i0 + rows) * d];
        let k_bh = &k[bh * tk * d..(bh + 1) * tk * d];
        let mask_b = key_mask.map(|m| &m[(bh / h) * tk..(bh / h + 1) * tk]);
        // The whole row block is one tile of width tk.
        sgemm_block(p, tk, q_blk, d, 1, k_bh, 1, d, rows, d, tk, false);
        scale_and_mask(p, rows, tk, i0, 0, scale, causal, mask_b);
        probs_from_lse(p, rows, tk, &lse[bh * tq + i0..bh * tq + i0 + rows]);
    });
}

/// Accumulates dq [B,H,Tq,D], dk [B,H,Tk,D], dv [B,H,Tk,D] from dout [B,H,Tq,D], given the
/// forward's inputs, its output `out` and `lse`, and the same masks.
///
/// Per (b, h) task (tasks own their dq/dk/dv slabs), per tile of query rows x keys:
/// P = e^(scaled masked q·k^T - lse) recomputed by sgemm, dP = dout·v^T, then
/// dS = P ∘ (dP - δ) * scale with δ_r = dout_r · out_r (= Σ_j P_rj dP_rj), and three
/// accumulating sgemms: dv += P^T·dout, dk += dS^T·q, dq += dS·k.
///
/// Dropout: the same p, seed and offset as forward. With D = M / (1 - p) (the same mask,
/// rebuilt per tile) and out = (P ∘ D) · v: dv += (P ∘ D)^T · dout; the gradient reaching P
/// is D ∘ (dout · v^T); and δ_r, which is Σ_j P_rj D_rj (dout_r · v_j) = dout_r · out_r, is
/// still the dot product of dout and out.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    dq: &mut [f32], dk: &mut [f32], dv: &mut [f32],
    dout: &[f32], q: &[f32], k: &[f32], v: &[f32], out: &[f32], lse: &[f32],
    key_mask: Option<&[u8]>,
    b: usize, h: usize, tq: usize, tk: usize, d: usize, causal: bool, scale: f32,
    dropout_p: f32, seed: u32, offset: u32,
    par: &dyn Parallel,
) {
    let dropout = WeightDropout::new(dropout_p, seed, offset, tq, tk);
    assert_shapes(q, k, v, lse, key_mask, b, h, tq, tk, d);
    assert!(dq.len() == q.len() && dout.len() == q.len() && out.len() == q.len());
    assert!(dk.len() == k.len() && dv.len() == v.len());
    let pairs = b * h;
    if pairs == 0 || tq == 0 || tk == 0 || d == 0 {
        return;
    }
    // Five products: scores recomputed, dP = dout·vᵀ, dv, dk and dq.
    let par = parallel::for_work(par, products_flops(5, pairs, tq, tk, d, causal));
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
        let mask_b = key_mask.map(|m| &m[(bh / h) * tk..(bh / h + 1) * tk]);
        let mut p_tile = [0.0f32; QUERY_BLOCK * KEY_BLOCK];
        let mut ds_tile = [0.0f32; QUERY_BLOCK * KEY_BLOCK];
        let mut delta = [0.0f32; QUERY_BLOCK];
        for i0 in (0..tq).step_by(QUERY_BLOCK) {
            let rows = QUERY_BLOCK.min(tq - i0);
            let row_range = (bh * tq + i0) * d..(bh * tq + i0 + rows) * d;
            let (q_blk, go_blk, out_blk) = (&q[row_range.clone()], &dout[row_range.clone()], &out[row_range]);
            let lse_blk = &lse[bh * tq + i0..bh * tq + i0 + rows];
            let dq_blk = &mut dq_bh[i0 * d..(i0 + rows) * d];
            for r in 0..rows {
                delta[r] = crate::simd::dot(&go_blk[r * d..(r + 1) * d], &out_blk[r * d..(r + 1) * d]);
            }
            let keys = visible_keys(causal, i0, rows, tk);
            for j0 in (0..keys).step_by(KEY_BLOCK) {
                let cols = KEY_BLOCK.min(keys - j0);
                let (p, ds) = (&mut p_tile[..rows * cols], &mut ds_tile[..rows * cols]);
                let k_blk = &k[(bh * tk + j0) * d..(bh * tk + j0 + cols) * d];
                let v_blk = &v[(bh * tk + j0) * d..(bh * tk + j0 + cols) * d];
                // P[r, c] = e^(scale · q_r · k_c - lse_r), masked entries 0.
                sgemm_block(p, cols, q_blk, d, 1, k_blk, 1, d, rows, d, cols, false);
                scale_and_mask(p, rows, cols, i0, j0, scale, causal, mask_b);
                probs_from_lse(p, rows, cols, lse_blk);
                // dP[r, c] = dout_r · v_c, then dS = P ∘ (dP - δ_r) * scale in place.
                sgemm_block(ds, cols, go_blk, d, 1, v_blk, 1, d, rows, d, cols, false);
                match &dropout {
                    None => {
                        for r in 0..rows {
                            let pr = &p[r * cols..(r + 1) * cols];
                            for (x, &pj) in ds[r * cols..(r + 1) * cols].iter_mut().zip(pr) {
                                *x = pj * (*x - delta[r]) * scale;
                            }
                        }
                    }
                    Some(drop) => {
                        // dS = P ∘ (dP ∘ D - δ_r) * scale, then P becomes P ∘ D for dv.
                        for r in 0..rows {
                            let first = drop.counter(bh, i0 + r, j0);
                            let pr = &mut p[r * cols..(r + 1) * cols];
                            for (c, (x, pj)) in ds[r * cols..(r + 1) * cols].iter_mut().zip(pr.iter_mut()).enumerate() {
                                let factor = drop.mask.factor(first.wrapping_add(c as u32));
                                *x = *pj * (*x * factor - delta[r]) * scale;
                                *pj *= factor;
                            }
                        }
                    }
                }
                // dv_blk += P^T · dout rows; dk_blk += dS^T · q rows; dq rows += dS · k_blk.
                sgemm_block(&mut dv_bh[j0 * d..(j0 + cols) * d], d, p, 1, cols, go_blk, d, 1, cols, rows, d, true);
                sgemm_block(&mut dk_bh[j0 * d..(j0 + cols) * d], d, ds, 1, cols, q_blk, d, 1, cols, rows, d, true);
                sgemm_block(dq_blk, d, ds, cols, 1, k_blk, d, 1, rows, cols, d, true);
            }
        }
    });
}
