// The pool of freed buffers behind the native and wasm backends (ts/backend/host_storage.ts):
// it keeps a repeating working set whole, however large, and never more than the most that
// was handed out at once (or its floor), evicting the least recently returned sizes first.
import { describe, expect, it } from 'vitest';
import { BufferPool } from '../ts/backend/host_storage.js';

/** A pool over numbered buffers that records what it gives back. */
function pool(floorBytes: number) {
  const released: [number, string, number][] = [];
  let next = 1;
  const p = new BufferPool<number>(floorBytes, (item, dtype, bytes) => released.push([item, dtype, bytes]));
  const get = (length: number): number => {
    const item = p.take('f32', length, 4 * length);
    if (item !== undefined) return item;
    p.created(4 * length);
    return next++;
  };
  return { p, released, get, made: () => next - 1 };
}

describe('BufferPool', () => {
  it('keeps a working set far above its floor: the second round of a repeating step creates nothing', () => {
    const { p, get, made, released } = pool(64);
    const sizes = [1000, 4000, 1000, 250, 4000];
    for (let round = 0; round < 3; round++) {
      const held = sizes.map((n) => [n, get(n)] as const);
      for (const [n, item] of held) expect(p.put('f32', n, 4 * n, item)).toBe(true);
      if (round === 0) expect(made()).toBe(sizes.length);
    }
    expect(made()).toBe(sizes.length);
    expect(released).toEqual([]);
    expect(p.bytes).toBe(4 * sizes.reduce((s, n) => s + n, 0));
  });

  it('never holds more than the most handed out at once, evicting the least recently returned size first', () => {
    const { p, get, released } = pool(0);
    // High-water mark: 100 + 200 elements at once = 1200 bytes.
    const a = get(100);
    const b = get(200);
    p.put('f32', 100, 400, a);
    p.put('f32', 200, 800, b);
    expect(p.bytes).toBe(1200);
    // One 50-element buffer at a time from now on: each comes back, and one older size leaves
    // to make room for it (the 100s were returned first, so they go first).
    const c = get(50);
    expect(p.bytes).toBe(1200);
    expect(p.put('f32', 50, 200, c)).toBe(true);
    expect(released).toEqual([[a, 'f32', 400]]);
    expect(p.bytes).toBe(1000);
    // Nothing larger than the high-water mark is kept.
    p.created(4000);
    p.lost(4000);
    expect(p.put('f32', 5000, 20000, 99)).toBe(false);
  });

  it('a size is refreshed whenever one of its buffers comes back', () => {
    const { p, get, released } = pool(0);
    const [x, y] = [get(10), get(20)]; // high-water 120 bytes
    p.put('f32', 10, 40, x);
    p.put('f32', 20, 80, y);
    // 10 is taken and returned again: now 20 is the older size.
    p.put('f32', 10, 40, get(10));
    const z = get(5);
    p.put('f32', 5, 20, z);
    expect(released).toEqual([[y, 'f32', 80]]);
  });
});
