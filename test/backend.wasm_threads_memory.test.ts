// The threaded wasm modules (plain and relaxed SIMD) and linear memory: buffers at its very
// end, and the calling thread's thread-locals.
//
// At the end of linear memory: each kernel runs once with every buffer where the allocator
// puts it, then once per buffer with that buffer moved flush against the end of linear
// memory, in pages this thread grew just before the call:
// - a read or write even one element past the buffer's end traps ("memory access out of
//   bounds") instead of silently touching a neighbour, on the calling thread and on workers;
// - the workers' first touch of those pages comes right after another thread grew the
//   memory (V8 updates a worker's view of a grown shared memory only when it next checks
//   for interrupts, and bulk memory instructions are bounds-checked against that view:
//   crates/wasm/src/lib.rs, WorkerPool).
// Results must be the bits of the ordinary placement, with one thread and with three.
//
// Buffers are placed by hand: `memory.grow` from JS adds pages the module's allocator never
// hands out, and the kernel methods are given {ptr, length} directly (the generated
// WasmKernels read only those two fields of a checked storage).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DType, HostArray, Storage } from '../ts/backend/backend.js';
import { loadWasmBackend, type WasmBackend } from '../ts/backend/wasm.js';
import { randomArray } from './helpers/naive.js';

const built = (file: string): boolean => existsSync(fileURLToPath(new URL(`../build/${file}`, import.meta.url)));
const threadsBuilt = built('ferroformer-threads.wasm');
// Node 20 validates relaxed SIMD only behind this flag (per process; vitest forks per file).
setFlagsFromString('--experimental-wasm-relaxed-simd');
const MODULES = [
  { name: 'ferroformer-threads.wasm', relaxed: false, present: threadsBuilt },
  { name: 'ferroformer-threads-relaxed.wasm', relaxed: true, present: built('ferroformer-threads-relaxed.wasm') },
];
const PAGE = 65536;
const BYTES: Record<DType, number> = { f32: 4, i32: 4, u8: 1 };

interface BufferSpec {
  dtype: DType;
  length: number;
  /** in: random contents; out: overwritten by the kernel (starts at NaN); acc: accumulated
   * into (starts at 0). */
  kind: 'in' | 'out' | 'acc';
  /** Contents instead of random ones: element i is fill(i) (ids, shapes, Adam's state). */
  fill?: (i: number) => number;
  /** An input the kernel updates in place (read back like an output). */
  inout?: boolean;
}

interface KernelCase {
  name: string;
  buffers: Record<string, BufferSpec>;
  call(backend: WasmBackend, b: Record<string, Storage>): void;
}

// Odd sizes, so that no dimension is a multiple of a SIMD width or a tile.
const [rows, inF, outF] = [67, 45, 38];
const [bh, tq, tk, d] = [6, 19, 23, 13];
const f32 = (length: number): BufferSpec => ({ dtype: 'f32', length, kind: 'in' });
const out = (length: number): BufferSpec => ({ dtype: 'f32', length, kind: 'out' });
const acc = (length: number): BufferSpec => ({ dtype: 'f32', length, kind: 'acc' });
const i32 = (length: number, fill: (i: number) => number): BufferSpec => ({ dtype: 'i32', length, kind: 'in', fill });
const state = (length: number, fill: (i: number) => number): BufferSpec => ({ dtype: 'f32', length, kind: 'in', fill, inout: true });

