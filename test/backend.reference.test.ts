import { describe, expect, it } from 'vitest';

import type { Storage } from '../ts/backend/backend.js';
import { ReferenceBackend, erf, erfc, gelu, randomU32 } from '../ts/backend/reference.js';
import { describeGradcheck, gradcheck, makeRng, randomArray } from './helpers/gradcheck.js';
import { fixturePath, fixturesAvailable, loadFixtures } from './helpers/fixtures.js';

const be = new ReferenceBackend();
const F = (data: ArrayLike<number>): Storage => be.fromArray('f32', data);
const I = (data: ArrayLike<number>): Storage => be.fromArray('i32', data);
const U = (data: ArrayLike<number>): Storage => be.fromArray('u8', data);
const R = (s: Storage): Float64Array => be.read(s) as Float64Array;
const Z = (n: number): Storage => be.alloc('f32', n);

/** Gradient buffers start at PRE, not 0, so every gradcheck also checks that backward
 * kernels accumulate (+=) rather than overwrite. */
const PRE = 0.375;
const acc = (n: number): Storage => {
  const s = be.alloc('f32', n);
  be.fill(s, PRE);
  return s;
};
const delta = (s: Storage): Float64Array => R(s).map((x) => x - PRE);

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-12): void {
  expect(got.length).toBe(want.length);
  let maxErr = 0;
  let maxWant = 0;
  for (let i = 0; i < want.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(got[i]! - want[i]!));
    maxWant = Math.max(maxWant, Math.abs(want[i]!));
  }
  expect(maxErr / (maxWant + 1e-6)).toBeLessThan(tol);
}

function expectGrad(r: ReturnType<typeof gradcheck>): void {
  expect(r.perInput.length).toBeGreaterThan(0);
  expect(r.relError, describeGradcheck(r)).toBeLessThan(1e-6);
}

/** Reference randomU32 in BigInt, straight from the Rust doc, to cross-check the limb version. */
function randomU32BigInt(seed: number, counter: number): number {
  const M = (1n << 64n) - 1n;
  let z = (BigInt(seed) << 32n) | BigInt(counter);
  z = (z + 0x9e3779b97f4a7c15n) & M;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
  z ^= z >> 31n;
  return Number(z >> 32n);
}

// ---------------------------------------------------------------------------------------------

describe('reference backend: memory and identity', () => {
  it('has name, capability float64 and exactly one thread', () => {
    expect(be.name).toBe('reference');
    expect(be.capabilities.has('float64')).toBe(true);
    expect(be.capabilities.has('threads')).toBe(false);
    expect(be.getThreads()).toBe(1);
    be.setThreads(1);
    expect(() => be.setThreads(4)).toThrow(RangeError);
    expect(() => be.setThreads(4)).toThrow(/4/);
  });

  it('alloc zero-fills; fromArray converts per dtype; read returns copies', () => {
    expect(Array.from(R(be.alloc('f32', 3)))).toEqual([0, 0, 0]);
    const f = F([1.1, 2]);
    expect(be.read(f)).toBeInstanceOf(Float64Array);
    expect(be.read(f)[0]).toBe(1.1); // float64 storage: no f32 rounding
    expect(be.read(I([3, -4]))).toBeInstanceOf(Int32Array);
    expect(be.read(U([1, 0]))).toBeInstanceOf(Uint8Array);
    const copy = R(f);
    copy[0] = 99;
    expect(R(f)[0]).toBe(1.1);
    expect(f.length).toBe(2);
    expect(f.dtype).toBe('f32');
  });

  it('write, fill and copy', () => {
    const s = Z(3);
    be.write(s, [1, 2, 3]);
    expect(Array.from(R(s))).toEqual([1, 2, 3]);
    expect(() => be.write(s, [1])).toThrow(RangeError);
    be.fill(s, 7);
    expect(Array.from(R(s))).toEqual([7, 7, 7]);
    const d = Z(3);
    be.copy(d, F([4, 5, 6]));
    expect(Array.from(R(d))).toEqual([4, 5, 6]);
    expect(() => be.copy(d, F([1]))).toThrow(RangeError);
    expect(() => be.copy(d, I([1, 2, 3]))).toThrow(TypeError);
  });

  it('free is idempotent and a freed storage throws an Error naming the op', () => {
    const s = F([1, 2]);
    be.free(s);
    be.free(s);
    expect(() => be.read(s)).toThrow(/read/);
    expect(() => be.reluForward(Z(2), s)).toThrow(/reluForward.*free/);
    expect(() => be.sumSquares(s)).toThrow(/sumSquares/);
  });

  it('rejects wrong lengths and dtypes with a message naming the op', () => {
    expect(() => be.matmulForward(Z(5), Z(6), Z(6), 1, 2, 3, 2, false, false, false)).toThrow(
      'matmulForward: out has length 5, expected 4',
    );
    expect(() => be.embeddingForward(Z(2), F([0]), Z(4), 2)).toThrow(/embeddingForward: ids must have dtype i32/);
  });
});

