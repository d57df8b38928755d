// Float64 numerics of the reference kernels: erf / erfc accurate to ~1e-15 (JavaScript has
// neither), the exact GELU built on them, and GELU's tanh approximation.

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
const INV_SQRT_PI = 1 / Math.sqrt(Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** erf(x) for 0 <= x < 2 by the all-positive series
 * erf(x) = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (1·3·…·(2n+1)):
 * no cancellation, so it stays at ~1e-16 relative accuracy. */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

/** erfc(x) for x >= 2 by the Laplace continued fraction
 * erfc(x) = e^{-x^2}/sqrt(pi) · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))),
 * evaluated bottom-up; 100 levels reach machine precision for x >= 2 (checked against
 * Python's math.erfc). Used there because 1 - erf(x) would lose the tail's relative
 * accuracy. */
function erfcContinuedFraction(x: number): number {
  let f = x;
  for (let n = 100; n >= 1; n--) f = x + n / 2 / f;
  return (INV_SQRT_PI * Math.exp(-x * x)) / f;
}

/** erfc(x), accurate to ~1e-15 relative, also in the far tails where 1 - erf(x) would
 * cancel. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) return 1 - erfSeries(x);
  if (x > 27) return 0; // e^{-729} underflows
  return erfcContinuedFraction(x);
}

/** erf(x), accurate to ~1e-15 absolute. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return -erf(-x);
  if (x < 2) return erfSeries(x);
  return 1 - erfc(x);
}

/** max(x, 0) with NaN kept, as PyTorch's relu (a NaN must reach the loss). */
export function relu(x: number): number {
  return x <= 0 ? 0 : x;
}

/** Exact GELU, 0.5·x·(1 + erf(x/√2)), written with erfc so large negative x keeps its
 * relative accuracy. */
export function gelu(x: number): number {
  return 0.5 * x * erfc(-x / Math.SQRT2);
}

/** d/dx GELU = Φ(x) + x·φ(x). */
export function geluGrad(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_TANH_CUBIC = 0.044715;

/** GELU's tanh approximation (GPT-2's gelu_new): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x * x * x)));
}

/** d/dx of geluTanh: 0.5·(1 + t) + 0.5·x·(1 - t²)·√(2/π)·(1 + 3·0.044715·x²), t = tanh(u). */
export function geluTanhGrad(x: number): number {
  const t = Math.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x * x * x));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_TANH_CUBIC * x * x);
}