const CASES: KernelCase[] = [
  {
    name: 'matmulForward',
    buffers: { out: out(2 * rows * outF), a: f32(2 * rows * inF), b: f32(2 * outF * inF) },
    call: (be, b) => be.matmulForward(b.out, b.a, b.b, 2, rows, inF, outF, false, true, false),
  },
  {
    name: 'matmulBackward',
    buffers: { da: acc(2 * inF * rows), db: acc(2 * inF * outF), dout: f32(2 * rows * outF), a: f32(2 * inF * rows), b: f32(2 * inF * outF) },
    call: (be, b) => be.matmulBackward(b.da, b.db, b.dout, b.a, b.b, 2, rows, inF, outF, true, false),
  },
  {
    name: 'linearForward',
    buffers: { out: out(rows * outF), actGrad: out(rows * outF), x: f32(rows * inF), weight: f32(outF * inF), bias: f32(outF) },
    call: (be, b) => be.linearForward(b.out, b.actGrad, b.x, b.weight, b.bias, rows, inF, outF, 'gelu'),
  },
  {
    name: 'linearBackward',
    buffers: {
      dx: acc(rows * inF), dweight: acc(outF * inF), dbias: acc(outF), dpre: out(rows * outF),
      dout: f32(rows * outF), x: f32(rows * inF), weight: f32(outF * inF), saved: f32(rows * outF),
    },
    call: (be, b) => be.linearBackward(b.dx, b.dweight, b.dbias, b.dpre, b.dout, b.x, b.weight, b.saved, rows, inF, outF, 'gelu', true, true),
  },
  {
    name: 'attentionForward',
    buffers: { out: out(bh * tq * d), lse: out(bh * tq), q: f32(bh * tq * d), k: f32(bh * tk * d), v: f32(bh * tk * d) },
    call: (be, b) => be.attentionForward(b.out, b.lse, b.q, b.k, b.v, null, 2, 3, tq, tk, d, true, 0.3, 0, 0, 0),
  },
  {
    name: 'attentionBackward',
    buffers: {
      dq: acc(bh * tq * d), dk: acc(bh * tk * d), dv: acc(bh * tk * d), dout: f32(bh * tq * d),
      q: f32(bh * tq * d), k: f32(bh * tk * d), v: f32(bh * tk * d), out: f32(bh * tq * d), lse: f32(bh * tq),
    },
    // lse of plain random numbers: any finite values do for a comparison of bits.
    call: (be, b) => be.attentionBackward(b.dq, b.dk, b.dv, b.dout, b.q, b.k, b.v, b.out, b.lse, null, 2, 3, tq, tk, d, false, 0.3, 0.1, 7, 0),
  },
  {
    name: 'attentionPackedForward',
    buffers: { out: out(bh * tq * d), lse: out(bh * tq), qkv: f32(3 * bh * tq * d) },
    call: (be, b) => be.attentionPackedForward(b.out, b.lse, b.qkv, null, 2, 3, tq, d, true, 0.3, 0.1, 7, 0),
  },
  {
    name: 'attentionPackedBackward',
    buffers: { dqkv: acc(3 * bh * tq * d), dout: f32(bh * tq * d), qkv: f32(3 * bh * tq * d), out: f32(bh * tq * d), lse: f32(bh * tq) },
    call: (be, b) => be.attentionPackedBackward(b.dqkv, b.dout, b.qkv, b.out, b.lse, null, 2, 3, tq, d, true, 0.3, 0.1, 7, 0, true),
  },
  {
    name: 'softmaxForward',
    buffers: { out: out(rows * 131), inp: f32(rows * 131) },
    call: (be, b) => be.softmaxForward(b.out, b.inp, null, rows, 131),
  },
  {
    name: 'layernormBackward',
    buffers: {
      dinp: acc(rows * 77), dweight: acc(77), dbias: acc(77), dout: f32(rows * 77), inp: f32(rows * 77),
      weight: f32(77), mean: f32(rows), rstd: f32(rows),
    },
    call: (be, b) => be.layernormBackward(b.dinp, b.dweight, b.dbias, b.dout, b.inp, b.weight, b.mean, b.rstd, rows, 77),
  },
  {
    name: 'crossEntropyBackward',
    buffers: { dlogits: acc(rows * 83), dloss: f32(1), logits: f32(rows * 83), lse: f32(rows), targets: i32(rows, (i) => (i * 7) % 83) },
    call: (be, b) => be.crossEntropyBackward(b.dlogits, b.dloss, b.logits, b.lse, b.targets, rows, 83, -100, 0.1, true),
  },
  {
    name: 'adamUpdate',
    buffers: { param: state(4099, (i) => i / 4099), m: state(4099, (i) => (i % 7) / 70), v: state(4099, (i) => (i % 13) / 13), grad: f32(4099) },
    call: (be, b) => be.adamUpdate(b.param, b.m, b.v, b.grad, 1e-3, 0.9, 0.999, 1e-8, 0.01, 3, true),
  },
  {
    name: 'transpose12Forward',
    buffers: { out: out(3 * 5 * 7 * 9), inp: f32(3 * 5 * 7 * 9) },
    call: (be, b) => be.transpose12Forward(b.out, b.inp, 3, 5, 7, 9),
  },
  {
    name: 'stridedCopyForward',
    // A [5, 7, 11] view of a [7, 11, 6] buffer, permuted (2, 0, 1) and offset: runs of 1.
    buffers: { out: out(5 * 7 * 11), inp: f32(7 * 11 * 6 + 1), shape: i32(3, (i) => [5, 7, 11][i]), strides: i32(3, (i) => [1, 66, 6][i]) },
    call: (be, b) => be.stridedCopyForward(b.out, b.inp, b.shape, b.strides, 1),
  },
  {
    name: 'indexSelectForward',
    buffers: { out: out(3 * 29 * 17), inp: f32(3 * 31 * 17), index: i32(29, (i) => (i * 5) % 31) },
    call: (be, b) => be.indexSelectForward(b.out, b.inp, b.index, 3, 31, 29, 17),
  },
  {
    name: 'geluForward',
    buffers: { out: out(10007), inp: f32(10007) },
    call: (be, b) => be.geluForward(b.out, b.inp),
  },
];

