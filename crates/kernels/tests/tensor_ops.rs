//! The generic tensor kernels (broadcast binary / where, unary, reductions, softmax on a dim,
//! strided copies, triangles, gather / index_select) against naive f64 twins on odd shapes,
//! every backward against finite differences of the twin (and checked to accumulate), and
//! PyTorch's conventions: tie splitting, first-index max, gradient 0 at kinks, NaN propagation.
mod common;
use common::*;
use ferroformer_kernels::ops::{broadcast::*, index::*, reduce::*, strided::*, unary::*};
use ferroformer_kernels::Serial;

const TOL: f64 = 1e-4;

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Naive: the flat position in `shape` (right-aligned in `out`) of out's multi-index.
fn source_index(lin: usize, out: &[usize], shape: &[usize]) -> usize {
    let mut idx = vec![0usize; out.len()];
    let mut rest = lin;
    for d in (0..out.len()).rev() {
        idx[d] = rest % out[d];
        rest /= out[d];
    }
    let lead = out.len() - shape.len();
    shape.iter().enumerate().fold(0, |acc, (d, &s)| acc * s + if s == 1 { 0 } else { idx[lead + d] })
}

fn i32s(v: &[usize]) -> Vec<i32> {
    v.iter().map(|&d| d as i32).collect()
}

fn binary64(op: u32, a: f64, b: f64) -> f64 {
    match op {
        0 => a + b,
        1 => a - b,
        2 => a * b,
        3 => a / b,
        4 => a.powf(b),
        5 => a.max(b),
        6 => a.min(b),
        7 => (a == b) as u8 as f64,
        8 => (a != b) as u8 as f64,
        9 => (a < b) as u8 as f64,
        10 => (a <= b) as u8 as f64,
        11 => (a > b) as u8 as f64,
        _ => (a >= b) as u8 as f64,
    }
}

const BROADCASTS: [(&[usize], &[usize], &[usize]); 4] = [
    (&[4, 1, 5], &[3, 1], &[4, 3, 5]),
    (&[2, 3, 1, 7], &[3, 5, 1], &[2, 3, 5, 7]),
    (&[3, 5], &[], &[3, 5]),
    (&[], &[6], &[6]),
];

#[test]
fn binary_forward_and_backward_match_naive_twins_on_every_broadcast() {
    let mut rng = Rng::new(11);
    for &(sa, sb, so) in &BROADCASTS {
        for op in 0..13u32 {
            // pow wants a positive base; the rest take signed data.
            let a: Vec<f32> = rng.vec(numel(sa)).iter().map(|&x| if op == 4 { x.abs() + 0.2 } else { x }).collect();
            let b: Vec<f32> = rng.vec(numel(sb)).iter().map(|&x| if op == 3 { x.abs() + 0.3 } else { x }).collect();
            let (ast, bst) = (broadcast_strides(sa, so), broadcast_strides(sb, so));
            let mut out = vec![f32::NAN; numel(so)];
            binary_forward(&mut out, &a, &b, &i32s(so), &ast, &bst, op, &Serial);
            let twin = |a: &[f64], b: &[f64]| -> Vec<f64> {
                (0..numel(so)).map(|i| binary64(op, a[source_index(i, so, sa)], b[source_index(i, so, sb)])).collect()
            };
            assert_close(&format!("binary op {op} {sa:?} {sb:?}"), &out, &twin(&to64(&a), &to64(&b)), TOL);
            if op >= 7 {
                continue;
            }
            let dy = rng.vec(numel(so));
            let loss = |a: &[f64], b: &[f64]| twin(a, b).iter().zip(&dy).map(|(y, &g)| y * g as f64).sum::<f64>();
            let (base_a, base_b) = (rng.vec(a.len()), rng.vec(b.len()));
            let (mut da, mut db) = (base_a.clone(), base_b.clone());
            binary_backward(Some(&mut da), Some(&mut db), &dy, &a, &b, &i32s(so), &ast, &bst, op, &Serial);
            let want_a = fd_grad(|x| loss(x, &to64(&b)), &to64(&a), 1e-6);
            let want_b = fd_grad(|x| loss(&to64(&a), x), &to64(&b), 1e-6);
            assert_close(&format!("binary op {op} da"), &da, &plus(&base_a, &want_a), 1e-3);
            assert_close(&format!("binary op {op} db"), &db, &plus(&base_b, &want_b), 1e-3);
        }
    }
}

