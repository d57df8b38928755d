//! The scalar loop max_dim_forward ran before: the reference of tests/streams.rs and the
//! baseline of examples/streams_bench.rs (included by path from both).

/// Per column of inp [outer, n, inner], the first strict improvement, the
/// first NaN stopping the scan.
pub fn max_dim_loop(inp: &[f32], outer: usize, n: usize, inner: usize, min: bool) -> (Vec<f32>, Vec<i32>) {
    let (mut out, mut idx) = (vec![0.0f32; outer * inner], vec![0i32; outer * inner]);
    for o in 0..outer {
        for i in 0..inner {
            let base = o * n * inner + i;
            let (mut best, mut at) = (inp[base], 0usize);
            for j in 1..n {
                if best.is_nan() {
                    break;
                }
                let x = inp[base + j * inner];
                if x.is_nan() || (if min { x < best } else { x > best }) {
                    best = x;
                    at = j;
                }
            }
            out[o * inner + i] = best;
            idx[o * inner + i] = at as i32;
        }
    }
    (out, idx)
}
