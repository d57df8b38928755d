//! Vectorisable f32 math: exp, log, tanh, sigmoid, SiLU, softplus and the two GELUs, with
//! their derivatives. Each is branch-free scalar code (selects, bit casts, integer shifts, no
//! calls) marked `#[inline(always)]`, like `exp_approx`: inside an instruction set's
//! `#[target_feature]` wrapper LLVM turns the slice loops below into AVX-512 / AVX2 / simd128
//! code, so one body serves every ISA. The f64 functions of `ops::activation` and
//! `ops::unary` stay as the test oracle.
//!
//! Accuracy (tests/math.rs): a few ulp where the value is not tiny, and relative precision
//! kept in the tails that matter (GELU's negative tail, sigmoid for large |x|). Overflow,
//! underflow, infinities and NaN follow IEEE and PyTorch (NaN in, NaN out).

use super::VecOps;

/// a·b + c for the polynomials below: one fused instruction on the instruction sets that have
/// FMA (AVX2 with FMA, AVX-512: ~1.5x the GELU throughput of a multiply and an add, and one
/// rounding instead of two), a multiply and an add elsewhere (scalar, simd128: a libm `fmaf`
/// call there would cost more than the whole polynomial). So the last bit of these functions
/// may differ between instruction sets; it never depends on the thread count.
pub(crate) trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
    /// a·b as hi + lo, with |lo| <= 2^-10 |hi|: the rounded product and its exact rounding
    /// error with FMA (two instructions); without it, Dekker's split of each factor into
    /// 12 + 12 significant bits, so that hi = a_hi·b_hi is exact and only lo is rounded.
    fn product_hi_lo(a: f32, b: f32) -> (f32, f32);
}

/// Two roundings, on every target: `simd::exp_approx` (softmax, cross-entropy) keeps the same
/// bits on every instruction set.
pub(crate) struct Unfused;

