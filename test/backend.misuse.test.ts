// Same misuse, same message: every case calls one kernel wrongly, straight on the Backend, on
// native, wasm and reference, and expects the same error class and the same message from all
// three (the checks of crates/kernels/src/check.rs, which both shims call in the generated
// order, and their mirror ts/backend/check.ts in the reference backend). Each backend also
// still works after each refusal.
import { describe, expect, it } from 'vitest';
import type { Backend, BackendName, Storage } from '../ts/backend/backend.js';
import { getBackend, selectedBackends } from './helpers/backends.js';

interface Case {
  name: string;
  error: new (...args: never[]) => Error;
  message: string;
  run(b: Backend): unknown;
}

const f32 = (b: Backend, n: number): Storage => b.fromArray('f32', new Array<number>(n).fill(0.5));
const OVERLAP = 'an output must not share memory with another buffer';

const CASES: Case[] = [
  {
    name: 'an output of the wrong length', error: RangeError, message: 'matmulForward: out has length 5, expected 4',
    run: (b) => b.matmulForward(f32(b, 5), f32(b, 6), f32(b, 6), 1, 2, 3, 2, false, false, false),
  },
  {
    name: 'an input of the wrong length', error: RangeError, message: 'layernormForward: weight has length 3, expected 4',
    run: (b) => b.layernormForward(f32(b, 8), f32(b, 2), f32(b, 2), f32(b, 8), f32(b, 3), f32(b, 4), 2, 4, 1e-5),
  },
  {
    name: 'a pointwise input shorter than the output', error: RangeError, message: 'mulForward: b has length 3, expected 4',
    run: (b) => b.mulForward(f32(b, 4), f32(b, 4), f32(b, 3)),
  },
  {
    name: 'an optional mask of the wrong length', error: RangeError, message: 'softmaxForward: mask has length 5, expected 6',
    run: (b) => b.softmaxForward(f32(b, 6), f32(b, 6), b.alloc('u8', 5), 2, 3),
  },
  {
    name: 'an attention key mask of the wrong length', error: RangeError, message: 'attentionForward: keyMask has length 3, expected 2',
    run: (b) => b.attentionForward(f32(b, 8), f32(b, 2), f32(b, 8), f32(b, 8), f32(b, 8), b.alloc('u8', 3), 1, 1, 2, 2, 4, false, 0.5, 0, 0, 0),
  },
  {
    name: 'an optional gradient of the wrong length', error: RangeError, message: 'matmulBackward: db has length 5, expected 6',
    run: (b) => b.matmulBackward(null, f32(b, 5), f32(b, 4), f32(b, 6), f32(b, 6), 1, 2, 3, 2, false, false),
  },
  {
    name: 'an id outside the table', error: RangeError, message: 'embeddingForward: ids[1] = 3 is outside [0, 3)',
    run: (b) => b.embeddingForward(f32(b, 4), b.fromArray('i32', [0, 3]), f32(b, 6), 2),
  },
  {
    name: 'a negative id in backward', error: RangeError, message: 'embeddingBackward: ids[0] = -1 is outside [0, 3)',
    run: (b) => b.embeddingBackward(f32(b, 6), f32(b, 4), b.fromArray('i32', [-1, 0]), 2),
  },
  {
    name: 'a table that is not whole rows', error: RangeError, message: 'embeddingForward: table has length 7, not a multiple of dim 2',
    run: (b) => b.embeddingForward(f32(b, 4), b.fromArray('i32', [0, 1]), f32(b, 7), 2),
  },
  {
    name: 'a target outside the classes', error: RangeError, message: 'crossEntropyForward: targets[1] = 5 is outside [0, 3)',
    run: (b) => b.crossEntropyForward(f32(b, 1), f32(b, 2), f32(b, 6), b.fromArray('i32', [-100, 5]), 2, 3, -100, 0),
  },
  {
    name: 'a target outside the classes in backward', error: RangeError, message: 'crossEntropyBackward: targets[0] = 3 is outside [0, 3)',
    run: (b) => b.crossEntropyBackward(f32(b, 6), f32(b, 1), f32(b, 6), f32(b, 2), b.fromArray('i32', [3, 0]), 2, 3, -100, 0, true),
  },
  {
    name: 'a narrow past the end of its axis', error: RangeError, message: 'narrowForward: start 3 + len 3 exceeds dim 5',
    run: (b) => b.narrowForward(f32(b, 6), f32(b, 10), 2, 5, 1, 3, 3),
  },
  {
    name: 'dropout with p = 1', error: RangeError, message: 'dropoutForward: p = 1 is outside [0, 1)',
    run: (b) => b.dropoutForward(f32(b, 3), b.alloc('u8', 3), f32(b, 3), 1, 0, 0),
  },
  {
    name: 'dropout backward with a negative p', error: RangeError, message: 'dropoutBackward: p = -0.5 is outside [0, 1)',
    run: (b) => b.dropoutBackward(f32(b, 3), f32(b, 3), b.alloc('u8', 3), -0.5),
  },
  {
    name: 'Adam at step 0', error: RangeError, message: 'adamUpdate: step is 1-based, got 0',
    run: (b) => b.adamUpdate(f32(b, 2), f32(b, 2), f32(b, 2), f32(b, 2), 1e-3, 0.9, 0.999, 1e-8, 0, 0, false),
  },
  {
    name: 'an output that is also an input', error: RangeError, message: `addForward: out and a overlap; ${OVERLAP}`,
    run: (b) => { const x = f32(b, 3); b.addForward(x, x, f32(b, 3)); },
  },
  {
    name: 'two outputs in one storage', error: RangeError, message: `layernormForward: mean and rstd overlap; ${OVERLAP}`,
    run: (b) => { const stats = f32(b, 2); b.layernormForward(f32(b, 8), stats, stats, f32(b, 8), f32(b, 4), f32(b, 4), 2, 4, 1e-5); },
  },
  {
    name: 'GELU without its derivative buffer', error: RangeError, message: 'linearForward: actGrad is required with activation gelu',
    run: (b) => b.linearForward(f32(b, 6), null, f32(b, 4), f32(b, 6), null, 2, 2, 3, 'gelu'),
  },
  {
    name: 'GELU tanh without its derivative buffer', error: RangeError, message: 'linearForward: actGrad is required with activation gelu_tanh',
    run: (b) => b.linearForward(f32(b, 6), null, f32(b, 4), f32(b, 6), null, 2, 2, 3, 'gelu_tanh'),
  },
  {
    name: 'ReLU with a derivative buffer', error: RangeError, message: 'linearForward: actGrad must be null with activation relu',
    run: (b) => b.linearForward(f32(b, 6), f32(b, 6), f32(b, 4), f32(b, 6), null, 2, 2, 3, 'relu'),
  },
  {
    name: 'ReLU backward without scratch', error: RangeError, message: 'linearBackward: dpre is required with activation relu',
    run: (b) => b.linearBackward(null, null, null, null, f32(b, 6), f32(b, 4), f32(b, 6), f32(b, 6), 2, 2, 3, 'relu', true, true),
  },
  {
    name: 'a linear weight of the wrong length', error: RangeError, message: 'linearForward: weight has length 5, expected 6',
    run: (b) => b.linearForward(f32(b, 6), null, f32(b, 4), f32(b, 5), null, 2, 2, 3, 'identity'),
  },
  {
    name: 'ids of the wrong dtype', error: TypeError, message: 'embeddingForward: ids must have dtype i32, got f32',
    run: (b) => b.embeddingForward(f32(b, 4), f32(b, 2), f32(b, 6), 2),
  },
  {
    name: 'a storage used after free()', error: Error, message: 'scaleInplace: x was used after free()',
    run: (b) => { const x = f32(b, 2); b.free(x); b.scaleInplace(x, 2); },
  },
];

/** After every refusal: a small correct kernel call gives the right answer. */
function stillUsable(b: Backend): void {
  const out = b.alloc('f32', 2);
  b.addForward(out, b.fromArray('f32', [1, 2]), b.fromArray('f32', [3, 4]));
  expect(Array.from(b.read(out))).toEqual([4, 6]);
}

describe('every misuse gives the same message on every backend', () => {
  it('the cases have distinct names', () => {
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const seen: Partial<Record<BackendName, string>> = {};
    for (const name of selectedBackends()) {
      const backend = await getBackend(name);
      let thrown: unknown = null;
      try {
        c.run(backend);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, `${name}: no error was thrown`).toBeInstanceOf(c.error);
      seen[name] = (thrown as Error).message;
      stillUsable(backend);
    }
    for (const name of selectedBackends()) expect(seen[name], name).toBe(c.message);
  });
});
