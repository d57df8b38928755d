//! Self-attention on a packed projection (qkv [B, T, 3, H, D] in, out [B, T, H, D]) against
//! the per-head kernels on the same numbers split out and merged back by hand: the same bits
//! forward and backward (accumulating, or overwriting a gradient buffer of NaN), with causal and padding masks and dropout, at head sizes of both
//! AVX-512 tiles and across query / key tiles, on every instruction set here and for any
//! thread count.
mod common;
use common::*;
use ferroformer_kernels::ops::attention::*;
use ferroformer_kernels::simd::Isa;
use ferroformer_kernels::{Parallel, Serial};

#[derive(Clone, Copy)]
struct Case { b: usize, h: usize, t: usize, d: usize, causal: bool, masked: bool, dropout: f32 }

/// Calls f(packed offset, per-head offset) for every row of part `part` of a packed
/// [B, T, parts, H, D] buffer and of the per-head [B, H, T, D] tensor holding that part.
fn each_row(c: &Case, parts: usize, part: usize, mut f: impl FnMut(usize, usize)) {
    let Case { b, h, t, d, .. } = *c;
    for bi in 0..b {
        for hi in 0..h {
            for ti in 0..t {
                f((((bi * t + ti) * parts + part) * h + hi) * d, ((bi * h + hi) * t + ti) * d);
            }
        }
    }
}

/// Per-head [B, H, T, D] tensor of part `part` of packed [B, T, parts, H, D].
fn heads_of(packed: &[f32], c: &Case, parts: usize, part: usize) -> Vec<f32> {
    let mut out = vec![0.0; c.b * c.h * c.t * c.d];
    each_row(c, parts, part, |src, dst| out[dst..dst + c.d].copy_from_slice(&packed[src..src + c.d]));
    out
}

/// Packed [B, T, parts, H, D] from per-head tensors [B, H, T, D], one per part.
fn pack(heads: &[&[f32]], c: &Case) -> Vec<f32> {
    let mut out = vec![0.0; heads.len() * c.b * c.h * c.t * c.d];
    for (part, x) in heads.iter().enumerate() {
        each_row(c, heads.len(), part, |dst, src| out[dst..dst + c.d].copy_from_slice(&x[src..src + c.d]));
    }
    out
}

/// (out, lse, dqkv) of the packed kernels, and the same from the per-head ones, packed.
fn both(isa: Isa, c: &Case, rng: &mut Rng, par: &dyn Parallel) -> ([Vec<f32>; 3], [Vec<f32>; 3]) {
    let Case { b, h, t, d, causal, masked, dropout } = *c;
    let qkv = rng.vec(3 * b * t * h * d);
    let dout_packed = rng.vec(b * t * h * d);
    let base = rng.vec(qkv.len());
    let mask: Option<Vec<u8>> = masked.then(|| (0..b * t).map(|i| (i % 5 != 3) as u8).collect());
    let m = mask.as_deref();
    let (scale, seed, offset) = (0.3, 7, 11);

    let mut out = vec![9.0; b * t * h * d];
    let mut lse = vec![9.0; b * h * t];
    attention_packed_forward_with(isa, &mut out, &mut lse, &qkv, m, b, h, t, d, causal, scale, dropout, seed, offset, par);
    let mut dqkv = base.clone();
    attention_packed_backward_with(isa, &mut dqkv, &dout_packed, &qkv, &out, &lse, m, b, h, t, d, causal, scale, dropout, seed, offset, true, par);
    // Overwriting gives the gradient alone: what accumulating adds to the base.
    let mut written = vec![f32::NAN; qkv.len()];
    attention_packed_backward_with(isa, &mut written, &dout_packed, &qkv, &out, &lse, m, b, h, t, d, causal, scale, dropout, seed, offset, false, par);
    let mut from_zero = vec![0.0; qkv.len()];
    attention_packed_backward_with(isa, &mut from_zero, &dout_packed, &qkv, &out, &lse, m, b, h, t, d, causal, scale, dropout, seed, offset, true, par);
    assert!(written.iter().zip(&from_zero).all(|(w, z)| w == z), "{isa:?}: overwriting differs from accumulating into zeros");

    let [q, k, v] = [0, 1, 2].map(|part| heads_of(&qkv, c, 3, part));
    let dout = heads_of(&dout_packed, c, 1, 0);
    let mut out_h = vec![9.0; q.len()];
    let mut lse_h = vec![9.0; b * h * t];
    attention_forward_with(isa, &mut out_h, &mut lse_h, &q, &k, &v, m, b, h, t, t, d, causal, scale, dropout, seed, offset, &Serial);
    let [mut dq, mut dk, mut dv] = [0, 1, 2].map(|part| heads_of(&base, c, 3, part));
    attention_backward_with(isa, &mut dq, &mut dk, &mut dv, &dout, &q, &k, &v, &out_h, &lse_h, m, b, h, t, t, d, causal, scale, dropout, seed, offset, &Serial);
    ([out, lse, dqkv], [pack(&[&out_h], c), lse_h, pack(&[&dq, &dk, &dv], c)])
}