describe('reference backend: erf and GELU', () => {
  // Values from Python's math.erf / math.erfc.
  const table: [number, number, number][] = [
    [1.5, 0.9661051464753108, 0.033894853524689274],
    [2, 0.9953222650189527, 0.004677734981047265],
    [0.1, 0.1124629160182849, 0.8875370839817152],
    [0.5, 0.5204998778130465, 0.4795001221869535],
    [1, 0.8427007929497149, 0.15729920705028513],
    [2.5, 0.999593047982555, 0.0004069520174449589],
    [2.9999, 0.9999778955735178, 2.210442648216091e-5],
    [3, 0.9999779095030014, 2.2090496998585438e-5],
    [3.5, 0.9999992569016276, 7.430983723414128e-7],
    [4, 0.9999999845827421, 1.541725790028002e-8],
    [5, 0.9999999999984626, 1.5374597944280351e-12],
    [6, 1.0, 2.1519736712498916e-17],
    [-0.7, -0.6778011938374184, 1.6778011938374184],
  ];
  it.each(table)('erf(%f)', (x, e, ec) => {
    expect(Math.abs(erf(x) - e)).toBeLessThan(1e-15);
    expect(Math.abs(erfc(x) - ec) / ec).toBeLessThan(1e-13);
  });

  it('is odd, continuous across the series / continued-fraction switch, saturates', () => {
    for (const x of [0.3, 1.7, 1.99999999, 2.00000001, 8]) expect(erf(-x)).toBe(-erf(x));
    // across x = 2 the change is the derivative's, 2/sqrt(pi) e^{-4} · 2h: no jump
    const h = 1e-9;
    const slope = (2 / Math.sqrt(Math.PI)) * Math.exp(-4) * 2 * h;
    expect(Math.abs(erf(2 + h) - erf(2 - h) - slope)).toBeLessThan(1e-15);
    expect(Math.abs(erfc(2 - h) - erfc(2 + h) - slope)).toBeLessThan(1e-15);
    expect(erf(0)).toBe(0);
    expect(erf(40)).toBe(1);
    expect(erfc(40)).toBe(0);
  });

  it('GELU matches 0.5 x (1 + erf(x / sqrt 2))', () => {
    const want: [number, number][] = [
      [1, 0.8413447460685429],
      [-1, -0.15865525393145707],
      [0.5, 0.34573123063700656],
      [-3, -0.004049694094890287],
      [-10, -7.619853024160593e-23],
    ];
    for (const [x, y] of want) expect(Math.abs(gelu(x) - y) / Math.abs(y)).toBeLessThan(1e-13);
    const out = Z(3);
    be.geluForward(out, F([1, 0, -1]));
    expectClose(R(out), [0.8413447460685429, 0, -0.15865525393145707]);
  });
});

describe('reference backend: matmul', () => {
  it('computes a hand example', () => {
    // [2,3] · [3,2]
    const out = Z(4);
    be.matmulForward(out, F([1, 2, 3, 4, 5, 6]), F([7, 8, 9, 10, 11, 12]), 1, 2, 3, 2, false, false, false);
    expect(Array.from(R(out))).toEqual([58, 64, 139, 154]);
    // accumulate adds into out
    be.matmulForward(out, F([1, 2, 3, 4, 5, 6]), F([7, 8, 9, 10, 11, 12]), 1, 2, 3, 2, false, false, true);
    expect(Array.from(R(out))).toEqual([116, 128, 278, 308]);
  });

  /** [batch, r, c] -> [batch, c, r] */
  const transpose = (x: Float64Array, batch: number, r: number, c: number): Float64Array => {
    const y = new Float64Array(x.length);
    for (let b = 0; b < batch; b++)
      for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) y[b * r * c + j * r + i] = x[b * r * c + i * c + j]!;
    return y;
  };

  const [batch, m, k, n] = [2, 3, 4, 5];
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      it(`transA=${transA} transB=${transB} equals the explicit transpose`, () => {
        const a = randomArray(batch * m * k, 1);
        const b = randomArray(batch * k * n, 2);
        const want = Z(batch * m * n);
        be.matmulForward(want, F(a), F(b), batch, m, k, n, false, false, false);
        const aStored = transA ? transpose(a, batch, m, k) : a;
        const bStored = transB ? transpose(b, batch, k, n) : b;
        const got = Z(batch * m * n);
        be.matmulForward(got, F(aStored), F(bStored), batch, m, k, n, transA, transB, false);
        expectClose(R(got), R(want));
      });

      it(`gradcheck transA=${transA} transB=${transB}`, () => {
        const r = gradcheck(
          ([a, b]) => {
            const out = Z(batch * m * n);
            be.matmulForward(out, F(a!), F(b!), batch, m, k, n, transA, transB, false);
            return R(out);
          },
          [randomArray(batch * m * k, 3), randomArray(batch * k * n, 4)],
          (w) => {
            const da = acc(batch * m * k);
            const db = acc(batch * k * n);
            const a = randomArray(batch * m * k, 3);
            const b = randomArray(batch * k * n, 4);
            be.matmulBackward(da, db, F(w), F(a), F(b), batch, m, k, n, transA, transB);
            return [delta(da), delta(db)];
          },
        );
        expectGrad(r);
      });
    }
  }

  it('matmulBackward skips a null gradient', () => {
    const db = acc(k * n);
    be.matmulBackward(null, db, F(randomArray(m * n, 5)), F(randomArray(m * k, 6)), F(randomArray(k * n, 7)),
      1, m, k, n, false, false);
    expect(delta(db).some((x) => x !== 0)).toBe(true);
  });
});

