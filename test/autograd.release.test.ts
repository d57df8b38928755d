// backward() frees as it goes, as PyTorch drops what nothing references any more: each
// intermediate gradient once its node has passed it on, each node's saved buffers and the
// activations the graph owns once the node has run. So the peak of a training step is the
// forward's activations plus a few gradients, not activations plus every gradient.
import { expect, it } from 'vitest';
import type { Backend, DType, Storage } from '../ts/backend/backend.js';
import * as ops from '../ts/ops/index.js';
import { AutogradError, DisposedError } from '../ts/tensor/errors.js';
import { libraryCall } from '../ts/tensor/memory.js';
import { tensor } from '../ts/tensor/tensor.js';
import { describeEachBackend } from './helpers/backends.js';

/** Counts the backend's storages from now on: those live, and the most live at once. */
function countLive(b: Backend): { live: () => number; peak: () => number; resetPeak: () => void; restore: () => void } {
  const live = new Set<Storage>();
  let peak = 0;
  const patched = b as { -readonly [K in keyof Backend]: Backend[K] };
  const { alloc, allocUninit, fromArray, free } = b;
  const tracked = (s: Storage): Storage => {
    live.add(s);
    peak = Math.max(peak, live.size);
    return s;
  };
  patched.alloc = (dtype: DType, length: number) => tracked(alloc.call(b, dtype, length));
  patched.allocUninit = (dtype: DType, length: number) => tracked(allocUninit.call(b, dtype, length));
  patched.fromArray = (dtype: DType, data: ArrayLike<number>) => tracked(fromArray.call(b, dtype, data));
  patched.free = (s: Storage) => {
    live.delete(s);
    free.call(b, s);
  };
  return {
    live: () => live.size,
    peak: () => peak,
    resetPeak: () => {
      peak = live.size;
    },
    restore: () => {
      for (const k of ['alloc', 'allocUninit', 'fromArray', 'free'] as const) delete (patched as Partial<Backend>)[k];
    },
  };
}

