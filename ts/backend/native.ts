// The native backend: the Rust kernels through the napi addon (crates/node/src/lib.rs).
//
// Storage is a plain typed array owned by JS (Float32Array for f32, Int32Array for i32,
// Uint8Array for u8); each kernel call lends it to Rust for the duration of the call, with
// no copy, and Rust keeps nothing afterwards. So memory is the garbage collector's: `free`
// only drops the reference early.
//
// The addon re-checks every length against the dimensions and throws a RangeError naming
// the op and the sizes (`matmulForward: b has length 3, expected 4`); a kernel panic comes
// back as an Error (`<op>: kernel panicked: ...`) and the addon stays usable. This file only
// checks what Rust cannot see: that a storage is native, alive, and of the right dtype.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { checkMinParallelFlops, LINEAR_ACTIVATION_CODE, type Backend, type BackendName, type Capability, type DType, type HostArray, type LinearActivation, type Storage } from './backend.js';
import { BYTES_PER_ELEMENT, BufferPool, HostStorage, POISON, hostMemory, liveHost, newHostArray } from './host_storage.js';

type NativeArray = Float32Array | Int32Array | Uint8Array;

/** The addon's exports, one per kernel (napi-rs camelCases the Rust names). Outputs are
 * written in place; an output never shares memory with another argument (the addon throws
 * a RangeError if it does). */
export interface NativeAddon {
  getThreads(): number;
  setThreads(n: number): void;
  workerTasks(): number;
  getMinParallelFlops(): number;
  setMinParallelFlops(flops: number): void;

