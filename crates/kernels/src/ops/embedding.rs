//! Embedding lookup. Ids are checked against the vocabulary by the caller.

/// out[i, :] = table[ids[i], :]; ids: [n], table: [vocab, dim], out: [n, dim].
pub fn embedding_forward(out: &mut [f32], ids: &[i32], table: &[f32], dim: usize) {
    assert_eq!(out.len(), ids.len() * dim);
    for (row, &id) in out.chunks_exact_mut(dim.max(1)).zip(ids) {
        let start = id as usize * dim;
        row.copy_from_slice(&table[start..start + dim]);
    }
}

/// Scatters: dtable[ids[i], :] += dout[i, :].
pub fn embedding_backward(dtable: &mut [f32], dout: &[f32], ids: &[i32], dim: usize) {
    assert_eq!(dout.len(), ids.len() * dim);
    if dim == 0 {
        return;
    }
    for (row, &id) in dout.chunks_exact(dim).zip(ids) {
        let start = id as usize * dim;
        crate::simd::add_assign(&mut dtable[start..start + dim], row);
    }
}