function thrownBy(fn: () => void): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describeEachBackend('backward releases memory as it goes', (ctx) => {
  it('a chain of 24 ops holds at most a few gradients at once during backward, and the gradient is right', () => {
    const b = ctx.backend;
    const x = tensor([0.5, -1, 2], [3], { backend: b, requiresGrad: true });
    const counter = countLive(b);
    try {
      // Inside libraryCall, as a module's forward: the graph owns the 24 activations.
      const loss = libraryCall(() => {
        let h = x;
        for (let i = 0; i < 24; i++) h = ops.mul(h, 1.25);
        return ops.sum(h);
      });
      const beforeBackward = counter.live();
      counter.resetPeak();
      loss.backward();
      // Freeing at the end of the pass instead would hold all 25 intermediate gradients at
      // once (beforeBackward + 25 or more); x.grad, the root's and one in flight are the most.
      expect(counter.peak()).toBeLessThanOrEqual(beforeBackward + 3);
      // The activations went with their nodes: only the loss (root) and x.grad remain.
      expect(counter.live()).toBeLessThanOrEqual(3);
      const want = 1.25 ** 24;
      for (const g of x.grad!.data()) expect(g).toBeCloseTo(want, 2);
      loss.dispose();
    } finally {
      counter.restore();
    }
  });

  it('an activation read through a detach() view by a node later in the pass is freed only at the end', () => {
    const b = ctx.backend;
    const x = tensor([0.5, -1, 2], [3], { backend: b, requiresGrad: true });
    const w = tensor([3, 4, 5], [3], { backend: b, requiresGrad: true });
    const loss = libraryCall(() => {
      const h = ops.mul(x, 2); // owned by the graph
      // w's gradient reads h's values through the view; add(out, h) puts h's node before
      // mul(view, w)'s in the backward pass.
      const out = ops.mul(h.detach(), w);
      return ops.sum(ops.add(out, h));
    });
    loss.backward();
    expect(Array.from(w.grad!.data())).toEqual([1, -2, 4]);
    expect(Array.from(x.grad!.data())).toEqual([2, 2, 2]);
  });

  it('reshape and a residual add hand their output gradient to an input that has none yet (no zeroed buffer, no copy)', () => {
    const b = ctx.backend;
    const x = tensor([0.5, -1, 2, 3, -4, 6], [2, 3], { backend: b, requiresGrad: true });
    const counter = countLive(b);
    // Buffers, zero-filled or not (a gradient nothing has written yet is allocated unfilled;
    // the reference backend's allocUninit calls its alloc, counted once).
    let allocs = 0;
    let inUninit = false;
    const { alloc, allocUninit } = b;
    (b as { alloc: Backend['alloc'] }).alloc = (dtype: DType, length: number) => {
      if (!inUninit) allocs++;
      return alloc.call(b, dtype, length);
    };
    (b as { allocUninit: Backend['allocUninit'] }).allocUninit = (dtype: DType, length: number) => {
      allocs++;
      inUninit = true;
      try {
        return allocUninit.call(b, dtype, length);
      } finally {
        inUninit = false;
      }
    };
    try {
      const loss = libraryCall(() => {
        const h = ops.mul(x, 2);
        const u = ops.reshape(ops.reshape(ops.reshape(h, [3, 2]), [6]), [1, 6]);
        // u + u reads the gradient it adds into, so it is not adopted; the other add's is.
        return ops.sum(ops.add(ops.add(u, u), ops.scale(u, 3)));
      });
      allocs = 0;
      loss.backward();
      // The root's, the outer add's, u's and x.grad: the outer add passes its gradient to both
      // u + u and scale (one buffer, read by both), and the three reshapes pass u's on to h.
      // Without handing over, scale's, the inner add's and each reshape's would be buffers
      // too (9).
      expect(allocs).toBe(4);
      expect(Array.from(x.grad!.data())).toEqual([10, 10, 10, 10, 10, 10]);
      loss.dispose();
    } finally {
      delete (b as Partial<Backend>).alloc;
      delete (b as Partial<Backend>).allocUninit;
      counter.restore();
    }
  });

  it('a gradient two inputs adopted is copied for the one that changes it while the other still reads it', () => {
    const b = ctx.backend;
    const x = tensor([0.5, -1, 2, 3, -4, 6], [2, 3], { backend: b, requiresGrad: true });
    const counter = countLive(b);
    let copies = 0;
    const { copy } = b;
    (b as { copy: Backend['copy'] }).copy = (dst: Storage, src: Storage) => {
      copies++;
      copy.call(b, dst, src);
    };
    try {
      const loss = libraryCall(() => {
        const a = ops.mul(x, 2);
        // The add hands its gradient to a and to the reshape of a; the reshape's backward then
        // adds that gradient into a's while it is the very buffer the reshape reads.
        return ops.sum(ops.add(a, ops.reshape(a, [2, 3])));
      });
      loss.backward();
      expect(copies).toBe(1);
      expect(Array.from(x.grad!.data())).toEqual([4, 4, 4, 4, 4, 4]);
      loss.dispose();
      // Every gradient buffer went back, the shared one once: only x.grad is left.
      expect(counter.live()).toBe(1);
    } finally {
      delete (b as Partial<Backend>).copy;
      counter.restore();
    }
  });

  it('retainGraph keeps activations and saved buffers, still freeing the intermediate gradients', () => {
    const b = ctx.backend;
    const x = tensor([0.5, -1, 2], [3], { backend: b, requiresGrad: true });
    const loss = libraryCall(() => ops.sum(ops.tanh(ops.mul(x, 3))));
    loss.backward(undefined, { retainGraph: true });
    const first = Array.from(x.grad!.data());
    loss.backward();
    const twice: number[] = Array.from(x.grad!.data());
    twice.forEach((g, i) => expect(g).toBeCloseTo(2 * first[i]!, 5));
    expect(() => loss.backward()).toThrow(/second time/);
  });

  it.each(['div', 'mul'] as const)('a backward that throws partway (%s): its error comes through, nothing leaks, and a later backward through the graph names the failed op', (op) => {
    const b = ctx.backend;
    const x = tensor([1, 2, 3], [3], { backend: b, requiresGrad: true });
    const w = tensor([4, 5, 6], [3], { backend: b, requiresGrad: true });
    const counter = countLive(b);
    try {
      const loss = libraryCall(() => ops.sum(ops.tanh(ops[op](x, w))));
      w.dispose(); // the op's backward reads w: the pass fails there, after sum's and tanh's nodes ran
      const first = thrownBy(() => loss.backward());
      expect(first).toBeInstanceOf(DisposedError);
      expect((first as Error).message).toBe(`${op}: tensor was used after dispose()`);
      // The gradients in flight and the activations the graph owns are freed; the op's node,
      // which may have written part of its gradients, is released with the rest.
      loss.dispose();
      x.grad?.dispose();
      w.grad?.dispose();
      expect(counter.live()).toBe(0);
      const second = thrownBy(() => loss.backward());
      expect(second).toBeInstanceOf(AutogradError);
      expect((second as Error).message).toMatch(new RegExp(`^backward: .*an earlier backward\\(\\) failed in ${op}'s backward \\(DisposedError: ${op}: tensor was used after dispose\\(\\)\\); run the forward again`));
      expect((second as Error).cause).toBe(first);
    } finally {
      counter.restore();
    }
  });

  it('after a node threw partway through its gradients, backward through it again is refused rather than adding them twice', () => {
    const b = ctx.backend;
    const x = tensor([0.5, -1, 2], [3], { backend: b, requiresGrad: true });
    const t = ops.mul(x, 3); // the user's tensor: its node stays reachable from t
    // A node that accumulates its whole gradient into x.grad, then fails (the first time
    // only, as an allocation that fails under memory pressure would).
    const inner = t.gradFn!;
    let calls = 0;
    t.gradFn = {
      ...inner,
      op: 'flaky',
      backward: (dout, grad, adopt) => {
        inner.backward(dout, grad, adopt);
        if (calls++ === 0) throw new RangeError('flaky: out of memory');
      },
    };
    const loss = ops.sum(t);
    expect(() => loss.backward()).toThrow('flaky: out of memory');
    expect(Array.from(x.grad!.data())).toEqual([3, 3, 3]); // written before the throw, as PyTorch's leaves keep theirs
    const ones = tensor([1, 1, 1], [3], { backend: b });
    expect(() => t.backward(ones)).toThrow(AutogradError);
    expect(() => t.backward(ones)).toThrow(/failed in flaky's backward \(RangeError: flaky: out of memory\)/);
    expect(() => loss.backward()).toThrow(/failed in flaky's backward/);
    expect(Array.from(x.grad!.data())).toEqual([3, 3, 3]);
    // The graph below a node that never ran is untouched: a fresh graph from x works.
    ops.sum(ops.mul(x, 2)).backward();
    expect(Array.from(x.grad!.data())).toEqual([5, 5, 5]);
  });
});
