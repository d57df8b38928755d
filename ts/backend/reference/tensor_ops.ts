// Reference tensor kernels (crates/kernels/src/ops/{broadcast, unary, reduce, strided,
// index}.rs) in float64 (the views were checked by ts/backend/check.ts before these run): broadcasting binary ops and where over strided operands, unary math
// by op code, reductions over [outer, n, inner], max along a dim, softmax on a dim, strided
// copies, triangles, gather / index_select. The op codes are the Rust enums'.

import type { Floats } from './arrays.js';
import { gelu, geluGrad, geluTanh, geluTanhGrad } from './numerics.js';

/** Calls f(linear, offsets) over shape in row-major order; offsets[v] = sum_d i_d strides[v][d]
 * (+ base[v]). */
function walk(shape: Int32Array, strides: readonly Int32Array[], base: readonly number[], f: (i: number, at: number[]) => void): void {
  const ndim = shape.length;
  let total = 1;
  for (const d of shape) total *= d;
  if (total === 0) return;
  const counter = new Array<number>(ndim).fill(0);
  const at = [...base];
  for (let i = 0; i < total; i++) {
    f(i, at);
    for (let d = ndim - 1; d >= 0; d--) {
      counter[d]!++;
      for (let v = 0; v < strides.length; v++) at[v]! += strides[v]![d]!;
      if (counter[d]! < shape[d]!) break;
      counter[d] = 0;
      for (let v = 0; v < strides.length; v++) at[v]! -= strides[v]![d]! * shape[d]!;
    }
  }
}

// ---- broadcast ----

function binary(op: number, a: number, b: number): number {
  const flag = (c: boolean): number => (c ? 1 : 0);
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return Math.pow(a, b);
    case 5: return Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b);
    case 6: return Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b);
    case 7: return flag(a === b);
    case 8: return flag(a !== b);
    case 9: return flag(a < b);
    case 10: return flag(a <= b);
    case 11: return flag(a > b);
    case 12: return flag(a >= b);
    default: throw new RangeError(`binary op code ${op} is not one of 0..13`);
  }
}

function binaryGrad(op: number, g: number, a: number, b: number): [number, number] {
  switch (op) {
    case 0: return [g, g];
    case 1: return [g, -g];
    case 2: return [g * b, g * a];
    case 3: return [g / b, (-g * a) / (b * b)];
    case 4: return [b === 0 ? 0 : g * b * Math.pow(a, b - 1), a === 0 && b >= 0 ? 0 : g * Math.pow(a, b) * Math.log(a)];
    case 5:
    case 6: {
      const aWins = op === 5 ? a > b : a < b;
      if (a === b) return [g / 2, g / 2];
      if (aWins) return [g, 0];
      if (Number.isNaN(a) || Number.isNaN(b)) return [g, g];
      return [0, g];
    }
    default: return [0, 0];
  }
}

export function binaryForward(out: Floats, a: Floats, b: Floats, shape: Int32Array, aStrides: Int32Array, bStrides: Int32Array, op: number): void {
  walk(shape, [aStrides, bStrides], [0, 0], (i, [ia, ib]) => {
    out[i] = binary(op, a[ia!]!, b[ib!]!);
  });
}

export function compareForward(out: Uint8Array, a: Floats, b: Floats, shape: Int32Array, aStrides: Int32Array, bStrides: Int32Array, op: number): void {
  if (op < 7) throw new RangeError(`compareForward: op code ${op} is not a comparison`);
  walk(shape, [aStrides, bStrides], [0, 0], (i, [ia, ib]) => {
    out[i] = binary(op, a[ia!]!, b[ib!]!);
  });
}

export function binaryBackward(
  da: Floats | null, db: Floats | null, dout: Floats, a: Floats, b: Floats,
  shape: Int32Array, aStrides: Int32Array, bStrides: Int32Array, op: number,
): void {
  walk(shape, [aStrides, bStrides], [0, 0], (i, [ia, ib]) => {
    const [ga, gb] = binaryGrad(op, dout[i]!, a[ia!]!, b[ib!]!);
    if (da) da[ia!] = da[ia!]! + ga;
    if (db) db[ib!] = db[ib!]! + gb;
  });
}

export function whereForward(
  out: Floats, cond: Uint8Array, a: Floats, b: Floats,
  shape: Int32Array, condStrides: Int32Array, aStrides: Int32Array, bStrides: Int32Array,
): void {
  walk(shape, [condStrides, aStrides, bStrides], [0, 0, 0], (i, [ic, ia, ib]) => {
    out[i] = cond[ic!] !== 0 ? a[ia!]! : b[ib!]!;
  });
}

export function whereBackward(
  da: Floats | null, db: Floats | null, dout: Floats, cond: Uint8Array,
  shape: Int32Array, condStrides: Int32Array, aStrides: Int32Array, bStrides: Int32Array,
): void {
  walk(shape, [condStrides, aStrides, bStrides], [0, 0, 0], (i, [ic, ia, ib]) => {
    if (cond[ic!] !== 0) {
      if (da) da[ia!] = da[ia!]! + dout[i]!;
    } else if (db) db[ib!] = db[ib!]! + dout[i]!;
  });
}