macro_rules! mul_add_for {
    ($($(#[$attr:meta])* $isa:ty => $fused:literal;)*) => {$(
        $(#[$attr])*
        impl MulAdd for $isa {
            #[inline(always)]
            fn mul_add(a: f32, b: f32, c: f32) -> f32 {
                if $fused { a.mul_add(b, c) } else { a * b + c }
            }
            #[inline(always)]
            fn product_hi_lo(a: f32, b: f32) -> (f32, f32) {
                if $fused {
                    let hi = a * b;
                    (hi, a.mul_add(b, -hi))
                } else {
                    let split = |v: f32| f32::from_bits(v.to_bits() & 0xffff_f000);
                    let (a_hi, b_hi) = (split(a), split(b));
                    (a_hi * b_hi, a_hi * (b - b_hi) + (a - a_hi) * b)
                }
            }
        }
    )*};
}

mul_add_for! {
    Unfused => false;
    super::scalar::Scalar => false;
    #[cfg(target_arch = "x86_64")]
    super::avx2::Avx2 => true;
    #[cfg(target_arch = "x86_64")]
    super::avx512::Avx512 => true;
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    super::wasm128::Wasm128 => false;
}

/// ln 2 split for Cody-Waite range reduction: `n * LN2_HI` is exact for |n| < 2^15.
pub(crate) const LN2_HI: f32 = 0.693_359_4;
pub(crate) const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5 * 2^23: adding it to a float of magnitude < 2^22 rounds it to an integer.
pub(crate) const ROUND_MAGIC: f32 = 12_582_912.0;

/// e^r for a reduced argument |r| <= ln2 / 2: Cephes' expf polynomial, within ~2 ulp. Shared
/// by [`exp_hi_lo`] and `simd::exp_approx`, which differ only in range handling.
#[inline(always)]
pub(crate) fn exp_reduced<M: MulAdd>(r: f32) -> f32 {
    let mut q = 1.987_569_1e-4f32;
    q = M::mul_add(q, r, 1.398_199_9e-3);
    q = M::mul_add(q, r, 8.333_452e-3);
    q = M::mul_add(q, r, 4.166_579_6e-2);
    q = M::mul_add(q, r, 1.666_666_5e-1);
    q = M::mul_add(q, r, 0.5);
    M::mul_add(q * r, r, r) + 1.0
}

/// e^(hi + lo), where `lo` is a correction of magnitude up to a few units carried beside
/// `hi`: it joins the reduced argument (|r| <= ln2 / 2) instead of being rounded into `hi`,
/// so an argument known as an exact `hi` plus a small `lo` (GELU's -x²/2) keeps full
/// relative precision however large |hi| is. Cephes' expf polynomial, within ~2 ulp; 0 below
/// -104 (f32 underflows there), +inf above ~88.72, NaN propagates.
#[inline(always)]
pub(crate) fn exp_hi_lo<M: MulAdd>(hi: f32, lo: f32) -> f32 {
    let s = hi + lo;
    let t = s.clamp(-104.0, 89.0) * std::f32::consts::LOG2_E + ROUND_MAGIC;
    let n = t - ROUND_MAGIC;
    let ni = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    // hi - n·LN2_HI is exact (n·LN2_HI is, and the two are within a factor 2 near |hi| > 1).
    let r = (hi - n * LN2_HI) - n * LN2_LO + lo;
    let e = exp_reduced::<M>(r);
    // 2^n in two factors, so that n in [-150, 129] (denormal results, overflow to inf) needs
    // no exponent outside the normal range.
    let n1 = ni >> 1;
    let y = e * f32::from_bits(((n1 + 127) << 23) as u32) * f32::from_bits(((ni - n1 + 127) << 23) as u32);
    if s < -104.0 {
        0.0
    } else if s > 89.0 {
        f32::INFINITY
    } else {
        y
    }
}

/// 2^-64: brings a value scaled by 2^64 back (exactly, where the result is normal).
const TWO_POW_M64: f32 = f32::from_bits((127 - 64) << 23);

/// e^(hi + lo) · 2^64 for hi in [-120, 0] (and lo as in [`exp_hi_lo`]), for callers whose
/// argument is known to lie there (GELU's -x²/2 with |x| capped): no clamp and no select, and
/// a normal number (>= 2^-110) where e^(hi + lo) itself is denormal, so that a caller can scale
/// its product back by 2^-64 in one rounding ([`scale_down_64`]).
#[inline(always)]
fn exp_hi_lo_nonpositive_scaled<M: MulAdd>(hi: f32, lo: f32) -> f32 {
    let (r, scale) = exp_nonpositive_reduce::<M>(hi, lo);
    exp_reduced::<M>(r) * scale
}

/// [`exp_hi_lo_nonpositive_scaled`]'s range reduction: (r, 2^(n + 64)) with e^(hi + lo) ·
/// 2^64 = e^r · 2^(n + 64), |r| <= ln2 / 2.
#[inline(always)]
fn exp_nonpositive_reduce<M: MulAdd>(hi: f32, lo: f32) -> (f32, f32) {
    let t = M::mul_add(hi, std::f32::consts::LOG2_E, ROUND_MAGIC);
    let n = t - ROUND_MAGIC;
    // Exact: n·LN2_HI is, and hi - n·LN2_HI is representable.
    let r = M::mul_add(n, -LN2_LO, M::mul_add(n, -LN2_HI, hi)) + lo;
    // t's bits are those of ROUND_MAGIC plus n, so this is the biased exponent n + 64 + 127,
    // in [17, 191] for n in [-174, 0].
    (r, f32::from_bits(t.to_bits().wrapping_sub(0x4B40_0000 - 64 - 127) << 23))
}

/// e^(hi + lo) for hi in [-120, 0]: [`exp_hi_lo_nonpositive_scaled`] · 2^-64, which keeps
/// denormal results correctly rounded and gives 0 below ~-103.9 with two multiplications
/// instead of `exp_hi_lo`'s split exponent.
#[inline(always)]
fn exp_hi_lo_nonpositive<M: MulAdd>(hi: f32, lo: f32) -> f32 {
    exp_hi_lo_nonpositive_scaled::<M>(hi, lo) * TWO_POW_M64
}

/// y · 2^-64 correctly rounded, denormal results included, for a y that is finite or NaN,
/// without a floating-point multiply that meets a denormal (on Intel cores each one takes a
/// microcode assist of ~100 cycles; adds do not) in any lane of the vector code, which runs
/// both sides of a select: from 2^-62 up, y's exponent less 64; below it, the integer
/// round(|y| · 2^85) (rounded to nearest even by adding 2^23) under y's sign is the denormal's
/// bit pattern. Integer selects, which the compiler cannot turn into a product formed in every
/// lane (it does so with a select of a product's operand).
#[inline(always)]
fn scale_down_64(y: f32) -> f32 {
    const TWO_POW_23: f32 = 8_388_608.0;
    let bits = y.to_bits();
    let magnitude = bits & 0x7fff_ffff;
    let units = f32::from_bits(magnitude) * f32::from_bits((127 + 85) << 23) + TWO_POW_23;
    let denormal = (units.to_bits().wrapping_sub(TWO_POW_23.to_bits())) | (bits & 0x8000_0000);
    let scaled = if magnitude < 0x7f80_0000 { bits.wrapping_sub(64 << 23) } else { bits }; // NaN kept
    f32::from_bits(if magnitude < (127 - 62) << 23 { denormal } else { scaled })
}

/// e^-|x|, which lies in [0, 1] (sigmoid's and softplus's tails): |x| capped at 120, where
/// the result is 0 in f32 anyway, so [`exp_hi_lo_nonpositive`] serves; NaN stays NaN.
#[inline(always)]
fn exp_neg_abs<M: MulAdd>(x: f32) -> f32 {
    let a = x.abs();
    exp_hi_lo_nonpositive::<M>(if a > 120.0 { -120.0 } else { -a }, 0.0)
}

/// e^x over the whole f32 range (denormal results below -87.3, +inf above 88.72).
#[inline(always)]
pub(crate) fn exp_f32<M: MulAdd>(x: f32) -> f32 {
    exp_hi_lo::<M>(x, 0.0)
}

/// ln x (Cephes' logf, ~1 ulp): -inf at ±0, NaN below 0, +inf at +inf, denormals handled.
#[inline(always)]
pub(crate) fn ln_f32<M: MulAdd>(x: f32) -> f32 {
    let tiny = x < f32::MIN_POSITIVE;
    let xs = if tiny { x * 8_388_608.0 } else { x }; // 2^23 lifts a denormal into the normals
    let bits = xs.to_bits() as i32;
    // xs = m · 2^e with m in [0.5, 1).
    let e = ((bits >> 23) & 0xff) - 126 - if tiny { 23 } else { 0 };
    let m = f32::from_bits(((bits & 0x007f_ffff) | 0x3f00_0000) as u32);
    // Centre the mantissa on 1: m in [sqrt(1/2), sqrt(2)) after doubling the small ones.
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    let ef = (e - small as i32) as f32;
    let u = if small { m + m - 1.0 } else { m - 1.0 };
    let z = u * u;
    let mut p = 7.037_683_6e-2f32;
    p = M::mul_add(p, u, -1.151_461e-1);
    p = M::mul_add(p, u, 1.167_699_9e-1);
    p = M::mul_add(p, u, -1.242_014_1e-1);
    p = M::mul_add(p, u, 1.424_932_3e-1);
    p = M::mul_add(p, u, -1.666_805_8e-1);
    p = M::mul_add(p, u, 2.000_071_5e-1);
    p = M::mul_add(p, u, -2.499_999_4e-1);
    p = M::mul_add(p, u, 3.333_333e-1);
    let y = p * u * z + ef * LN2_LO - 0.5 * z + u + ef * LN2_HI;
    if x == f32::INFINITY {
        x
    } else if x == 0.0 {
        f32::NEG_INFINITY
    } else if x > 0.0 {
        y
    } else {
        f32::NAN // negative or NaN
    }
}

/// ln(1 + u) for u >= 0, keeping relative precision for small u (Goldberg's correction:
/// w = 1 + u rounds, and ln(w) · u / (w - 1) cancels that rounding).
#[inline(always)]
fn ln_1p_nonneg<M: MulAdd>(u: f32) -> f32 {
    let w = 1.0 + u;
    let d = w - 1.0;
    if d == 0.0 { u } else { ln_f32::<M>(w) * (u / d) }
}

/// tanh for |x| < 0.625 (Cephes' tanhf polynomial, x + x³ P(x²)), where 1 - 2/(e^2x + 1)
/// would cancel.
#[inline(always)]
fn tanh_small<M: MulAdd>(x: f32) -> f32 {
    let z = x * x;
    let mut p = -5.704_988_7e-3f32;
    p = M::mul_add(p, z, 2.063_909e-2);
    p = M::mul_add(p, z, -5.373_971_6e-2);
    p = M::mul_add(p, z, 1.333_144_2e-1);
    p = M::mul_add(p, z, -3.333_328e-1);
    p * z * x + x
}

/// tanh x: odd, saturating at ±1, NaN kept.
#[inline(always)]
pub(crate) fn tanh_f32<M: MulAdd>(x: f32) -> f32 {
    let a = x.abs();
    // 1 - |tanh x| = 2 / (e^2|x| + 1): e overflows to inf for large |x|, giving exactly 1.
    let big = 1.0 - 2.0 / (exp_f32::<M>(a + a) + 1.0);
    if a < 0.625 { tanh_small::<M>(x) } else { big.copysign(x) }
}

/// d/dx tanh x = 1 - tanh² x, as q (2 - q) with q = 1 - |tanh x| for |x| >= 0.625 so that
/// the far tails keep their relative precision.
#[inline(always)]
pub(crate) fn tanh_grad_f32<M: MulAdd>(x: f32) -> f32 {
    let a = x.abs();
    let q = 2.0 / (exp_f32::<M>(a + a) + 1.0);
    let t = tanh_small::<M>(x);
    if a < 0.625 { 1.0 - t * t } else { q * (2.0 - q) }
}

/// (σ(x), σ(-x)) from e = e^-|x| <= 1, which never overflows and keeps each of the two
/// relatively precise for any x.
#[inline(always)]
fn sigmoid_pair<M: MulAdd>(x: f32) -> (f32, f32) {
    let e = exp_neg_abs::<M>(x);
    let r = 1.0 / (1.0 + e);
    if x >= 0.0 { (r, e * r) } else { (e * r, r) }
}

/// σ(x) = 1 / (1 + e^-x).
#[inline(always)]
pub(crate) fn sigmoid_f32<M: MulAdd>(x: f32) -> f32 {
    sigmoid_pair::<M>(x).0
}

/// σ'(x) = σ(x) σ(-x).
#[inline(always)]
pub(crate) fn sigmoid_grad_f32<M: MulAdd>(x: f32) -> f32 {
    let (s, sm) = sigmoid_pair::<M>(x);
    s * sm
}

/// SiLU x · σ(x).
#[inline(always)]
pub(crate) fn silu_f32<M: MulAdd>(x: f32) -> f32 {
    x * sigmoid_pair::<M>(x).0
}

/// d/dx x σ(x) = σ(x) (1 + x σ(-x)).
#[inline(always)]
pub(crate) fn silu_grad_f32<M: MulAdd>(x: f32) -> f32 {
    let (s, sm) = sigmoid_pair::<M>(x);
    s * (1.0 + x * sm)
}

/// PyTorch's softplus: ln(1 + e^(βx)) / β, or x where βx > threshold. Written as
/// max(βx, 0) + ln(1 + e^-|βx|) so that neither tail overflows or cancels.
#[inline(always)]
pub(crate) fn softplus_f32<M: MulAdd>(x: f32, beta: f32, threshold: f32) -> f32 {
    let y = beta * x;
    let sp = (if y > 0.0 { y } else { 0.0 }) + ln_1p_nonneg::<M>(exp_neg_abs::<M>(y));
    if y > threshold { x } else { sp / beta }
}

/// d/dx softplus = σ(βx), or 1 where βx > threshold.
#[inline(always)]
pub(crate) fn softplus_grad_f32<M: MulAdd>(x: f32, beta: f32, threshold: f32) -> f32 {
    let y = beta * x;
    if y > threshold { 1.0 } else { sigmoid_f32::<M>(y) }
}

/// 1 / sqrt(2 pi), the standard normal density at 0.
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// For a = |x|: (r, e) with Phi(-a) = r · e · 2^-64, e = e^(-a²/2) · 2^64 (so phi(a) =
/// e · 2^-64 / sqrt(2 pi)): scaled by 2^64 so that e stays a normal number where e^(-a²/2) is
/// denormal (a > 13.2). r = Phi(-a) e^(a²/2) is smooth and slowly varying (0.5 at 0,
/// ~1 / (a sqrt(2 pi)) far out), so one polynomial in t = 1 / (1 + 0.3 a) fits it to a
/// relative 1.8e-7 over the whole range (a minimax fit, `scripts/fit_gelu.py`): no branch, a
/// relative error that holds in the far tail, and one exp shared by the CDF and the density.
/// -a²/2 is carried as hi + lo ([`MulAdd::product_hi_lo`]): rounding it would cost a relative
/// error of a² · 2^-24 in e. e is 0 from a = 6 for x >= 0 (1 - Phi(x) < 1e-9 vanishes beside
/// 1 there: GELU is x and GELU' 1 in f32 from 5.3 up) and from a = 14.5 for x < 0 (GELU and
/// GELU' round to 0 there), and for NaN; a is capped there, so no lane of the vector code
/// meets a denormal. WIDE: x may lie anywhere; else |x| < [`GELU_NARROW`] and no cap is needed.
#[inline(always)]
fn normal_tail<M: MulAdd, const WIDE: bool>(x: f32) -> (f32, f32) {
    let a = x.abs();
    let limit = if x >= 0.0 { 6.0 } else { 14.5 };
    let inside = !WIDE || a < limit; // false for NaN
    let (r, reduced, scale) = normal_tail_reduce::<M>(if inside { a } else { limit });
    (r, if inside { exp_reduced::<M>(reduced) * scale } else { 0.0 })
}

/// [`normal_tail`]'s first half for a = |x| (capped): (r, and e's reduced argument and scale
/// from [`exp_nonpositive_reduce`]), so that e = e^reduced · scale.
#[inline(always)]
fn normal_tail_reduce<M: MulAdd>(a: f32) -> (f32, f32, f32) {
    let t = 1.0 / M::mul_add(a, 0.3, 1.0);
    let mut p = 0.035_515_875f32;
    p = M::mul_add(p, t, -0.156_495_54);
    p = M::mul_add(p, t, 0.205_063_16);
    p = M::mul_add(p, t, -0.052_437_58);
    p = M::mul_add(p, t, 0.127_875_48);
    p = M::mul_add(p, t, 0.100_128_31);
    p = M::mul_add(p, t, 0.120_718_65);
    p = M::mul_add(p, t, 0.119_631_65);
    let (hi, lo) = M::product_hi_lo(-0.5 * a, a);
    let (reduced, scale) = exp_nonpositive_reduce::<M>(hi, lo);
    (p * t, reduced, scale)
}

/// |x| below which GELU's narrow forms (`WIDE` false) give the wide forms' bits in fewer
/// instructions: no limit on a (GELU and GELU' are x and 1 from 6 up either way), and plain
/// products with e^(-a²/2) >= 5e-32, all normal numbers there (|GELU| >= 2e-32,
/// |g · GELU'| >= 2.6e-31 g), where the wide forms' scalings by 2^-64 are exact.
const GELU_NARROW: f32 = 12.0;

/// e · 2^-64 of [`normal_tail`] for x >= 0, where it is a normal number or 0: the vector
/// code computes it in the lanes of x < 0 too, where it would be denormal from a = 13.2, so
/// it is 0 from a = 6 whatever the sign. (A test of x's sign would not do: inside the x >= 0
/// side of the caller's select the compiler knows it true and drops it; and the select picks
/// the factor, as the compiler would move a select of the operand after the product.)
#[inline(always)]
fn tail_for_positive(x: f32, e: f32) -> f32 {
    e * if x.abs() < 6.0 { TWO_POW_M64 } else { 0.0 }
}

/// GELU, exact erf form: x · Phi(x), and its derivative Phi(x) + x · phi(x), from one
/// [`normal_tail`]: x (1 - r e) and 1 + (k - r) e from 0 up, (x r) e and (k + r) e below 0,
/// with k = x / sqrt(2 pi). For x < 0, (x r) e keeps the value's relative precision where
/// Phi(x) = r e alone would be denormal (x < -13), and is rounded once into the denormal range
/// below x ~ -13.1 (the derivative below x ~ -13.4); +inf gives (inf, NaN), -inf and NaN NaN.
/// Not WIDE (|x| < [`GELU_NARROW`]): the same with plain products, all normal there. A caller
/// that uses only the value leaves the derivative's few instructions to dead-code elimination.
#[inline(always)]
fn gelu_with_grad<M: MulAdd, const WIDE: bool>(x: f32) -> (f32, f32) {
    let (r, e) = normal_tail::<M, WIDE>(x);
    if !WIDE {
        return gelu_with_grad_narrow_from(x, r, e);
    }
    let k = x * INV_SQRT_2PI;
    if x >= 0.0 {
        let e = tail_for_positive(x, e);
        (x * (1.0 - r * e), 1.0 + (k - r) * e)
    } else {
        (scale_down_64((x * r) * e), scale_down_64((k + r) * e))
    }
}

/// [`gelu_with_grad`]'s narrow form from x's [`normal_tail`] (r, e).
#[inline(always)]
fn gelu_with_grad_narrow_from(x: f32, r: f32, e: f32) -> (f32, f32) {
    let k = x * INV_SQRT_2PI;
    let e = e * TWO_POW_M64;
    if x >= 0.0 { (x * (1.0 - r * e), 1.0 + (k - r) * e) } else { ((x * r) * e, (k + r) * e) }
}

/// [`gelu_with_grad`]'s narrow form over one chunk (out = GELU(t), t = GELU'(t), |t| <
/// [`GELU_NARROW`]), the same operations in two passes: r and e's range reduction, then e and
/// the results. Each element is a chain of ~80 cycles of latency (the division, then Horner's
/// steps) for ~30 cycles of work per vector, which one pass leaves the out-of-order core too
/// few vectors in flight to hide; two half-length chains over the chunk's vectors, with the
/// intermediates in L1, run ~1.2x faster on AVX-512 and AVX2.
#[inline(always)]
fn gelu_with_grad_narrow_chunk<M: MulAdd>(out: &mut [f32], t: &mut [f32]) {
    let n = out.len().min(t.len()).min(CHUNK);
    let (out, t) = (&mut out[..n], &mut t[..n]);
    let (mut r, mut reduced, mut scale) = ([0.0f32; CHUNK], [0.0f32; CHUNK], [0.0f32; CHUNK]);
    for (((r, reduced), scale), &x) in r.iter_mut().zip(reduced.iter_mut()).zip(scale.iter_mut()).zip(t.iter()) {
        (*r, *reduced, *scale) = normal_tail_reduce::<M>(x.abs());
    }
    for ((((o, t), &r), &reduced), &scale) in out.iter_mut().zip(t.iter_mut()).zip(&r).zip(&reduced).zip(&scale) {
        (*o, *t) = gelu_with_grad_narrow_from(*t, r, exp_reduced::<M>(reduced) * scale);
    }
}

/// GELU, exact erf form ([`gelu_with_grad`]'s value).
#[inline(always)]
fn gelu<M: MulAdd, const WIDE: bool>(x: f32) -> f32 {
    gelu_with_grad::<M, WIDE>(x).0
}

/// g · d/dx GELU, d/dx GELU = Phi(x) + x · phi(x): g (1 - (r - x / sqrt(2 pi)) e) from 0 up,
/// g (r + x / sqrt(2 pi)) e below 0 (one exp for both terms). WIDE, the latter is scaled down
/// only after the product with g, so that no product takes a denormal derivative (x < -13).
#[inline(always)]
fn gelu_grad_times<M: MulAdd, const WIDE: bool>(x: f32, g: f32) -> f32 {
    let (r, e) = normal_tail::<M, WIDE>(x);
    let k = x * INV_SQRT_2PI;
    if !WIDE {
        let e = e * TWO_POW_M64;
        return g * if x >= 0.0 { 1.0 + (k - r) * e } else { (k + r) * e };
    }
    if x >= 0.0 { g * (1.0 + (k - r) * tail_for_positive(x, e)) } else { scale_down_64(g * ((k + r) * e)) }
}

/// sqrt(2 / pi) and the cubic coefficient of GELU's tanh approximation.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_TANH_CUBIC: f32 = 0.044_715;

/// GELU's tanh form 0.5 x (1 + tanh u), u = sqrt(2/pi) (x + 0.044715 x³), written as
/// x σ(2u) (1 + tanh u = 2 σ(2u)), which keeps relative precision for negative x.
/// Returns (σ(2u), σ(-2u), du/dx).
#[inline(always)]
fn gelu_tanh_parts<M: MulAdd>(x: f32) -> (f32, f32, f32) {
    let x2 = x * x;
    let (s, sm) = sigmoid_pair::<M>((2.0 * SQRT_2_OVER_PI) * (x + GELU_TANH_CUBIC * x2 * x));
    (s, sm, SQRT_2_OVER_PI * (1.0 + (3.0 * GELU_TANH_CUBIC) * x2))
}

/// GELU, tanh approximation (GPT-2's `gelu_new`), and its derivative σ(2u) + 2 x σ(2u) σ(-2u) u'.
#[inline(always)]
fn gelu_tanh_with_grad<M: MulAdd>(x: f32) -> (f32, f32) {
    let (s, sm, du) = gelu_tanh_parts::<M>(x);
    (x * s, s + 2.0 * x * (s * sm) * du)
}

/// GELU, tanh approximation (GPT-2's `gelu_new`).
#[inline(always)]
pub(crate) fn gelu_tanh_f32<M: MulAdd>(x: f32) -> f32 {
    gelu_tanh_with_grad::<M>(x).0
}

/// d/dx of [`gelu_tanh_f32`].
#[inline(always)]
pub(crate) fn gelu_tanh_grad_f32<M: MulAdd>(x: f32) -> f32 {
    gelu_tanh_with_grad::<M>(x).1
}

/// A pointwise function with a vectorised f32 body here, and its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pointwise {
    Exp,
    Log,
    Tanh,
    Sigmoid,
    Silu,
    /// PyTorch's softplus(x, beta, threshold).
    Softplus { beta: f32, threshold: f32 },
    /// Exact erf form.
    Gelu,
    /// Tanh approximation.
    GeluTanh,
}

/// One pointwise function and its derivative, for the slice loops below. Implemented by unit
/// structs (and softplus's parameters), never through fn pointers or closures, so that the
/// `#[inline(always)]` bodies inline into each ISA's loop and vectorise there.
trait PointFn: Copy {
    fn value<M: MulAdd>(self, x: f32) -> f32;
    fn grad<M: MulAdd>(self, x: f32) -> f32;
    /// (f(x), f'(x)), for a fused linear's forward, which saves the derivative for backward
    /// (the GELUs form both from the same intermediate values).
    #[inline(always)]
    fn value_and_grad<M: MulAdd>(self, x: f32) -> (f32, f32) {
        (self.value::<M>(x), self.grad::<M>(x))
    }
    /// g · f'(x), the backward's product (a function may form it in another order).
    #[inline(always)]
    fn grad_times<M: MulAdd>(self, x: f32, g: f32) -> f32 {
        g * self.grad::<M>(x)
    }
    /// Whether the function has `_fast` forms: the slice loops then go by chunks.
    const HAS_FAST: bool = false;
    /// Whether every x of a chunk lies where the `_fast` forms below give the same bits as
    /// `value` and `grad_times` in fewer instructions (GELU away from its far tails).
    #[inline(always)]
    fn fast_on(self, _x: &[f32]) -> bool {
        false
    }
    #[inline(always)]
    fn value_fast<M: MulAdd>(self, x: f32) -> f32 {
        self.value::<M>(x)
    }
    #[inline(always)]
    fn grad_times_fast<M: MulAdd>(self, x: f32, g: f32) -> f32 {
        self.grad_times::<M>(x, g)
    }
    #[inline(always)]
    fn value_and_grad_fast<M: MulAdd>(self, x: f32) -> (f32, f32) {
        self.value_and_grad::<M>(x)
    }
    /// out[i], t[i] = `value_and_grad_fast`(t[i]) over one chunk where `fast_on`.
    #[inline(always)]
    fn value_and_grad_fast_chunk<M: MulAdd>(self, out: &mut [f32], t: &mut [f32]) {
        for (o, t) in out.iter_mut().zip(t.iter_mut()) {
            (*o, *t) = self.value_and_grad_fast::<M>(*t);
        }
    }
}

/// `Name: value, grad[, value_and_grad];` per function (the last where one body forms both).
macro_rules! point_fns {
    ($($name:ident: $value:ident, $grad:ident $(, $both:ident)?;)*) => {$(
        #[derive(Clone, Copy)]
        struct $name;
        impl PointFn for $name {
            #[inline(always)]
            fn value<M: MulAdd>(self, x: f32) -> f32 {
                $value::<M>(x)
            }
            #[inline(always)]
            fn grad<M: MulAdd>(self, x: f32) -> f32 {
                $grad::<M>(x)
            }
            $(
                #[inline(always)]
                fn value_and_grad<M: MulAdd>(self, x: f32) -> (f32, f32) {
                    $both::<M>(x)
                }
            )?
        }
    )*};
}

/// d/dx ln x.
#[inline(always)]
fn ln_grad_f32<M: MulAdd>(x: f32) -> f32 {
    1.0 / x
}

point_fns! {
    ExpFn: exp_f32, exp_f32;
    LnFn: ln_f32, ln_grad_f32;
    TanhFn: tanh_f32, tanh_grad_f32;
    SigmoidFn: sigmoid_f32, sigmoid_grad_f32;
    SiluFn: silu_f32, silu_grad_f32;
    GeluTanhFn: gelu_tanh_f32, gelu_tanh_grad_f32, gelu_tanh_with_grad;
}

/// The erf GELU: its backward forms g · f'(x) in [`gelu_grad_times`]'s order, and a chunk
/// with no |x| from [`GELU_NARROW`] up (or NaN) runs the narrow forms.
#[derive(Clone, Copy)]
struct GeluFn;

impl PointFn for GeluFn {
    const HAS_FAST: bool = true;
    #[inline(always)]
    fn value<M: MulAdd>(self, x: f32) -> f32 {
        gelu::<M, true>(x)
    }
    #[inline(always)]
    fn grad<M: MulAdd>(self, x: f32) -> f32 {
        gelu_grad_times::<M, true>(x, 1.0)
    }
    #[inline(always)]
    fn grad_times<M: MulAdd>(self, x: f32, g: f32) -> f32 {
        gelu_grad_times::<M, true>(x, g)
    }
    #[inline(always)]
    fn fast_on(self, x: &[f32]) -> bool {
        let mut far = false;
        for &v in x {
            far |= !(v.abs() < GELU_NARROW);
        }
        !far
    }
    #[inline(always)]
    fn value_fast<M: MulAdd>(self, x: f32) -> f32 {
        gelu::<M, false>(x)
    }
    #[inline(always)]
    fn grad_times_fast<M: MulAdd>(self, x: f32, g: f32) -> f32 {
        gelu_grad_times::<M, false>(x, g)
    }
    #[inline(always)]
    fn value_and_grad<M: MulAdd>(self, x: f32) -> (f32, f32) {
        gelu_with_grad::<M, true>(x)
    }
    #[inline(always)]
    fn value_and_grad_fast<M: MulAdd>(self, x: f32) -> (f32, f32) {
        gelu_with_grad::<M, false>(x)
    }
    #[inline(always)]
    fn value_and_grad_fast_chunk<M: MulAdd>(self, out: &mut [f32], t: &mut [f32]) {
        gelu_with_grad_narrow_chunk::<M>(out, t);
    }
}

#[derive(Clone, Copy)]
struct SoftplusFn {
    beta: f32,
    threshold: f32,
}

impl PointFn for SoftplusFn {
    #[inline(always)]
    fn value<M: MulAdd>(self, x: f32) -> f32 {
        softplus_f32::<M>(x, self.beta, self.threshold)
    }
    #[inline(always)]
    fn grad<M: MulAdd>(self, x: f32) -> f32 {
        softplus_grad_f32::<M>(x, self.beta, self.threshold)
    }
}

/// Runs `body` with `func` bound to `f`'s [`PointFn`]: each arm monomorphises `body`.
macro_rules! with_point_fn {
    ($f:expr, |$func:ident| $body:expr) => {
        match $f {
            Pointwise::Exp => { let $func = ExpFn; $body }
            Pointwise::Log => { let $func = LnFn; $body }
            Pointwise::Tanh => { let $func = TanhFn; $body }
            Pointwise::Sigmoid => { let $func = SigmoidFn; $body }
            Pointwise::Silu => { let $func = SiluFn; $body }
            Pointwise::Softplus { beta, threshold } => { let $func = SoftplusFn { beta, threshold }; $body }
            Pointwise::Gelu => { let $func = GeluFn; $body }
            Pointwise::GeluTanh => { let $func = GeluTanhFn; $body }
        }
    };
}

/// Floats per chunk of the slice loops below: each chunk runs a function's fast forms where
/// all its inputs allow them ([`PointFn::fast_on`]).
const CHUNK: usize = 64;

/// out[i] = f(inp[i]) over the common length, for one chunk.
#[inline(always)]
fn map_chunk<M: MulAdd>(out: &mut [f32], inp: &[f32], func: impl PointFn) {
    if func.fast_on(inp) {
        for (o, &x) in out.iter_mut().zip(inp) {
            *o = func.value_fast::<M>(x);
        }
    } else {
        for (o, &x) in out.iter_mut().zip(inp) {
            *o = func.value::<M>(x);
        }
    }
}

/// out[i] = f(inp[i]) over the common length.
#[inline(always)]
fn map_into<M: MulAdd, F: PointFn>(out: &mut [f32], inp: &[f32], func: F) {
    if !F::HAS_FAST {
        return map_chunk::<M>(out, inp, func);
    }
    let n = out.len().min(inp.len());
    let (mut outs, mut ins) = (out[..n].chunks_exact_mut(CHUNK), inp[..n].chunks_exact(CHUNK));
    for (o, x) in (&mut outs).zip(&mut ins) {
        let (o, x): (&mut [f32; CHUNK], &[f32; CHUNK]) = (o.try_into().unwrap(), x.try_into().unwrap());
        map_chunk::<M>(o, x, func);
    }
    map_chunk::<M>(outs.into_remainder(), ins.remainder(), func);
}

/// out[i] = f(inp[i]) over the common length.
#[inline(always)]
#[allow(clippy::extra_unused_type_parameters)] // the ISA is the caller's #[target_feature]
pub(crate) unsafe fn pointwise_generic<S: VecOps + MulAdd>(out: &mut [f32], inp: &[f32], f: Pointwise) {
    with_point_fn!(f, |func| map_into::<S, _>(out, inp, func))
}

/// d[i] (+)= g[i] · f'(x[i]) over the common length, for one chunk: adds when ACCUMULATE.
#[inline(always)]
fn grad_chunk<M: MulAdd, const ACCUMULATE: bool>(d: &mut [f32], g: &[f32], x: &[f32], func: impl PointFn) {
    if func.fast_on(x) {
        for ((d, &g), &x) in d.iter_mut().zip(g).zip(x) {
            let v = func.grad_times_fast::<M>(x, g);
            *d = if ACCUMULATE { *d + v } else { v };
        }
    } else {
        for ((d, &g), &x) in d.iter_mut().zip(g).zip(x) {
            let v = func.grad_times::<M>(x, g);
            *d = if ACCUMULATE { *d + v } else { v };
        }
    }
}

/// d[i] (+)= g[i] · f'(x[i]) over the common length: accumulates when `accumulate`, else
/// overwrites.
#[inline(always)]
#[allow(clippy::extra_unused_type_parameters)] // the ISA is the caller's #[target_feature]
pub(crate) unsafe fn pointwise_grad_generic<S: VecOps + MulAdd>(d: &mut [f32], g: &[f32], x: &[f32], f: Pointwise, accumulate: bool) {
    #[inline(always)]
    fn run<M: MulAdd, F: PointFn>(d: &mut [f32], g: &[f32], x: &[f32], accumulate: bool, func: F) {
        if !F::HAS_FAST {
            return if accumulate { grad_chunk::<M, true>(d, g, x, func) } else { grad_chunk::<M, false>(d, g, x, func) };
        }
        let n = d.len().min(g.len()).min(x.len());
        let (mut ds, mut gs, mut xs) = (d[..n].chunks_exact_mut(CHUNK), g[..n].chunks_exact(CHUNK), x[..n].chunks_exact(CHUNK));
        for ((d, g), x) in (&mut ds).zip(&mut gs).zip(&mut xs) {
            let (d, g, x): (&mut [f32; CHUNK], &[f32; CHUNK], &[f32; CHUNK]) = (d.try_into().unwrap(), g.try_into().unwrap(), x.try_into().unwrap());
            if accumulate {
                grad_chunk::<M, true>(d, g, x, func);
            } else {
                grad_chunk::<M, false>(d, g, x, func);
            }
        }
        let (d, g, x) = (ds.into_remainder(), gs.remainder(), xs.remainder());
        if accumulate {
            grad_chunk::<M, true>(d, g, x, func);
        } else {
            grad_chunk::<M, false>(d, g, x, func);
        }
    }
    with_point_fn!(f, |func| run::<S, _>(d, g, x, accumulate, func))
}

/// out[i], t[i] = f(t[i]), f'(t[i]) over the common length, for one chunk: t holds the inputs
/// on entry and the derivatives on return.
#[inline(always)]
fn map_with_grad_chunk<M: MulAdd>(out: &mut [f32], t: &mut [f32], func: impl PointFn) {
    if func.fast_on(t) {
        func.value_and_grad_fast_chunk::<M>(out, t);
    } else {
        for (o, t) in out.iter_mut().zip(t.iter_mut()) {
            (*o, *t) = func.value_and_grad::<M>(*t);
        }
    }
}

/// Rows of a fused linear's epilogue: with x = t + bias per row of `cols` (t as is without a
/// bias), out = f(x) and t = f'(x), the derivative its backward multiplies dout by; one pass
/// per row while it is in L1. t [rows, cols] holds the product on entry.
#[inline(always)]
#[allow(clippy::extra_unused_type_parameters)] // the ISA is the caller's #[target_feature]
pub(crate) unsafe fn bias_act_with_grad_generic<S: VecOps + MulAdd>(t: &mut [f32], out: &mut [f32], bias: Option<&[f32]>, cols: usize, f: Pointwise) {
    #[inline(always)]
    fn run<M: MulAdd, F: PointFn>(t: &mut [f32], out: &mut [f32], bias: Option<&[f32]>, cols: usize, func: F) {
        if cols == 0 {
            return;
        }
        for (t, o) in t.chunks_exact_mut(cols).zip(out.chunks_exact_mut(cols)) {
            if let (Some(b), false) = (bias, F::HAS_FAST) {
                for ((t, o), &b) in t.iter_mut().zip(o.iter_mut()).zip(b) {
                    (*o, *t) = func.value_and_grad::<M>(*t + b);
                }
                continue;
            }
            // By chunks, so that each chunk's inputs are known before it picks its form; whole
            // chunks as arrays, whose length the compiler then knows, so that it lays a chunk's
            // vectors out side by side (~1.2x on AVX-512 over slices of unknown length).
            let (mut ts, mut os) = (t.chunks_exact_mut(CHUNK), o.chunks_exact_mut(CHUNK));
            for (i, (t, o)) in (&mut ts).zip(&mut os).enumerate() {
                let (t, o): (&mut [f32; CHUNK], &mut [f32; CHUNK]) = (t.try_into().unwrap(), o.try_into().unwrap());
                let b = bias.map(|b| -> &[f32; CHUNK] { b[i * CHUNK..(i + 1) * CHUNK].try_into().unwrap() });
                chunk::<M>(t, o, b.map(|b| &b[..]), func);
            }
            let (t, o) = (ts.into_remainder(), os.into_remainder());
            let start = cols - t.len();
            chunk::<M>(t, o, bias.map(|b| &b[start..]), func);
        }
    }
    /// x = t + b (t without a bias), then out = f(x), t = f'(x), over one chunk.
    #[inline(always)]
    fn chunk<M: MulAdd>(t: &mut [f32], o: &mut [f32], bias: Option<&[f32]>, func: impl PointFn) {
        if let Some(b) = bias {
            for (t, &b) in t.iter_mut().zip(b) {
                *t += b;
            }
        }
        map_with_grad_chunk::<M>(o, t, func);
    }
    with_point_fn!(f, |func| run::<S, _>(t, out, bias, cols, func))
}
