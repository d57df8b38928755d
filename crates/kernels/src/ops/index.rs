//! Integer-indexed reads and their accumulating backward, along one dim seen as
//! [outer, n, inner]: gather (PyTorch's `gather`, also max(dim)'s backward), whose backward is
//! scatter_add's forward, and index_select (also an embedding lookup, with padding_idx).
//! Indices are i32 and checked against n (a bad index panics, naming it).

#[inline]
fn checked(op: &str, id: i32, n: usize) -> usize {
    assert!(id >= 0 && (id as usize) < n, "{op}: index {id} out of range for a dim of size {n}");
    id as usize
}

/// out [outer, k, inner] = inp [outer, n, inner] at [o, index[o, j, i], i].
pub fn gather_forward(out: &mut [f32], inp: &[f32], index: &[i32], outer: usize, n: usize, k: usize, inner: usize) {
    assert!(out.len() == outer * k * inner && index.len() == out.len() && inp.len() == outer * n * inner, "gather_forward: lengths");
    for o in 0..outer {
        for j in 0..k {
            for i in 0..inner {
                let at = (o * k + j) * inner + i;
                out[at] = inp[(o * n + checked("gather_forward", index[at], n)) * inner + i];
            }
        }
    }
}

/// Accumulates dinp [outer, n, inner] at [o, index[o, j, i], i] += dout [outer, k, inner]
/// (repeated indices add up). Also scatter_add: dinp = a copy of x, dout = src.
pub fn gather_backward(dinp: &mut [f32], dout: &[f32], index: &[i32], outer: usize, n: usize, k: usize, inner: usize) {
    assert!(dout.len() == outer * k * inner && index.len() == dout.len() && dinp.len() == outer * n * inner, "gather_backward: lengths");
    for o in 0..outer {
        for j in 0..k {
            for i in 0..inner {
                let at = (o * k + j) * inner + i;
                dinp[(o * n + checked("gather_backward", index[at], n)) * inner + i] += dout[at];
            }
        }
    }
}

/// out [outer, k, inner] = inp [outer, n, inner] at [o, index[j], :].
pub fn index_select_forward(out: &mut [f32], inp: &[f32], index: &[i32], outer: usize, n: usize, k: usize, inner: usize) {
    assert!(out.len() == outer * k * inner && index.len() == k && inp.len() == outer * n * inner, "index_select_forward: lengths");
    for o in 0..outer {
        for (j, &id) in index.iter().enumerate() {
            let src = (o * n + checked("index_select_forward", id, n)) * inner;
            let dst = (o * k + j) * inner;
            out[dst..dst + inner].copy_from_slice(&inp[src..src + inner]);
        }
    }
}

/// Accumulates dinp [outer, n, inner] at [o, index[j], :] += dout [outer, k, inner]; rows whose
/// index equals `padding_idx` get nothing (an embedding's padding row; -1 = none).
#[allow(clippy::too_many_arguments)]
pub fn index_select_backward(
    dinp: &mut [f32], dout: &[f32], index: &[i32], outer: usize, n: usize, k: usize, inner: usize, padding_idx: i32,
) {
    assert!(dout.len() == outer * k * inner && index.len() == k && dinp.len() == outer * n * inner, "index_select_backward: lengths");
    for o in 0..outer {
        for (j, &id) in index.iter().enumerate() {
            let row = checked("index_select_backward", id, n);
            if id == padding_idx {
                continue;
            }
            let (dst, src) = ((o * n + row) * inner, (o * k + j) * inner);
            crate::simd::add_assign(&mut dinp[dst..dst + inner], &dout[src..src + inner]);
        }
    }
}
