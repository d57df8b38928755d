// The float64 reference backend: the test oracle. Every kernel is the textbook loop over
// Float64Array, written to be read next to its Rust doc comment (crates/kernels/src), not to
// be fast. f32 storage is a Float64Array here, so the oracle carries no f32 rounding of its
// own; i32 storage is an Int32Array, u8 storage a Uint8Array.
//
// Unlike native and wasm, this backend is called from gradient checks with hand-built
// buffers, so it re-checks every length and dtype and throws a RangeError naming the op
// instead of silently reading `undefined` (NaN) past the end of a typed array.

import { keepsPreActivation, type Backend, type BackendName, type Capability, type DType, type HostArray, type LinearActivation, type Storage } from './backend.js';
import { HostStorage, hostMemory, liveHost, newHostArray } from './host_storage.js';

type RefArray = Float64Array | Int32Array | Uint8Array;

type RefStorage = HostStorage<RefArray>;
const OWNER = 'reference';

function newArray(dtype: DType, length: number): RefArray {
  return newHostArray(dtype, length, Float64Array) as RefArray;
}

/** The live reference storage behind `s`, or an Error naming the op. */
function live(s: Storage, op: string, name: string): RefStorage {
  return liveHost<RefArray>(s, OWNER, op, name);
}

function checked<T extends RefArray>(s: Storage, op: string, name: string, dtype: DType, want?: number): T {
  const r = live(s, op, name);
  if (r.dtype !== dtype) throw new TypeError(`${op}: ${name} must have dtype ${dtype}, got ${r.dtype}`);
  if (want !== undefined && r.data.length !== want) {
    // Same wording as crates/kernels/src/check.rs.
    throw new RangeError(`${op}: ${name} has length ${r.data.length}, expected ${want}`);
  }
  return r.data as T;
}

const f32 = (s: Storage, op: string, name: string, want?: number): Float64Array =>
  checked<Float64Array>(s, op, name, 'f32', want);
const i32 = (s: Storage, op: string, name: string, want?: number): Int32Array =>
  checked<Int32Array>(s, op, name, 'i32', want);
const u8 = (s: Storage, op: string, name: string, want?: number): Uint8Array =>
  checked<Uint8Array>(s, op, name, 'u8', want);

// ---- erf / GELU ----------------------------------------------------------------------------

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

// ---- counter-based RNG (mirrors crates/kernels/src/ops/dropout.rs bit for bit) -----------

/** The full 64-bit product of two u32 as [hi, lo], exact in doubles via 16-bit limbs. */
function mul32x32(a: number, b: number): [number, number] {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const mid = a0 * b1 + a1 * b0; // < 2^33
  const lo = a0 * b0 + (mid % 65536) * 65536; // < 2^33
  const carry = Math.floor(lo / 4294967296);
  const hi = (a1 * b1 + Math.floor(mid / 65536) + carry) % 4294967296;
  return [hi, lo % 4294967296];
}

/** (ahi:alo) · (bhi:blo) mod 2^64 as [hi, lo]. */
function mul64(ahi: number, alo: number, bhi: number, blo: number): [number, number] {
  const [phi, plo] = mul32x32(alo, blo);
  const hi = (phi + Math.imul(ahi, blo) + Math.imul(alo, bhi)) >>> 0;
  return [hi, plo];
}

/** High 32 bits of splitmix64((seed << 32) | counter), as `random_u32` in dropout.rs. */
export function randomU32(seed: number, counter: number): number {
  let hi = seed >>> 0;
  let lo = counter >>> 0;
  // z = x + 0x9E3779B97F4A7C15
  const sumLo = lo + 0x7f4a7c15;
  lo = sumLo >>> 0;
  hi = (hi + 0x9e3779b9 + (sumLo > 0xffffffff ? 1 : 0)) >>> 0;
  // z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
  let slo = ((lo >>> 30) | (hi << 2)) >>> 0;
  let shi = hi >>> 30;
  [hi, lo] = mul64((hi ^ shi) >>> 0, (lo ^ slo) >>> 0, 0xbf58476d, 0x1ce4e5b9);
  // z = (z ^ (z >> 27)) * 0x94D049BB133111EB
  slo = ((lo >>> 27) | (hi << 5)) >>> 0;
  shi = hi >>> 27;
  [hi, lo] = mul64((hi ^ shi) >>> 0, (lo ^ slo) >>> 0, 0x94d049bb, 0x133111eb);
  // z ^= z >> 31; only the high word is returned, and (z >> 31)'s high word is hi >>> 31.
  return (hi ^ (hi >>> 31)) >>> 0;
}

/** Threshold on the u32 draw: keep iff draw >= floor(p·2^32), p as the f32 the kernel sees. */
export function dropoutThreshold(p: number): number {
  return Math.floor(Math.fround(p) * 4294967296);
}

// ---- the backend ---------------------------------------------------------------------------

export class ReferenceBackend implements Backend {
  readonly name: BackendName = 'reference';
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>(['float64']);

  getThreads(): number {
    return 1;
  }

