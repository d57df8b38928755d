// The native addon through NativeBackend: results against plain JS loops, thread-count
// independence, and how errors surface (RangeError for lengths, Error for a panic, the
// addon usable afterwards). Needs build/ferroformer.<platform>.node (`npm run build:native`).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Storage } from '../ts/backend/backend.js';
import { checkAddonExports, loadNativeAddon, loadNativeBackend, nativePlatformSuffix, type NativeBackend } from '../ts/backend/native.js';
import { BackendError } from '../ts/tensor/errors.js';
import { maxAbsDiff, naiveMatmul, randomArray } from './helpers/naive.js';

/** Index of the first element whose bits differ, or -1 (NaN-safe, -0-safe). */
function firstBitDifference(x: Float32Array, y: Float32Array): number {
  expect(x.length).toBe(y.length);
  const xb = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const yb = new Uint32Array(y.buffer, y.byteOffset, y.length);
  return xb.findIndex((bits, i) => bits !== yb[i]);
}

let backend: NativeBackend;
let initialThreads: number;

beforeAll(() => {
  backend = loadNativeBackend();
  initialThreads = backend.getThreads();
});

afterAll(() => {
  backend.setThreads(initialThreads);
});

describe('native backend: loading', () => {
  it('loads the addon with its name and capabilities', () => {
    expect(backend.name).toBe('native');
    expect(backend.capabilities.has('threads')).toBe(true);
    expect(backend.capabilities.has('simd')).toBe(true);
    expect(backend.getThreads()).toBeGreaterThanOrEqual(1);
  });

  it('refuses an addon built from older sources, naming the exports it lacks', () => {
    const addon = loadNativeAddon() as unknown as Record<string, unknown>;
    expect(() => checkAddonExports(addon, 'build/x.node')).not.toThrow();
    const { attentionForward: _, setMinParallelFlops: __, ...stale } = addon;
    expect(() => checkAddonExports(stale, 'build/x.node')).toThrow(BackendError);
    expect(() => checkAddonExports(stale, 'build/x.node')).toThrow(
      'ferroformer: the native addon build/x.node is older than this code: it lacks attentionForward, setMinParallelFlops; ' +
        'rebuild it with `npm run build:native`',
    );
  });

  it('names the addon file as napi --platform does', () => {
    expect(nativePlatformSuffix('darwin', 'arm64')).toBe('darwin-arm64');
    expect(nativePlatformSuffix('win32', 'x64')).toBe('win32-x64-msvc');
    expect(nativePlatformSuffix('linux', 'x64')).toMatch(/^linux-x64-(gnu|musl)$/);
  });
});

describe('native backend: matmul', () => {
  const [batch, m, k, n] = [2, 5, 7, 3];
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      it(`matches a JS triple loop with transA=${transA} transB=${transB}`, () => {
        const a = randomArray(batch * m * k, 1);
        const b = randomArray(batch * k * n, 2);
        const want = naiveMatmul(a, b, batch, m, k, n, transA, transB);
        const out = backend.alloc('f32', batch * m * n);
        backend.matmulForward(out, backend.fromArray('f32', a), backend.fromArray('f32', b),
          batch, m, k, n, transA, transB, false);
        expect(maxAbsDiff(backend.read(out), want)).toBeLessThan(1e-5);

        // accumulate adds into what is there
        backend.matmulForward(out, backend.fromArray('f32', a), backend.fromArray('f32', b),
          batch, m, k, n, transA, transB, true);
        expect(maxAbsDiff(backend.read(out), want.map((x) => 2 * x))).toBeLessThan(2e-5);
      });
    }
  }
});

describe('native backend: threads', () => {
  it('gives bit-identical results with 1 and 2 threads', () => {
    const [m, k, n] = [257, 129, 200];
    const a = backend.fromArray('f32', randomArray(m * k, 3));
    const b = backend.fromArray('f32', randomArray(k * n, 4));
    const [B, H, TQ, TK, D] = [2, 3, 33, 47, 16];
    const q = backend.fromArray('f32', randomArray(B * H * TQ * D, 5));
    const kk = backend.fromArray('f32', randomArray(B * H * TK * D, 6));
    const v = backend.fromArray('f32', randomArray(B * H * TK * D, 7));
    const keyMask = backend.fromArray('u8', Array.from({ length: B * TK }, (_, i) => (i % 5 === 4 ? 0 : 1)));

    const run = (threads: number): Float32Array[] => {
      backend.setThreads(threads);
      expect(backend.getThreads()).toBe(threads);
      const mm = backend.alloc('f32', m * n);
      backend.matmulForward(mm, a, b, 1, m, k, n, false, false, false);
      const out = backend.alloc('f32', B * H * TQ * D);
      const lse = backend.alloc('f32', B * H * TQ);
      backend.attentionForward(out, lse, q, kk, v, keyMask, B, H, TQ, TK, D, true, 1 / Math.sqrt(D), 0, 0, 0);
      const dq = backend.alloc('f32', B * H * TQ * D);
      const [dk, dv] = [backend.alloc('f32', B * H * TK * D), backend.alloc('f32', B * H * TK * D)];
      backend.attentionBackward(dq, dk, dv, q, q, kk, v, out, lse, keyMask, B, H, TQ, TK, D, true, 1 / Math.sqrt(D), 0, 0, 0);
      return [mm, out, lse, dq, dk, dv].map((s) => backend.read(s) as Float32Array);
    };

    const one = run(1);
    const two = run(2);
    for (const [i, name] of ['matmul', 'attention out', 'attention lse', 'attention dq', 'attention dk', 'attention dv'].entries()) {
      expect(firstBitDifference(one[i]!, two[i]!), name).toBe(-1);
    }
    // Sanity: the results are not trivially zero.
    expect(one[0]!.some((x) => x !== 0)).toBe(true);
    expect(one[1]!.some((x) => x !== 0)).toBe(true);
  });

  it('rejects a thread count below 1 (or not an integer), naming it', () => {
    const before = backend.getThreads();
    expect(() => backend.setThreads(0)).toThrow(RangeError);
    expect(() => backend.setThreads(0)).toThrow(/setThreads.*got 0/);
    expect(() => backend.setThreads(-1)).toThrow(/got -1/);
    expect(() => backend.setThreads(1.5)).toThrow(/got 1.5/);
    expect(backend.getThreads()).toBe(before);
  });
});