  matmulForward(out: Float32Array, a: Float32Array, b: Float32Array, batch: number, m: number, k: number,
    n: number, transA: boolean, transB: boolean, accumulate: boolean): void;
  matmulBackward(da: Float32Array | null, db: Float32Array | null, dout: Float32Array, a: Float32Array,
    b: Float32Array, batch: number, m: number, k: number, n: number, transA: boolean, transB: boolean): void;
  linearForward(out: Float32Array, pre: Float32Array | null, x: Float32Array, weight: Float32Array,
    bias: Float32Array | null, rows: number, inFeatures: number, outFeatures: number, activation: number): void;
  linearBackward(dx: Float32Array | null, dweight: Float32Array | null, dbias: Float32Array | null,
    dpre: Float32Array | null, dout: Float32Array, x: Float32Array, weight: Float32Array, saved: Float32Array | null,
    rows: number, inFeatures: number, outFeatures: number, activation: number): void;
  softmaxForward(out: Float32Array, inp: Float32Array, mask: Uint8Array | null, rows: number, cols: number): void;
  softmaxBackward(dinp: Float32Array, dout: Float32Array, out: Float32Array, rows: number, cols: number): void;
  layernormForward(out: Float32Array, mean: Float32Array, rstd: Float32Array, inp: Float32Array,
    weight: Float32Array, bias: Float32Array, rows: number, dim: number, eps: number): void;
  layernormBackward(dinp: Float32Array, dweight: Float32Array, dbias: Float32Array, dout: Float32Array,
    inp: Float32Array, weight: Float32Array, mean: Float32Array, rstd: Float32Array, rows: number, dim: number): void;
  attentionForward(out: Float32Array, lse: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array,
    keyMask: Uint8Array | null, b: number, h: number, tq: number, tk: number, d: number, causal: boolean,
    scale: number): void;
  attentionProbs(probs: Float32Array, q: Float32Array, k: Float32Array, lse: Float32Array,
    keyMask: Uint8Array | null, b: number, h: number, tq: number, tk: number, d: number, causal: boolean,
    scale: number): void;
  attentionBackward(dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array, q: Float32Array,
    k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, keyMask: Uint8Array | null,
    b: number, h: number, tq: number, tk: number, d: number, causal: boolean, scale: number): void;
  reluForward(out: Float32Array, inp: Float32Array): void;
  reluBackward(dinp: Float32Array, dout: Float32Array, inp: Float32Array): void;
  geluForward(out: Float32Array, inp: Float32Array): void;
  geluBackward(dinp: Float32Array, dout: Float32Array, inp: Float32Array): void;
  geluTanhForward(out: Float32Array, inp: Float32Array): void;
  geluTanhBackward(dinp: Float32Array, dout: Float32Array, inp: Float32Array): void;
  embeddingForward(out: Float32Array, ids: Int32Array, table: Float32Array, dim: number): void;
  embeddingBackward(dtable: Float32Array, dout: Float32Array, ids: Int32Array, dim: number): void;
  crossEntropyForward(loss: Float32Array, lse: Float32Array, logits: Float32Array, targets: Int32Array,
    rows: number, vocab: number, ignoreIndex: number, labelSmoothing: number): void;
  crossEntropyBackward(dlogits: Float32Array, dloss: Float32Array, logits: Float32Array, lse: Float32Array,
    targets: Int32Array, rows: number, vocab: number, ignoreIndex: number, labelSmoothing: number): void;
  randomU32(seed: number, counter: number): number;
  dropoutForward(out: Float32Array, keep: Uint8Array, inp: Float32Array, p: number, seed: number, offset: number): void;
  dropoutBackward(dinp: Float32Array, dout: Float32Array, keep: Uint8Array, p: number): void;
  addForward(out: Float32Array, a: Float32Array, b: Float32Array): void;
  accumulate(dst: Float32Array, src: Float32Array, alpha: number): void;
  scaleForward(out: Float32Array, inp: Float32Array, s: number): void;
  scaleInplace(x: Float32Array, s: number): void;
  mulForward(out: Float32Array, a: Float32Array, b: Float32Array): void;
  biasAddForward(out: Float32Array, inp: Float32Array, bias: Float32Array, rows: number, cols: number): void;
  biasAddBackward(dbias: Float32Array, dout: Float32Array, rows: number, cols: number): void;
  transpose12Forward(out: Float32Array, inp: Float32Array, a: number, b: number, c: number, d: number): void;
  transpose12Backward(dinp: Float32Array, dout: Float32Array, a: number, b: number, c: number, d: number): void;
  narrowForward(out: Float32Array, inp: Float32Array, outer: number, dim: number, inner: number, start: number,
    len: number): void;
  narrowBackward(dinp: Float32Array, dout: Float32Array, outer: number, dim: number, inner: number,
    start: number, len: number): void;
  sumSquares(x: Float32Array): number;
  adamUpdate(param: Float32Array, m: Float32Array, v: Float32Array, grad: Float32Array, lr: number,
    beta1: number, beta2: number, eps: number, weightDecay: number, step: number, decoupled: boolean): void;
  /** Panics inside the addon's catch_unwind (tests only). */
  __panicForTest(): void;
}

// ---- loading ---------------------------------------------------------------------------

/** On Linux, musl (Alpine) needs its own build. glibc reports its version in the process
 * report header; musl has none. Cheap enough for a one-time load. */
function isMusl(): boolean {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime === undefined;
}

/** napi-rs's platform suffix, as `napi build --platform` names the file:
 * linux-x64-gnu, linux-arm64-musl, darwin-arm64, win32-x64-msvc ... */
export function nativePlatformSuffix(platform: string = process.platform, arch: string = process.arch): string {
  switch (platform) {
    case 'linux': {
      const libc = isMusl() ? 'musl' : 'gnu';
      return arch === 'arm' ? `linux-arm-${libc}eabihf` : `linux-${arch}-${libc}`;
    }
    case 'win32':
      return `win32-${arch}-msvc`;
    case 'android':
      return arch === 'arm' ? 'android-arm-eabi' : `android-${arch}`;
    default:
      return `${platform}-${arch}`;
  }
}

let addon: NativeAddon | null = null;