  setThreads(n: number): void {
    if (n !== 1) throw new RangeError(`setThreads: the reference backend has exactly 1 thread, got ${n}`);
  }

  // ---- memory ------------------------------------------------------------------------------

  alloc(dtype: DType, length: number): Storage {
    return new HostStorage(OWNER, dtype, newArray(dtype, length));
  }

  /** Fresh (zero) arrays: the oracle has no pool, so nothing to save. */
  allocUninit(dtype: DType, length: number): Storage {
    return this.alloc(dtype, length);
  }

  fromArray(dtype: DType, data: ArrayLike<number>): Storage {
    const arr = newArray(dtype, data.length);
    arr.set(data);
    return new HostStorage(OWNER, dtype, arr);
  }

  read(s: Storage): HostArray {
    return hostMemory.read(s, OWNER);
  }

  write(s: Storage, data: ArrayLike<number>): void {
    hostMemory.write(s, OWNER, data);
  }

  writeAt(s: Storage, offset: number, data: ArrayLike<number>): void {
    hostMemory.writeAt(s, OWNER, offset, data);
  }

  fill(s: Storage, value: number): void {
    hostMemory.fill(s, OWNER, value);
  }

  copy(dst: Storage, src: Storage): void {
    hostMemory.copy(dst, src, OWNER);
  }

  free(s: Storage): void {
    if (!(s instanceof HostStorage) || s.owner !== OWNER) throw new TypeError('free: s is not a reference-backend storage');
    if (s.freed) return;
    s.freed = true;
    s.data = new Float64Array(0); // drop the memory now, not when the handle is collected
  }

  // ---- matmul ------------------------------------------------------------------------------
  // op(a) is [m, k] (a stored [batch, k, m] when transA), op(b) is [k, n] (b stored
  // [batch, n, k] when transB), out is [batch, m, n].

