// Disposing returns memory: on wasm, building, training and disposing a model (and its
// optimiser and batches) over and over leaves linear memory at the size it reached after the
// first rounds; a training loop allocates nothing that outlives its step; and on native a
// warm training step takes every buffer from the pool (no new typed array, as llm.c reuses
// its activations).
import { expect, it } from 'vitest';
import type { NativeBackend } from '../ts/backend/native.js';
import type { WasmBackend } from '../ts/backend/wasm.js';
import * as nn from '../ts/nn/index.js';
import * as optim from '../ts/optim/index.js';
import { dispose } from '../ts/tensor/memory.js';
import { seq2seqBatch, seq2seqLoss, Trainer } from '../ts/train/index.js';
import { getBackend } from './helpers/backends.js';
import type { Backend, Storage } from '../ts/backend/backend.js';

function makeModel(backend: Backend) {
  // ~0.5M parameters: a leak of one model per round would grow memory by ~2 MB (weights)
  // to ~8 MB (with gradients and Adam moments) per round.
  return new nn.Transformer({ srcVocab: 40, tgtVocab: 40, dModel: 64, nHeads: 4, numEncoderLayers: 2, numDecoderLayers: 2, dFF: 256, dropout: 0.1, maxLen: 16, padId: 0 }, { backend, rng: new nn.Rng(3) });
}

function batch(backend: Backend, seed: number) {
  const rng = new nn.Rng(seed);
  const rows = Array.from({ length: 4 }, () => Array.from(rng.uniform(3 + (seed % 5), 1, 40), Math.floor));
  return seq2seqBatch(rows, rows.map((r) => [1, ...r, 2]), { padId: 0, backend });
}

function round(backend: Backend, seed: number): void {
  const model = makeModel(backend);
  const optimizer = new optim.Adam(model.parameters());
  const trainer = new Trainer({ model, optimizer, loss: seq2seqLoss({ padId: 0 }), clipNorm: 1 });
  for (let s = 0; s < 2; s++) {
    const b = batch(backend, seed * 10 + s);
    trainer.trainStep(b);
    dispose(b);
  }
  model.dispose();
  optimizer.dispose();
}

it('wasm: 12 rounds of build / train / dispose leave linear memory where round 3 left it', async () => {
  const backend = (await getBackend('wasm')) as WasmBackend;
  const sizes: number[] = [];
  for (let r = 0; r < 12; r++) {
    round(backend, r);
    sizes.push(backend.memoryBytes());
  }
  console.log(`wasm memory after each round (MiB): ${sizes.map((s) => (s / 2 ** 20).toFixed(1)).join(' ')}`);
  expect(sizes[11]).toBe(sizes[2]);
});

it('every storage a training step allocates is freed by the end of the step (both model kinds, padding on)', async () => {
  const backend = await getBackend('wasm');
  const live = new Set<Storage>();
  const { alloc, allocUninit, fromArray, free } = backend;
  const patched = backend as { -readonly [K in keyof Backend]: Backend[K] };
  patched.alloc = (dtype, length) => {
    const s = alloc.call(backend, dtype, length);
    live.add(s);
    return s;
  };
  patched.allocUninit = (dtype, length) => {
    const s = allocUninit.call(backend, dtype, length);
    live.add(s);
    return s;
  };
  patched.fromArray = (dtype, data) => {
    const s = fromArray.call(backend, dtype, data);
    live.add(s);
    return s;
  };
  patched.free = (s) => {
    live.delete(s);
    free.call(backend, s);
  };
  const counting = backend;
  try {
  const model = makeModel(counting);
  const optimizer = new optim.Adam(model.parameters());
  const trainer = new Trainer({ model, optimizer, loss: seq2seqLoss({ padId: 0, labelSmoothing: 0.1 }), clipNorm: 1 });
  const step = (seed: number): void => {
    const b = batch(counting, seed);
    trainer.trainStep(b);
    dispose(b);
  };
  step(1); // the first step allocates gradients and Adam moments, which persist
  const after1 = live.size;
  for (let s = 2; s < 8; s++) step(s);
  expect(live.size).toBe(after1);
  model.dispose();
  optimizer.dispose();
  expect(live.size).toBe(0);
  } finally {
    delete (patched as Partial<Backend>).alloc;
    delete (patched as Partial<Backend>).allocUninit;
    delete (patched as Partial<Backend>).fromArray;
    delete (patched as Partial<Backend>).free;
  }
});

for (const name of ['native', 'wasm'] as const) {
  it(`${name}: once warm, a training step allocates nothing (every buffer comes from the backend's pool)`, async () => {
    const backend = (await getBackend(name)) as NativeBackend | WasmBackend;
    // Native: typed arrays created; wasm: calls into the module's allocator.
    const allocations = (): number => ('newArrayCount' in backend ? backend.newArrayCount() : backend.allocatorCalls());
    const model = makeModel(backend);
    const optimizer = new optim.Adam(model.parameters());
    const trainer = new Trainer({ model, optimizer, loss: seq2seqLoss({ padId: 0 }), clipNorm: 1 });
    // One fixed batch shape, as a training run with fixed-size batches has.
    const b = batch(backend, 4);
    for (let s = 0; s < 3; s++) trainer.trainStep(b);
    const before = allocations();
    for (let s = 0; s < 5; s++) trainer.trainStep(b);
    const made = allocations() - before;
    dispose(b);
    model.dispose();
    optimizer.dispose();
    expect(before).toBeGreaterThan(0);
    expect(made).toBe(0);
  });
}