const CASES: [Case; 5] = [
    // W5's heads (32 wide) across two query tiles, causal: the 8 x 2 AVX-512 tile.
    Case { b: 2, h: 4, t: 100, d: 32, causal: true, masked: false, dropout: 0.0 },
    // W6's heads (64 wide): the 4 x 4 tile; padding and dropout.
    Case { b: 1, h: 3, t: 70, d: 64, causal: true, masked: true, dropout: 0.2 },
    // Not causal, a head size no vector width divides, one query tile.
    Case { b: 3, h: 2, t: 17, d: 13, causal: false, masked: true, dropout: 0.0 },
    // A head past the 128 floats packed at a time (two depth slices).
    Case { b: 1, h: 2, t: 40, d: 130, causal: true, masked: false, dropout: 0.1 },
    // One head, one time step.
    Case { b: 2, h: 1, t: 1, d: 8, causal: true, masked: false, dropout: 0.0 },
];

#[test]
fn packed_matches_per_head_bit_for_bit() {
    let mut rng = Rng::new(31);
    for c in CASES {
        for isa in Isa::available() {
            let (packed, heads) = both(isa, &c, &mut rng, &Serial);
            for (what, (got, want)) in ["out", "lse", "dqkv"].iter().zip(packed.iter().zip(&heads)) {
                assert!(got.iter().map(|x| x.to_bits()).eq(want.iter().map(|x| x.to_bits())),
                    "{isa:?} b={} h={} t={} d={} causal={} masked={} p={}: {what} differs", c.b, c.h, c.t, c.d, c.causal, c.masked, c.dropout);
            }
        }
    }
}

#[test]
fn packed_thread_count_does_not_change_bits() {
    // Split every call, however small: heads of one time row are then written by different
    // threads side by side.
    ferroformer_kernels::parallel::set_min_parallel_flops(0);
    let c = Case { b: 2, h: 3, t: 90, d: 24, causal: true, masked: true, dropout: 0.1 };
    let (want, _) = both(Isa::detect(), &c, &mut Rng::new(32), &Serial);
    for t in 2..=4 {
        let (got, _) = both(Isa::detect(), &c, &mut Rng::new(32), &Threads(t));
        assert!(got == want, "threads={t} changed bits");
    }
}

#[test]
#[should_panic(expected = "qkv.len()")]
fn packed_refuses_a_short_qkv() {
    let (b, h, t, d) = (1, 2, 3, 4);
    let qkv = vec![0.0; 3 * b * t * h * d - 1];
    let (mut out, mut lse) = (vec![0.0; b * t * h * d], vec![0.0; b * h * t]);
    attention_packed_forward(&mut out, &mut lse, &qkv, None, b, h, t, d, true, 0.5, 0.0, 0, 0, &Serial);
}