  matmulForward(out: Storage, a: Storage, b: Storage, batch: number, m: number, k: number, n: number,
    transA: boolean, transB: boolean, accumulate: boolean): void {
    const op = 'matmulForward';
    const O = f32(out, op, 'out', batch * m * n);
    const A = f32(a, op, 'a', batch * m * k);
    const B = f32(b, op, 'b', batch * k * n);
    for (let bi = 0; bi < batch; bi++) {
      const ao = bi * m * k;
      const bo = bi * k * n;
      const oo = bi * m * n;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let p = 0; p < k; p++) {
            const aip = transA ? A[ao + p * m + i]! : A[ao + i * k + p]!;
            const bpj = transB ? B[bo + j * k + p]! : B[bo + p * n + j]!;
            s += aip * bpj;
          }
          O[oo + i * n + j] = accumulate ? O[oo + i * n + j]! + s : s;
        }
      }
    }
  }

  matmulBackward(da: Storage | null, db: Storage | null, dout: Storage, a: Storage, b: Storage,
    batch: number, m: number, k: number, n: number, transA: boolean, transB: boolean): void {
    const op = 'matmulBackward';
    const G = f32(dout, op, 'dout', batch * m * n);
    const A = f32(a, op, 'a', batch * m * k);
    const B = f32(b, op, 'b', batch * k * n);
    const DA = da === null ? null : f32(da, op, 'da', batch * m * k);
    const DB = db === null ? null : f32(db, op, 'db', batch * k * n);
    for (let bi = 0; bi < batch; bi++) {
      const ao = bi * m * k;
      const bo = bi * k * n;
      const go = bi * m * n;
      if (DA) {
        // d op(a)[i, p] = sum_j dout[i, j] · op(b)[p, j], written where a stores (i, p).
        for (let i = 0; i < m; i++) {
          for (let p = 0; p < k; p++) {
            let s = 0;
            for (let j = 0; j < n; j++) {
              const bpj = transB ? B[bo + j * k + p]! : B[bo + p * n + j]!;
              s += G[go + i * n + j]! * bpj;
            }
            const idx = transA ? ao + p * m + i : ao + i * k + p;
            DA[idx] = DA[idx]! + s;
          }
        }
      }
      if (DB) {
        // d op(b)[p, j] = sum_i op(a)[i, p] · dout[i, j], written where b stores (p, j).
        for (let p = 0; p < k; p++) {
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let i = 0; i < m; i++) {
              const aip = transA ? A[ao + p * m + i]! : A[ao + i * k + p]!;
              s += aip * G[go + i * n + j]!;
            }
            const idx = transB ? bo + j * k + p : bo + p * n + j;
            DB[idx] = DB[idx]! + s;
          }
        }
      }
    }
  }

  // ---- softmax -----------------------------------------------------------------------------

  // ---- fused linear: composed from the kernels below, in float64 --------------------------

  linearForward(out: Storage, pre: Storage | null, x: Storage, weight: Storage, bias: Storage | null,
    rows: number, inF: number, outF: number, activation: LinearActivation): void {
    const op = 'linearForward';
    requirePresence(op, activation, [['pre', pre, 'gelu']]);
    checkLinearLengths(op, { out, pre, x, weight, bias }, rows, inF, outF);
    const target = keepsPreActivation(activation) ? pre! : out;
    this.matmulForward(target, x, weight, 1, rows, inF, outF, false, true, false);
    const T = f32(target, op, keepsPreActivation(activation) ? 'pre' : 'out', rows * outF);
    if (bias !== null) {
      const B = f32(bias, op, 'bias', outF);
      for (let i = 0; i < T.length; i++) T[i] = T[i]! + B[i % outF]!;
    }
    if (activation === 'relu') for (let i = 0; i < T.length; i++) T[i] = relu(T[i]!);
    if (activation === 'gelu') this.geluForward(out, target);
    if (activation === 'gelu_tanh') this.geluTanhForward(out, target);
  }

  linearBackward(dx: Storage | null, dweight: Storage | null, dbias: Storage | null, dpre: Storage | null,
    dout: Storage, x: Storage, weight: Storage, saved: Storage | null, rows: number, inF: number, outF: number,
    activation: LinearActivation): void {
    const op = 'linearBackward';
    requirePresence(op, activation, [['dpre', dpre, 'any'], ['saved', saved, 'any']]);
    checkLinearLengths(op, { dx, dweight, dbias, dpre, dout, x, weight, saved }, rows, inF, outF);
    let grad = dout;
    if (activation !== 'identity') {
      this.fill(dpre!, 0);
      if (activation === 'relu') this.reluBackward(dpre!, dout, saved!);
      else if (activation === 'gelu') this.geluBackward(dpre!, dout, saved!);
      else this.geluTanhBackward(dpre!, dout, saved!);
      grad = dpre!;
    }
    if (dbias !== null) this.biasAddBackward(dbias, grad, rows, outF);
    this.matmulBackward(dx, dweight, grad, x, weight, 1, rows, inF, outF, false, true);
  }

  softmaxForward(out: Storage, inp: Storage, mask: Storage | null, rows: number, cols: number): void {
    const op = 'softmaxForward';
    const O = f32(out, op, 'out', rows * cols);
    const X = f32(inp, op, 'inp', rows * cols);
    const M = mask === null ? null : u8(mask, op, 'mask', rows * cols);
    const keep = (r: number, c: number): boolean => M === null || M[r * cols + c] !== 0;
    for (let r = 0; r < rows; r++) softmaxRow(O, r * cols, X, r * cols, cols, (c) => keep(r, c));
  }

  softmaxBackward(dinp: Storage, dout: Storage, out: Storage, rows: number, cols: number): void {
    const op = 'softmaxBackward';
    const DX = f32(dinp, op, 'dinp', rows * cols);
    const G = f32(dout, op, 'dout', rows * cols);
    const Y = f32(out, op, 'out', rows * cols);
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let dot = 0;
      for (let c = 0; c < cols; c++) dot += G[o + c]! * Y[o + c]!;
      for (let c = 0; c < cols; c++) DX[o + c] = DX[o + c]! + Y[o + c]! * (G[o + c]! - dot);
    }
  }

  // ---- layernorm ---------------------------------------------------------------------------

  layernormForward(out: Storage, mean: Storage, rstd: Storage, inp: Storage, weight: Storage,
    bias: Storage, rows: number, dim: number, eps: number): void {
    const op = 'layernormForward';
    const O = f32(out, op, 'out', rows * dim);
    const MU = f32(mean, op, 'mean', rows);
    const RS = f32(rstd, op, 'rstd', rows);
    const X = f32(inp, op, 'inp', rows * dim);
    const W = f32(weight, op, 'weight', dim);
    const Bv = f32(bias, op, 'bias', dim);
    for (let r = 0; r < rows; r++) {
      const o = r * dim;
      let mu = 0;
      for (let c = 0; c < dim; c++) mu += X[o + c]!;
      mu /= dim;
      let v = 0;
      for (let c = 0; c < dim; c++) v += (X[o + c]! - mu) ** 2;
      v /= dim; // biased, as PyTorch
      const rs = 1 / Math.sqrt(v + eps);
      MU[r] = mu;
      RS[r] = rs;
      for (let c = 0; c < dim; c++) O[o + c] = (X[o + c]! - mu) * rs * W[c]! + Bv[c]!;
    }
  }

  layernormBackward(dinp: Storage, dweight: Storage, dbias: Storage, dout: Storage, inp: Storage,
    weight: Storage, mean: Storage, rstd: Storage, rows: number, dim: number): void {
    const op = 'layernormBackward';
    const DX = f32(dinp, op, 'dinp', rows * dim);
    const DW = f32(dweight, op, 'dweight', dim);
    const DB = f32(dbias, op, 'dbias', dim);
    const G = f32(dout, op, 'dout', rows * dim);
    const X = f32(inp, op, 'inp', rows * dim);
    const W = f32(weight, op, 'weight', dim);
    const MU = f32(mean, op, 'mean', rows);
    const RS = f32(rstd, op, 'rstd', rows);
    for (let r = 0; r < rows; r++) {
      const o = r * dim;
      const mu = MU[r]!;
      const rs = RS[r]!;
      // xhat = (x - mu)·rstd; dxhat = dout·w;
      // dx = rstd · (dxhat - mean(dxhat) - xhat·mean(dxhat·xhat)).
      let meanD = 0;
      let meanDX = 0;
      for (let c = 0; c < dim; c++) {
        const xhat = (X[o + c]! - mu) * rs;
        const dxhat = G[o + c]! * W[c]!;
        meanD += dxhat;
        meanDX += dxhat * xhat;
      }
      meanD /= dim;
      meanDX /= dim;
      for (let c = 0; c < dim; c++) {
        const xhat = (X[o + c]! - mu) * rs;
        const dxhat = G[o + c]! * W[c]!;
        DB[c] = DB[c]! + G[o + c]!;
        DW[c] = DW[c]! + G[o + c]! * xhat;
        DX[o + c] = DX[o + c]! + rs * (dxhat - meanD - xhat * meanDX);
      }
    }
  }

  // ---- attention ---------------------------------------------------------------------------
  // q: [B, H, Tq, D], k, v: [B, H, Tk, D], out: [B, H, Tq, D], lse: [B, H, Tq],
  // keyMask: [B, Tk] (1 attend). Causal is top-left: key j is visible to query i iff j <= i.
  // Row by row in float64; the weights of a row are e^(score - lse), as the kernels rebuild them.

  attentionForward(out: Storage, lse: Storage, q: Storage, k: Storage, v: Storage,
    keyMask: Storage | null, b: number, h: number, tq: number, tk: number, d: number,
    causal: boolean, scale: number): void {
    const op = 'attentionForward';
    const O = f32(out, op, 'out', b * h * tq * d);
    const L = f32(lse, op, 'lse', b * h * tq);
    const Q = f32(q, op, 'q', b * h * tq * d);
    const K = f32(k, op, 'k', b * h * tk * d);
    const V = f32(v, op, 'v', b * h * tk * d);
    const KM = keyMask === null ? null : u8(keyMask, op, 'keyMask', b * tk);
    const p = new Float64Array(tk);
    for (let bh = 0; bh < b * h; bh++) {
      for (let i = 0; i < tq; i++) {
        const rowLse = attentionScores(p, Q, K, KM, { b, h, tq, tk, d, causal, scale }, bh, i);
        L[bh * tq + i] = rowLse;
        weightsFromLse(p, rowLse);
        const qo = (bh * tq + i) * d;
        for (let c = 0; c < d; c++) {
          let s = 0;
          for (let j = 0; j < tk; j++) s += p[j]! * V[(bh * tk + j) * d + c]!;
          O[qo + c] = s;
        }
      }
    }
  }

  attentionProbs(probs: Storage, q: Storage, k: Storage, lse: Storage, keyMask: Storage | null,
    b: number, h: number, tq: number, tk: number, d: number, causal: boolean, scale: number): void {
    const op = 'attentionProbs';
    const P = f32(probs, op, 'probs', b * h * tq * tk);
    const Q = f32(q, op, 'q', b * h * tq * d);
    const K = f32(k, op, 'k', b * h * tk * d);
    const L = f32(lse, op, 'lse', b * h * tq);
    const KM = keyMask === null ? null : u8(keyMask, op, 'keyMask', b * tk);
    eachWeightRow(Q, K, L, KM, { b, h, tq, tk, d, causal, scale }, (bh, i, p) => P.set(p, (bh * tq + i) * tk));
  }

  attentionBackward(dq: Storage, dk: Storage, dv: Storage, dout: Storage, q: Storage, k: Storage,
    v: Storage, out: Storage, lse: Storage, keyMask: Storage | null, b: number, h: number,
    tq: number, tk: number, d: number, causal: boolean, scale: number): void {
    const op = 'attentionBackward';
    const DQ = f32(dq, op, 'dq', b * h * tq * d);
    const DK = f32(dk, op, 'dk', b * h * tk * d);
    const DV = f32(dv, op, 'dv', b * h * tk * d);
    const G = f32(dout, op, 'dout', b * h * tq * d);
    const Q = f32(q, op, 'q', b * h * tq * d);
    const K = f32(k, op, 'k', b * h * tk * d);
    const V = f32(v, op, 'v', b * h * tk * d);
    const O = f32(out, op, 'out', b * h * tq * d);
    const L = f32(lse, op, 'lse', b * h * tq);
    const KM = keyMask === null ? null : u8(keyMask, op, 'keyMask', b * tk);
    eachWeightRow(Q, K, L, KM, { b, h, tq, tk, d, causal, scale }, (bh, i, p) => {
      const qo = (bh * tq + i) * d;
      // delta = dout_i · out_i = sum_j p_ij dp_ij
      let delta = 0;
      for (let c = 0; c < d; c++) delta += G[qo + c]! * O[qo + c]!;
      for (let j = 0; j < tk; j++) {
        const pij = p[j]!;
        if (pij === 0) continue;
        const vo = (bh * tk + j) * d;
        // dv_j += p_ij · dout_i;  dp_ij = dout_i · v_j
        let dp = 0;
        for (let c = 0; c < d; c++) {
          DV[vo + c] = DV[vo + c]! + pij * G[qo + c]!;
          dp += G[qo + c]! * V[vo + c]!;
        }
        // softmax backward: ds_ij = p_ij (dp_ij - delta); scores = scale · q·k
        const ds = pij * (dp - delta) * scale;
        for (let c = 0; c < d; c++) {
          DQ[qo + c] = DQ[qo + c]! + ds * K[vo + c]!;
          DK[vo + c] = DK[vo + c]! + ds * Q[qo + c]!;
        }
      }
    });
  }

  // ---- activations -------------------------------------------------------------------------

  reluForward(out: Storage, inp: Storage): void {
    const X = f32(inp, 'reluForward', 'inp');
    const O = f32(out, 'reluForward', 'out', X.length);
    for (let i = 0; i < X.length; i++) O[i] = relu(X[i]!);
  }

  reluBackward(dinp: Storage, dout: Storage, inp: Storage): void {
    const X = f32(inp, 'reluBackward', 'inp');
    const DX = f32(dinp, 'reluBackward', 'dinp', X.length);
    const G = f32(dout, 'reluBackward', 'dout', X.length);
    // PyTorch's threshold_backward: no gradient where x <= 0; a NaN passes it on.
    for (let i = 0; i < X.length; i++) if (!(X[i]! <= 0)) DX[i] = DX[i]! + G[i]!;
  }

  geluForward(out: Storage, inp: Storage): void {
    pointwiseForward('geluForward', out, inp, gelu);
  }

  geluBackward(dinp: Storage, dout: Storage, inp: Storage): void {
    pointwiseBackward('geluBackward', dinp, dout, inp, geluGrad);
  }

  geluTanhForward(out: Storage, inp: Storage): void {
    pointwiseForward('geluTanhForward', out, inp, geluTanh);
  }

  geluTanhBackward(dinp: Storage, dout: Storage, inp: Storage): void {
    pointwiseBackward('geluTanhBackward', dinp, dout, inp, geluTanhGrad);
  }

  // ---- embedding ---------------------------------------------------------------------------

  embeddingForward(out: Storage, ids: Storage, table: Storage, dim: number): void {
    const op = 'embeddingForward';
    const I = i32(ids, op, 'ids');
    const T = f32(table, op, 'table');
    const O = f32(out, op, 'out', I.length * dim);
    const vocab = tableRows(op, T.length, dim);
    for (let r = 0; r < I.length; r++) {
      const id = checkId(op, I[r]!, r, vocab);
      for (let c = 0; c < dim; c++) O[r * dim + c] = T[id * dim + c]!;
    }
  }

  embeddingBackward(dtable: Storage, dout: Storage, ids: Storage, dim: number): void {
    const op = 'embeddingBackward';
    const I = i32(ids, op, 'ids');
    const DT = f32(dtable, op, 'dtable');
    const G = f32(dout, op, 'dout', I.length * dim);
    const vocab = tableRows(op, DT.length, dim);
    for (let r = 0; r < I.length; r++) {
      const id = checkId(op, I[r]!, r, vocab);
      for (let c = 0; c < dim; c++) DT[id * dim + c] = DT[id * dim + c]! + G[r * dim + c]!;
    }
  }

  // ---- cross-entropy -----------------------------------------------------------------------
  // PyTorch's F.cross_entropy(reduction='mean', ignore_index, label_smoothing=eps):
  // loss_r = (1-eps)(lse - x_t) + eps(lse - mean_j x_j), averaged over non-ignored rows.

  crossEntropyForward(loss: Storage, lse: Storage, logits: Storage, targets: Storage,
    rows: number, vocab: number, ignoreIndex: number, labelSmoothing: number): void {
    const op = 'crossEntropyForward';
    const L = f32(loss, op, 'loss', 1);
    const LSE = f32(lse, op, 'lse', rows);
    const X = f32(logits, op, 'logits', rows * vocab);
    const T = i32(targets, op, 'targets', rows);
    const eps = labelSmoothing;
    let total = 0;
    let count = 0;
    for (let r = 0; r < rows; r++) {
      const o = r * vocab;
      let max = -Infinity;
      for (let j = 0; j < vocab; j++) max = Math.max(max, X[o + j]!);
      let sumExp = 0;
      let sumX = 0;
      for (let j = 0; j < vocab; j++) {
        sumExp += Math.exp(X[o + j]! - max);
        sumX += X[o + j]!;
      }
      const l = max + Math.log(sumExp);
      LSE[r] = l;
      const t = T[r]!;
      if (t === ignoreIndex) continue;
      checkTarget(op, t, r, vocab);
      total += (1 - eps) * (l - X[o + t]!) + eps * (l - sumX / vocab);
      count++;
    }
    L[0] = count === 0 ? NaN : total / count;
  }

  crossEntropyBackward(dlogits: Storage, dloss: Storage, logits: Storage, lse: Storage,
    targets: Storage, rows: number, vocab: number, ignoreIndex: number, labelSmoothing: number): void {
    const op = 'crossEntropyBackward';
    const DX = f32(dlogits, op, 'dlogits', rows * vocab);
    const DL = f32(dloss, op, 'dloss', 1);
    const X = f32(logits, op, 'logits', rows * vocab);
    const LSE = f32(lse, op, 'lse', rows);
    const T = i32(targets, op, 'targets', rows);
    const eps = labelSmoothing;
    let count = 0;
    for (let r = 0; r < rows; r++) if (T[r] !== ignoreIndex) count++;
    if (count === 0) return; // the loss was NaN and has no gradient path
    const g = DL[0]! / count;
    for (let r = 0; r < rows; r++) {
      const t = T[r]!;
      if (t === ignoreIndex) continue;
      checkTarget(op, t, r, vocab);
      const o = r * vocab;
      for (let j = 0; j < vocab; j++) {
        const p = Math.exp(X[o + j]! - LSE[r]!);
        const target = (j === t ? 1 - eps : 0) + eps / vocab;
        DX[o + j] = DX[o + j]! + g * (p - target);
      }
    }
  }

  // ---- dropout -----------------------------------------------------------------------------

  dropoutForward(out: Storage, keep: Storage, inp: Storage, p: number, seed: number, offset: number): void {
    const op = 'dropoutForward';
    const X = f32(inp, op, 'inp');
    const O = f32(out, op, 'out', X.length);
    const KP = u8(keep, op, 'keep', X.length);
    const pf = checkP(op, p);
    const threshold = dropoutThreshold(pf);
    for (let i = 0; i < X.length; i++) {
      // u32 counter arithmetic wraps, as in Rust's wrapping_add.
      const kept = randomU32(seed >>> 0, (offset + i) >>> 0) >= threshold;
      KP[i] = kept ? 1 : 0;
      O[i] = kept ? X[i]! / (1 - pf) : 0;
    }
  }

  dropoutBackward(dinp: Storage, dout: Storage, keep: Storage, p: number): void {
    const op = 'dropoutBackward';
    const G = f32(dout, op, 'dout');
    const DX = f32(dinp, op, 'dinp', G.length);
    const KP = u8(keep, op, 'keep', G.length);
    const pf = checkP(op, p);
    for (let i = 0; i < G.length; i++) if (KP[i] !== 0) DX[i] = DX[i]! + G[i]! / (1 - pf);
  }

  // ---- elementwise and layout --------------------------------------------------------------

  addForward(out: Storage, a: Storage, b: Storage): void {
    const A = f32(a, 'addForward', 'a');
    const B = f32(b, 'addForward', 'b', A.length);
    const O = f32(out, 'addForward', 'out', A.length);
    for (let i = 0; i < A.length; i++) O[i] = A[i]! + B[i]!;
  }

  accumulate(dst: Storage, src: Storage, alpha: number): void {
    const S = f32(src, 'accumulate', 'src');
    const D = f32(dst, 'accumulate', 'dst', S.length);
    for (let i = 0; i < S.length; i++) D[i] = D[i]! + alpha * S[i]!;
  }

  scaleForward(out: Storage, inp: Storage, s: number): void {
    const X = f32(inp, 'scaleForward', 'inp');
    const O = f32(out, 'scaleForward', 'out', X.length);
    for (let i = 0; i < X.length; i++) O[i] = X[i]! * s;
  }

  scaleInplace(x: Storage, s: number): void {
    const X = f32(x, 'scaleInplace', 'x');
    for (let i = 0; i < X.length; i++) X[i] = X[i]! * s;
  }

  mulForward(out: Storage, a: Storage, b: Storage): void {
    const A = f32(a, 'mulForward', 'a');
    const B = f32(b, 'mulForward', 'b', A.length);
    const O = f32(out, 'mulForward', 'out', A.length);
    for (let i = 0; i < A.length; i++) O[i] = A[i]! * B[i]!;
  }

  biasAddForward(out: Storage, inp: Storage, bias: Storage, rows: number, cols: number): void {
    const op = 'biasAddForward';
    const O = f32(out, op, 'out', rows * cols);
    const X = f32(inp, op, 'inp', rows * cols);
    const Bv = f32(bias, op, 'bias', cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) O[r * cols + c] = X[r * cols + c]! + Bv[c]!;
    }
  }

  biasAddBackward(dbias: Storage, dout: Storage, rows: number, cols: number): void {
    const op = 'biasAddBackward';
    const DB = f32(dbias, op, 'dbias', cols);
    const G = f32(dout, op, 'dout', rows * cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) DB[c] = DB[c]! + G[r * cols + c]!;
    }
  }

  transpose12Forward(out: Storage, inp: Storage, a: number, b: number, c: number, d: number): void {
    const op = 'transpose12Forward';
    const O = f32(out, op, 'out', a * b * c * d);
    const X = f32(inp, op, 'inp', a * b * c * d);
    // inp [a, b, c, d] -> out [a, c, b, d]
    for (let i = 0; i < a; i++) {
      for (let j = 0; j < b; j++) {
        for (let l = 0; l < c; l++) {
          for (let e = 0; e < d; e++) O[((i * c + l) * b + j) * d + e] = X[((i * b + j) * c + l) * d + e]!;
        }
      }
    }
  }

  transpose12Backward(dinp: Storage, dout: Storage, a: number, b: number, c: number, d: number): void {
    const op = 'transpose12Backward';
    const DX = f32(dinp, op, 'dinp', a * b * c * d);
    const G = f32(dout, op, 'dout', a * b * c * d);
    for (let i = 0; i < a; i++) {
      for (let j = 0; j < b; j++) {
        for (let l = 0; l < c; l++) {
          for (let e = 0; e < d; e++) {
            const xi = ((i * b + j) * c + l) * d + e;
            DX[xi] = DX[xi]! + G[((i * c + l) * b + j) * d + e]!;
          }
        }
      }
    }
  }

  narrowForward(out: Storage, inp: Storage, outer: number, dim: number, inner: number,
    start: number, len: number): void {
    const op = 'narrowForward';
    checkNarrow(op, dim, start, len);
    const O = f32(out, op, 'out', outer * len * inner);
    const X = f32(inp, op, 'inp', outer * dim * inner);
    // inp [outer, dim, inner] -> out [outer, len, inner] from `start` along axis 1
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < len; j++) {
        for (let e = 0; e < inner; e++) O[(o * len + j) * inner + e] = X[(o * dim + start + j) * inner + e]!;
      }
    }
  }

  narrowBackward(dinp: Storage, dout: Storage, outer: number, dim: number, inner: number,
    start: number, len: number): void {
    const op = 'narrowBackward';
    checkNarrow(op, dim, start, len);
    const DX = f32(dinp, op, 'dinp', outer * dim * inner);
    const G = f32(dout, op, 'dout', outer * len * inner);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < len; j++) {
        for (let e = 0; e < inner; e++) {
          const xi = (o * dim + start + j) * inner + e;
          DX[xi] = DX[xi]! + G[(o * len + j) * inner + e]!;
        }
      }
    }
  }

  sumSquares(x: Storage): number {
    const X = f32(x, 'sumSquares', 'x');
    let s = 0;
    for (let i = 0; i < X.length; i++) s += X[i]! * X[i]!;
    return s;
  }

  // ---- optimiser ---------------------------------------------------------------------------

  adamUpdate(param: Storage, m: Storage, v: Storage, grad: Storage, lr: number, beta1: number,
    beta2: number, eps: number, weightDecay: number, step: number, decoupled: boolean): void {
    const op = 'adamUpdate';
    const P = f32(param, op, 'param');
    const Mm = f32(m, op, 'm', P.length);
    const Vv = f32(v, op, 'v', P.length);
    const G = f32(grad, op, 'grad', P.length);
    if (!Number.isInteger(step) || step < 1) {
      throw new RangeError(`${op}: step is 1-based and counts this update, got ${step}`);
    }
    // As torch.optim.Adam / AdamW (non-amsgrad, non-foreach semantics).
    const bc1 = 1 - beta1 ** step;
    const bc2 = 1 - beta2 ** step;
    const stepSize = lr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    for (let i = 0; i < P.length; i++) {
      let g = G[i]!;
      if (decoupled) P[i] = P[i]! * (1 - lr * weightDecay);
      else g += weightDecay * P[i]!;
      Mm[i] = beta1 * Mm[i]! + (1 - beta1) * g;
      Vv[i] = beta2 * Vv[i]! + (1 - beta2) * g * g;
      P[i] = P[i]! - (stepSize * Mm[i]!) / (Math.sqrt(Vv[i]!) / sqrtBc2 + eps);
    }
  }
}

