//! Generic bodies of the streaming helpers (pointwise passes over whole buffers, the layer
//! norm backward's row passes, Adam's update, the f64 sum of squares). Instantiated per
//! instruction set by `simd_helpers!` in mod.rs.
//!
//! Every helper here that writes values computes each element with the same IEEE operations
//! in the same order as the scalar loops it replaced (add, mul, no fused multiply-add; a - b
//! written as a + (-b), which is the same number), so a result does not depend on which
//! instruction set, which vector lane or which thread's block computed it.

use super::VecOps;

/// out[i] = f(a[i], b[i]) over the common length, `vf` being f on vectors.
#[inline(always)]
unsafe fn zip_map<S: VecOps>(out: &mut [f32], a: &[f32], b: &[f32], vf: impl Fn(S::V, S::V) -> S::V, f: impl Fn(f32, f32) -> f32) {
    let n = out.len().min(a.len()).min(b.len());
    let (po, pa, pb) = (out.as_mut_ptr(), a.as_ptr(), b.as_ptr());
    let l = S::LANES;
    let mut i = 0;
    // SAFETY (whole body): offsets < n, the common length; out is &mut so cannot alias.
    unsafe {
        while i + l <= n {
            S::store(po.add(i), vf(S::load(pa.add(i)), S::load(pb.add(i))));
            i += l;
        }
        while i < n {
            *po.add(i) = f(*pa.add(i), *pb.add(i));
            i += 1;
        }
    }
}

/// out = a + b over the common length.
#[inline(always)]
pub(crate) unsafe fn add_to_generic<S: VecOps>(out: &mut [f32], a: &[f32], b: &[f32]) {
    // SAFETY: the caller's instruction set.
    unsafe { zip_map::<S>(out, a, b, |x, y| S::add(x, y), |x, y| x + y) }
}

/// out = a * b over the common length.
#[inline(always)]
pub(crate) unsafe fn mul_to_generic<S: VecOps>(out: &mut [f32], a: &[f32], b: &[f32]) {
    // SAFETY: the caller's instruction set.
    unsafe { zip_map::<S>(out, a, b, |x, y| S::mul(x, y), |x, y| x * y) }
}

/// out = x * s over the common length.
#[inline(always)]
pub(crate) unsafe fn scale_to_generic<S: VecOps>(out: &mut [f32], x: &[f32], s: f32) {
    let n = out.len().min(x.len());
    let (po, px) = (out.as_mut_ptr(), x.as_ptr());
    let l = S::LANES;
    let mut i = 0;
    // SAFETY (whole body): offsets < n, the common length.
    unsafe {
        let vs = S::splat(s);
        while i + l <= n {
            S::store(po.add(i), S::mul(S::load(px.add(i)), vs));
            i += l;
        }
        while i < n {
            *po.add(i) = *px.add(i) * s;
            i += 1;
        }
    }
}

/// Independent f64 partial sums of [`sum_squares_generic`]: enough to hide the add latency
/// and to fill two AVX2 / one AVX-512 register of f64.
const SQ_LANES: usize = 8;

/// sum_i x[i]^2 in f64, over SQ_LANES interleaved partial sums combined pairwise in a fixed
/// order. Plain f64 code: the `#[target_feature]` instantiations vectorise it (f32 -> f64
/// conversions, mul, add; no FMA), so every instruction set gives the same bits.
#[inline(always)]
#[allow(clippy::extra_unused_type_parameters)] // S names the instantiation (simd_helpers!)
pub(crate) unsafe fn sum_squares_generic<S: VecOps>(x: &[f32]) -> f64 {
    let mut acc = [0.0f64; SQ_LANES];
    let mut blocks = x.chunks_exact(SQ_LANES);
    for blk in &mut blocks {
        for (a, &v) in acc.iter_mut().zip(blk) {
            let v = v as f64;
            *a += v * v;
        }
    }
    for (a, &v) in acc.iter_mut().zip(blocks.remainder()) {
        let v = v as f64;
        *a += v * v;
    }
    let q = [acc[0] + acc[4], acc[1] + acc[5], acc[2] + acc[6], acc[3] + acc[7]];
    (q[0] + q[2]) + (q[1] + q[3])
}

/// Adam's per-tensor constants (see `optim::adam::adam_update`).
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    pub step_size: f32,
    pub bc2_sqrt: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// 1 - lr * weight_decay (AdamW's decoupled decay factor).
    pub decay: f32,
    pub decoupled: bool,
}

