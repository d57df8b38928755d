//! Cross-entropy on every instruction set available here (the `_with` entry points) against
//! an f64 twin, at row lengths that take each path of the row loops: rows shorter than a tail
//! step, whole steps only, tail windows, and rows longer than one f32 partial span.
mod common;
use common::*;
use ferroformer_kernels::ops::cross_entropy::{cross_entropy_backward_with, cross_entropy_forward_with};
use ferroformer_kernels::simd::Isa;
use ferroformer_kernels::Serial;

const VOCABS: [usize; 16] = [1, 3, 7, 8, 15, 16, 17, 31, 33, 63, 65, 100, 257, 1024, 1031, 2100];

/// Per row of `x` [rows, vocab]: its log-sum-exp, and its loss where the target is not
/// ignored (None where it is).
fn rows64(x: &[f64], t: &[i32], vocab: usize, ignore: i32, eps: f64) -> Vec<(f64, Option<f64>)> {
    x.chunks(vocab).zip(t).map(|(row, &t)| {
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        let mean = row.iter().sum::<f64>() / vocab as f64;
        let smoothing = if eps == 0.0 { 0.0 } else { eps * (lse - mean) };
        let loss = (t != ignore).then(|| (1.0 - eps) * (lse - row[t as usize]) + smoothing);
        (lse, loss)
    }).collect()
}

/// The gradient of the mean loss times `dloss`, in f64.
fn grad64(x: &[f64], t: &[i32], vocab: usize, ignore: i32, eps: f64, dloss: f64) -> Vec<f64> {
    let stats = rows64(x, t, vocab, ignore, eps);
    let count = stats.iter().filter(|s| s.1.is_some()).count() as f64;
    let mut g = vec![0.0; x.len()];
    for (r, (row, gr)) in x.chunks(vocab).zip(g.chunks_mut(vocab)).enumerate() {
        if t[r] == ignore {
            continue;
        }
        for (j, (v, gj)) in row.iter().zip(gr.iter_mut()).enumerate() {
            let onehot = if j == t[r] as usize { 1.0 - eps } else { 0.0 };
            *gj = dloss / count * ((v - stats[r].0).exp() - onehot - eps / vocab as f64);
        }
    }
    g
}

#[test]
fn every_instruction_set_matches_the_f64_loss_and_gradient() {
    let mut rng = Rng::new(29);
    let rows = 5;
    for isa in Isa::available() {
        for vocab in VOCABS {
            // A common offset of the logits must not cost the loss its digits.
            for (eps, offset) in [(0.0f32, 0.0f32), (0.1, 0.0), (0.1, 300.0)] {
                let logits: Vec<f32> = rng.vec(rows * vocab).iter().map(|v| v * 6.0 + offset).collect();
                let mut targets: Vec<i32> = (0..rows).map(|_| rng.below(vocab) as i32).collect();
                targets[2] = -100;
                let what = format!("{isa:?} vocab {vocab} eps {eps} offset {offset}");
                let (mut loss, mut lse) = ([0.0f32], vec![0.0f32; rows]);
                cross_entropy_forward_with(isa, &mut loss, &mut lse, &logits, &targets, rows, vocab, -100, eps, &Serial);
                let want = rows64(&to64(&logits), &targets, vocab, -100, eps as f64);
                let mean = want.iter().filter_map(|s| s.1).sum::<f64>() / (rows - 1) as f64;
                assert_close(&format!("loss, {what}"), &loss, &[mean], 1e-6);
                for (r, (&got, want)) in lse.iter().zip(&want).enumerate() {
                    assert_close(&format!("lse row {r}, {what}"), &[got], &[want.0], 1e-6);
                }
                let mut dl = vec![0.0f32; rows * vocab];
                cross_entropy_backward_with(isa, &mut dl, &[1.7], &logits, &lse, &targets, rows, vocab, -100, eps, true, &Serial);
                let g = grad64(&to64(&logits), &targets, vocab, -100, eps as f64, 1.7);
                // The saved lse is an f32: at an offset of 300 its rounding alone moves every
                // e^(x - lse) by up to 2^-24 · 300 relative.
                let tol = if offset == 0.0 { 1e-5 } else { 1e-4 };
                assert_close(&format!("dlogits, {what}"), &dl, &g, tol);
                assert!(dl[2 * vocab..3 * vocab].iter().all(|&v| v == 0.0), "ignored row touched, {what}");
                // The backward adds to what dlogits holds.
                let base = rng.vec(rows * vocab);
                let mut acc = base.clone();
                cross_entropy_backward_with(isa, &mut acc, &[1.7], &logits, &lse, &targets, rows, vocab, -100, eps, true, &Serial);
                assert_close(&format!("dlogits accumulated, {what}"), &acc, &plus(&base, &g), tol / 10.0);
            }
        }
    }
}