// ---- helpers -------------------------------------------------------------------------------

/** out = f(inp), elementwise. */
function pointwiseForward(op: string, out: Storage, inp: Storage, f: (x: number) => number): void {
  const X = f32(inp, op, 'inp');
  const O = f32(out, op, 'out', X.length);
  for (let i = 0; i < X.length; i++) O[i] = f(X[i]!);
}

/** Accumulates dinp += dout · f'(inp). */
function pointwiseBackward(op: string, dinp: Storage, dout: Storage, inp: Storage, fPrime: (x: number) => number): void {
  const X = f32(inp, op, 'inp');
  const DX = f32(dinp, op, 'dinp', X.length);
  const G = f32(dout, op, 'dout', X.length);
  for (let i = 0; i < X.length; i++) DX[i] = DX[i]! + G[i]! * fPrime(X[i]!);
}

/** out[outOff + c] = softmax over the visible entries of x[xOff .. xOff+cols); invisible
 * entries are exactly 0, and a row with nothing visible is all zeros. */
/** The shims' rule for a fused linear call: each optional buffer is present exactly when the
 * activation needs it ('gelu': the GELUs only; 'any': every activation but the identity). */
function requirePresence(op: string, activation: LinearActivation,
  buffers: [name: string, storage: Storage | null, neededBy: 'gelu' | 'any'][]): void {
  if (!['identity', 'relu', 'gelu', 'gelu_tanh'].includes(activation)) {
    throw new RangeError(`${op}: activation ${String(activation)} is not identity, relu, gelu or gelu_tanh`);
  }
  for (const [name, storage, neededBy] of buffers) {
    const needed = neededBy === 'gelu' ? keepsPreActivation(activation) : activation !== 'identity';
    if ((storage !== null) !== needed) {
      throw new RangeError(`${op}: ${name} ${needed ? 'is required' : 'must be null'} with activation ${activation}`);
    }
  }
}