/** Loads build/ferroformer.<platform>.node, once. The path is relative to this module and
 * holds both from ts/backend/native.ts (tests run the sources) and from
 * dist/backend/native.js (the package ships build/ beside dist/). Throws an Error saying
 * what is missing, so the caller can fall back to wasm. */
export function loadNativeAddon(): NativeAddon {
  if (addon !== null) return addon;
  const fileName = `ferroformer.${nativePlatformSuffix()}.node`;
  const path = fileURLToPath(new URL(`../../build/${fileName}`, import.meta.url));
  if (!existsSync(path)) {
    throw new Error(
      `ferroformer: native addon not found at ${path}; build it with \`npm run build:native\` ` +
        `(needs cargo), or use the wasm backend`,
    );
  }
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (cause) {
    throw new Error(`ferroformer: native addon ${path} failed to load: ${String(cause)}`, { cause });
  }
  return addon;
}

export function loadNativeBackend(): NativeBackend {
  return new NativeBackend(loadNativeAddon());
}

// ---- storage ---------------------------------------------------------------------------

type NativeStorage = HostStorage<NativeArray>;
const OWNER = 'native';

function newArray(dtype: DType, length: number): NativeArray {
  return newHostArray(dtype, length, Float32Array) as NativeArray;
}

/** The live native storage behind `s`, or an Error naming the op. */
function live(s: Storage, op: string, name: string): NativeStorage {
  return liveHost<NativeArray>(s, OWNER, op, name);
}

function typed<T extends NativeArray>(s: Storage, op: string, name: string, dtype: DType): T {
  const n = live(s, op, name);
  if (n.dtype !== dtype) throw new TypeError(`${op}: ${name} must have dtype ${dtype}, got ${n.dtype}`);
  return n.data as T;
}

const f32 = (s: Storage, op: string, name: string): Float32Array => typed<Float32Array>(s, op, name, 'f32');
const i32 = (s: Storage, op: string, name: string): Int32Array => typed<Int32Array>(s, op, name, 'i32');
const u8 = (s: Storage, op: string, name: string): Uint8Array => typed<Uint8Array>(s, op, name, 'u8');
const optF32 = (s: Storage | null, op: string, name: string): Float32Array | null =>
  s === null ? null : f32(s, op, name);
const optU8 = (s: Storage | null, op: string, name: string): Uint8Array | null =>
  s === null ? null : u8(s, op, name);

// ---- backend ---------------------------------------------------------------------------

/** Most memory a backend keeps in its pool of freed arrays. */
const POOL_MAX_BYTES = 256 * 1024 * 1024;
const EMPTY = new Float32Array(0);

export class NativeBackend implements Backend {
  readonly name: BackendName = 'native';
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>(['threads', 'simd']);

  /** Arrays of freed storages by dtype and length, handed out again (zero-filled) by alloc:
   * a training step frees what it allocated, so once warm it takes no new memory from the
   * engine (no zeroed pages, no GC work). Capped at POOL_MAX_BYTES. Safe because a storage's
   * array never escapes it (read() copies; the addon borrows it only during a call). */
  private readonly pool = new BufferPool<NativeArray>(POOL_MAX_BYTES);

  constructor(private readonly addon: NativeAddon) {}

  /** Threads are process-wide: every NativeBackend shares the addon's one pool. */
  getThreads(): number {
    return this.addon.getThreads();
  }

  /** Throws a RangeError unless n is an integer from 1 to 1024. */
  setThreads(n: number): void {
    this.addon.setThreads(n);
  }

  /** Diagnostics: kernel tasks run by pool threads (not the calling thread) so far. */
  workerTasks(): number {
    return this.addon.workerTasks();
  }

  /** Estimated flops below which a kernel call stays on the calling thread (a hand-off to
   * the pool costs more than it saves there). Process-wide. */
  getMinParallelFlops(): number {
    return this.addon.getMinParallelFlops();
  }