describe('reference backend: softmax', () => {
  it('rows sum to 1, masked entries are exactly 0, a fully masked row is zeros', () => {
    const rows = 3;
    const cols = 4;
    const x = F([1, 2, 3, 4, 1000, 1001, -5, 0, 1, 2, 3, 4]);
    const mask = U([1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0]);
    const out = Z(rows * cols);
    be.softmaxForward(out, x, mask, rows, cols);
    const y = R(out);
    expect(y[2]).toBe(0);
    expect(Array.from(y.subarray(8))).toEqual([0, 0, 0, 0]);
    for (const r of [0, 1]) expect(y.subarray(r * cols, r * cols + cols).reduce((a, b) => a + b)).toBeCloseTo(1, 14);
    // hand value: softmax([1, 2, -, 4])
    const z = Math.exp(1) + Math.exp(2) + Math.exp(4);
    expectClose(y.subarray(0, 4), [Math.exp(1) / z, Math.exp(2) / z, 0, Math.exp(4) / z]);
    // large logits do not overflow
    expect(Number.isFinite(y[5]!)).toBe(true);
    // no mask = all kept
    be.softmaxForward(out, x, null, rows, cols);
    expect(R(out).subarray(8).reduce((a, b) => a + b)).toBeCloseTo(1, 14);
  });

  it('gradcheck with a mask (including a fully masked row)', () => {
    const rows = 4;
    const cols = 5;
    const mask = U([1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1, 1]);
    const fwd = (x: Float64Array): Float64Array => {
      const out = Z(rows * cols);
      be.softmaxForward(out, F(x), mask, rows, cols);
      return R(out);
    };
    const x0 = randomArray(rows * cols, 11, -2, 2);
    const r = gradcheck(
      ([x]) => fwd(x!),
      [x0],
      (w) => {
        const dx = acc(rows * cols);
        be.softmaxBackward(dx, F(w), F(fwd(x0)), rows, cols);
        return [delta(dx)];
      },
    );
    expectGrad(r);
  });
});

describe('reference backend: layernorm', () => {
  it('normalises to mean 0 / variance 1 with weight 1, bias 0, and saves mean and rstd', () => {
    const rows = 3;
    const dim = 8;
    const x = randomArray(rows * dim, 21, -3, 5);
    const out = Z(rows * dim);
    const mean = Z(rows);
    const rstd = Z(rows);
    be.layernormForward(out, mean, rstd, F(x), F(new Array(dim).fill(1)), Z(dim), rows, dim, 0);
    const y = R(out);
    for (let r = 0; r < rows; r++) {
      const row = y.subarray(r * dim, r * dim + dim);
      const mu = row.reduce((a, b) => a + b) / dim;
      const v = row.reduce((a, b) => a + (b - mu) ** 2, 0) / dim;
      expect(Math.abs(mu)).toBeLessThan(1e-14);
      expect(v).toBeCloseTo(1, 12);
      const xr = x.subarray(r * dim, r * dim + dim);
      const xm = xr.reduce((a, b) => a + b) / dim;
      expect(R(mean)[r]).toBeCloseTo(xm, 14);
      const xv = xr.reduce((a, b) => a + (b - xm) ** 2, 0) / dim; // biased
      expect(R(rstd)[r]).toBeCloseTo(1 / Math.sqrt(xv), 12);
    }
    // eps enters under the square root
    const rstd1 = Z(1);
    be.layernormForward(Z(2), Z(1), rstd1, F([1, -1]), F([1, 1]), Z(2), 1, 2, 0.5);
    expect(R(rstd1)[0]).toBeCloseTo(1 / Math.sqrt(1.5), 15);
  });

  it('gradcheck for inp, weight and bias', () => {
    const rows = 3;
    const dim = 6;
    const eps = 1e-5;
    const x0 = randomArray(rows * dim, 22, -2, 2);
    const w0 = randomArray(dim, 23, 0.5, 1.5);
    const b0 = randomArray(dim, 24);
    const fwd = (x: Float64Array, w: Float64Array, b: Float64Array) => {
      const out = Z(rows * dim);
      const mean = Z(rows);
      const rstd = Z(rows);
      be.layernormForward(out, mean, rstd, F(x), F(w), F(b), rows, dim, eps);
      return { out: R(out), mean, rstd };
    };
    const r = gradcheck(
      ([x, w, b]) => fwd(x!, w!, b!).out,
      [x0, w0, b0],
      (g) => {
        const { mean, rstd } = fwd(x0, w0, b0);
        const dx = acc(rows * dim);
        const dw = acc(dim);
        const db = acc(dim);
        be.layernormBackward(dx, dw, db, F(g), F(x0), F(w0), mean, rstd, rows, dim);
        return [delta(dx), delta(dw), delta(db)];
      },
    );
    expectGrad(r);
    expect(r.perInput.map((p) => p.input)).toEqual([0, 1, 2]);
  });
});

