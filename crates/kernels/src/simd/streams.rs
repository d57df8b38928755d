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
