// Central-difference gradient checks in float64. The scalar checked is a random linear
// functional L = sum(w * f(inputs)), so one backward pass with dout = w gives the analytic
// gradient of L with respect to every input, whatever the shape of f's output.
//
// Kept free of vitest and of any backend, so the autograd layer can reuse it with closures
// over its own ops.

/** Deterministic PRNG (mulberry32), so a failing check reproduces. */
export function makeRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n values uniform in [lo, hi). */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  const rng = makeRng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rng();
  return out;
}

export interface GradcheckOptions {
  /** Step of the central difference (default 1e-6). */
  h?: number;
  /** Seed of the functional's weights w (default 1). */
  seed?: number;
  /** Indices of the inputs to check (default: every input whose analytic gradient is not null). */
  wrt?: number[];
}

export interface GradcheckResult {
  /** max |numeric - analytic| / (max |numeric| + 1e-6), over all checked inputs. */
  relError: number;
  /** Per checked input: its index and relative error. */
  perInput: { input: number; relError: number; maxAbsError: number; maxAbsGrad: number }[];
  /** The element with the largest absolute error, for the failure message. */
  worst: { input: number; index: number; numeric: number; analytic: number } | null;
}

/**
 * Checks `backward` against central differences of `f`.
 *
 * @param f        forward: the inputs (never mutated by f) -> output values
 * @param inputs   the point at which gradients are checked (perturbed in place, restored)
 * @param backward given w (= dout), the analytic gradient of sum(w * f(inputs)) for each
 *                 input, or null for an input without a gradient (ids, masks, ...)
 */
export function gradcheck(
  f: (inputs: Float64Array[]) => Float64Array,
  inputs: Float64Array[],
  backward: (w: Float64Array) => (Float64Array | null)[],
  options: GradcheckOptions = {},
): GradcheckResult {
  const h = options.h ?? 1e-6;
  const out0 = f(inputs);
  const w = randomArray(out0.length, options.seed ?? 1);
  const analytic = backward(w);
  const loss = (): number => {
    const y = f(inputs);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += w[i]! * y[i]!;
    return s;
  };

  const wrt = options.wrt ?? analytic.flatMap((g, i) => (g === null ? [] : [i]));
  const result: GradcheckResult = { relError: 0, perInput: [], worst: null };
  let worstAbs = -1;
  for (const idx of wrt) {
    const x = inputs[idx]!;
    const g = analytic[idx];
    if (!g) throw new Error(`gradcheck: no analytic gradient for input ${idx}`);
    if (g.length !== x.length) {
      throw new Error(`gradcheck: gradient ${idx} has length ${g.length}, input has ${x.length}`);
    }
    let maxAbsError = 0;
    let maxAbsGrad = 0;
    for (let i = 0; i < x.length; i++) {
      const saved = x[i]!;
      x[i] = saved + h;
      const lp = loss();
      x[i] = saved - h;
      const lm = loss();
      x[i] = saved;
      const numeric = (lp - lm) / (2 * h);
      const err = Math.abs(numeric - g[i]!);
      maxAbsGrad = Math.max(maxAbsGrad, Math.abs(numeric));
      if (err > maxAbsError) maxAbsError = err;
      if (err > worstAbs) {
        worstAbs = err;
        result.worst = { input: idx, index: i, numeric, analytic: g[i]! };
      }
    }
    const relError = maxAbsError / (maxAbsGrad + 1e-6);
    result.perInput.push({ input: idx, relError, maxAbsError, maxAbsGrad });
    result.relError = Math.max(result.relError, relError);
  }
  return result;
}

/** A one-line summary for assertion messages. */
export function describeGradcheck(r: GradcheckResult): string {
  const per = r.perInput.map((p) => `#${p.input}: ${p.relError.toExponential(2)}`).join(', ');
  const w = r.worst;
  const worst = w ? `; worst input ${w.input}[${w.index}] numeric ${w.numeric} analytic ${w.analytic}` : '';
  return `relError ${r.relError.toExponential(3)} (${per})${worst}`;
}