describe('reference backend: attention', () => {
  // B=1, H=1, Tq=Tk=2, D=1: q = [1, 2], k = [1, -1], v = [10, 20], scale = 1.
  const run = (causal: boolean, keyMask: number[] | null) => {
    const out = Z(2);
    const lse = Z(2);
    const probs = Z(4);
    const [q, k, km] = [F([1, 2]), F([1, -1]), keyMask ? U(keyMask) : null];
    be.attentionForward(out, lse, q, k, F([10, 20]), km, 1, 1, 2, 2, 1, causal, 1, 0, 0, 0);
    be.attentionProbs(probs, q, k, lse, km, 1, 1, 2, 2, 1, causal, 1);
    return { out: R(out), probs: R(probs), lse: R(lse) };
  };
  const sig = (t: number): number => 1 / (1 + Math.exp(-t));

  it('D=1 example by hand, no mask', () => {
    // row 0: scores [1, -1] -> p0 = sigmoid(2); row 1: scores [2, -2] -> p0 = sigmoid(4)
    const { out, probs, lse } = run(false, null);
    expectClose(lse, [Math.log(Math.exp(1) + Math.exp(-1)), Math.log(Math.exp(2) + Math.exp(-2))]);
    expectClose(probs, [sig(2), 1 - sig(2), sig(4), 1 - sig(4)]);
    expectClose(out, [10 * sig(2) + 20 * (1 - sig(2)), 10 * sig(4) + 20 * (1 - sig(4))]);
  });

  it('D=1 example by hand, causal (top-left: key j visible iff j <= i)', () => {
    const { out, probs } = run(true, null);
    expectClose(probs, [1, 0, sig(4), 1 - sig(4)]);
    expect(probs[1]).toBe(0);
    expectClose(out, [10, 10 * sig(4) + 20 * (1 - sig(4))]);
  });

  it('D=1 example by hand, key mask; causal + mask leaves row 0 empty -> zeros', () => {
    const masked = run(false, [0, 1]);
    expect(Array.from(masked.probs)).toEqual([0, 1, 0, 1]);
    expect(Array.from(masked.out)).toEqual([20, 20]);
    const both = run(true, [0, 1]);
    expect(Array.from(both.probs)).toEqual([0, 0, 0, 1]);
    expect(Array.from(both.out)).toEqual([0, 20]);
    expect(both.lse[0]).toBe(-Infinity);
  });

  const grad = (b: number, h: number, tq: number, tk: number, d: number, causal: boolean, mask: number[] | null) => {
    const scale = 1 / Math.sqrt(d);
    const km = mask ? U(mask) : null;
    const q0 = randomArray(b * h * tq * d, 31, -1.5, 1.5);
    const k0 = randomArray(b * h * tk * d, 32, -1.5, 1.5);
    const v0 = randomArray(b * h * tk * d, 33);
    const fwd = (q: Float64Array, k: Float64Array, v: Float64Array) => {
      const out = Z(b * h * tq * d);
      const lse = Z(b * h * tq);
      be.attentionForward(out, lse, F(q), F(k), F(v), km, b, h, tq, tk, d, causal, scale, 0, 0, 0);
      return { out, lse };
    };
    return gradcheck(
      ([q, k, v]) => R(fwd(q!, k!, v!).out),
      [q0, k0, v0],
      (w) => {
        const { out, lse } = fwd(q0, k0, v0);
        const dq = acc(q0.length);
        const dk = acc(k0.length);
        const dv = acc(v0.length);
        be.attentionBackward(dq, dk, dv, F(w), F(q0), F(k0), F(v0), out, lse, km, b, h, tq, tk, d, causal, scale, 0, 0, 0);
        return [delta(dq), delta(dk), delta(dv)];
      },
    );
  };

  it('gradcheck q, k, v: no mask, Tq != Tk', () => expectGrad(grad(2, 2, 3, 4, 3, false, null)));
  it('gradcheck q, k, v: causal', () => expectGrad(grad(1, 2, 4, 4, 3, true, null)));
  it('gradcheck q, k, v: key mask', () => expectGrad(grad(2, 1, 3, 4, 2, false, [1, 0, 1, 1, 0, 1, 1, 0])));
  it('gradcheck q, k, v: causal + key mask with a fully masked row', () =>
    expectGrad(grad(2, 2, 3, 3, 2, true, [0, 1, 1, 1, 1, 0])));
});

describe('reference backend: activations', () => {
  it('relu forward', () => {
    const out = Z(4);
    be.reluForward(out, F([-1, 0, 2, -0.5]));
    expect(Array.from(R(out))).toEqual([0, 0, 2, 0]);
  });

  // inputs kept away from relu's kink at 0
  const x0 = randomArray(12, 41, -2, 2).map((x) => (Math.abs(x) < 0.05 ? x + 0.1 : x));
  for (const kind of ['relu', 'gelu'] as const) {
    it(`gradcheck ${kind}`, () => {
      const fwdOp = kind === 'relu' ? be.reluForward.bind(be) : be.geluForward.bind(be);
      const bwdOp = kind === 'relu' ? be.reluBackward.bind(be) : be.geluBackward.bind(be);
      const r = gradcheck(
        ([x]) => {
          const out = Z(x!.length);
          fwdOp(out, F(x!));
          return R(out);
        },
        [x0.slice()],
        (w) => {
          const dx = acc(x0.length);
          bwdOp(dx, F(w), F(x0));
          return [delta(dx)];
        },
      );
      expectGrad(r);
    });
  }
});