#[test]
fn comparisons_write_u8_masks_through_broadcasts() {
    // [2, 1] vs [3]: a[i] op b[j].
    let (a, b) = ([1.0f32, 2.0], [0.5f32, 2.0, f32::NAN]);
    for (op, want) in [(7u32, [0u8, 0, 0, 0, 1, 0]), (8, [1, 1, 1, 1, 0, 1]), (9, [0, 1, 0, 0, 0, 0]), (12, [1, 0, 0, 1, 1, 0])] {
        let mut out = [9u8; 6];
        compare_forward(&mut out, &a, &b, &[2, 3], &[1, 0], &[0, 1], op, &Serial);
        assert_eq!(out, want, "comparison {op}");
    }
}

#[test]
fn maximum_and_minimum_split_ties_and_propagate_nan() {
    let (a, b) = ([1.0f32, 2.0, f32::NAN], [1.0f32, 1.0, 3.0]);
    for op in [5u32, 6] {
        let mut out = [0.0f32; 3];
        binary_forward(&mut out, &a, &b, &[3], &[1], &[1], op, &Serial);
        assert!(out[2].is_nan(), "op {op}: NaN must propagate, got {out:?}");
        let (mut da, mut db) = ([0.0f32; 3], [0.0f32; 3]);
        binary_backward(Some(&mut da), Some(&mut db), &[2.0, 2.0, 2.0], &a, &b, &[3], &[1], &[1], op, &Serial);
        assert_eq!((da[0], db[0]), (1.0, 1.0), "op {op}: a tie splits dy in half");
        let (win, lose) = if op == 5 { (da[1], db[1]) } else { (db[1], da[1]) };
        assert_eq!((win, lose), (2.0, 0.0), "op {op}: the winner takes dy");
    }
    // Only one gradient wanted: the other may be absent.
    let mut da = [0.0f32; 3];
    binary_backward(Some(&mut da), None, &[1.0; 3], &a, &b, &[3], &[1], &[1], 2, &Serial);
    assert_eq!(&da[..2], &[1.0, 1.0]);
}

#[test]
fn where_selects_through_broadcasts_and_sums_gradients_back() {
    let mut rng = Rng::new(5);
    let (sc, sa, sb, so): (&[usize], &[usize], &[usize], &[usize]) = (&[1, 4, 1], &[3, 1, 5], &[4, 5], &[3, 4, 5]);
    let cond: Vec<u8> = (0..numel(sc)).map(|_| rng.below(2) as u8).collect();
    let (a, b) = (rng.vec(numel(sa)), rng.vec(numel(sb)));
    let strides = (broadcast_strides(sc, so), broadcast_strides(sa, so), broadcast_strides(sb, so));
    let mut out = vec![0.0f32; numel(so)];
    where_forward(&mut out, &cond, &a, &b, &i32s(so), &strides.0, &strides.1, &strides.2, &Serial);
    let dy = rng.vec(numel(so));
    let (mut da, mut db) = (vec![0.5f32; a.len()], vec![0.5f32; b.len()]);
    where_backward(Some(&mut da), Some(&mut db), &dy, &cond, &i32s(so), &strides.0, &strides.1, &strides.2);
    let (mut want, mut want_da, mut want_db) = (vec![0.0; out.len()], vec![0.5f64; a.len()], vec![0.5f64; b.len()]);
    for i in 0..out.len() {
        let (ia, ib) = (source_index(i, so, sa), source_index(i, so, sb));
        if cond[source_index(i, so, sc)] != 0 {
            want[i] = a[ia] as f64;
            want_da[ia] += dy[i] as f64;
        } else {
            want[i] = b[ib] as f64;
            want_db[ib] += dy[i] as f64;
        }
    }
    assert_close("where", &out, &want, 0.0);
    assert_close("where da", &da, &want_da, 1e-6);
    assert_close("where db", &db, &want_db, 1e-6);
}

fn unary64(op: u32, x: f64, p0: f64, p1: f64) -> f64 {
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    match op {
        0 => x.exp(),
        1 => x.ln(),
        2 => x.sqrt(),
        3 => 1.0 / x.sqrt(),
        4 => x.tanh(),
        5 => sig(x),
        6 => x.max(0.0),
        7 => 0.5 * x * (1.0 + erf64(x / 2f64.sqrt())),
        8 => 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh()),
        9 => x * sig(x),
        10 => if p0 * x > p1 { x } else { (1.0 + (p0 * x).exp()).ln() / p0 },
        11 => x.abs(),
        12 => -x,
        13 => x.max(p0).min(p1),
        14 => x + p0,
        15 => p0 - x,
        16 => x * p0,
        17 => x / p0,
        18 => p0 / x,
        19 => x.powf(p0),
        _ => p0.powf(x),
    }
}