  /** Tuning and benchmarks: sets that threshold (0 splits every call). Results do not depend on it. */
  setMinParallelFlops(flops: number): void {
    checkMinParallelFlops(flops);
    this.addon.setMinParallelFlops(flops);
  }

  // ---- memory ------------------------------------------------------------------------------

  alloc(dtype: DType, length: number): Storage {
    const reused = this.takePooled(dtype, length);
    if (reused !== null) {
      reused.fill(0);
      return new HostStorage(OWNER, dtype, reused);
    }
    return new HostStorage(OWNER, dtype, this.newArray(dtype, length));
  }

  allocUninit(dtype: DType, length: number): Storage {
    const arr = this.takePooled(dtype, length) ?? this.newArray(dtype, length);
    if (this.poisonUninit) arr.fill(POISON[dtype]);
    return new HostStorage(OWNER, dtype, arr);
  }

  /** Tests: fill allocUninit's storage with NaN (f32) or junk (ints), so that an op which
   * wrongly relies on zeroed output shows up as NaN instead of passing by luck. */
  setPoisonUninitialised(on: boolean): void {
    this.poisonUninit = on;
  }

  private poisonUninit = false;

  fromArray(dtype: DType, data: ArrayLike<number>): Storage {
    const arr = this.takePooled(dtype, data.length) ?? this.newArray(dtype, data.length);
    arr.set(data);
    return new HostStorage(OWNER, dtype, arr);
  }

  /** Typed arrays created so far, pool misses (diagnostics, tests: a warm training step
   * creates none). */
  newArrayCount(): number {
    return this.created;
  }

  private created = 0;

  private newArray(dtype: DType, length: number): NativeArray {
    this.created++;
    return newArray(dtype, length);
  }

  /** Bytes held for reuse by alloc (diagnostics, tests). */
  pooledMemoryBytes(): number {
    return this.pool.bytes;
  }

  private takePooled(dtype: DType, length: number): NativeArray | null {
    return this.pool.take(dtype, length, length * BYTES_PER_ELEMENT[dtype]) ?? null;
  }

  read(s: Storage): HostArray {
    return hostMemory.read(s, OWNER);
  }

  write(s: Storage, data: ArrayLike<number>): void {
    hostMemory.write(s, OWNER, data);
  }

  writeAt(s: Storage, offset: number, data: ArrayLike<number>): void {
    hostMemory.writeAt(s, OWNER, offset, data);
  }

  fill(s: Storage, value: number): void {
    hostMemory.fill(s, OWNER, value);
  }

  copy(dst: Storage, src: Storage): void {
    hostMemory.copy(dst, src, OWNER);
  }

  free(s: Storage): void {
    if (!(s instanceof HostStorage) || s.owner !== OWNER) throw new TypeError('free: s is not a native-backend storage');
    if (s.freed) return;
    s.freed = true;
    const arr = s.data;
    // Detach the array from the handle (a use after free throws), then keep it for reuse
    // or let it go at the next GC.
    s.data = EMPTY;
    this.pool.put(s.dtype, arr.length, arr.byteLength, arr);
  }

  // ---- kernels (lengths are checked in Rust) -----------------------------------------------

  matmulForward(out: Storage, a: Storage, b: Storage, batch: number, m: number, k: number, n: number,
    transA: boolean, transB: boolean, accumulate: boolean): void {
    const op = 'matmulForward';
    this.addon.matmulForward(f32(out, op, 'out'), f32(a, op, 'a'), f32(b, op, 'b'), batch, m, k, n,
      transA, transB, accumulate);
  }

  matmulBackward(da: Storage | null, db: Storage | null, dout: Storage, a: Storage, b: Storage,
    batch: number, m: number, k: number, n: number, transA: boolean, transB: boolean): void {
    const op = 'matmulBackward';
    this.addon.matmulBackward(optF32(da, op, 'da'), optF32(db, op, 'db'), f32(dout, op, 'dout'),
      f32(a, op, 'a'), f32(b, op, 'b'), batch, m, k, n, transA, transB);
  }

