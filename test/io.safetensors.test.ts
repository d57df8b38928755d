import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { readSafetensors, writeSafetensors, type SafetensorsTensor } from '../ts/io/safetensors.js';
import { FormatError } from '../ts/tensor/errors.js';
import { fixturePath, fixturesAvailable, loadFixtures } from './helpers/fixtures.js';

/** A file from a raw header string (or object) and a data buffer; `lenOverride` lies about N. */
function rawFile(header: string | object, data: Uint8Array = new Uint8Array(0), lenOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lenOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function expectFormatError(bytes: Uint8Array, ...fragments: string[]): void {
  let err: unknown;
  try {
    readSafetensors(bytes);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FormatError);
  for (const f of fragments) expect((err as Error).message).toContain(f);
}

describe('safetensors round trip', () => {
  it('round-trips every dtype, shapes and metadata', () => {
    const tensors: Record<string, SafetensorsTensor> = {
      'w.f32': { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, -2, 3.5, 4, 5, 6e-8]) },
      'w.f64': { dtype: 'F64', shape: [3], data: new Float64Array([Math.PI, -0, 1e300]) },
      ids: { dtype: 'I32', shape: [2, 2], data: new Int32Array([0, -1, 2 ** 31 - 1, -(2 ** 31)]) },
      big: { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 63n), 42n]) },
      mask: { dtype: 'U8', shape: [5], data: new Uint8Array([1, 0, 255, 3, 1]) }, // odd length
      flags: { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
      half: { dtype: 'F16', shape: [1], data: new Uint16Array([0x3c00]) },
      bhalf: { dtype: 'BF16', shape: [3], data: new Uint16Array([0x3f80, 0, 0xbf80]) },
      i8: { dtype: 'I8', shape: [3], data: new Int8Array([-128, 0, 127]) },
      i16: { dtype: 'I16', shape: [1], data: new Int16Array([-300]) },
      u16: { dtype: 'U16', shape: [1], data: new Uint16Array([65535]) },
      u32: { dtype: 'U32', shape: [1], data: new Uint32Array([4294967295]) },
      u64: { dtype: 'U64', shape: [1], data: new BigUint64Array([2n ** 64n - 1n]) },
      scalar: { dtype: 'F32', shape: [], data: new Float32Array([7]) },
      empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
    };
    const bytes = writeSafetensors(tensors, { format: 'pt', note: 'ünïcødé' });
    const { tensors: back, metadata } = readSafetensors(bytes);
    expect({ ...metadata }).toEqual({ format: 'pt', note: 'ünïcødé' });
    expect([...back.keys()].sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const r = back.get(name)!;
      expect(r.dtype, name).toBe(t.dtype);
      expect(r.shape, name).toEqual(t.shape);
      expect(r.data.constructor, name).toBe(t.data.constructor);
      expect(Array.from(r.data as ArrayLike<number | bigint>), name).toEqual(Array.from(t.data as ArrayLike<number | bigint>));
    }
  });

  it('accepts a Map, sorts header keys, pads the header to 8 bytes and returns aligned views', () => {
    const m = new Map<string, SafetensorsTensor>([
      ['b', { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) }],
      ['a', { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }],
      ['c', { dtype: 'F64', shape: [1], data: new Float64Array([3]) }],
    ]);
    const bytes = writeSafetensors(m);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(header.indexOf('"a"')).toBeLessThan(header.indexOf('"b"'));
    expect(header.indexOf('"b"')).toBeLessThan(header.indexOf('"c"'));
    expect(header).not.toContain('__metadata__');
    const { tensors } = readSafetensors(bytes);
    for (const t of tensors.values()) expect(t.data.buffer).toBe(bytes.buffer); // zero-copy
    // A view shares memory with the file bytes: that is the documented contract.
    const a = tensors.get('a')!.data as Float32Array;
    expect(Array.from(a)).toEqual([1, 2]);
  });

  it('copies tensors whose offset is unaligned instead of failing', () => {
    // Hand-made file: a U8 tensor of length 1 first, then an F32 at byte offset 1.
    const header = {
      u: { dtype: 'U8', shape: [1], data_offsets: [0, 1] },
      f: { dtype: 'F32', shape: [2], data_offsets: [1, 9] },
    };
    const data = new Uint8Array(9);
    data[0] = 7;
    data.set(new Uint8Array(new Float32Array([1.5, -2]).buffer), 1);
    const { tensors } = readSafetensors(rawFile(header, data));
    expect(Array.from(tensors.get('f')!.data as Float32Array)).toEqual([1.5, -2]);
    expect(Array.from(tensors.get('u')!.data as Uint8Array)).toEqual([7]);
  });

  it('reads a file that sits at an odd offset inside a larger buffer', () => {
    const bytes = writeSafetensors({ x: { dtype: 'F32', shape: [2], data: new Float32Array([3, 4]) } });
    const big = new Uint8Array(bytes.length + 3);
    big.set(bytes, 3);
    const { tensors } = readSafetensors(big.subarray(3));
    expect(Array.from(tensors.get('x')!.data as Float32Array)).toEqual([3, 4]);
  });

  it('writer rejects bad input with FormatError naming the tensor', () => {
    const bad = (t: Record<string, unknown>, meta?: Record<string, unknown>): (() => void) => () =>
      writeSafetensors(t as Record<string, SafetensorsTensor>, meta as Record<string, string>);
    expect(bad({ w: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).toThrow(/"w".*\[3\].*3 elements.*2/);
    expect(bad({ w: { dtype: 'F32', shape: [2], data: new Float64Array(2) } })).toThrow(FormatError);
    expect(bad({ w: { dtype: 'F8', shape: [2], data: new Uint8Array(2) } })).toThrow(/unknown dtype "F8"/);
    expect(bad({ w: { dtype: 'F32', shape: [-1], data: new Float32Array(0) } })).toThrow(FormatError);
    expect(bad({ __metadata__: { dtype: 'U8', shape: [0], data: new Uint8Array(0) } })).toThrow(/reserved/);
    expect(bad({}, { epoch: 3 })).toThrow(/"epoch" must be a string, got 3/);
  });
});