/// erf by its Taylor series (|x| <= 3 here), accurate far below the tolerance.
fn erf64(x: f64) -> f64 {
    let (mut term, mut sum) = (x, x);
    for n in 1..80 {
        term *= -x * x / n as f64;
        sum += term / (2 * n + 1) as f64;
    }
    2.0 / std::f64::consts::PI.sqrt() * sum
}

#[test]
fn unary_ops_match_naive_twins_and_their_finite_differences() {
    let mut rng = Rng::new(3);
    let n = 37;
    // (op, p0, p1, positive inputs only)
    let cases: [(u32, f32, f32, bool); 23] = [
        (0, 0.0, 0.0, false), (1, 0.0, 0.0, true), (2, 0.0, 0.0, true), (3, 0.0, 0.0, true),
        (4, 0.0, 0.0, false), (5, 0.0, 0.0, false), (6, 0.0, 0.0, false), (7, 0.0, 0.0, false),
        (8, 0.0, 0.0, false), (9, 0.0, 0.0, false), (10, 1.0, 20.0, false), (10, 2.0, 0.5, false),
        (11, 0.0, 0.0, false), (12, 0.0, 0.0, false), (13, -0.5, 0.75, false), (14, 2.5, 0.0, false),
        (15, 2.0, 0.0, false), (16, -1.5, 0.0, false), (17, 3.0, 0.0, false), (18, 1.0, 0.0, true),
        (19, 3.0, 0.0, false), (19, -1.5, 0.0, true), (20, 2.0, 0.0, false),
    ];
    for &(op, p0, p1, positive) in &cases {
        // Inputs in [-3, 3] (or [0.2, 3.2]), kept away from the kinks at 0 and the clamp bounds.
        let x: Vec<f32> = rng.vec(n).iter().map(|&v| {
            let v = v * 3.0;
            let v = if positive { v.abs() + 0.2 } else { v };
            if (v.abs() < 0.01) || (v - p0).abs() < 0.01 || (v - p1).abs() < 0.01 { v + 0.05 } else { v }
        }).collect();
        let mut out = vec![f32::NAN; n];
        unary_forward(&mut out, &x, op, p0, p1, &Serial);
        let twin: Vec<f64> = x.iter().map(|&v| unary64(op, v as f64, p0 as f64, p1 as f64)).collect();
        assert_close(&format!("unary op {op} forward"), &out, &twin, TOL);
        let dy = rng.vec(n);
        let base = rng.vec(n);
        let mut dx = base.clone();
        unary_backward(&mut dx, &dy, &x, op, p0, p1, &Serial);
        let want: Vec<f64> = x.iter().zip(&dy).map(|(&v, &g)| {
            let h = 1e-6;
            let (a, b) = (v as f64 + h, v as f64 - h);
            g as f64 * (unary64(op, a, p0 as f64, p1 as f64) - unary64(op, b, p0 as f64, p1 as f64)) / (2.0 * h)
        }).collect();
        assert_close(&format!("unary op {op} backward"), &dx, &plus(&base, &want), 1e-3);
    }
}

#[test]
fn unary_conventions_at_kinks_bounds_and_nan() {
    let grad = |op: u32, x: f32, p0: f32, p1: f32| {
        let mut d = [0.0f32];
        unary_backward(&mut d, &[1.0], &[x], op, p0, p1, &Serial);
        d[0]
    };
    assert_eq!(grad(6, 0.0, 0.0, 0.0), 0.0, "relu'(0) = 0");
    assert_eq!(grad(11, 0.0, 0.0, 0.0), 0.0, "abs'(0) = 0");
    assert_eq!(grad(13, -0.5, -0.5, 0.75), 0.0, "clamp' at min = 0");
    assert_eq!(grad(13, 0.75, -0.5, 0.75), 0.0, "clamp' at max = 0");
    assert_eq!(grad(13, 0.1, -0.5, 0.75), 1.0);
    let mut y = [0.0f32; 3];
    for op in [6u32, 13, 11, 5] {
        unary_forward(&mut y, &[f32::NAN, 1.0, -1.0], op, -0.5, 0.75, &Serial);
        assert!(y[0].is_nan(), "op {op} of NaN must be NaN");
    }
    unary_forward(&mut y, &[30.0, -1.0, 0.0], 10, 1.0, 20.0, &Serial);
    assert_eq!(y[0], 30.0, "softplus returns x above the threshold");
}