  linearForward(out: Storage, pre: Storage | null, x: Storage, weight: Storage, bias: Storage | null,
    rows: number, inF: number, outF: number, activation: LinearActivation): void {
    const op = 'linearForward';
    this.addon.linearForward(f32(out, op, 'out'), optF32(pre, op, 'pre'), f32(x, op, 'x'), f32(weight, op, 'weight'),
      optF32(bias, op, 'bias'), rows, inF, outF, LINEAR_ACTIVATION_CODE[activation]);
  }

  linearBackward(dx: Storage | null, dweight: Storage | null, dbias: Storage | null, dpre: Storage | null,
    dout: Storage, x: Storage, weight: Storage, saved: Storage | null, rows: number, inF: number, outF: number,
    activation: LinearActivation): void {
    const op = 'linearBackward';
    this.addon.linearBackward(optF32(dx, op, 'dx'), optF32(dweight, op, 'dweight'), optF32(dbias, op, 'dbias'),
      optF32(dpre, op, 'dpre'), f32(dout, op, 'dout'), f32(x, op, 'x'), f32(weight, op, 'weight'),
      optF32(saved, op, 'saved'), rows, inF, outF, LINEAR_ACTIVATION_CODE[activation]);
  }

  softmaxForward(out: Storage, inp: Storage, mask: Storage | null, rows: number, cols: number): void {
    const op = 'softmaxForward';
    this.addon.softmaxForward(f32(out, op, 'out'), f32(inp, op, 'inp'), optU8(mask, op, 'mask'), rows, cols);
  }

  softmaxBackward(dinp: Storage, dout: Storage, out: Storage, rows: number, cols: number): void {
    const op = 'softmaxBackward';
    this.addon.softmaxBackward(f32(dinp, op, 'dinp'), f32(dout, op, 'dout'), f32(out, op, 'out'), rows, cols);
  }

  layernormForward(out: Storage, mean: Storage, rstd: Storage, inp: Storage, weight: Storage,
    bias: Storage, rows: number, dim: number, eps: number): void {
    const op = 'layernormForward';
    this.addon.layernormForward(f32(out, op, 'out'), f32(mean, op, 'mean'), f32(rstd, op, 'rstd'),
      f32(inp, op, 'inp'), f32(weight, op, 'weight'), f32(bias, op, 'bias'), rows, dim, eps);
  }

  layernormBackward(dinp: Storage, dweight: Storage, dbias: Storage, dout: Storage, inp: Storage,
    weight: Storage, mean: Storage, rstd: Storage, rows: number, dim: number): void {
    const op = 'layernormBackward';
    this.addon.layernormBackward(f32(dinp, op, 'dinp'), f32(dweight, op, 'dweight'), f32(dbias, op, 'dbias'),
      f32(dout, op, 'dout'), f32(inp, op, 'inp'), f32(weight, op, 'weight'), f32(mean, op, 'mean'),
      f32(rstd, op, 'rstd'), rows, dim);
  }

  attentionForward(out: Storage, lse: Storage, q: Storage, k: Storage, v: Storage,
    keyMask: Storage | null, b: number, h: number, tq: number, tk: number, d: number,
    causal: boolean, scale: number): void {
    const op = 'attentionForward';
    this.addon.attentionForward(f32(out, op, 'out'), f32(lse, op, 'lse'), f32(q, op, 'q'), f32(k, op, 'k'),
      f32(v, op, 'v'), optU8(keyMask, op, 'keyMask'), b, h, tq, tk, d, causal, scale);
  }

  attentionProbs(probs: Storage, q: Storage, k: Storage, lse: Storage, keyMask: Storage | null,
    b: number, h: number, tq: number, tk: number, d: number, causal: boolean, scale: number): void {
    const op = 'attentionProbs';
    this.addon.attentionProbs(f32(probs, op, 'probs'), f32(q, op, 'q'), f32(k, op, 'k'), f32(lse, op, 'lse'),
      optU8(keyMask, op, 'keyMask'), b, h, tq, tk, d, causal, scale);
  }