// ---- unary ----

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

function unary(op: number, x: number, p0: number, p1: number): number {
  switch (op) {
    case 0: return Math.exp(x);
    case 1: return Math.log(x);
    case 2: return Math.sqrt(x);
    case 3: return 1 / Math.sqrt(x);
    case 4: return Math.tanh(x);
    case 5: return sigmoid(x);
    case 6: return x <= 0 ? 0 : x;
    case 7: return gelu(x);
    case 8: return geluTanh(x);
    case 9: return x * sigmoid(x);
    case 10: return p0 * x > p1 ? x : Math.log1p(Math.exp(p0 * x)) / p0;
    case 11: return Math.abs(x);
    case 12: return -x;
    case 13: return x < p0 ? p0 : x > p1 ? p1 : x;
    case 14: return x + p0;
    case 15: return p0 - x;
    case 16: return x * p0;
    case 17: return x / p0;
    case 18: return p0 / x;
    case 19: return Math.pow(x, p0);
    case 20: return Math.pow(p0, x);
    default: throw new RangeError(`unary op code ${op} is not one of 0..21`);
  }
}

function unaryGrad(op: number, x: number, p0: number, p1: number): number {
  switch (op) {
    case 0: return Math.exp(x);
    case 1: return 1 / x;
    case 2: return 0.5 / Math.sqrt(x);
    case 3: return -0.5 / (x * Math.sqrt(x));
    case 4: return 1 - Math.tanh(x) ** 2;
    case 5: return sigmoid(x) * (1 - sigmoid(x));
    case 6: return x <= 0 ? 0 : 1;
    case 7: return geluGrad(x);
    case 8: return geluTanhGrad(x);
    case 9: return sigmoid(x) * (1 + x * (1 - sigmoid(x)));
    case 10: return p0 * x > p1 ? 1 : sigmoid(p0 * x);
    case 11: return x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : NaN;
    case 12: return -1;
    case 13: return x > p0 && x < p1 ? 1 : 0;
    case 14: return 1;
    case 15: return -1;
    case 16: return p0;
    case 17: return 1 / p0;
    case 18: return -p0 / (x * x);
    case 19: return p0 === 0 ? 0 : p0 * Math.pow(x, p0 - 1);
    case 20: return p0 === 0 && x >= 0 ? 0 : Math.pow(p0, x) * Math.log(p0);
    default: throw new RangeError(`unary op code ${op} is not one of 0..21`);
  }
}

export function unaryForward(out: Floats, inp: Floats, op: number, p0: number, p1: number): void {
  for (let i = 0; i < inp.length; i++) out[i] = unary(op, inp[i]!, p0, p1);
}

export function unaryBackward(dinp: Floats, dout: Floats, inp: Floats, op: number, p0: number, p1: number): void {
  for (let i = 0; i < inp.length; i++) dinp[i] = dinp[i]! + dout[i]! * unaryGrad(op, inp[i]!, p0, p1);
}

// ---- reduce ----

function column(inp: Floats, base: number, n: number, inner: number): number[] {
  return Array.from({ length: n }, (_, j) => inp[base + j * inner]!);
}

function extreme(v: readonly number[], max: boolean): number {
  let acc = max ? -Infinity : Infinity;
  for (const x of v) {
    if (Number.isNaN(x)) return NaN;
    acc = max ? Math.max(acc, x) : Math.min(acc, x);
  }
  return acc;
}

const meanOf = (v: readonly number[]): number => v.reduce((s, x) => s + x, 0) / v.length;

export function reduceForward(out: Floats, inp: Floats, outer: number, n: number, inner: number, op: number, correction: number): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const v = column(inp, o * n * inner + i, n, inner);
      let y: number;
      switch (op) {
        case 0: y = v.reduce((s, x) => s + x, 0); break;
        case 1: y = meanOf(v); break;
        case 2: {
          const m = meanOf(v);
          y = v.reduce((s, x) => s + (x - m) ** 2, 0) / (n - correction);
          break;
        }
        case 3: y = extreme(v, true); break;
        case 4: y = extreme(v, false); break;
        case 5: {
          const m = extreme(v, true);
          y = Number.isFinite(m) ? m + Math.log(v.reduce((s, x) => s + Math.exp(x - m), 0)) : m;
          break;
        }
        default: throw new RangeError(`reduce op code ${op} is not one of 0..6`);
      }
      out[o * inner + i] = y;
    }
  }
}

export function reduceBackward(
  dinp: Floats, dout: Floats, inp: Floats, out: Floats, outer: number, n: number, inner: number, op: number, correction: number,
): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      const v = column(inp, base, n, inner);
      const g = dout[o * inner + i]!;
      const y = out[o * inner + i]!;
      const m = meanOf(v);
      const ties = v.filter((x) => x === y).length;
      for (let j = 0; j < n; j++) {
        let d: number;
        switch (op) {
          case 0: d = g; break;
          case 1: d = g / n; break;
          case 2: d = (2 * g * (v[j]! - m)) / (n - correction); break;
          case 3:
          case 4: d = v[j] === y ? g / ties : 0; break;
          default: d = g * Math.exp(v[j]! - y);
        }
        dinp[base + j * inner] = dinp[base + j * inner]! + d;
      }
    }
  }
}