/// Naive reduce over n of [outer, n, inner].
fn reduce64(op: u32, x: &[f64], outer: usize, n: usize, inner: usize, correction: f64) -> Vec<f64> {
    let mut out = vec![0.0; outer * inner];
    for o in 0..outer {
        for i in 0..inner {
            let v: Vec<f64> = (0..n).map(|j| x[(o * n + j) * inner + i]).collect();
            let mean = v.iter().sum::<f64>() / n as f64;
            let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            out[o * inner + i] = match op {
                0 => v.iter().sum(),
                1 => mean,
                2 => v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - correction),
                3 => max,
                4 => v.iter().cloned().fold(f64::INFINITY, f64::min),
                _ => max + v.iter().map(|x| (x - max).exp()).sum::<f64>().ln(),
            };
        }
    }
    out
}

#[test]
fn reductions_match_naive_twins_and_finite_differences() {
    let mut rng = Rng::new(7);
    for &(outer, n, inner) in &[(3usize, 4usize, 5usize), (1, 7, 1), (5, 1, 3), (2, 3, 1)] {
        for op in 0..6u32 {
            for correction in [0.0f32, 1.0] {
                if (op != 2 && correction != 0.0) || (op == 2 && n as f32 <= correction) {
                    continue;
                }
                let x = rng.vec(outer * n * inner);
                let mut out = vec![f32::NAN; outer * inner];
                reduce_forward(&mut out, &x, outer, n, inner, op, correction, &Serial);
                let want = reduce64(op, &to64(&x), outer, n, inner, correction as f64);
                assert_close(&format!("reduce {op} [{outer},{n},{inner}]"), &out, &want, TOL);
                let dy = rng.vec(outer * inner);
                let base = rng.vec(x.len());
                let mut dx = base.clone();
                reduce_backward(&mut dx, &dy, &x, &out, outer, n, inner, op, correction, &Serial);
                let loss = |v: &[f64]| reduce64(op, v, outer, n, inner, correction as f64).iter().zip(&dy).map(|(y, &g)| y * g as f64).sum::<f64>();
                let fd = fd_grad(loss, &to64(&x), 1e-6);
                assert_close(&format!("reduce {op} backward"), &dx, &plus(&base, &fd), 1e-3);
            }
        }
    }
}

#[test]
fn amax_spreads_ties_and_max_dim_takes_the_first_index() {
    // [1, 6]: maxima 3 at positions 1, 3 and 5.
    let x = [1.0f32, 3.0, 2.0, 3.0, 0.0, 3.0];
    let mut y = [0.0f32];
    reduce_forward(&mut y, &x, 1, 6, 1, 3, 0.0, &Serial);
    let mut dx = [0.0f32; 6];
    reduce_backward(&mut dx, &[1.5], &x, &y, 1, 6, 1, 3, 0.0, &Serial);
    assert_eq!(dx, [0.0, 0.5, 0.0, 0.5, 0.0, 0.5]);
    let (mut v, mut idx) = ([0.0f32], [0i32]);
    max_dim_forward(&mut v, &mut idx, &x, 1, 6, 1, false, &Serial);
    assert_eq!((v[0], idx[0]), (3.0, 1));
    max_dim_forward(&mut v, &mut idx, &x, 1, 6, 1, true, &Serial);
    assert_eq!((v[0], idx[0]), (0.0, 4));
    // Its backward is gather_backward: the whole dy to the returned index.
    let mut dx = [0.0f32; 6];
    gather_backward(&mut dx, &[2.0], &[1], 1, 6, 1, 1, &Serial);
    assert_eq!(dx, [0.0, 2.0, 0.0, 0.0, 0.0, 0.0]);
    // NaN wins, at its first position; amax and logsumexp propagate it too.
    let xn = [1.0f32, f32::NAN, 5.0];
    max_dim_forward(&mut v, &mut idx, &xn, 1, 3, 1, false, &Serial);
    assert!(v[0].is_nan() && idx[0] == 1);
    for op in [3u32, 4, 5] {
        reduce_forward(&mut y, &xn, 1, 3, 1, op, 0.0, &Serial);
        assert!(y[0].is_nan(), "reduce {op} of a NaN row");
    }
    // Along a middle dim: [2, 3, 2], n = 3.
    let x3 = [0.0f32, 9.0, 4.0, 1.0, 4.0, 9.0, 5.0, 5.0, 6.0, 5.0, 6.0, 2.0];
    let (mut v2, mut i2) = ([0.0f32; 4], [0i32; 4]);
    max_dim_forward(&mut v2, &mut i2, &x3, 2, 3, 2, false, &Serial);
    assert_eq!((v2, i2), ([4.0, 9.0, 6.0, 5.0], [1, 0, 1, 0]));
}