  attentionBackward(dq: Storage, dk: Storage, dv: Storage, dout: Storage, q: Storage, k: Storage,
    v: Storage, out: Storage, lse: Storage, keyMask: Storage | null, b: number, h: number,
    tq: number, tk: number, d: number, causal: boolean, scale: number): void {
    const op = 'attentionBackward';
    this.addon.attentionBackward(f32(dq, op, 'dq'), f32(dk, op, 'dk'), f32(dv, op, 'dv'), f32(dout, op, 'dout'),
      f32(q, op, 'q'), f32(k, op, 'k'), f32(v, op, 'v'), f32(out, op, 'out'), f32(lse, op, 'lse'),
      optU8(keyMask, op, 'keyMask'), b, h, tq, tk, d, causal, scale);
  }

  reluForward(out: Storage, inp: Storage): void {
    this.addon.reluForward(f32(out, 'reluForward', 'out'), f32(inp, 'reluForward', 'inp'));
  }

  reluBackward(dinp: Storage, dout: Storage, inp: Storage): void {
    const op = 'reluBackward';
    this.addon.reluBackward(f32(dinp, op, 'dinp'), f32(dout, op, 'dout'), f32(inp, op, 'inp'));
  }

  geluForward(out: Storage, inp: Storage): void {
    this.addon.geluForward(f32(out, 'geluForward', 'out'), f32(inp, 'geluForward', 'inp'));
  }

  geluBackward(dinp: Storage, dout: Storage, inp: Storage): void {
    const op = 'geluBackward';
    this.addon.geluBackward(f32(dinp, op, 'dinp'), f32(dout, op, 'dout'), f32(inp, op, 'inp'));
  }

  geluTanhForward(out: Storage, inp: Storage): void {
    this.addon.geluTanhForward(f32(out, 'geluTanhForward', 'out'), f32(inp, 'geluTanhForward', 'inp'));
  }

  geluTanhBackward(dinp: Storage, dout: Storage, inp: Storage): void {
    const op = 'geluTanhBackward';
    this.addon.geluTanhBackward(f32(dinp, op, 'dinp'), f32(dout, op, 'dout'), f32(inp, op, 'inp'));
  }

  embeddingForward(out: Storage, ids: Storage, table: Storage, dim: number): void {
    const op = 'embeddingForward';
    this.addon.embeddingForward(f32(out, op, 'out'), i32(ids, op, 'ids'), f32(table, op, 'table'), dim);
  }

  embeddingBackward(dtable: Storage, dout: Storage, ids: Storage, dim: number): void {
    const op = 'embeddingBackward';
    this.addon.embeddingBackward(f32(dtable, op, 'dtable'), f32(dout, op, 'dout'), i32(ids, op, 'ids'), dim);
  }

  crossEntropyForward(loss: Storage, lse: Storage, logits: Storage, targets: Storage,
    rows: number, vocab: number, ignoreIndex: number, labelSmoothing: number): void {
    const op = 'crossEntropyForward';
    this.addon.crossEntropyForward(f32(loss, op, 'loss'), f32(lse, op, 'lse'), f32(logits, op, 'logits'),
      i32(targets, op, 'targets'), rows, vocab, ignoreIndex, labelSmoothing);
  }

  crossEntropyBackward(dlogits: Storage, dloss: Storage, logits: Storage, lse: Storage,
    targets: Storage, rows: number, vocab: number, ignoreIndex: number, labelSmoothing: number): void {
    const op = 'crossEntropyBackward';
    this.addon.crossEntropyBackward(f32(dlogits, op, 'dlogits'), f32(dloss, op, 'dloss'),
      f32(logits, op, 'logits'), f32(lse, op, 'lse'), i32(targets, op, 'targets'), rows, vocab,
      ignoreIndex, labelSmoothing);
  }

