// The loss landscape of Li et al. (2018), "Visualizing the Loss Landscape of Neural Nets":
// the loss on a fixed evaluation batch (dropout off, no graph) over a 2-D plane through the
// trained weights θ*, L(θ* + a·δ + b·η), on two planes:
//  - random: δ, η Gaussian, filter-normalised (each output row of a weight matrix rescaled
//    to that row's norm in θ*; biases and LayerNorm parameters zero), a, b in [-1, 1];
//  - trajectory: δ, η the top two principal components of the saved checkpoints' offsets
//    θ_i - θ*, with the checkpoints projected onto them, so the optimiser's path can be
//    drawn over the surface. The surface is a slice and the path a projection: a checkpoint
//    lies off the plane, so its own held-out loss (`heldOutLoss`, evaluated at θ_i) differs
//    from the plane's loss at its projection (`planeLoss`); both are kept.
// Grid points are independent; they are spread over worker_threads (landscape_worker.ts),
// each of which loads the model from the run folder.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { io, nn, type Tensor } from '../index.js';
import { evalLoss, loadRun, type AnyModel, type EvalBatchJSON } from './run.js';

export interface ParamShape {
  name: string;
  shape: readonly number[];
}

/** The model's distinct parameters in registration order (a tied weight once). */
export function uniqueParameters(model: nn.Module): [string, Tensor][] {
  const seen = new Set<Tensor>();
  const out: [string, Tensor][] = [];
  for (const [name, p] of model.namedParameters()) {
    if (seen.has(p)) continue;
    seen.add(p);
    out.push([name, p]);
  }
  return out;
}

/** All parameters as one flat Float32Array (uniqueParameters order). */
export function flattenParameters(model: nn.Module): Float32Array {
  const params = uniqueParameters(model);
  const out = new Float32Array(params.reduce((n, [, p]) => n + p.size, 0));
  let offset = 0;
  for (const [, p] of params) {
    out.set(p.data() as ArrayLike<number>, offset);
    offset += p.size;
  }
  return out;
}

/** Writes a flat vector (as flattenParameters returns) into the parameters. */
export function setFlatParameters(model: nn.Module, flat: Float32Array): void {
  let offset = 0;
  for (const [, p] of uniqueParameters(model)) {
    p.backend.write(p.storage, flat.subarray(offset, offset + p.size));
    offset += p.size;
  }
  if (offset !== flat.length) throw new RangeError(`setFlatParameters: model has ${offset} values, vector ${flat.length}`);
}

/** A safetensors snapshot flattened in the model's parameter order. A tied tensor is in the
 * file once, maybe under another of its names: the metadata maps each dropped name to the
 * kept one (save_model's convention, which modelToSafetensors follows). */
export function flattenSnapshot(model: nn.Module, bytes: Uint8Array): Float32Array {
  const { tensors, metadata } = io.readSafetensors(bytes);
  const params = uniqueParameters(model);
  const out = new Float32Array(params.reduce((n, [, p]) => n + p.size, 0));
  let offset = 0;
  for (const [name, p] of params) {
    const t = tensors.get(name) ?? tensors.get(metadata[name] ?? '');
    if (!t || t.data.length !== p.size) throw new RangeError(`snapshot: ${name} is missing or has the wrong size`);
    out.set(t.data as ArrayLike<number>, offset);
    offset += p.size;
  }
  return out;
}

/**
 * A filter-normalised random direction (Li et al., section 4): Gaussian entries; for every
 * parameter with two or more dimensions, each output row (index along dimension 0, a
 * "filter") is rescaled to the norm of the same row of the weights; one-dimensional
 * parameters (biases, LayerNorm gains and offsets) are zero.
 */