describe('reference backend: embedding', () => {
  it('looks up rows', () => {
    const out = Z(6);
    be.embeddingForward(out, I([2, 0, 2]), F([0, 1, 10, 11, 20, 21]), 2);
    expect(Array.from(R(out))).toEqual([20, 21, 0, 1, 20, 21]);
    expect(() => be.embeddingForward(out, I([3, 0, 0]), F([0, 1, 10, 11, 20, 21]), 2)).toThrow(/ids\[0\] = 3/);
  });

  it('gradcheck table (repeated ids scatter-add)', () => {
    const ids = I([1, 3, 1, 0, 1]);
    const vocab = 4;
    const dim = 3;
    const r = gradcheck(
      ([t]) => {
        const out = Z(5 * dim);
        be.embeddingForward(out, ids, F(t!), dim);
        return R(out);
      },
      [randomArray(vocab * dim, 42)],
      (w) => {
        const dt = acc(vocab * dim);
        be.embeddingBackward(dt, F(w), ids, dim);
        return [delta(dt)];
      },
    );
    expectGrad(r);
  });
});

describe('reference backend: cross-entropy', () => {
  const rows = 5;
  const vocab = 6;
  const logits0 = randomArray(rows * vocab, 51, -3, 3);

  const forward = (logits: Float64Array, targets: number[], ignore: number, eps: number) => {
    const loss = Z(1);
    const lse = Z(rows);
    be.crossEntropyForward(loss, lse, F(logits), I(targets), rows, vocab, ignore, eps);
    return { loss: R(loss), lse };
  };

  it('smoothing 0 equals the mean of -log softmax at the target, ignoring ignore_index', () => {
    const targets = [1, -100, 5, 0, -100];
    const { loss } = forward(logits0, targets, -100, 0);
    let want = 0;
    let count = 0;
    for (let r = 0; r < rows; r++) {
      if (targets[r] === -100) continue;
      const row = logits0.subarray(r * vocab, r * vocab + vocab);
      const z = row.reduce((a, b) => a + Math.exp(b), 0);
      want += -Math.log(Math.exp(row[targets[r]!]!) / z);
      count++;
    }
    expect(loss[0]).toBeCloseTo(want / count, 13);
  });

  it('label smoothing: (1-eps)(lse - x_t) + eps(lse - mean x)', () => {
    const targets = [0, 1, 2, 3, 4];
    const eps = 0.1;
    const { loss } = forward(logits0, targets, -1, eps);
    let want = 0;
    for (let r = 0; r < rows; r++) {
      const row = Array.from(logits0.subarray(r * vocab, r * vocab + vocab));
      const lse = Math.log(row.reduce((a, b) => a + Math.exp(b), 0));
      // the smoothed target distribution (1-eps)·onehot + eps/V, cross-entropy against log p
      want += row.reduce((a, x, j) => a - ((j === targets[r] ? 1 - eps : 0) + eps / vocab) * (x - lse), 0);
    }
    expect(loss[0]).toBeCloseTo(want / rows, 13);
  });

  it('every target ignored gives NaN and no gradient', () => {
    const { loss, lse } = forward(logits0, [0, 0, 0, 0, 0], 0, 0);
    expect(loss[0]).toBeNaN();
    const dl = acc(rows * vocab);
    be.crossEntropyBackward(dl, F([1]), F(logits0), lse, I([0, 0, 0, 0, 0]), rows, vocab, 0, 0, true);
    expect(delta(dl).every((x) => x === 0)).toBe(true);
  });

  for (const [ignore, eps] of [[-100, 0], [2, 0], [2, 0.1], [-100, 0.25]] as const) {
    it(`gradcheck logits (ignore ${ignore}, smoothing ${eps})`, () => {
      const targets = [2, 0, 5, 2, 1];
      const r = gradcheck(
        ([x]) => forward(x!, targets, ignore, eps).loss,
        [logits0.slice()],
        (w) => {
          const { lse } = forward(logits0, targets, ignore, eps);
          const dl = acc(rows * vocab);
          be.crossEntropyBackward(dl, F(w), F(logits0), lse, I(targets), rows, vocab, ignore, eps, true);
          return [delta(dl)];
        },
      );
      expectGrad(r);
    });
  }
});

