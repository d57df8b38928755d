// Half-precision and float64 safetensors convert to float32 on load (io.toFloat32), exactly
// for F16/BF16 (every half value is a float32) and rounded for F64.
import { describe, expect, it } from 'vitest';
import { readSafetensors, toFloat32, writeSafetensors } from '../ts/io/safetensors.js';
import { FormatError } from '../ts/tensor/errors.js';

describe('safetensors dtype conversion', () => {
  it('F16 bits widen to the same values (normals, subnormals, zeros, infinities, NaN)', () => {
    const cases: [number, number][] = [
      [0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x3555, 0.333251953125], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24],
      [0x0200, 2 ** -15], [0x0400, 2 ** -14], [0x8000, -0], [0x0000, 0], [0x7c00, Infinity], [0xfc00, -Infinity],
    ];
    const bits = Uint16Array.from([...cases.map(([b]) => b), 0x7e00]);
    const got = toFloat32('F16', bits);
    cases.forEach(([, want], i) => expect(Object.is(got[i], want), `0x${bits[i]!.toString(16)} -> ${got[i]}, want ${want}`).toBe(true));
    expect(Number.isNaN(got[cases.length])).toBe(true);
  });

  it('BF16 is the top half of a float32; F64 rounds; F32 passes through', () => {
    const f = Float32Array.from([1, -2.5, 3.140625, 1e-30, -0]);
    const u32 = new Uint32Array(f.buffer);
    const bf = Uint16Array.from(u32, (b) => b >>> 16);
    // Truncation to the top 16 bits is what bfloat16 stores; widening restores those bits.
    const truncated = new Float32Array(Uint32Array.from(u32, (x) => (x & 0xffff0000) >>> 0).buffer);
    expect(Array.from(toFloat32('BF16', bf))).toEqual(Array.from(truncated));
    expect(Array.from(truncated.subarray(0, 3))).toEqual([1, -2.5, 3.140625]);
    expect(Array.from(toFloat32('F64', Float64Array.from([0.1, -1e300])))).toEqual([Math.fround(0.1), -Infinity]);
    const same = Float32Array.from([1, 2]);
    expect(toFloat32('F32', same)).toBe(same);
    const out = new Float32Array(2);
    expect(toFloat32('F32', same, out)).toBe(out);
    expect(Array.from(out)).toEqual([1, 2]);
  });

  it('a file of F16, BF16 and F64 tensors reads back converted', () => {
    const file = writeSafetensors({
      h: { dtype: 'F16', shape: [2], data: Uint16Array.from([0x3c00, 0xc000]) },
      b: { dtype: 'BF16', shape: [1], data: Uint16Array.from([0x3f80]) },
      d: { dtype: 'F64', shape: [1], data: Float64Array.from([0.5]) },
    });
    const { tensors } = readSafetensors(file);
    const f32 = (name: string) => Array.from(toFloat32(tensors.get(name)!.dtype, tensors.get(name)!.data));
    expect(f32('h')).toEqual([1, -2]);
    expect(f32('b')).toEqual([1]);
    expect(f32('d')).toEqual([0.5]);
  });

  it('refuses integer dtypes and a wrong output length, naming them', () => {
    expect(() => toFloat32('I32', Int32Array.from([1]))).toThrow(FormatError);
    expect(() => toFloat32('I32', Int32Array.from([1]))).toThrow(/I32/);
    expect(() => toFloat32('F16', Uint16Array.from([1, 2]), new Float32Array(3))).toThrow(/length 3/);
  });
});