/** Lengths of a fused linear call's buffers (absent ones skip), named as the shims name them. */
function checkLinearLengths(op: string, buffers: Record<string, Storage | null>, rows: number, inF: number,
  outF: number): void {
  const want: Record<string, number> = {
    out: rows * outF, pre: rows * outF, dpre: rows * outF, dout: rows * outF, saved: rows * outF,
    x: rows * inF, dx: rows * inF, weight: outF * inF, dweight: outF * inF, bias: outF, dbias: outF,
  };
  for (const [name, s] of Object.entries(buffers)) if (s !== null) f32(s, op, name, want[name]);
}

interface AttentionDims { b: number; h: number; tq: number; tk: number; d: number; causal: boolean; scale: number }

/** Fills p[j] with query i's scaled score against key j (-inf where hidden by the causal or
 * key mask) for head slab bh; returns the row's log-sum-exp (-inf when no key is visible). */
function attentionScores(p: Float64Array, Q: Float64Array, K: Float64Array, KM: Uint8Array | null,
  dims: AttentionDims, bh: number, i: number): number {
  const { h, tq, tk, d, causal, scale } = dims;
  const bi = Math.floor(bh / h);
  const qo = (bh * tq + i) * d;
  let max = -Infinity;
  for (let j = 0; j < tk; j++) {
    if ((causal && j > i) || (KM !== null && KM[bi * tk + j] === 0)) {
      p[j] = -Infinity;
      continue;
    }
    const ko = (bh * tk + j) * d;
    let s = 0;
    for (let c = 0; c < d; c++) s += Q[qo + c]! * K[ko + c]!;
    p[j] = s * scale;
    max = Math.max(max, p[j]!);
  }
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let j = 0; j < tk; j++) sum += Math.exp(p[j]! - max);
  return max + Math.log(sum);
}

