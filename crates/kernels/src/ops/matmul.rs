//! Cache-blocked, packed sgemm with SIMD micro-kernels (see `crate::simd`).
use crate::Parallel;

/// out[b] (=|+=) op(a[b]) · op(b[b]) for b in 0..batch.
/// op(a) is [m, k]: a is stored [batch, m, k], or [batch, k, m] when `trans_a`.
/// op(b) is [k, n]: b is stored [batch, k, n], or [batch, n, k] when `trans_b`.
/// out is [batch, m, n]; `accumulate` adds into it instead of overwriting.
#[allow(clippy::too_many_arguments)]
pub fn matmul_forward(
    out: &mut [f32], a: &[f32], b: &[f32],
    batch: usize, m: usize, k: usize, n: usize,
    trans_a: bool, trans_b: bool, accumulate: bool, par: &dyn Parallel,
) {
    let _ = (out, a, b, batch, m, k, n, trans_a, trans_b, accumulate, par);
    todo!()
}

/// Accumulates: da += dout · op(b)^T (in a's storage layout), db += op(a)^T · dout (in b's
/// storage layout). Either gradient may be skipped with `None`. Dimensions as in forward.
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward(
    da: Option<&mut [f32]>, db: Option<&mut [f32]>, dout: &[f32], a: &[f32], b: &[f32],
    batch: usize, m: usize, k: usize, n: usize,
    trans_a: bool, trans_b: bool, par: &dyn Parallel,
) {
    let _ = (da, db, dout, a, b, batch, m, k, n, trans_a, trans_b, par);
    todo!()
}