describe('reference backend: dropout', () => {
  it('randomU32 matches independently computed splitmix64 values', () => {
    // python3: splitmix64(((seed << 32) | counter)) >> 32, masked to 64 bits after each op
    const known: [number, number, number][] = [
      [0, 0, 3793791033],
      [0, 1, 2433363436],
      [1, 0, 3291240986],
      [42, 7, 743975838],
      [0xffffffff, 0xffffffff, 3839455607],
      [1234, 100000, 1377686501],
      [0x80000000, 0x7fffffff, 423172949],
    ];
    for (const [s, c, want] of known) {
      expect(randomU32(s, c)).toBe(want);
      expect(randomU32BigInt(s, c)).toBe(want);
    }
  });

  it('randomU32 equals the BigInt formula on random inputs', () => {
    const rng = makeRng(7);
    for (let i = 0; i < 5000; i++) {
      const s = Math.floor(rng() * 2 ** 32);
      const c = Math.floor(rng() * 2 ** 32);
      expect(randomU32(s, c)).toBe(randomU32BigInt(s, c));
    }
  });

  const n = 100_000;
  const drop = (p: number, seed: number, offset: number, x: Storage = F(new Array(n).fill(1))) => {
    const out = Z(x.length);
    const keep = be.alloc('u8', x.length);
    be.dropoutForward(out, keep, x, p, seed, offset);
    return { out: R(out), keep: be.read(keep) as Uint8Array };
  };

  it('keeps about 1 - p of 1e5 elements and scales kept values by 1/(1-p)', () => {
    for (const p of [0.1, 0.5, 0.9]) {
      const { out, keep } = drop(p, 123, 0);
      const rate = keep.reduce((a, b) => a + b, 0) / n;
      expect(Math.abs(rate - (1 - p))).toBeLessThan(0.01);
      const pf = Math.fround(p);
      for (let i = 0; i < 100; i++) expect(out[i]).toBe(keep[i] ? 1 / (1 - pf) : 0);
    }
  });

  it('follows keep iff randomU32(seed, offset + i) >= floor(f32(p) · 2^32)', () => {
    const p = 0.3;
    const threshold = Math.floor(Math.fround(p) * 2 ** 32);
    const { keep } = drop(p, 99, 17, F(new Array(1000).fill(2)));
    for (let i = 0; i < 1000; i++) expect(keep[i]).toBe(randomU32(99, 17 + i) >= threshold ? 1 : 0);
  });

  it('is deterministic per (seed, offset), shifts with offset, changes with seed, wraps the counter', () => {
    const a = drop(0.5, 5, 0).keep;
    expect(drop(0.5, 5, 0).keep).toEqual(a);
    const shifted = drop(0.5, 5, 10).keep;
    expect(shifted.subarray(0, n - 10)).toEqual(a.subarray(10));
    const other = drop(0.5, 6, 0).keep;
    let diff = 0;
    for (let i = 0; i < n; i++) diff += a[i] !== other[i] ? 1 : 0;
    expect(diff).toBeGreaterThan(n * 0.4);
    const wrap = drop(0.5, 5, 0xffffffff, F([1, 1, 1])).keep;
    expect(Array.from(wrap.subarray(1))).toEqual(Array.from(a.subarray(0, 2)));
  });

  it('p = 0 keeps everything and returns the input', () => {
    const x = randomArray(50, 61);
    const { out, keep } = drop(0, 1, 0, F(x));
    expect(keep.every((k) => k === 1)).toBe(true);
    expect(Array.from(out)).toEqual(Array.from(x));
    expect(() => drop(1, 1, 0)).toThrow(RangeError);
  });

  it('gradcheck (fixed mask)', () => {
    const p = 0.4;
    const len = 40;
    const keep = be.alloc('u8', len);
    be.dropoutForward(Z(len), keep, Z(len), p, 77, 3);
    const r = gradcheck(
      ([x]) => {
        const out = Z(len);
        be.dropoutForward(out, be.alloc('u8', len), F(x!), p, 77, 3);
        return R(out);
      },
      [randomArray(len, 62)],
      (w) => {
        const dx = acc(len);
        be.dropoutBackward(dx, F(w), keep, p);
        return [delta(dx)];
      },
    );
    expectGrad(r);
  });
});

describe('reference backend: elementwise and layout', () => {
  it('add, accumulate, scale, scaleInplace, mul, sumSquares', () => {
    const out = Z(3);
    be.addForward(out, F([1, 2, 3]), F([10, 20, 30]));
    expect(Array.from(R(out))).toEqual([11, 22, 33]);
    be.accumulate(out, F([1, 1, 2]), -2);
    expect(Array.from(R(out))).toEqual([9, 20, 29]);
    be.scaleForward(out, F([1, -2, 3]), 0.5);
    expect(Array.from(R(out))).toEqual([0.5, -1, 1.5]);
    be.scaleInplace(out, 2);
    expect(Array.from(R(out))).toEqual([1, -2, 3]);
    be.mulForward(out, F([1, -2, 3]), F([4, 5, 6]));
    expect(Array.from(R(out))).toEqual([4, -10, 18]);
    expect(be.sumSquares(F([3, -4, 12]))).toBe(169);
  });

  it('bias add forward and gradcheck (inp and bias)', () => {
    const out = Z(4);
    be.biasAddForward(out, F([1, 2, 3, 4]), F([10, 20]), 2, 2);
    expect(Array.from(R(out))).toEqual([11, 22, 13, 24]);
    const [rows, cols] = [3, 4];
    const r = gradcheck(
      ([x, b]) => {
        const o = Z(rows * cols);
        be.biasAddForward(o, F(x!), F(b!), rows, cols);
        return R(o);
      },
      [randomArray(rows * cols, 71), randomArray(cols, 72)],
      (w) => {
        const db = acc(cols);
        be.biasAddBackward(db, F(w), rows, cols);
        // d inp is dout itself (the op layer passes the gradient through)
        return [w, delta(db)];
      },
    );
    expectGrad(r);
  });

  it('transpose12 forward and gradcheck', () => {
    const out = Z(6);
    // inp [1, 2, 3, 1] -> out [1, 3, 2, 1]
    be.transpose12Forward(out, F([1, 2, 3, 4, 5, 6]), 1, 2, 3, 1);
    expect(Array.from(R(out))).toEqual([1, 4, 2, 5, 3, 6]);
    const [a, b, c, d] = [2, 3, 4, 2];
    const r = gradcheck(
      ([x]) => {
        const o = Z(a * b * c * d);
        be.transpose12Forward(o, F(x!), a, b, c, d);
        return R(o);
      },
      [randomArray(a * b * c * d, 73)],
      (w) => {
        const dx = acc(a * b * c * d);
        be.transpose12Backward(dx, F(w), a, b, c, d);
        return [delta(dx)];
      },
    );
    expectGrad(r);
  });

  it('narrow forward and gradcheck', () => {
    const out = Z(4);
    // inp [2, 3, 1], rows 1..2 of axis 1
    be.narrowForward(out, F([0, 1, 2, 10, 11, 12]), 2, 3, 1, 1, 2);
    expect(Array.from(R(out))).toEqual([1, 2, 11, 12]);
    expect(() => be.narrowForward(out, F([0, 1, 2, 10, 11, 12]), 2, 3, 1, 2, 2)).toThrow(RangeError);
    const [outer, dim, inner, start, len] = [2, 5, 3, 1, 3];
    const r = gradcheck(
      ([x]) => {
        const o = Z(outer * len * inner);
        be.narrowForward(o, F(x!), outer, dim, inner, start, len);
        return R(o);
      },
      [randomArray(outer * dim * inner, 74)],
      (w) => {
        const dx = acc(outer * dim * inner);
        be.narrowBackward(dx, F(w), outer, dim, inner, start, len);
        return [delta(dx)];
      },
    );
    expectGrad(r);
  });
});

