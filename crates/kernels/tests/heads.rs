//! split_heads: one head tensor of a packed projection equals the narrow along the features
//! followed by the head transpose (the two copies it replaces), bit for bit, for any thread
//! count; its backward adds into its window only.
mod common;
use common::*;
use ferroformer_kernels::ops::elementwise::{narrow_backward, narrow_forward, transpose12_backward, transpose12_forward};
use ferroformer_kernels::ops::heads::{split_heads_backward, split_heads_forward};
use ferroformer_kernels::parallel::set_min_parallel_flops;
use ferroformer_kernels::{Parallel, Serial};

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn split_heads_is_narrow_then_transpose12_bit_for_bit() {
    // Every call split, so the threaded runs really split.
    set_min_parallel_flops(0);
    let mut rng = Rng::new(50);
    // (B, T, H, D, parts): W4's shape, odd sizes, one head, one part.
    for &(a, b, c, d, parts) in &[(16, 64, 4, 32, 3), (3, 5, 2, 7, 3), (1, 1, 1, 1, 3), (2, 9, 3, 65, 1)] {
        let dim = parts * c;
        let inp = rng.vec(a * b * dim * d);
        for part in 0..parts {
            let start = part * c;
            // The two copies: narrow [a·b, dim, d] to [start, start + c), then swap axes 1, 2.
            let mut narrowed = vec![0.0; a * b * c * d];
            narrow_forward(&mut narrowed, &inp, a * b, dim, d, start, c, &Serial);
            let mut want = vec![0.0; narrowed.len()];
            transpose12_forward(&mut want, &narrowed, a, b, c, d, &Serial);
            let base = rng.vec(inp.len());
            let mut want_back = base.clone();
            let mut back_narrowed = vec![0.0; narrowed.len()];
            transpose12_backward(&mut back_narrowed, &want, a, b, c, d, &Serial);
            narrow_backward(&mut want_back, &back_narrowed, a * b, dim, d, start, c, &Serial);
            for par in [&Serial as &dyn Parallel, &Threads(2), &Threads(3)] {
                let mut out = vec![f32::NAN; want.len()];
                split_heads_forward(&mut out, &inp, a, b, c, d, dim, start, par);
                assert_eq!(bits(&out), bits(&want), "forward {a}x{b}x{c}x{d} part {part}/{parts}, {} threads", par.threads());
                let mut back = base.clone();
                split_heads_backward(&mut back, &out, a, b, c, d, dim, start, par);
                assert_eq!(bits(&back), bits(&want_back), "backward {a}x{b}x{c}x{d} part {part}/{parts}, {} threads", par.threads());
            }
        }
    }
}