#[test]
fn softmax_and_log_softmax_on_a_middle_dim_match_twins() {
    let mut rng = Rng::new(9);
    let (outer, n, inner) = (3, 5, 7);
    let x: Vec<f32> = rng.vec(outer * n * inner).iter().map(|v| v * 4.0).collect();
    for log in [false, true] {
        let twin = |v: &[f64]| -> Vec<f64> {
            let mut out = vec![0.0; v.len()];
            for o in 0..outer {
                for i in 0..inner {
                    let at = |j: usize| (o * n + j) * inner + i;
                    let lse = (0..n).map(|j| v[at(j)].exp()).sum::<f64>().ln();
                    for j in 0..n {
                        out[at(j)] = if log { v[at(j)] - lse } else { (v[at(j)] - lse).exp() };
                    }
                }
            }
            out
        };
        let mut y = vec![f32::NAN; x.len()];
        softmax_dim_forward(&mut y, &x, outer, n, inner, log, &Serial);
        assert_close(&format!("softmax log={log}"), &y, &twin(&to64(&x)), TOL);
        let dy = rng.vec(x.len());
        let base = rng.vec(x.len());
        let mut dx = base.clone();
        softmax_dim_backward(&mut dx, &dy, &y, outer, n, inner, log, &Serial);
        let fd = fd_grad(|v| twin(v).iter().zip(&dy).map(|(a, &g)| a * g as f64).sum(), &to64(&x), 1e-6);
        assert_close(&format!("softmax log={log} backward"), &dx, &plus(&base, &fd), 1e-3);
    }
}

#[test]
fn strided_copy_permutes_slices_and_expands_and_its_backward_is_the_adjoint() {
    let mut rng = Rng::new(13);
    // permute [2, 3, 4, 5] by [2, 0, 3, 1] -> [4, 2, 5, 3]
    let x = rng.vec(120);
    let (shape, strides) = ([4, 2, 5, 3], [5, 60, 1, 20]);
    let mut y = vec![f32::NAN; 120];
    strided_copy_forward(&mut y, &x, &shape, &strides, 0, &Serial);
    for (a, b, c, d) in (0..4).flat_map(|a| (0..2).flat_map(move |b| (0..5).flat_map(move |c| (0..3).map(move |d| (a, b, c, d))))) {
        assert_eq!(y[((a * 2 + b) * 5 + c) * 3 + d], x[((b * 3 + d) * 4 + a) * 5 + c]);
    }
    // <dy, P x> = <P^T dy, x> for a stepped slice x[:, 1:7:2, :] of [3, 9, 4] (offset 4, stride 8).
    let x = rng.vec(3 * 9 * 4);
    let (shape, strides, offset) = ([3, 3, 4], [36, 8, 1], 4);
    let mut y = vec![0.0f32; 36];
    strided_copy_forward(&mut y, &x, &shape, &strides, offset, &Serial);
    let dy = rng.vec(36);
    let mut dx = vec![0.0f32; x.len()];
    strided_copy_backward(&mut dx, &dy, &shape, &strides, offset, &Serial);
    let lhs: f64 = y.iter().zip(&dy).map(|(&a, &b)| a as f64 * b as f64).sum();
    let rhs: f64 = dx.iter().zip(&x).map(|(&a, &b)| a as f64 * b as f64).sum();
    assert!((lhs - rhs).abs() < 1e-5, "adjoint {lhs} vs {rhs}");
    assert_eq!(dx[0], 0.0, "elements outside the slice get no gradient");
    // expand [3, 1] -> [3, 4]: backward sums the 4 copies.
    let mut dx = [1.0f32; 3];
    strided_copy_backward(&mut dx, &[1.0; 12], &[3, 4], &[1, 0], 0, &Serial);
    assert_eq!(dx, [5.0, 5.0, 5.0]);
}