#[test]
fn masked_logits_get_an_exact_zero_gradient_and_non_finite_rows_give_nan() {
    for isa in Isa::available() {
        for vocab in [5usize, 40, 1031] {
            // Row 0: every other logit -inf (a mask); row 1 all -inf; row 2 one NaN.
            let mut logits = vec![0.0f32; 3 * vocab];
            for (j, v) in logits[..vocab].iter_mut().enumerate() {
                *v = if j % 2 == 1 { f32::NEG_INFINITY } else { j as f32 * 0.01 };
            }
            logits[vocab..2 * vocab].fill(f32::NEG_INFINITY);
            logits[2 * vocab + vocab / 2] = f32::NAN;
            let what = format!("{isa:?} vocab {vocab}");
            let (mut loss, mut lse) = ([0.0f32], [0.0f32; 3]);
            cross_entropy_forward_with(isa, &mut loss, &mut lse, &logits, &[0, -100, -100], 3, vocab, -100, 0.0, &Serial);
            let want = rows64(&to64(&logits[..vocab]), &[0], vocab, -100, 0.0);
            assert_close(&format!("masked row's loss, {what}"), &loss, &[want[0].1.unwrap()], 1e-6);
            assert_eq!(lse[1], f32::NEG_INFINITY, "all -inf row's lse, {what}");
            assert!(lse[2].is_nan(), "NaN row's lse, {what}");
            let mut dl = vec![0.0f32; 3 * vocab];
            cross_entropy_backward_with(isa, &mut dl, &[1.0], &logits, &lse, &[0, -100, -100], 3, vocab, -100, 0.0, true, &Serial);
            assert!(dl[..vocab].iter().skip(1).step_by(2).all(|v| v.to_bits() == 0), "masked gradient, {what}");
            let g = grad64(&to64(&logits[..vocab]), &[0], vocab, -100, 0.0, 1.0);
            assert_close(&format!("masked row's gradient, {what}"), &dl[..vocab], &g, 1e-6);
            // A row whose target is not ignored and whose logits are all -inf or hold a NaN.
            for (row, t) in [(1usize, 0i32), (2, 1)] {
                cross_entropy_forward_with(isa, &mut loss, &mut lse, &logits, &[-100, -100, -100], 3, vocab, -100, 0.0, &Serial);
                let mut targets = [-100; 3];
                targets[row] = t;
                cross_entropy_forward_with(isa, &mut loss, &mut lse, &logits, &targets, 3, vocab, -100, 0.1, &Serial);
                assert!(loss[0].is_nan(), "row {row}'s loss, {what}");
            }
        }
    }
}

#[test]
fn every_instruction_set_gives_the_same_bits_for_any_thread_count() {
    let mut rng = Rng::new(31);
    let (rows, vocab) = (200, 65);
    let logits: Vec<f32> = rng.vec(rows * vocab).iter().map(|v| v * 4.0).collect();
    let targets: Vec<i32> = (0..rows).map(|r| if r % 5 == 1 { -100 } else { rng.below(vocab) as i32 }).collect();
    for isa in Isa::available() {
        for eps in [0.0f32, 0.1] {
            let run = |par: &dyn ferroformer_kernels::Parallel| {
                let (mut loss, mut lse) = ([0.0f32], vec![0.0; rows]);
                cross_entropy_forward_with(isa, &mut loss, &mut lse, &logits, &targets, rows, vocab, -100, eps, par);
                let mut dl = vec![0.25f32; rows * vocab];
                cross_entropy_backward_with(isa, &mut dl, &[0.9], &logits, &lse, &targets, rows, vocab, -100, eps, true, par);
                [&loss[..], &lse, &dl].concat().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            let one = run(&Serial);
            for threads in [2, 3] {
                assert!(one == run(&Threads(threads)), "{isa:?} eps {eps}, {threads} threads");
            }
        }
    }
}

#[test]
fn writing_dlogits_gives_the_bits_of_accumulating_into_zeros_whatever_it_held() {
    // Split every call that has more than one row block (vocab 2100: two blocks here).
    ferroformer_kernels::parallel::set_min_parallel_flops(0);
    let mut rng = Rng::new(37);
    let rows = 9;
    for isa in Isa::available() {
        for vocab in VOCABS {
            for eps in [0.0f32, 0.1] {
                let logits: Vec<f32> = rng.vec(rows * vocab).iter().map(|v| v * 6.0).collect();
                // Rows 1 and 6 ignored: a write zeroes them.
                let targets: Vec<i32> = (0..rows).map(|r| if r == 1 || r == 6 { -100 } else { rng.below(vocab) as i32 }).collect();
                let (mut loss, mut lse) = ([0.0f32], vec![0.0f32; rows]);
                cross_entropy_forward_with(isa, &mut loss, &mut lse, &logits, &targets, rows, vocab, -100, eps, &Serial);
                let what = format!("{isa:?} vocab {vocab} eps {eps}");
                let mut want = vec![0.0f32; rows * vocab];
                cross_entropy_backward_with(isa, &mut want, &[1.7], &logits, &lse, &targets, rows, vocab, -100, eps, true, &Serial);
                // Garbage a write must never read: NaN, infinities, -0.0 and large values.
                let poisons = [f32::NAN, f32::INFINITY, -0.0, -3.0e38];
                for threads in 1..=3 {
                    let mut got: Vec<f32> = (0..rows * vocab).map(|i| poisons[i % poisons.len()]).collect();
                    cross_entropy_backward_with(isa, &mut got, &[1.7], &logits, &lse, &targets, rows, vocab, -100, eps, false, &Threads(threads));
                    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert!(bits(&got) == bits(&want), "{what}, {threads} threads: written dlogits differ from accumulated into zeros");
                }
            }
        }
    }
    // Every target ignored: writing zeroes the whole buffer, accumulating leaves it.
    let (logits, mut lse, mut loss) = ([0.1f32, 0.2, 0.3, 0.4], [0.0f32; 2], [0.0f32]);
    cross_entropy_forward_with(Isa::Scalar, &mut loss, &mut lse, &logits, &[-1, -1], 2, 2, -1, 0.0, &Serial);
    let mut dl = [f32::NAN; 4];
    cross_entropy_backward_with(Isa::Scalar, &mut dl, &[1.0], &logits, &lse, &[-1, -1], 2, 2, -1, 0.0, false, &Serial);
    assert_eq!(dl.map(f32::to_bits), [0u32; 4]);
    let mut dl = [1.5f32; 4];
    cross_entropy_backward_with(Isa::Scalar, &mut dl, &[1.0], &logits, &lse, &[-1, -1], 2, 2, -1, 0.0, true, &Serial);
    assert_eq!(dl, [1.5; 4]);
}
