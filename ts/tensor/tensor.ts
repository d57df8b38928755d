// Tensor: a shape and a dtype over storage owned by a backend. On native the storage is a
// Float32Array that Rust borrows per call; on wasm it is {ptr, len} in linear memory, freed
// by dispose() (a FinalizationRegistry in the wasm backend is only a backstop).
// The lib reference is kept in tensor.d.ts, so a user's `tsc` with lib es2022 (no esnext)
// knows Symbol.dispose and the Disposable interface that [Symbol.dispose]() declares.
/// <reference lib="esnext.disposable" preserve="true" />
import type { Backend, DType, HostArray, Storage } from '../backend/backend.js';
import { getDefaultBackend } from '../backend/registry.js';
import { ConfigError, DTypeError, DisposedError, ShapeError } from './errors.js';
import { insideLibraryCall, registerInScope } from './memory.js';
// Circular by design (one layer): the tape needs Tensor, Tensor.backward() needs the tape;
// neither uses the other at module load.
import { backward as runBackward, type BackwardOptions } from '../autograd/tape.js';

export type Shape = readonly number[];

/** What autograd records for an op's output: its inputs, and a closure that accumulates
 * input gradients given the output gradient (see ts/autograd/tape.ts). */
/** A gradient buffer to write: `accumulate` false means nothing has written it yet, and the
 * op must overwrite every element (it holds no zeros). */
export interface GradTarget {
  readonly storage: Storage;
  readonly accumulate: boolean;
}

export interface GradNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /** grad(i) returns input i's gradient buffer (zero-filled on first use), or null when
   * input i needs no gradient. Kernels accumulate into it. For an op whose input gradient is
   * the output gradient itself (reshape, a residual add), adopt(i) hands `gradOut` over as
   * input i's gradient when it has none yet (true: done, and gradOut must not be written
   * again), which saves a zero-filled buffer and a copy; false: use grad(i). An op whose
   * kernel can write a gradient instead of adding to it asks gradTarget(i) instead of
   * grad(i): the first writer of a fresh buffer then skips its zero fill (see GradTarget). */
  backward(gradOut: Storage, grad: (i: number) => Storage | null, adopt: (i: number) => boolean,
    gradTarget: (i: number) => GradTarget | null): void;
  /** Buffers kept only for backward (softmax probs, layer norm statistics, masks). */
  readonly saved: readonly Storage[];
}

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** The most elements one tensor may hold: 2^31 - 1, the largest length every backend can
 * index (wasm32's whole memory is 4 GiB, i.e. 2^30 f32 values). */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;

export function checkShape(op: string, shape: Shape): void {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new ShapeError(op, `shape must hold non-negative integers, got [${shape.join(', ')}]`, 'non-negative integers', shape);
    }
  }
  checkSize(op, shape);
}

/** Refuses, before anything is allocated, a shape with more elements than a tensor may hold. */
export function checkSize(op: string, shape: Shape): void {
  const size = shapeSize(shape);
  if (size > MAX_TENSOR_ELEMENTS) {
    throw new ShapeError(op, `shape [${shape.join(', ')}] has ${size.toExponential(3)} elements, more than the ${MAX_TENSOR_ELEMENTS} one tensor can hold`, MAX_TENSOR_ELEMENTS, size);
  }
}

let nextTensorId = 1;

export class Tensor {
  readonly id = nextTensorId++;
  readonly shape: Shape;
  readonly dtype: DType;
  readonly backend: Backend;
  /** Set on leaves (parameters) whose gradient backward() fills into `.grad`. */
  requiresGrad: boolean;
  /** Accumulated gradient of a leaf after backward(); same shape, dtype f32. */
  grad: Tensor | null = null;
  /** The op that produced this tensor, while the graph is alive. */
  gradFn: GradNode | null = null;
  /** Kept alive through backward()'s release of graph intermediates (see keep()). */
  kept = false;
  /** Made inside library code (libraryCall) and never handed to the user: backward()
   * disposes it with the graph. Tensors the user's own code made or received stay alive. */
  ownedByGraph: boolean;
  /** Set when backward() (without retainGraph) freed the graph that produced this tensor:
   * a second backward through it is an error, as in PyTorch. */
  graphReleased = false;
  private storageRef: Storage | null;
  /** For views (reshape): the tensor that owns the storage. */
  private readonly base: Tensor | null;
  /** On a base: how many of its views are not disposed yet (see hasLiveViews). */
  private liveViews = 0;

  constructor(storage: Storage, shape: Shape, backend: Backend, options: { requiresGrad?: boolean; base?: Tensor } = {}) {
    // A frozen array (another tensor's shape) can be shared; anything else is copied, so a
    // caller changing its array later cannot change the tensor.
    this.shape = Array.isArray(shape) && Object.isFrozen(shape) ? shape : Object.freeze([...shape]);
    this.dtype = storage.dtype;
    this.backend = backend;
    this.storageRef = storage;
    this.base = options.base ?? null;
    if (this.base !== null) this.base.liveViews++;
    this.requiresGrad = options.requiresGrad ?? false;
    this.ownedByGraph = insideLibraryCall();
    // A view the user holds keeps the storage it shares alive too.
    if (!this.ownedByGraph && this.base !== null) this.base.ownedByGraph = false;
    if (storage.length !== shapeSize(shape)) {
      throw ShapeError.mismatch('Tensor', `storage length for shape [${shape.join(', ')}]`, shapeSize(shape), storage.length);
    }
    registerInScope(this);
  }