export function filterNormalizedDirection(params: readonly { shape: readonly number[]; values: ArrayLike<number> }[], rng: nn.Rng): Float32Array[] {
  return params.map(({ shape, values }) => {
    const size = values.length;
    const d = new Float32Array(size);
    if (shape.length < 2 || size === 0) return d;
    d.set(rng.normal(size));
    const rows = shape[0]!;
    const width = size / rows;
    for (let r = 0; r < rows; r++) {
      let wNorm = 0;
      let dNorm = 0;
      for (let j = r * width; j < (r + 1) * width; j++) {
        wNorm += values[j]! * values[j]!;
        dNorm += d[j]! * d[j]!;
      }
      const scale = Math.sqrt(wNorm) / (Math.sqrt(dNorm) + 1e-10);
      for (let j = r * width; j < (r + 1) * width; j++) d[j] = d[j]! * scale;
    }
    return d;
  });
}

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export interface Pca {
  /** Unit vectors in parameter space, largest variance first. */
  components: Float64Array[];
  /** Fraction of the total variance each component explains. */
  explained: number[];
}

/**
 * Top-k principal components of the rows (centred on their mean, as sklearn's PCA that Li
 * et al. use), by power iteration with deflation on the small n x n Gram matrix: with n
 * checkpoints and P parameters, component k = Xᵀu_k / sqrt(λ_k) where (λ_k, u_k) are
 * eigenpairs of X Xᵀ. Signs are fixed so the first row projects to a non-positive coordinate.
 */
export function pca(rows: readonly ArrayLike<number>[], k = 2): Pca {
  const n = rows.length;
  const p = rows[0]?.length ?? 0;
  if (n < 2) throw new RangeError(`pca: needs at least 2 rows, got ${n}`);
  const mean = new Float64Array(p);
  for (const r of rows) for (let j = 0; j < p; j++) mean[j]! += r[j]! / n;
  const x = rows.map((r) => Float64Array.from({ length: p }, (_, j) => r[j]! - mean[j]!));
  const g = x.map((a) => x.map((b) => dot(a, b)));
  const trace = g.reduce((s, row, i) => s + row[i]!, 0);
  const components: Float64Array[] = [];
  const explained: number[] = [];
  for (let c = 0; c < Math.min(k, n); c++) {
    // Power iteration from a fixed start (deterministic); n is small, so iterate generously.
    let u = Float64Array.from({ length: n }, (_, i) => 1 + i / n);
    let lambda = 0;
    for (let it = 0; it < 2000; it++) {
      const v = Float64Array.from({ length: n }, (_, i) => dot(g[i]!, u));
      const norm = Math.sqrt(dot(v, v));
      if (norm === 0) break;
      for (let i = 0; i < n; i++) v[i] = v[i]! / norm;
      const change = Math.abs(norm - lambda);
      u = v;
      lambda = norm;
      if (change <= 1e-13 * norm && it > 10) break;
    }
    const comp = new Float64Array(p);
    if (lambda > 0) {
      for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) comp[j]! += u[i]! * x[i]![j]!;
      const cn = Math.sqrt(dot(comp, comp));
      for (let j = 0; j < p; j++) comp[j] = comp[j]! / cn;
    }
    if (dot(rows[0]!, comp) - dot(mean, comp) > 0) for (let j = 0; j < p; j++) comp[j] = -comp[j]!;
    components.push(comp);
    explained.push(trace > 0 ? lambda / trace : 0);
    // Deflate: G <- G - λ u uᵀ.
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) g[i]![j]! -= lambda * u[i]! * u[j]!;
  }
  return { components, explained };
}

export interface Plane {
  kind: 'random' | 'trajectory';
  /** Grid coordinates along each direction. */
  xs: number[];
  ys: number[];
  /** losses[j * xs.length + i] at (xs[i], ys[j]). */
  losses: number[];
  /** Trajectory plane: each checkpoint's step, its projection (x, y) onto the plane, the
   * plane's loss there, and the checkpoint's own loss at its full weights θ_i. */
  path?: TrajectoryPoint[];
  /** Trajectory plane: variance explained by each axis. */
  explained?: [number, number];
}

export interface TrajectoryPoint {
  step: number;
  x: number;
  y: number;
  /** L(θ* + x·δ + y·η): the surface's loss under the projected point, not the checkpoint's. */
  planeLoss: number;
  /** L(θ_i): the checkpoint's own held-out loss (the same measure as the surface). */
  heldOutLoss: number;
}