const bytesOf = (a: HostArray): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** A buffer placed by hand: what the generated kernel methods read of a storage. */
interface Placed {
  ptr: number;
  length: number;
  dtype: DType;
}

describe.each(MODULES.filter((m) => m.present))('$name, buffers flush against the end of linear memory', ({ relaxed }) => {
  let backend: WasmBackend;
  let memory: WebAssembly.Memory;
  const placed = new WeakSet<object>();

  beforeAll(async () => {
    backend = await loadWasmBackend({ threads: true, relaxed });
    expect(backend.relaxedSimd).toBe(relaxed);
    const internals = backend as unknown as { wasm: { memory: WebAssembly.Memory }; buffer(s: Storage, op: string, name: string, dtype: DType): unknown };
    memory = internals.wasm.memory;
    const checked = internals.buffer.bind(backend);
    internals.buffer = (s, op, name, dtype) => (placed.has(s) ? s : checked(s, op, name, dtype));
    backend.setMinParallelFlops(0);
  });
  afterAll(() => backend?.setThreads(1));

  /** Grows linear memory by the pages `bytes` needs and returns a buffer that ends exactly
   * where the memory does. */
  function placeAtEnd(dtype: DType, data: ArrayLike<number>): Storage {
    const bytes = data.length * BYTES[dtype];
    memory.grow(Math.ceil(bytes / PAGE) || 1);
    const buffer: Placed = { ptr: memory.buffer.byteLength - bytes, length: data.length, dtype };
    view(buffer).set(data);
    placed.add(buffer);
    return buffer as unknown as Storage;
  }

  function view(b: Placed): Float32Array | Int32Array | Uint8Array {
    const Array = b.dtype === 'f32' ? Float32Array : b.dtype === 'i32' ? Int32Array : Uint8Array;
    return new Array(memory.buffer, b.ptr, b.length);
  }

  /** Runs the case with `atEnd` (a buffer name, or null: none) placed at the end; returns
   * the contents of what the kernel wrote. */
  function run(c: KernelCase, atEnd: string | null): HostArray[] {
    const made: Record<string, Storage> = {};
    const written: Storage[] = [];
    for (const [name, spec] of Object.entries(c.buffers)) {
      const data = spec.fill ? Array.from({ length: spec.length }, (_, i) => spec.fill!(i))
        : spec.kind === 'in' ? randomArray(spec.length, spec.length + name.length)
          : new Float32Array(spec.length).fill(spec.kind === 'out' ? NaN : 0);
      made[name] = name === atEnd ? placeAtEnd(spec.dtype, data) : backend.fromArray(spec.dtype, data);
      if (spec.kind !== 'in' || spec.inout) written.push(made[name]);
    }
    c.call(backend, made);
    const results = written.map((s) => (placed.has(s) ? view(s as unknown as Placed).slice() : backend.read(s)));
    for (const s of Object.values(made)) if (!placed.has(s)) backend.free(s);
    return results;
  }

  for (const threads of [1, 3]) {
    it(`${threads} thread(s): every kernel gives the same bits with each buffer at the end of memory`, async () => {
      backend.setThreads(threads);
      await backend.threadsReady();
      const workerTasks = backend.workerTasks();
      for (const c of CASES) {
        const want = run(c, null);
        for (const name of Object.keys(c.buffers)) {
          const got = run(c, name);
          expect(got.every((g, i) => bytesOf(g).equals(bytesOf(want[i]))), `${c.name} with ${name} at the end`).toBe(true);
        }
      }
      if (threads > 1) expect(backend.workerTasks()).toBeGreaterThan(workerTasks);
    });
  }
});

describe.runIf(threadsBuilt)('threaded wasm module, thread-locals', () => {
  it("the calling thread's thread-locals have a block of their own, not address 0 at the bottom of its stack", async () => {
    const backend = await loadWasmBackend({ threads: true, relaxed: false });
    const memory = (backend as unknown as { wasm: { memory: WebAssembly.Memory } }).wasm.memory;
    // A refused call leaves its message in a thread-local String (ff_last_error_*): the
    // bottom of memory must not change.
    const a = backend.fromArray('f32', [1, 2, 3]);
    const bottom = new Uint8Array(memory.buffer, 0, 256).slice();
    expect(() => backend.matmulForward(backend.alloc('f32', 4), a, a, 1, 2, 3, 2, false, false, false)).toThrow(/matmulForward/);
    expect(new Uint8Array(memory.buffer, 0, 256)).toEqual(bottom);
  });
});
