//! Embedding lookup. Ids are checked against the vocabulary by the caller.

/// out[i, :] = table[ids[i], :]; ids: [n], table: [vocab, dim], out: [n, dim].
pub fn embedding_forward(out: &mut [f32], ids: &[i32], table: &[f32], dim: usize) {
    let _ = (out, ids, table, dim);
    todo!()
}

/// Scatters: dtable[ids[i], :] += dout[i, :].
pub fn embedding_backward(dtable: &mut [f32], dout: &[f32], ids: &[i32], dim: usize) {
    let _ = (dtable, dout, ids, dim);
    todo!()
}