export interface Landscape {
  resolution: number;
  /** Loss at the trained weights (the origin of both planes). */
  centerLoss: number;
  evalExamples: number;
  planes: Plane[];
}

/** [lo, hi] widened symmetrically to at least `width`. */
function widenTo([lo, hi]: [number, number], width: number): [number, number] {
  const grow = Math.max(0, width - (hi - lo)) / 2;
  return [lo - grow, hi + grow];
}

export function linspace(lo: number, hi: number, n: number): number[] {
  return n === 1 ? [(lo + hi) / 2] : Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
}

/** L(base + a·d1 + b·d2) for each point, in this thread. Restores `base` afterwards. */
export function surfaceInThread(model: AnyModel, batch: EvalBatchJSON, base: Float32Array, d1: Float32Array, d2: Float32Array, points: readonly [number, number][], onPoint?: (index: number, loss: number) => void): number[] {
  const theta = new Float32Array(base.length);
  const out: number[] = [];
  try {
    for (const [a, b] of points) {
      for (let i = 0; i < theta.length; i++) theta[i] = base[i]! + a * d1[i]! + b * d2[i]!;
      setFlatParameters(model, theta);
      const loss = evalLoss(model, batch);
      out.push(loss);
      onPoint?.(out.length - 1, loss);
    }
  } finally {
    setFlatParameters(model, base);
  }
  return out;
}

export interface SurfaceJob {
  runDir: string;
  backend: string;
  base: Float32Array;
  d1: Float32Array;
  d2: Float32Array;
  points: [number, number][];
}

/** The same as surfaceInThread, with the points dealt round-robin to `workers` threads that
 * each load the model from the run folder. */
export async function surfaceInWorkers(job: SurfaceJob, workers: number, onPoint?: () => void): Promise<number[]> {
  const out = new Array<number>(job.points.length).fill(NaN);
  const url = new URL('./landscape_worker.js', import.meta.url);
  await Promise.all(Array.from({ length: workers }, (_, w) => new Promise<void>((resolve, reject) => {
    const indices = job.points.map((_, i) => i).filter((i) => i % workers === w);
    if (indices.length === 0) return resolve();
    const worker = new Worker(url, {
      workerData: { runDir: job.runDir, backend: job.backend, base: job.base, d1: job.d1, d2: job.d2, points: indices.map((i) => job.points[i]) },
    });
    worker.on('message', (m: { index: number; loss: number }) => {
      out[indices[m.index]!] = m.loss;
      onPoint?.();
    });
    worker.on('error', reject);
    worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`landscape worker ${w} exited with code ${code}`))));
  })));
  return out;
}

/** Saved parameter snapshots of a run: checkpoints/step-<n>.safetensors, by step. */
export function listSnapshots(runDir: string): { step: number; path: string }[] {
  const dir = join(runDir, 'checkpoints');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .map((name) => ({ name, m: /^step-(\d+)\.safetensors$/.exec(name) }))
    .filter((e) => e.m !== null)
    .map((e) => ({ step: Number(e.m![1]), path: join(dir, e.name) }))
    .sort((a, b) => a.step - b.step);
}