/** Calls fn(bh, i, weights) for every query row, the weights rebuilt from the saved lse. */
function eachWeightRow(Q: Float64Array, K: Float64Array, L: Float64Array, KM: Uint8Array | null,
  dims: AttentionDims, fn: (bh: number, i: number, p: Float64Array) => void): void {
  const p = new Float64Array(dims.tk);
  for (let bh = 0; bh < dims.b * dims.h; bh++) {
    for (let i = 0; i < dims.tq; i++) {
      attentionScores(p, Q, K, KM, dims, bh, i);
      weightsFromLse(p, L[bh * dims.tq + i]!);
      fn(bh, i, p);
    }
  }
}

/** p[j] = e^(p[j] - lse): the row's weights (all 0 when lse is -inf, nothing visible). */
function weightsFromLse(p: Float64Array, lse: number): void {
  for (let j = 0; j < p.length; j++) p[j] = lse === -Infinity ? 0 : Math.exp(p[j]! - lse);
}

function softmaxRow(out: Float64Array, outOff: number, x: Float64Array, xOff: number, cols: number,
  visible: (c: number) => boolean): void {
  let max = -Infinity;
  for (let c = 0; c < cols; c++) if (visible(c)) max = Math.max(max, x[xOff + c]!);
  if (max === -Infinity) {
    // nothing visible (or every visible logit is -inf): zeros keep training finite
    for (let c = 0; c < cols; c++) out[outOff + c] = 0;
    return;
  }
  let sum = 0;
  for (let c = 0; c < cols; c++) {
    const e = visible(c) ? Math.exp(x[xOff + c]! - max) : 0;
    out[outOff + c] = e;
    sum += e;
  }
  for (let c = 0; c < cols; c++) out[outOff + c] = out[outOff + c]! / sum;
}

function tableRows(op: string, length: number, dim: number): number {
  if (dim <= 0 || length % dim !== 0) {
    throw new RangeError(`${op}: table has length ${length}, not a multiple of dim ${dim}`);
  }
  return length / dim;
}

function checkId(op: string, id: number, i: number, vocab: number): number {
  if (id < 0 || id >= vocab) throw new RangeError(`${op}: ids[${i}] = ${id} is outside [0, ${vocab})`);
  return id;
}

function checkTarget(op: string, t: number, r: number, vocab: number): void {
  if (t < 0 || t >= vocab) throw new RangeError(`${op}: targets[${r}] = ${t} is outside [0, ${vocab})`);
}

function checkP(op: string, p: number): number {
  const pf = Math.fround(p);
  if (!(pf >= 0 && pf < 1)) throw new RangeError(`${op}: p must be in [0, 1), got ${p}`);
  return pf;
}

function checkNarrow(op: string, dim: number, start: number, len: number): void {
  if (start < 0 || len < 0 || start + len > dim) {
    throw new RangeError(`${op}: [${start}, ${start + len}) is outside [0, ${dim})`);
  }
}