/// One Adam / AdamW update of param, m, v (torch's single-tensor arithmetic, as the scalar
/// loop it replaced: the same operations in the same order). Plain code in three branch-free
/// loops (AdamW; Adam with L2 decay; Adam without) that the `#[target_feature]`
/// instantiations vectorise (sqrt and division are exact IEEE operations in every lane).
#[inline(always)]
#[allow(clippy::extra_unused_type_parameters)] // S names the instantiation (simd_helpers!)
pub(crate) unsafe fn adam_step_generic<S: VecOps>(param: &mut [f32], m: &mut [f32], v: &mut [f32], grad: &[f32], c: &AdamStep) {
    let AdamStep { step_size, bc2_sqrt, beta1, beta2, eps, weight_decay, decay, decoupled } = *c;
    let (one_m_b1, one_m_b2) = (1.0 - beta1, 1.0 - beta2);
    let update = |p: &mut f32, m: &mut f32, v: &mut f32, p0: f32, g: f32| {
        let mi = beta1 * *m + one_m_b1 * g;
        let vi = beta2 * *v + one_m_b2 * g * g;
        *m = mi;
        *v = vi;
        let denom = vi.sqrt() / bc2_sqrt + eps;
        *p = p0 - step_size * mi / denom;
    };
    let lanes = param.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(grad);
    if decoupled {
        for (((p, m), v), &g) in lanes {
            let p0 = *p * decay;
            update(p, m, v, p0, g);
        }
    } else if weight_decay != 0.0 {
        for (((p, m), v), &g) in lanes {
            let p0 = *p;
            update(p, m, v, p0, g + weight_decay * p0);
        }
    } else {
        for (((p, m), v), &g) in lanes {
            let p0 = *p;
            update(p, m, v, p0, g);
        }
    }
}

/// Layer norm backward's row sums: (sum_i go[i] * w[i], sum_i go[i] * w[i] * ((x[i] - mu) * rs)).
#[inline(always)]
pub(crate) unsafe fn ln_row_sums_generic<S: VecOps>(go: &[f32], w: &[f32], x: &[f32], mu: f32, rs: f32) -> (f32, f32) {
    let n = go.len().min(w.len()).min(x.len());
    let (pg, pw, px) = (go.as_ptr(), w.as_ptr(), x.as_ptr());
    let l = S::LANES;
    let mut i = 0;
    // SAFETY (whole body): offsets < n, the common length.
    unsafe {
        let (vm, vr) = (S::splat(-mu), S::splat(rs));
        let (mut s0, mut s1, mut q0, mut q1) = (S::zero(), S::zero(), S::zero(), S::zero());
        while i + 2 * l <= n {
            let g0 = S::mul(S::load(pg.add(i)), S::load(pw.add(i)));
            let g1 = S::mul(S::load(pg.add(i + l)), S::load(pw.add(i + l)));
            let xh0 = S::mul(S::add(S::load(px.add(i)), vm), vr);
            let xh1 = S::mul(S::add(S::load(px.add(i + l)), vm), vr);
            s0 = S::add(s0, g0);
            s1 = S::add(s1, g1);
            q0 = S::fma(g0, xh0, q0);
            q1 = S::fma(g1, xh1, q1);
            i += 2 * l;
        }
        while i + l <= n {
            let g0 = S::mul(S::load(pg.add(i)), S::load(pw.add(i)));
            let xh0 = S::mul(S::add(S::load(px.add(i)), vm), vr);
            s0 = S::add(s0, g0);
            q0 = S::fma(g0, xh0, q0);
            i += l;
        }
        let (mut sg, mut sgx) = (S::reduce_sum(S::add(s0, s1)), S::reduce_sum(S::add(q0, q1)));
        while i < n {
            let g = *pg.add(i) * *pw.add(i);
            sg += g;
            sgx += g * ((*px.add(i) - mu) * rs);
            i += 1;
        }
        (sg, sgx)
    }
}

/// Layer norm backward's input gradient of one row:
/// dinp[i] += (go[i] * w[i] - mean_g - ((x[i] - mu) * rs) * mean_gx) * rs.
/// `(mu, rs)` are the row's mean and 1 / std, `(mean_g, mean_gx)` its two row sums over dim.
#[inline(always)]
pub(crate) unsafe fn ln_row_dinp_generic<S: VecOps>(
    dinp: &mut [f32], go: &[f32], w: &[f32], x: &[f32], (mu, rs): (f32, f32), (mean_g, mean_gx): (f32, f32),
) {
    let n = dinp.len().min(go.len()).min(w.len()).min(x.len());
    let (pd, pg, pw, px) = (dinp.as_mut_ptr(), go.as_ptr(), w.as_ptr(), x.as_ptr());
    let l = S::LANES;
    let mut i = 0;
    // SAFETY (whole body): offsets < n, the common length; dinp is &mut so cannot alias.
    unsafe {
        let (vm, vr, vmg, vmgx) = (S::splat(-mu), S::splat(rs), S::splat(-mean_g), S::splat(-mean_gx));
        while i + l <= n {
            let g = S::mul(S::load(pg.add(i)), S::load(pw.add(i)));
            let xh = S::mul(S::add(S::load(px.add(i)), vm), vr);
            let t = S::add(S::add(g, vmg), S::mul(xh, vmgx));
            S::store(pd.add(i), S::add(S::load(pd.add(i)), S::mul(t, vr)));
            i += l;
        }
        while i < n {
            let g = *pg.add(i) * *pw.add(i);
            let xh = (*px.add(i) - mu) * rs;
            *pd.add(i) += (g - mean_g - xh * mean_gx) * rs;
            i += 1;
        }
    }
}