export interface LandscapeOptions {
  resolution: number;
  /** Worker threads; 1 = evaluate in this thread. */
  workers: number;
  backend: string;
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Both planes of a run's landscape. Needs an initialised backend (the one named in options). */
export async function computeLandscape(runDir: string, options: LandscapeOptions): Promise<Landscape> {
  const run = loadRun(runDir);
  const { model, evalBatch } = run;
  const params = uniqueParameters(model);
  const base = flattenParameters(model);
  const n = options.resolution;
  const rng = new nn.Rng(options.seed ?? 2018);
  const host = params.map(([, p]) => ({ shape: p.shape, values: p.data() as ArrayLike<number> }));
  const randomDirs: [Float32Array, Float32Array] = [concat(filterNormalizedDirection(host, rng)), concat(filterNormalizedDirection(host, rng))];

  const snapshots = listSnapshots(runDir);
  // Each checkpoint's own loss is measured at its weights before they become offsets.
  const heldOutLosses: number[] = [];
  let offsets: Float32Array[];
  try {
    offsets = snapshots.map((s) => {
      const flat = flattenSnapshot(model, new Uint8Array(readFileSync(s.path)));
      setFlatParameters(model, flat);
      heldOutLosses.push(evalLoss(model, evalBatch));
      for (let i = 0; i < flat.length; i++) flat[i] = flat[i]! - base[i]!;
      return flat;
    });
  } finally {
    setFlatParameters(model, base);
  }
  const planes: Plane[] = [];
  const jobs: { plane: Plane; d1: Float32Array; d2: Float32Array; points: [number, number][] }[] = [];
  const grid = (xs: number[], ys: number[]): [number, number][] => ys.flatMap((y) => xs.map((x): [number, number] => [x, y]));
  const xsR = linspace(-1, 1, n);
  const random: Plane = { kind: 'random', xs: xsR, ys: xsR, losses: [] };
  jobs.push({ plane: random, d1: randomDirs[0], d2: randomDirs[1], points: grid(xsR, xsR) });
  planes.push(random);

  if (offsets.length >= 2) {
    const { components, explained } = pca(offsets, 2);
    const d1 = Float32Array.from(components[0]!);
    const d2 = Float32Array.from(components[1]!);
    const coords = offsets.map((o) => [dot(o, d1), dot(o, d2)] as const);
    const span = (values: number[]): [number, number] => {
      const lo = Math.min(0, ...values);
      const hi = Math.max(0, ...values);
      const pad = 0.15 * (hi - lo || 1);
      return [lo - pad, hi + pad];
    };
    // The picture draws both axes at the same scale; a path that moved mostly along PC1 would
    // make a thin strip, so the shorter side is widened (around its centre) to half the longer.
    const xSpan = span(coords.map((c) => c[0]));
    const ySpan = span(coords.map((c) => c[1]));
    const longest = Math.max(xSpan[1] - xSpan[0], ySpan[1] - ySpan[0]);
    const [x0, x1] = widenTo(xSpan, longest / 2);
    const [y0, y1] = widenTo(ySpan, longest / 2);
    const xs = linspace(x0, x1, n);
    const ys = linspace(y0, y1, n);
    const trajectory: Plane = {
      kind: 'trajectory', xs, ys, losses: [], explained: [explained[0]!, explained[1]!],
      path: snapshots.map((s, i) => ({ step: s.step, x: coords[i]![0], y: coords[i]![1], planeLoss: NaN, heldOutLoss: heldOutLosses[i]! })),
    };
    const pathPoints = coords.map((c): [number, number] => [c[0], c[1]]);
    jobs.push({ plane: trajectory, d1, d2, points: [...grid(xs, ys), ...pathPoints] });
    planes.push(trajectory);
  }

  const total = jobs.reduce((s, j) => s + j.points.length, 0) + 1;
  let done = 0;
  const tick = (): void => {
    done++;
    options.onProgress?.(done, total);
  };
  const centerLoss = evalLoss(model, evalBatch);
  tick();
  for (const job of jobs) {
    const losses = options.workers > 1
      ? await surfaceInWorkers({ runDir, backend: options.backend, base, d1: job.d1, d2: job.d2, points: job.points }, options.workers, tick)
      : surfaceInThread(model, evalBatch, base, job.d1, job.d2, job.points, tick);
    const gridSize = job.plane.xs.length * job.plane.ys.length;
    job.plane.losses = losses.slice(0, gridSize);
    job.plane.path?.forEach((p, i) => {
      p.planeLoss = losses[gridSize + i]!;
    });
  }
  model.dispose();
  const examples = evalBatch.src?.length ?? evalBatch.rows?.length ?? 0;
  return { resolution: n, centerLoss, evalExamples: examples, planes };
}