export function maxDimForward(out: Floats, indices: Int32Array, inp: Floats, outer: number, n: number, inner: number, min: boolean): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const v = column(inp, o * n * inner + i, n, inner);
      let at = 0;
      for (let j = 1; j < n && !Number.isNaN(v[at]!); j++) {
        if (Number.isNaN(v[j]!) || (min ? v[j]! < v[at]! : v[j]! > v[at]!)) at = j;
      }
      out[o * inner + i] = v[at]!;
      indices[o * inner + i] = at;
    }
  }
}

export function softmaxDimForward(out: Floats, inp: Floats, outer: number, n: number, inner: number, log: boolean): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      const v = column(inp, base, n, inner);
      const m = extreme(v, true);
      const sum = v.reduce((s, x) => s + Math.exp(x - m), 0);
      v.forEach((x, j) => {
        out[base + j * inner] = log ? x - m - Math.log(sum) : Math.exp(x - m) / sum;
      });
    }
  }
}

export function softmaxDimBackward(dinp: Floats, dout: Floats, out: Floats, outer: number, n: number, inner: number, log: boolean): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      const y = column(out, base, n, inner);
      const g = column(dout, base, n, inner);
      const s = log ? g.reduce((acc, x) => acc + x, 0) : g.reduce((acc, x, j) => acc + x * y[j]!, 0);
      for (let j = 0; j < n; j++) {
        const d = log ? g[j]! - Math.exp(y[j]!) * s : y[j]! * (g[j]! - s);
        dinp[base + j * inner] = dinp[base + j * inner]! + d;
      }
    }
  }
}

// ---- strided ----

export function stridedCopyForward(out: Floats, inp: Floats, shape: Int32Array, strides: Int32Array, offset: number): void {
  walk(shape, [strides], [offset], (i, [src]) => {
    out[i] = inp[src!]!;
  });
}

export function stridedCopyBackward(dinp: Floats, dout: Floats, shape: Int32Array, strides: Int32Array, offset: number): void {
  walk(shape, [strides], [offset], (i, [dst]) => {
    dinp[dst!] = dinp[dst!]! + dout[i]!;
  });
}

const keeps = (row: number, col: number, diagonal: number, upper: boolean): boolean =>
  upper ? col - row >= diagonal : col - row <= diagonal;

export function triangleForward(out: Floats, inp: Floats, batch: number, rows: number, cols: number, diagonal: number, upper: boolean): void {
  for (let i = 0; i < batch * rows * cols; i++) {
    out[i] = keeps(Math.floor(i / cols) % rows, i % cols, diagonal, upper) ? inp[i]! : 0;
  }
}

export function triangleBackward(dinp: Floats, dout: Floats, batch: number, rows: number, cols: number, diagonal: number, upper: boolean): void {
  for (let i = 0; i < batch * rows * cols; i++) {
    if (keeps(Math.floor(i / cols) % rows, i % cols, diagonal, upper)) dinp[i] = dinp[i]! + dout[i]!;
  }
}

// ---- index ----

function checked(op: string, id: number, n: number): number {
  if (!(id >= 0 && id < n)) throw new RangeError(`${op}: index ${id} out of range for a dim of size ${n}`);
  return id;
}

export function gatherForward(out: Floats, inp: Floats, index: Int32Array, outer: number, n: number, k: number, inner: number): void {
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < k; j++) {
      for (let i = 0; i < inner; i++) {
        const at = (o * k + j) * inner + i;
        out[at] = inp[(o * n + checked('gatherForward', index[at]!, n)) * inner + i]!;
      }
    }
  }
}

export function gatherBackward(dinp: Floats, dout: Floats, index: Int32Array, outer: number, n: number, k: number, inner: number): void {
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < k; j++) {
      for (let i = 0; i < inner; i++) {
        const at = (o * k + j) * inner + i;
        const dst = (o * n + checked('gatherBackward', index[at]!, n)) * inner + i;
        dinp[dst] = dinp[dst]! + dout[at]!;
      }
    }
  }
}

export function indexSelectForward(out: Floats, inp: Floats, index: Int32Array, outer: number, n: number, k: number, inner: number): void {
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < k; j++) {
      const src = (o * n + checked('indexSelectForward', index[j]!, n)) * inner;
      for (let i = 0; i < inner; i++) out[(o * k + j) * inner + i] = inp[src + i]!;
    }
  }
}

export function indexSelectBackward(
  dinp: Floats, dout: Floats, index: Int32Array, outer: number, n: number, k: number, inner: number, paddingIdx: number,
): void {
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < k; j++) {
      const row = checked('indexSelectBackward', index[j]!, n);
      if (row === paddingIdx) continue;
      for (let i = 0; i < inner; i++) {
        const dst = (o * n + row) * inner + i;
        dinp[dst] = dinp[dst]! + dout[(o * k + j) * inner + i]!;
      }
    }
  }
}
