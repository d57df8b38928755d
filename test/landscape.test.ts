// The loss landscape's mathematics: filter-normalised directions (Li et al. 2018) and the
// PCA of a trajectory; and that evaluating a plane leaves the model's weights as they were.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { setDefaultBackend } from '../ts/backend/registry.js';
import * as nn from '../ts/nn/index.js';
import { CharTokenizer } from '../ts/tokenizers/char.js';
import { modelToSafetensors } from '../ts/train/index.js';
import { computeLandscape, filterNormalizedDirection, flattenParameters, linspace, pca, setFlatParameters, surfaceInThread } from '../ts/tools/landscape.js';
import { contourLines } from '../ts/tools/plots.js';
import { buildModel, evalLoss, loadRun, type RunConfig } from '../ts/tools/run.js';
import { getBackend } from './helpers/backends.js';

function rowNorms(values: ArrayLike<number>, rows: number): number[] {
  const width = values.length / rows;
  return Array.from({ length: rows }, (_, r) => {
    let s = 0;
    for (let j = r * width; j < (r + 1) * width; j++) s += values[j]! * values[j]!;
    return Math.sqrt(s);
  });
}

describe('filter-normalised directions', () => {
  it('scale each output row to the weight row norm, and are zero on 1-D parameters', () => {
    const rng = new nn.Rng(5);
    const w = Float32Array.from({ length: 6 * 4 }, (_, i) => Math.sin(i) * (1 + (i % 6)));
    const conv = Float32Array.from({ length: 3 * 2 * 5 }, (_, i) => Math.cos(i * 0.7));
    const bias = Float32Array.from({ length: 6 }, (_, i) => i + 1);
    const gain = new Float32Array(4).fill(1);
    const params = [
      { shape: [6, 4], values: w },
      { shape: [3, 2, 5], values: conv },
      { shape: [6], values: bias },
      { shape: [4], values: gain },
    ];
    const [dw, dconv, db, dg] = filterNormalizedDirection(params, rng);
    const want = rowNorms(w, 6);
    rowNorms(dw!, 6).forEach((n, i) => expect(n).toBeCloseTo(want[i]!, 5));
    const wantConv = rowNorms(conv, 3);
    rowNorms(dconv!, 3).forEach((n, i) => expect(n).toBeCloseTo(wantConv[i]!, 5));
    expect(Array.from(db!)).toEqual(new Array(6).fill(0));
    expect(Array.from(dg!)).toEqual(new Array(4).fill(0));
    // Random, not the weights themselves: the direction is not parallel to a row.
    const cos = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
      let ab = 0;
      let aa = 0;
      let bb = 0;
      for (let i = 0; i < a.length; i++) {
        ab += a[i]! * b[i]!;
        aa += a[i]! * a[i]!;
        bb += b[i]! * b[i]!;
      }
      return ab / Math.sqrt(aa * bb);
    };
    expect(Math.abs(cos(dw!, w))).toBeLessThan(0.9);
  });

  it('gives a zero row where the weight row is zero', () => {
    const w = new Float32Array(2 * 3);
    w.set([1, 2, 2], 3);
    const [d] = filterNormalizedDirection([{ shape: [2, 3], values: w }], new nn.Rng(1));
    const norms = rowNorms(d!, 2);
    expect(norms[0]).toBeCloseTo(0, 6);
    expect(norms[1]).toBeCloseTo(3, 5);
  });
});

describe('PCA of a trajectory', () => {
  it('recovers the two directions a synthetic path moves along, largest variance first', () => {
    const p = 50;
    const u = new Float64Array(p);
    const v = new Float64Array(p);
    // Orthonormal u, v.
    for (let i = 0; i < p; i++) {
      u[i] = i < 25 ? 1 / 5 : 0;
      v[i] = i % 2 === 0 ? 1 / 5 : -1 / 5;
    }
    const uv = u.reduce((s, x, i) => s + x * v[i]!, 0);
    for (let i = 0; i < p; i++) v[i] = v[i]! - uv * u[i]!;
    const vn = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    for (let i = 0; i < p; i++) v[i] = v[i]! / vn;
    // A spiral in from (-10, 3): large spread along u, smaller along v, plus tiny noise.
    const rng = new nn.Rng(3);
    const rows = Array.from({ length: 12 }, (_, k) => {
      const t = 1 - k / 11;
      const a = -10 * t;
      const b = 3 * Math.sin(Math.PI * t);
      return Float32Array.from({ length: p }, (_, i) => a * u[i]! + b * v[i]! + 1e-4 * (rng.next() - 0.5));
    });
    const { components, explained } = pca(rows, 2);
    const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => Array.from(a).reduce((s, x, i) => s + x * b[i]!, 0);
    expect(Math.abs(dot(components[0]!, u))).toBeGreaterThan(0.99);
    expect(Math.abs(dot(components[1]!, v))).toBeGreaterThan(0.99);
    expect(dot(components[0]!, components[1]!)).toBeCloseTo(0, 6);
    expect(dot(components[0]!, components[0]!)).toBeCloseTo(1, 6);
    expect(explained[0]!).toBeGreaterThan(explained[1]!);
    expect(explained[0]! + explained[1]!).toBeGreaterThan(0.999);
    // Sign convention: the first checkpoint projects to a non-positive coordinate.
    expect(dot(rows[0]!, components[0]!)).toBeLessThan(0);
  });

  it('refuses fewer than two rows', () => {
    expect(() => pca([new Float32Array(3)])).toThrow(RangeError);
  });
});