/// Layer norm backward's parameter gradients from one row (a column block of it):
/// dweight[i] += go[i] * ((x[i] - mu) * rs), dbias[i] += go[i].
#[inline(always)]
pub(crate) unsafe fn ln_row_dparams_generic<S: VecOps>(dweight: &mut [f32], dbias: &mut [f32], go: &[f32], x: &[f32], mu: f32, rs: f32) {
    let n = dweight.len().min(dbias.len()).min(go.len()).min(x.len());
    let (pdw, pdb, pg, px) = (dweight.as_mut_ptr(), dbias.as_mut_ptr(), go.as_ptr(), x.as_ptr());
    let l = S::LANES;
    let mut i = 0;
    // SAFETY (whole body): offsets < n, the common length; the two outputs are distinct &mut.
    unsafe {
        let (vm, vr) = (S::splat(-mu), S::splat(rs));
        while i + l <= n {
            let g = S::load(pg.add(i));
            let xh = S::mul(S::add(S::load(px.add(i)), vm), vr);
            S::store(pdw.add(i), S::add(S::load(pdw.add(i)), S::mul(g, xh)));
            S::store(pdb.add(i), S::add(S::load(pdb.add(i)), g));
            i += l;
        }
        while i < n {
            let g = *pg.add(i);
            *pdw.add(i) += g * ((*px.add(i) - mu) * rs);
            *pdb.add(i) += g;
            i += 1;
        }
    }
}

// ---- tensor-op helpers: extremes with their index, column reductions, comparisons --------
//
// Plain code like the bodies above: the `#[target_feature]` instantiations vectorise it, and
// each element sees the operations of the scalar loops these replaced, so the results (values,
// indices, f64 sums) are the same on every instruction set.

/// Whether `x` takes the place of `best` in a first-index max (`MIN`: min) scan: strictly
/// greater (less), or the first NaN; nothing replaces a NaN (PyTorch's max / argmax).
#[inline(always)]
fn replaces<const MIN: bool>(x: f32, best: f32) -> bool {
    let better = if MIN { x < best } else { x > best };
    better | (x.is_nan() & !best.is_nan())
}

/// Independent lanes of [`arg_extreme_generic`]: two AVX-512 / four AVX2 vectors of running
/// extremes, so the compare-and-select chains overlap.
const ARG_LANES: usize = 32;

/// Index of the first maximum (`min`: minimum) of a non-empty x, or of its first NaN.
#[inline(always)]
#[allow(clippy::extra_unused_type_parameters)] // S names the instantiation (simd_helpers!)
pub(crate) unsafe fn arg_extreme_generic<S: VecOps>(x: &[f32], min: bool) -> usize {
    if min { arg_extreme::<true>(x) } else { arg_extreme::<false>(x) }
}

/// Lane l scans x[l], x[l + ARG_LANES], ... keeping its first extreme (or first NaN) and the
/// chunk it came from; the lanes' winners and the tail then compete by value, the smaller
/// index winning ties, which is the element a scan from the left keeps.
#[inline(always)]
fn arg_extreme<const MIN: bool>(x: &[f32]) -> usize {
    assert!(!x.is_empty(), "arg_extreme of an empty row");
    // p beats q: a better value, or as good and earlier.
    let beats = |p: usize, q: usize| replaces::<MIN>(x[p], x[q]) || (!replaces::<MIN>(x[q], x[p]) && p < q);
    let mut win = 0;
    let chunks = x.chunks_exact(ARG_LANES);
    let tail = chunks.remainder().len();
    if x.len() >= 2 * ARG_LANES {
        let mut best: [f32; ARG_LANES] = x[..ARG_LANES].try_into().expect("a whole chunk");
        let mut chunk = [0u32; ARG_LANES];
        for (k, c) in chunks.enumerate().skip(1) {
            for ((b, at), &v) in best.iter_mut().zip(chunk.iter_mut()).zip(c) {
                let take = replaces::<MIN>(v, *b);
                *b = if take { v } else { *b };
                *at = if take { k as u32 } else { *at };
            }
        }
        for (l, &k) in chunk.iter().enumerate() {
            let p = k as usize * ARG_LANES + l;
            if beats(p, win) {
                win = p;
            }
        }
    } else {
        for p in 1..x.len() - tail {
            if beats(p, win) {
                win = p;
            }
        }
    }
    for p in x.len() - tail..x.len() {
        if beats(p, win) {
            win = p;
        }
    }
    win
}