describe('reference backend: adam', () => {
  const hand = (p: number, g: number, m: number, v: number, lr: number, b1: number, b2: number, eps: number,
    wd: number, step: number, decoupled: boolean): [number, number, number] => {
    if (decoupled) p -= lr * wd * p;
    else g += wd * p;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const mhat = m / (1 - b1 ** step);
    const vhat = v / (1 - b2 ** step);
    return [p - (lr * mhat) / (Math.sqrt(vhat) + eps), m, v];
  };

  for (const decoupled of [false, true]) {
    it(`one step and a second step match the hand formula (decoupled=${decoupled})`, () => {
      const p0 = [0.5, -1, 2];
      const g0 = [0.1, -0.2, 0.3];
      const [lr, b1, b2, eps, wd] = [0.01, 0.9, 0.98, 1e-8, 0.1];
      const p = F(p0);
      const m = Z(3);
      const v = Z(3);
      be.adamUpdate(p, m, v, F(g0), lr, b1, b2, eps, wd, 1, decoupled);
      const want = p0.map((pi, i) => hand(pi, g0[i]!, 0, 0, lr, b1, b2, eps, wd, 1, decoupled));
      expectClose(R(p), want.map((w) => w[0]));
      expectClose(R(m), want.map((w) => w[1]));
      expectClose(R(v), want.map((w) => w[2]));
      // first step: |update| ≈ lr (m̂/√v̂ = sign(g)) when weight decay is decoupled
      if (decoupled) for (let i = 0; i < 3; i++) expect(Math.abs(R(p)[i]! - p0[i]! * (1 - lr * wd))).toBeCloseTo(lr, 6);
      const g1 = [-0.3, 0.05, 0.3];
      be.adamUpdate(p, m, v, F(g1), lr, b1, b2, eps, wd, 2, decoupled);
      const want2 = want.map((w, i) => hand(w[0], g1[i]!, w[1], w[2], lr, b1, b2, eps, wd, 2, decoupled));
      expectClose(R(p), want2.map((w) => w[0]));
    });
  }

  it('rejects step 0', () => {
    expect(() => be.adamUpdate(Z(1), Z(1), Z(1), Z(1), 0.1, 0.9, 0.99, 1e-8, 0, 0, false)).toThrow(/step/);
  });
});