  get size(): number {
    return shapeSize(this.shape);
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** A tensor no op produced while recording (parameters, inputs, detached tensors). */
  get isLeaf(): boolean {
    return this.gradFn === null && !this.graphReleased;
  }

  get disposed(): boolean {
    return this.storageRef === null || (this.base !== null && this.base.disposed);
  }

  /** The backend storage; throws DisposedError after dispose(). */
  storageFor(op: string): Storage {
    if (this.disposed || this.storageRef === null) throw new DisposedError(op);
    return this.storageRef;
  }

  get storage(): Storage {
    return this.storageFor('tensor');
  }

  /** Whether a view of this tensor (reshape, detach) is still undisposed: backward() then
   * frees this tensor only at the end of the pass, since a node may still read it through one. */
  get hasLiveViews(): boolean {
    return this.liveViews > 0;
  }

  /** Frees the storage now (wasm memory is returned at once). Idempotent. A view only
   * detaches itself; its base owns the memory. */
  dispose(): void {
    if (this.storageRef === null) return;
    if (this.base === null) this.backend.free(this.storageRef);
    else this.base.liveViews--;
    this.storageRef = null;
    this.gradFn = null;
    this.grad?.dispose();
    this.grad = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Keeps this tensor alive when backward() releases the graph's intermediates. */
  keep(): this {
    this.kept = true;
    return this;
  }

  /** Marks this tensor (and the storage it views) as held by user code: backward() will not
   * dispose it. libraryCall() calls it on what a module's forward returns. */
  holdByUser(): this {
    this.ownedByGraph = false;
    if (this.base !== null) this.base.ownedByGraph = false;
    return this;
  }

  /** The same values, outside the graph (PyTorch's detach()): shares this tensor's storage,
   * has no gradFn and does not require grad, so nothing flows back through it. */
  detach(): Tensor {
    return new Tensor(this.storageFor('detach'), this.shape, this.backend, { base: this.base ?? this });
  }

  /** Sets requiresGrad in place and returns this (PyTorch's requires_grad_()); only a leaf's
   * flag may change, and only an f32 tensor can require grad. */
  setRequiresGrad(requiresGrad = true): this {
    if (!this.isLeaf) {
      throw new ConfigError('setRequiresGrad', `only a leaf's requiresGrad can change; this tensor [${this.shape.join(', ')}] was made by ${this.gradFn?.op ?? 'an op whose graph was freed'} (use detach())`);
    }
    if (requiresGrad && this.dtype !== 'f32') throw new DTypeError('setRequiresGrad', 'f32', this.dtype, 'a tensor that requires grad');
    this.requiresGrad = requiresGrad;
    return this;
  }

  /** A copy of the values (Float32Array on native/wasm, Float64Array on reference). */
  data(): HostArray {
    return this.backend.read(this.storageFor('data'));
  }

  /** Values as a plain array of numbers. */
  toArray(): number[] {
    return Array.from(this.data());
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw ShapeError.mismatch('item', 'tensor size', 1, this.size);
    return this.data()[0]!;
  }

  /** Reverse-mode autograd from this tensor: fills `.grad` of every leaf that requires
   * grad, then releases the graph's intermediates (unless `retainGraph`). */
  backward(gradient?: Tensor, options?: BackwardOptions): void {
    runBackward(this, gradient, options);
  }

  /** Shares storage with this tensor under another shape; see ops.reshape for autograd. */
  viewAs(shape: Shape): Tensor {
    checkShape('view', shape);
    if (shapeSize(shape) !== this.size) {
      throw new ShapeError('view', `cannot view [${this.shape.join(', ')}] as [${shape.join(', ')}]`, this.shape, shape);
    }
    return new Tensor(this.storageFor('view'), shape, this.backend, { base: this.base ?? this });
  }

  toString(): string {
    return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, backend=${this.backend.name}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

export interface TensorOptions {
  dtype?: DType;
  requiresGrad?: boolean;
  backend?: Backend;
}

/** A new tensor holding a copy of `data` (length must equal the shape's size). */
export function tensor(data: ArrayLike<number>, shape: Shape, options: TensorOptions = {}): Tensor {
  checkShape('tensor', shape);
  if (data.length !== shapeSize(shape)) {
    throw ShapeError.mismatch('tensor', `data length for shape [${shape.join(', ')}]`, shapeSize(shape), data.length);
  }
  const backend = options.backend ?? getDefaultBackend();
  const dtype = options.dtype ?? 'f32';
  if (options.requiresGrad && dtype !== 'f32') throw new DTypeError('tensor', 'f32', dtype, 'a tensor that requires grad');
  return new Tensor(backend.fromArray(dtype, data), shape, backend, { requiresGrad: options.requiresGrad });
}

export function zeros(shape: Shape, options: TensorOptions = {}): Tensor {
  checkShape('zeros', shape);
  const backend = options.backend ?? getDefaultBackend();
  return new Tensor(backend.alloc(options.dtype ?? 'f32', shapeSize(shape)), shape, backend, {
    requiresGrad: options.requiresGrad,
  });
}

export function full(shape: Shape, value: number, options: TensorOptions = {}): Tensor {
  const t = zeros(shape, options);
  t.backend.fill(t.storage, value);
  return t;
}

export function ones(shape: Shape, options: TensorOptions = {}): Tensor {
  return full(shape, 1, options);
}