#[test]
#[should_panic(expected = "outside its 4 elements")]
fn strided_copy_refuses_a_view_past_its_buffer() {
    let mut y = [0.0f32; 4];
    strided_copy_forward(&mut y, &[0.0; 4], &[2, 2], &[2, 1], 1, &Serial);
}

#[test]
fn triangles_keep_their_diagonals() {
    let x: Vec<f32> = (1..=2 * 4 * 6).map(|v| v as f32).collect();
    for (diagonal, upper) in [(1, false), (-1, true), (-2, false), (2, true)] {
        let mut y = vec![f32::NAN; x.len()];
        triangle_forward(&mut y, &x, 2, 4, 6, diagonal, upper);
        let mut dx = vec![0.5f32; x.len()];
        triangle_backward(&mut dx, &vec![1.0; x.len()], 2, 4, 6, diagonal, upper);
        for i in 0..x.len() {
            let (r, c) = ((i / 6) % 4, i % 6);
            let keep = if upper { c as i32 - r as i32 >= diagonal } else { c as i32 - r as i32 <= diagonal };
            assert_eq!(y[i], if keep { x[i] } else { 0.0 });
            assert_eq!(dx[i], if keep { 1.5 } else { 0.5 });
        }
    }
}

#[test]
fn gather_scatter_and_index_select_match_naive_loops() {
    let mut rng = Rng::new(17);
    // gather on dim 1 of [3, 4, 2]-shaped [outer=3, n=4, inner=2] with k = 5.
    let (outer, n, k, inner) = (3, 4, 5, 2);
    let x = rng.vec(outer * n * inner);
    let index: Vec<i32> = (0..outer * k * inner).map(|_| rng.below(n) as i32).collect();
    let mut y = vec![0.0f32; index.len()];
    gather_forward(&mut y, &x, &index, outer, n, k, inner, &Serial);
    let mut dx = vec![0.25f32; x.len()];
    let dy = rng.vec(y.len());
    gather_backward(&mut dx, &dy, &index, outer, n, k, inner, &Serial);
    let mut want_dx = vec![0.25f64; x.len()];
    for o in 0..outer {
        for j in 0..k {
            for i in 0..inner {
                let at = (o * k + j) * inner + i;
                let src = (o * n + index[at] as usize) * inner + i;
                assert_eq!(y[at], x[src]);
                want_dx[src] += dy[at] as f64;
            }
        }
    }
    assert_close("gather backward (scatter_add)", &dx, &want_dx, 1e-6);
    // index_select on dim 1 with repeats, and an embedding with padding_idx 1.
    let sel = [2i32, 0, 2];
    let mut y = vec![0.0f32; outer * 3 * inner];
    index_select_forward(&mut y, &x, &sel, outer, n, 3, inner, &Serial);
    assert_eq!(&y[0..2], &x[4..6]);
    let mut dx = vec![0.0f32; x.len()];
    index_select_backward(&mut dx, &vec![1.0; y.len()], &sel, outer, n, 3, inner, -1, &Serial);
    assert_eq!(&dx[0..8], &[1.0, 1.0, 0.0, 0.0, 2.0, 2.0, 0.0, 0.0]);
    let table = rng.vec(10 * 5);
    let ids = [1i32, 3, 1, 9];
    let mut rows = vec![0.0f32; 20];
    index_select_forward(&mut rows, &table, &ids, 1, 10, 4, 5, &Serial);
    assert_eq!(&rows[0..5], &table[5..10], "the padding row is still read");
    let mut dtable = vec![0.0f32; 50];
    index_select_backward(&mut dtable, &[1.0; 20], &ids, 1, 10, 4, 5, 1, &Serial);
    assert!(dtable[5..10].iter().all(|&v| v == 0.0), "the padding row gets no gradient");
    assert!(dtable[15..20].iter().all(|&v| v == 1.0) && dtable[45..50].iter().all(|&v| v == 1.0));
}

#[test]
#[should_panic(expected = "index 4 out of range")]
fn gather_names_an_index_out_of_range() {
    let mut y = [0.0f32];
    gather_forward(&mut y, &[0.0; 4], &[4], 1, 4, 1, 1, &Serial);
}