// The oracle itself against PyTorch (float64 references stored as f32): a bug here would
// make every parity test compare against the wrong thing.
describe.skipIf(!fixturesAvailable())(`reference backend vs PyTorch fixtures (${fixturePath()})`, () => {
  const fx = loadFixtures();
  const TOL = 1e-4; // DESIGN's kernel tolerance: inputs and outputs are stored as f32

  it('matmul and bmm', () => {
    for (const c of fx.casesOf('matmul')) {
      const [m, k, n] = [c['m'], c['k'], c['n']] as number[];
      if (m! * k! * n! > 2e6) continue; // the big ones add nothing to the oracle check but time
      const out = Z(m! * n!);
      be.matmulForward(out, F(fx.f64(`${c.name}.a`)), F(fx.f64(`${c.name}.b_t`)), 1, m!, k!, n!, false, true, false);
      expectClose(R(out), fx.f64(`${c.name}.c`), TOL);
    }
    for (const c of fx.casesOf('bmm')) {
      const [bt, m, k] = c['shape_a'] as number[];
      const n = (c['shape_b'] as number[])[2]!;
      const out = Z(bt! * m! * n);
      be.matmulForward(out, F(fx.f64(`${c.name}.a`)), F(fx.f64(`${c.name}.b`)), bt!, m!, k!, n, false, false, false);
      expectClose(R(out), fx.f64(`${c.name}.c`), TOL);
    }
  });

  it('softmax forward and backward', () => {
    for (const c of fx.casesOf('softmax')) {
      const y = fx.get(`${c.name}.y`);
      const cols = y.shape[y.shape.length - 1]!;
      const rows = y.data.length / cols;
      const mask = fx.has(`${c.name}.mask`) ? be.fromArray('u8', fx.f64(`${c.name}.mask`)) : null;
      const out = Z(rows * cols);
      be.softmaxForward(out, F(fx.f64(`${c.name}.x`)), mask, rows, cols);
      expectClose(R(out), fx.f64(`${c.name}.y`), TOL);
      const dx = Z(rows * cols);
      be.softmaxBackward(dx, F(fx.f64(`${c.name}.dy`)), out, rows, cols);
      expectClose(R(dx), fx.f64(`${c.name}.dx`), TOL);
    }
  });

  it('layernorm forward and backward', () => {
    for (const c of fx.casesOf('layernorm')) {
      const shape = c['shape'] as number[];
      const dim = shape[shape.length - 1]!;
      const rows = shape.reduce((a, b) => a * b, 1) / dim;
      const out = Z(rows * dim);
      const mean = Z(rows);
      const rstd = Z(rows);
      const [x, g, b] = [fx.f64(`${c.name}.x`), fx.f64(`${c.name}.gamma`), fx.f64(`${c.name}.beta`)];
      be.layernormForward(out, mean, rstd, F(x), F(g), F(b), rows, dim, c['eps'] as number);
      expectClose(R(out), fx.f64(`${c.name}.y`), TOL);
      const [dx, dg, db] = [Z(rows * dim), Z(dim), Z(dim)];
      be.layernormBackward(dx, dg, db, F(fx.f64(`${c.name}.dy`)), F(x), F(g), mean, rstd, rows, dim);
      expectClose(R(dx), fx.f64(`${c.name}.dx`), TOL);
      expectClose(R(dg), fx.f64(`${c.name}.dgamma`), TOL);
      expectClose(R(db), fx.f64(`${c.name}.dbeta`), TOL);
    }
  });

  it('attention forward and backward', () => {
    for (const c of fx.casesOf('attention')) {
      const [B, H, Tq, Tk, D] = ['B', 'H', 'Tq', 'Tk', 'D'].map((k) => c[k] as number) as [number, number, number, number, number];
      const scale = 1 / Math.sqrt(D);
      const km = fx.has(`${c.name}.key_mask`) ? be.fromArray('u8', fx.f64(`${c.name}.key_mask`)) : null;
      const [q, k, v] = ['q', 'k', 'v'].map((t) => F(fx.f64(`${c.name}.${t}`))) as [Storage, Storage, Storage];
      const causal = c['causal'] as boolean;
      const out = Z(B * H * Tq * D);
      const lse = Z(B * H * Tq);
      const probs = Z(B * H * Tq * Tk);
      be.attentionForward(out, lse, q, k, v, km, B, H, Tq, Tk, D, causal, scale, 0, 0, 0);
      be.attentionProbs(probs, q, k, lse, km, B, H, Tq, Tk, D, causal, scale);
      expectClose(R(out), fx.f64(`${c.name}.out`), TOL);
      expectClose(R(probs), fx.f64(`${c.name}.probs`), TOL);
      const [dq, dk, dv] = [Z(B * H * Tq * D), Z(B * H * Tk * D), Z(B * H * Tk * D)];
      be.attentionBackward(dq, dk, dv, F(fx.f64(`${c.name}.dout`)), q, k, v, out, lse, km, B, H, Tq, Tk, D, causal, scale, 0, 0, 0);
      expectClose(R(dq), fx.f64(`${c.name}.dq`), TOL);
      expectClose(R(dk), fx.f64(`${c.name}.dk`), TOL);
      expectClose(R(dv), fx.f64(`${c.name}.dv`), TOL);
    }
  });

  it('cross-entropy forward and backward', () => {
    for (const c of fx.casesOf('cross_entropy')) {
      const logits = fx.get(`${c.name}.logits`);
      const vocab = logits.shape[logits.shape.length - 1]!;
      const rows = logits.data.length / vocab;
      const [ignore, eps] = [c['ignore_index'] as number, c['label_smoothing'] as number];
      const x = F(fx.f64(`${c.name}.logits`));
      const t = be.fromArray('i32', fx.f64(`${c.name}.targets`));
      const loss = Z(1);
      const lse = Z(rows);
      be.crossEntropyForward(loss, lse, x, t, rows, vocab, ignore, eps);
      expectClose(R(loss), fx.f64(`${c.name}.loss`), TOL);
      const dl = Z(rows * vocab);
      be.crossEntropyBackward(dl, F([1]), x, lse, t, rows, vocab, ignore, eps, true);
      expectClose(R(dl), fx.f64(`${c.name}.dlogits`), TOL);
    }
  });

  it('adam, adamw and adam with L2 over several steps', () => {
    for (const c of fx.casesOf('adam', 'adamw', 'adam_l2')) {
      const hp = c['hparams'] as { lr: number; betas: [number, number]; eps: number; weight_decay?: number };
      const p = F(fx.f64(`${c.name}.p0`));
      const m = Z(p.length);
      const v = Z(p.length);
      for (let s = 1; s <= (c['steps'] as number); s++) {
        be.adamUpdate(p, m, v, F(fx.f64(`${c.name}.g${s}`)), hp.lr, hp.betas[0], hp.betas[1], hp.eps,
          hp.weight_decay ?? 0, s, c.op === 'adamw');
        expectClose(R(p), fx.f64(`${c.name}.p${s}`), TOL);
      }
    }
  });
});
