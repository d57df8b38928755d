"""Fits the polynomial of the exact GELU in crates/kernels/src/simd/math.rs (`normal_tail`).

Phi(-a) = r(t) * e^(-a^2/2) for a = |x| >= 0, with t = 1 / (1 + C a) and r a polynomial of
degree DEG: t * r(t) = Phi(-a) e^(a^2/2) = erfcx(a / sqrt 2) / 2 is smooth and slowly varying,
so one polynomial covers a in [0, A_MAX] (A_MAX = 14.5, where e^(-a^2/2) is 0 in f32).

Minimax in relative error by Lawson's iteratively reweighted least squares on a Chebyshev grid
in t, with t * r(t) = 0.5 exactly at a = 0 (r = 0.5 + (t - 1) s(t)), then rounded to f32 and
the leading coefficient nudged until the f32 Horner sum at t = 1 is exactly 0.5 (so that
GELU'(0) = 0.5 exactly). Prints the coefficients, highest degree first, and the relative error
of the f32 evaluation (fused and unfused Horner) against erfcx over a dense grid.

    /work/torchenv/bin/python scripts/fit_gelu.py [DEG C]     (default: 7 0.3)

Needs numpy and torch (for a float64 erfcx); neither is a dependency of the package.
"""
import sys

import numpy as np
import torch

A_MAX = 14.5


def tail_scaled(a):
    """Phi(-a) e^(a^2/2) in float64."""
    return 0.5 * torch.special.erfcx(torch.tensor(a / np.sqrt(2), dtype=torch.float64)).numpy()


def horner_f32(coefs, t, fused=True):
    """The polynomial as math.rs evaluates it: f32 Horner steps, fused (FMA) or not."""
    t = t.astype(np.float32)
    p = np.full_like(t, coefs[0])
    for c in coefs[1:]:
        if fused:  # the f64 product of two f32 is exact: one rounding, as an FMA
            p = (p.astype(np.float64) * t + np.float64(c)).astype(np.float32)
        else:
            p = (p * t).astype(np.float32) + np.float32(c)
    return p


def fit(deg, c, iters=400, n=20000):
    c = float(np.float32(c))  # the constant as math.rs has it
    t0 = 1 / (1 + c * A_MAX)
    t = t0 + (1 - t0) * (np.cos(np.linspace(0, np.pi, n)) + 1) / 2
    g = tail_scaled((1 / t - 1) / c) / t  # r(t) wanted
    u = (2 * t - (1 + t0)) / (1 - t0)
    basis = np.polynomial.chebyshev.chebvander(u, deg - 1) * (t - 1)[:, None]
    weights = np.ones(n) / n
    for _ in range(iters):
        w = np.sqrt(weights) / np.abs(g)
        coef, *_ = np.linalg.lstsq(basis * w[:, None], (g - 0.5) * w, rcond=None)
        err = (basis @ coef - (g - 0.5)) / g
        weights = weights * np.abs(err)
        weights /= weights.sum()
    s = np.polynomial.Chebyshev(coef, domain=[t0, 1]).convert(kind=np.polynomial.Polynomial)
    r = np.polynomial.Polynomial([-1, 1]) * s + 0.5
    coefs = [np.float32(v) for v in r.coef[::-1]]
    for _ in range(1000):
        at_one = horner_f32(coefs, np.array([1.0]))[0]
        if at_one == np.float32(0.5):
            break
        coefs[0] = np.nextafter(coefs[0], np.float32(np.inf if at_one < 0.5 else -np.inf))
    return c, coefs, np.max(np.abs(err))


def main():
    deg, c = (int(sys.argv[1]), float(sys.argv[2])) if len(sys.argv) > 2 else (7, 0.3)
    c, coefs, fit_err = fit(deg, c)
    a = np.linspace(0, A_MAX, 400001).astype(np.float32)
    t = (np.float32(1) / (a * np.float32(c) + np.float32(1))).astype(np.float32)
    want = tail_scaled(a.astype(np.float64))
    print(f"degree {deg}, t = 1 / (1 + {c} a): minimax relative error {fit_err:.2e} (float64)")
    for fused in (True, False):
        got = horner_f32(coefs, t, fused).astype(np.float64) * t
        print(f"  f32 evaluation ({'fused' if fused else 'unfused'}): {np.max(np.abs(got / want - 1)):.2e}")
    print("coefficients, highest degree first:")
    print(", ".join(repr(float(v)) for v in coefs))


if __name__ == "__main__":
    main()