describe('loss surface', () => {
  it('evaluates L(θ + a·d1 + b·d2) and restores θ; the origin is the model\'s own loss', async () => {
    const backend = await getBackend('native');
    const model = new nn.Transformer({ srcVocab: 7, tgtVocab: 7, dModel: 8, nHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFF: 16, dropout: 0.3, padId: 0, maxLen: 8 }, { backend, rng: new nn.Rng(4) });
    const batch = { src: [[3, 4, 5, 6], [4, 5, 6, 0]], tgt: [[1, 3, 4, 5, 6, 2], [1, 4, 5, 6, 2]] };
    const base = flattenParameters(model);
    const d1 = Float32Array.from(base, (_, i) => Math.sin(i));
    const d2 = Float32Array.from(base, (_, i) => Math.cos(i));
    const losses = surfaceInThread(model, batch, base, d1, d2, [[0, 0], [0.5, -0.5], [0, 0]]);
    expect(losses[0]).toBeCloseTo(evalLoss(model, batch), 6);
    expect(losses[2]).toBe(losses[0]); // dropout off: deterministic
    expect(losses[1]).not.toBeCloseTo(losses[0]!, 3);
    expect(Array.from(flattenParameters(model))).toEqual(Array.from(base));
    setFlatParameters(model, base);
    model.dispose();
  });

  it('draws contour lines inside the grid', () => {
    const xs = linspace(-1, 1, 9);
    const losses = xs.flatMap((y) => xs.map((x) => 1 + x * x + 2 * y * y));
    const lines = contourLines({ kind: 'random', xs, ys: xs, losses }, 5);
    expect(lines.length).toBeGreaterThan(10);
    for (const p of lines) {
      expect(Math.abs(p.x)).toBeLessThanOrEqual(1.0001);
      expect(Math.abs(p.y)).toBeLessThanOrEqual(1.0001);
      // On the contour of level c, 1 + x² + 2y² is close to c (marching squares interpolates).
      expect(Math.abs(1 + p.x * p.x + 2 * p.y * p.y - p.level)).toBeLessThan(0.15);
    }
  });
});

describe('trajectory plane of a run folder', () => {
  it("keeps each checkpoint's own held-out loss beside the plane's loss at its projection", async () => {
    const backend = await getBackend('native');
    setDefaultBackend(backend);
    const dir = mkdtempSync(join(tmpdir(), 'ferro-landscape-'));
    try {
      const config = {
        format: 'ferroformer-run', version: 1, name: 't', kind: 'seq2seq',
        train: { seed: 1 },
        model: { srcVocab: 9, tgtVocab: 9, dModel: 8, nHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFF: 16, dropout: 0, padId: 0, maxLen: 10 },
      } as unknown as RunConfig;
      writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
      writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(CharTokenizer.train('abcdef')));
      writeFileSync(join(dir, 'eval_batch.json'), JSON.stringify({ src: [[3, 4, 5, 6], [4, 5, 6, 7]], tgt: [[1, 3, 4, 5, 6, 2], [1, 4, 5, 6, 7, 2]] }));
      // A made-up path: four different initialisations, the last one the "trained" model.
      mkdirSync(join(dir, 'checkpoints'));
      const steps = [0, 10, 20, 30];
      steps.forEach((step, i) => {
        const model = buildModel(config, 100 + i);
        const bytes = modelToSafetensors(model);
        writeFileSync(join(dir, 'checkpoints', `step-${step}.safetensors`), bytes);
        if (step === 30) writeFileSync(join(dir, 'model.safetensors'), bytes);
        model.dispose();
      });

      const landscape = await computeLandscape(dir, { resolution: 3, workers: 1, backend: 'native' });
      const trajectory = landscape.planes.find((p) => p.kind === 'trajectory')!;
      expect(trajectory.path!.map((p) => p.step)).toEqual(steps);
      for (const [i, point] of trajectory.path!.entries()) {
        const run = loadRun(dir, join(dir, 'checkpoints', `step-${steps[i]}.safetensors`));
        expect(point.heldOutLoss).toBeCloseTo(evalLoss(run.model, run.evalBatch), 5);
        run.model.dispose();
      }
      // Four checkpoints span three dimensions: the plane of two components misses some of
      // them, and there the plane's loss is not the checkpoint's. θ* (the last) is on it.
      expect(Math.max(...trajectory.path!.map((p) => Math.abs(p.planeLoss - p.heldOutLoss)))).toBeGreaterThan(1e-3);
      const last = trajectory.path!.at(-1)!;
      expect(last.heldOutLoss).toBeCloseTo(landscape.centerLoss, 5);
      expect(last.planeLoss).toBeCloseTo(landscape.centerLoss, 4);
      // The picture's axes share one scale; neither side is less than half the other.
      const width = trajectory.xs.at(-1)! - trajectory.xs[0]!;
      const height = trajectory.ys.at(-1)! - trajectory.ys[0]!;
      expect(Math.min(width, height) / Math.max(width, height)).toBeGreaterThanOrEqual(0.5 - 1e-9);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