/// One row j of a column-wise first-index extreme: where x[c] replaces best[c] (see
/// [`replaces`]), best[c] = x[c] and at[c] = j.
#[inline(always)]
#[allow(clippy::extra_unused_type_parameters)] // S names the instantiation (simd_helpers!)
pub(crate) unsafe fn arg_extreme_step_generic<S: VecOps>(best: &mut [f32], at: &mut [i32], x: &[f32], j: i32, min: bool) {
    fn step<const MIN: bool>(best: &mut [f32], at: &mut [i32], x: &[f32], j: i32) {
        for ((b, a), &v) in best.iter_mut().zip(at.iter_mut()).zip(x) {
            let take = replaces::<MIN>(v, *b);
            *b = if take { v } else { *b };
            *a = if take { j } else { *a };
        }
    }
    if min { step::<true>(best, at, x, j) } else { step::<false>(best, at, x, j) }
}

/// One row of a column-wise amax (`min`: amin) with NaN winning:
/// acc[c] = x[c] where x[c] is NaN or beyond acc[c].
#[inline(always)]
#[allow(clippy::extra_unused_type_parameters)] // S names the instantiation (simd_helpers!)
pub(crate) unsafe fn extreme_step_generic<S: VecOps>(acc: &mut [f32], x: &[f32], min: bool) {
    fn step<const MIN: bool>(acc: &mut [f32], x: &[f32]) {
        for (a, &v) in acc.iter_mut().zip(x) {
            let beyond = if MIN { v < *a } else { v > *a };
            *a = if v.is_nan() | beyond { v } else { *a };
        }
    }
    if min { step::<true>(acc, x) } else { step::<false>(acc, x) }
}

/// acc[c] += x[c] in f64 (one row of a column-wise sum).
#[inline(always)]
#[allow(clippy::extra_unused_type_parameters)] // S names the instantiation (simd_helpers!)
pub(crate) unsafe fn add_f64_generic<S: VecOps>(acc: &mut [f64], x: &[f32]) {
    for (a, &v) in acc.iter_mut().zip(x) {
        *a += v as f64;
    }
}

/// acc[c] += (x[c] - mean[c])^2 in f64 (one row of a column-wise variance).
#[inline(always)]
#[allow(clippy::extra_unused_type_parameters)] // S names the instantiation (simd_helpers!)
pub(crate) unsafe fn add_sq_dev_f64_generic<S: VecOps>(acc: &mut [f64], x: &[f32], mean: &[f64]) {
    for ((a, &v), &m) in acc.iter_mut().zip(x).zip(mean) {
        let d = v as f64 - m;
        *a += d * d;
    }
}

/// The comparisons of [`compare_to_generic`] (PyTorch's eq, ne, lt, le, gt, ge).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// out[i] = 1 where a[i] op b[i] holds, else 0, over out's length; an operand of length 1
/// is repeated (a scalar or a broadcast column), any other holds out.len() elements.
#[inline(always)]
#[allow(clippy::extra_unused_type_parameters)] // S names the instantiation (simd_helpers!)
pub(crate) unsafe fn compare_to_generic<S: VecOps>(out: &mut [u8], a: &[f32], b: &[f32], op: Compare) {
    #[inline(always)]
    fn map(out: &mut [u8], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> bool) {
        let n = out.len();
        match (a.len() == 1 && n != 1, b.len() == 1 && n != 1) {
            (false, false) => {
                for ((o, &x), &y) in out.iter_mut().zip(&a[..n]).zip(&b[..n]) {
                    *o = f(x, y) as u8;
                }
            }
            (false, true) => {
                let y = b[0];
                for (o, &x) in out.iter_mut().zip(&a[..n]) {
                    *o = f(x, y) as u8;
                }
            }
            (true, false) => {
                let x = a[0];
                for (o, &y) in out.iter_mut().zip(&b[..n]) {
                    *o = f(x, y) as u8;
                }
            }
            (true, true) => out.fill(f(a[0], b[0]) as u8),
        }
    }
    match op {
        Compare::Eq => map(out, a, b, |x, y| x == y),
        Compare::Ne => map(out, a, b, |x, y| x != y),
        Compare::Lt => map(out, a, b, |x, y| x < y),
        Compare::Le => map(out, a, b, |x, y| x <= y),
        Compare::Gt => map(out, a, b, |x, y| x > y),
        Compare::Ge => map(out, a, b, |x, y| x >= y),
    }
}