describe('safetensors hostile input', () => {
  const ok = { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const eight = new Uint8Array(8);

  it('accepts the well-formed baseline used below', () => {
    expect(readSafetensors(rawFile(ok, eight)).tensors.get('t')!.shape).toEqual([2]);
  });

  it('rejects a file shorter than 8 bytes', () => {
    expectFormatError(new Uint8Array(5), '5 bytes');
    expectFormatError(new Uint8Array(0), '0 bytes');
  });

  it('rejects a header length past EOF', () => {
    expectFormatError(rawFile(ok, eight, 10_000n), '10000', 'past the end');
  });

  it('rejects an absurd header length', () => {
    expectFormatError(rawFile(ok, eight, 2n ** 63n), 'exceeds');
  });

  it('rejects a truncated file (data cut short)', () => {
    const full = writeSafetensors({ t: { dtype: 'F32', shape: [4], data: new Float32Array(4) } });
    expectFormatError(full.subarray(0, full.length - 3), '"t"', 'data_offsets [0, 16]');
  });

  it('rejects invalid JSON', () => {
    expectFormatError(rawFile('{"t": {"dtype": "F32",', eight), 'not valid JSON');
    expectFormatError(rawFile('[1, 2]', eight), 'must be a JSON object');
  });

  it('rejects invalid UTF-8', () => {
    const bytes = rawFile('{"t\u00e9": 1}');
    bytes[8 + 3] = 0xff; // corrupt the é
    expectFormatError(bytes, 'UTF-8');
  });

  it('rejects __proto__, constructor and prototype keys anywhere', () => {
    expectFormatError(rawFile('{"__proto__": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', eight), '__proto__');
    expectFormatError(rawFile({ constructor: ok.t }, eight), 'constructor');
    expectFormatError(rawFile({ t: { ...ok.t, prototype: 1 } }, eight), 'prototype');
    // a key merely containing the word is fine
    expect(readSafetensors(rawFile({ __metadata__: { __proto__x: 'a' }, ...ok }, eight)).metadata['__proto__x']).toBe('a');
    expectFormatError(rawFile('{"__metadata__": {"__proto__": "x"}, "t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', eight), '__proto__');
    expect(({} as Record<string, unknown>)['dtype']).toBeUndefined(); // nothing leaked onto Object.prototype
  });

  it('rejects an unknown dtype', () => {
    expectFormatError(rawFile({ t: { ...ok.t, dtype: 'F128' } }, eight), '"t"', 'F128');
    expectFormatError(rawFile({ t: { ...ok.t, dtype: 'toString' } }, eight), 'toString');
  });

  it('rejects a negative, fractional or non-array shape', () => {
    expectFormatError(rawFile({ t: { ...ok.t, shape: [-2] } }, eight), '"t"', '[-2]');
    expectFormatError(rawFile({ t: { ...ok.t, shape: [0.5, 4] } }, eight), '[0.5,4]');
    expectFormatError(rawFile({ t: { ...ok.t, shape: '2' } }, eight), 'shape');
  });

  it('rejects offsets out of range or malformed', () => {
    expectFormatError(rawFile({ t: { ...ok.t, data_offsets: [0, 16] } }, eight), '"t"', '[0, 16]', '8');
    expectFormatError(rawFile({ t: { ...ok.t, data_offsets: [8, 0] } }, eight), '[8, 0]');
    expectFormatError(rawFile({ t: { ...ok.t, data_offsets: [-8, 0] } }, eight), '[-8, 0]');
    expectFormatError(rawFile({ t: { ...ok.t, data_offsets: [0] } }, eight), 'data_offsets');
    expectFormatError(rawFile({ t: { ...ok.t, data_offsets: [0, '8'] } }, eight), 'data_offsets');
  });

  it('rejects overlapping tensors', () => {
    const header = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    };
    expectFormatError(rawFile(header, new Uint8Array(12)), 'overlaps', '"a"', '"b"');
  });

  it('rejects a size that does not match shape and dtype', () => {
    expectFormatError(rawFile({ t: { ...ok.t, shape: [3] } }, new Uint8Array(12)), '"t"', '8 bytes', '12');
    expectFormatError(rawFile({ t: { ...ok.t, dtype: 'F64' } }, eight), 'F64');
    expectFormatError(rawFile({ t: { ...ok.t, shape: [2 ** 40, 2 ** 40] } }, eight), 'more than 2^53');
  });

  it('rejects non-string metadata', () => {
    expectFormatError(rawFile({ __metadata__: { step: 3 }, ...ok }, eight), '"step"', '3');
    expectFormatError(rawFile({ __metadata__: ['x'], ...ok }, eight), '__metadata__');
  });

  it('rejects a non-object tensor entry', () => {
    expectFormatError(rawFile({ t: [1, 2] }, eight), '"t"', 'entry');
  });

  it('rejects pathologically deep JSON with FormatError, not a crash', () => {
    const deep = `{"t": ${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
    expectFormatError(rawFile(deep, eight));
  });
});

describe.skipIf(!fixturesAvailable())(`safetensors fixture set ${fixturePath()}`, () => {
  const fx = loadFixtures();

  it('every header entry reads back with its dtype, shape and element count', () => {
    // Re-parse the header independently of the reader, so this checks the reader.
    const raw = new Uint8Array(readFileSync(`${fx.base}.safetensors`));
    const n = Number(new DataView(raw.buffer, raw.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(raw.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[] }>;
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    expect(names.length).toBeGreaterThan(0);
    expect(fx.tensors.size).toBe(names.length);
    for (const name of names) {
      const t = fx.get(name);
      expect(t.dtype, name).toBe(header[name]!.dtype);
      expect(t.shape, name).toEqual(header[name]!.shape);
      expect(t.data.length, name).toBe(header[name]!.shape.reduce((a, b) => a * b, 1));
    }
  });

  it('every case in the case list has tensors', () => {
    expect(fx.cases.length).toBeGreaterThan(0);
    for (const c of fx.cases) expect(fx.caseTensors(c.name).size, c.name).toBeGreaterThan(0);
  });

  it('softmax outputs are distributions: rows sum to 1, masked entries 0', () => {
    const cases = fx.casesOf('softmax');
    for (const c of cases) {
      const y = fx.get(`${c.name}.y`);
      const mask = fx.has(`${c.name}.mask`) ? fx.get(`${c.name}.mask`).data : null;
      const cols = y.shape[y.shape.length - 1]!;
      for (let r = 0; r < y.data.length / cols; r++) {
        let sum = 0;
        let kept = 0;
        for (let j = 0; j < cols; j++) {
          const v = Number(y.data[r * cols + j]);
          expect(v).toBeGreaterThanOrEqual(0);
          if (mask && Number(mask[r * cols + j]) === 0) expect(v, `${c.name} row ${r} col ${j}`).toBe(0);
          else kept++;
          sum += v;
        }
        if (kept > 0) expect(sum, `${c.name} row ${r}`).toBeCloseTo(1, 5);
      }
    }
  });

  it('attention probs rows sum to 1 (or 0 when fully masked)', () => {
    for (const c of fx.casesOf('attention')) {
      const p = fx.get(`${c.name}.probs`);
      const tk = p.shape[p.shape.length - 1]!;
      for (let r = 0; r < p.data.length / tk; r++) {
        let sum = 0;
        for (let j = 0; j < tk; j++) sum += Number(p.data[r * tk + j]);
        expect(Math.min(Math.abs(sum - 1), Math.abs(sum)), `${c.name} row ${r}`).toBeLessThan(1e-5);
      }
    }
  });
});