describe('native backend: errors', () => {
  const f32 = (length: number): Storage => backend.alloc('f32', length);

  it('throws a RangeError naming the op and the sizes on a length mismatch, and stays usable', () => {
    const call = (): void => backend.matmulForward(f32(6), f32(6), f32(8), 1, 2, 3, 3, false, false, false);
    expect(call).toThrow(RangeError);
    expect(call).toThrow('matmulForward: b has length 8, expected 9');

    const out = f32(4);
    backend.matmulForward(out, backend.fromArray('f32', [1, 2, 3, 4]), backend.fromArray('f32', [1, 0, 0, 1]),
      1, 2, 2, 2, false, false, false);
    expect(Array.from(backend.read(out))).toEqual([1, 2, 3, 4]);
  });

  it('checks optional buffers when present and skips them when null', () => {
    const [batch, m, k, n] = [1, 2, 3, 4];
    const dout = f32(m * n);
    expect(() => backend.matmulBackward(null, f32(5), dout, f32(m * k), f32(k * n), batch, m, k, n, false, false))
      .toThrow('matmulBackward: db has length 5, expected 12');
    backend.matmulBackward(null, f32(k * n), dout, f32(m * k), f32(k * n), batch, m, k, n, false, false);
  });

  it('refuses ids outside the table', () => {
    const table = backend.fromArray('f32', [1, 2, 3, 4, 5, 6]); // 3 rows of 2
    const ids = backend.fromArray('i32', [2, 3]);
    expect(() => backend.embeddingForward(f32(4), ids, table, 2)).toThrow(RangeError);
    expect(() => backend.embeddingForward(f32(4), ids, table, 2)).toThrow(/embeddingForward: ids\[1\] = 3/);
  });

  it('refuses an output that shares memory with an input (direct addon call)', () => {
    const addon = loadNativeAddon();
    const x = new Float32Array([1, 2, 3, 4]);
    expect(() => addon.addForward(x, x, new Float32Array(4))).toThrow(RangeError);
    expect(() => addon.addForward(x.subarray(0, 2), new Float32Array(2), x.subarray(1, 3))).toThrow(/share memory/);
    // Inputs may share memory: x * x.
    const out = new Float32Array(4);
    addon.mulForward(out, x, x);
    expect(Array.from(out)).toEqual([1, 4, 9, 16]);
  });

  it('turns a panic into an Error and stays usable', () => {
    const addon = loadNativeAddon();
    let caught: unknown;
    try {
      addon.__panicForTest();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(Error);
    expect(caught).not.toBeInstanceOf(RangeError);
    expect((caught as Error).message).toMatch(/__panicForTest: kernel panicked: deliberate panic/);
    expect(backend.sumSquares(backend.fromArray('f32', [1, 2, 3]))).toBe(14);
  });

  it('checks dtype and use after free before calling Rust', () => {
    const ids = backend.alloc('i32', 4);
    expect(() => backend.reluForward(ids, f32(4))).toThrow(/reluForward: out must have dtype f32, got i32/);
    const x = backend.fromArray('f32', [1, -2]);
    const copy = backend.read(x);
    copy[0] = 9;
    expect(Array.from(backend.read(x))).toEqual([1, -2]); // read returns a copy
    backend.free(x);
    backend.free(x); // idempotent
    expect(() => backend.reluForward(f32(2), x)).toThrow(/reluForward: inp was used after free/);
  });
});

describe('native backend: reuse of freed memory', () => {
  it('hands a freed array out again zero-filled, and the freed handle stays unusable', () => {
    const backend = loadNativeBackend();
    const first = backend.fromArray('f32', [1, 2, 3, 4]);
    backend.free(first);
    expect(backend.pooledMemoryBytes()).toBe(16);
    const again = backend.alloc('f32', 4);
    expect(backend.pooledMemoryBytes()).toBe(0);
    expect(Array.from(backend.read(again))).toEqual([0, 0, 0, 0]);
    backend.write(again, [5, 6, 7, 8]);
    expect(() => backend.read(first)).toThrow(/after free/);
    backend.free(first); // idempotent: does not pool twice
    expect(backend.pooledMemoryBytes()).toBe(0);
    // Another dtype or length never gets this array.
    backend.free(again);
    const other = backend.alloc('i32', 4);
    expect(backend.pooledMemoryBytes()).toBe(16);
    expect(backend.read(other)).toBeInstanceOf(Int32Array);
  });
});