  dropoutForward(out: Storage, keep: Storage, inp: Storage, p: number, seed: number, offset: number): void {
    const op = 'dropoutForward';
    this.addon.dropoutForward(f32(out, op, 'out'), u8(keep, op, 'keep'), f32(inp, op, 'inp'), p, seed, offset);
  }

  dropoutBackward(dinp: Storage, dout: Storage, keep: Storage, p: number): void {
    const op = 'dropoutBackward';
    this.addon.dropoutBackward(f32(dinp, op, 'dinp'), f32(dout, op, 'dout'), u8(keep, op, 'keep'), p);
  }

  addForward(out: Storage, a: Storage, b: Storage): void {
    const op = 'addForward';
    this.addon.addForward(f32(out, op, 'out'), f32(a, op, 'a'), f32(b, op, 'b'));
  }

  accumulate(dst: Storage, src: Storage, alpha: number): void {
    this.addon.accumulate(f32(dst, 'accumulate', 'dst'), f32(src, 'accumulate', 'src'), alpha);
  }

  scaleForward(out: Storage, inp: Storage, s: number): void {
    this.addon.scaleForward(f32(out, 'scaleForward', 'out'), f32(inp, 'scaleForward', 'inp'), s);
  }

  scaleInplace(x: Storage, s: number): void {
    this.addon.scaleInplace(f32(x, 'scaleInplace', 'x'), s);
  }

  mulForward(out: Storage, a: Storage, b: Storage): void {
    const op = 'mulForward';
    this.addon.mulForward(f32(out, op, 'out'), f32(a, op, 'a'), f32(b, op, 'b'));
  }

  biasAddForward(out: Storage, inp: Storage, bias: Storage, rows: number, cols: number): void {
    const op = 'biasAddForward';
    this.addon.biasAddForward(f32(out, op, 'out'), f32(inp, op, 'inp'), f32(bias, op, 'bias'), rows, cols);
  }

  biasAddBackward(dbias: Storage, dout: Storage, rows: number, cols: number): void {
    const op = 'biasAddBackward';
    this.addon.biasAddBackward(f32(dbias, op, 'dbias'), f32(dout, op, 'dout'), rows, cols);
  }

  transpose12Forward(out: Storage, inp: Storage, a: number, b: number, c: number, d: number): void {
    const op = 'transpose12Forward';
    this.addon.transpose12Forward(f32(out, op, 'out'), f32(inp, op, 'inp'), a, b, c, d);
  }

  transpose12Backward(dinp: Storage, dout: Storage, a: number, b: number, c: number, d: number): void {
    const op = 'transpose12Backward';
    this.addon.transpose12Backward(f32(dinp, op, 'dinp'), f32(dout, op, 'dout'), a, b, c, d);
  }

  narrowForward(out: Storage, inp: Storage, outer: number, dim: number, inner: number,
    start: number, len: number): void {
    const op = 'narrowForward';
    this.addon.narrowForward(f32(out, op, 'out'), f32(inp, op, 'inp'), outer, dim, inner, start, len);
  }

  narrowBackward(dinp: Storage, dout: Storage, outer: number, dim: number, inner: number,
    start: number, len: number): void {
    const op = 'narrowBackward';
    this.addon.narrowBackward(f32(dinp, op, 'dinp'), f32(dout, op, 'dout'), outer, dim, inner, start, len);
  }

  sumSquares(x: Storage): number {
    return this.addon.sumSquares(f32(x, 'sumSquares', 'x'));
  }

  adamUpdate(param: Storage, m: Storage, v: Storage, grad: Storage, lr: number, beta1: number,
    beta2: number, eps: number, weightDecay: number, step: number, decoupled: boolean): void {
    const op = 'adamUpdate';
    this.addon.adamUpdate(f32(param, op, 'param'), f32(m, op, 'm'), f32(v, op, 'v'), f32(grad, op, 'grad'),
      lr, beta1, beta2, eps, weightDecay, step, decoupled);
  }
}
