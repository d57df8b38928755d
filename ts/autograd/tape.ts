// Reverse-mode autograd. An op whose inputs need gradients records a GradNode on its
// output (its backward beside its forward, in ts/ops). backward() walks the graph from the
// loss in reverse topological order; every backward kernel accumulates (+=), so a tensor
// used twice simply receives both contributions in one buffer, which the first contribution
// either finds zero-filled (grad) or writes whole (gradTarget).
import type { Storage } from '../backend/backend.js';
import { AutogradError, DTypeError, ShapeError, checkOptions } from '../tensor/errors.js';
import { Tensor, type GradNode, type GradTarget } from '../tensor/tensor.js';
import { checkFiniteStorage, getCheckNumerics } from '../tensor/numerics.js';

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording the graph (evaluation, generation, optimiser updates). */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/** Whether an op over these inputs must record a node. */
export function needsGrad(inputs: readonly (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  return inputs.some((t) => t?.requiresGrad === true);
}

/** Attaches the node to `out` when any input needs a gradient; else frees `saved` now. */
export function record(out: Tensor, node: GradNode): Tensor {
  if (getCheckNumerics()) {
    try {
      checkFiniteStorage(node.op, out.backend, out.storageFor(node.op), `output [${out.shape.join(', ')}]`);
    } catch (e) {
      for (const s of node.saved) out.backend.free(s);
      out.dispose();
      throw e;
    }
  }
  if (needsGrad(node.inputs)) {
    out.gradFn = node;
    out.requiresGrad = true;
  } else {
    for (const s of node.saved) out.backend.free(s);
  }
  return out;
}

/** The tensors a failed backward() released, with the op whose backward threw and its error. */
const releasedByFailure = new WeakMap<Tensor, { op: string; error: unknown }>();

/** PyTorch's message, so a user searching for it finds the explanation; after a backward()
 * that threw, the op that failed and its error (as `cause`) instead of advice on retainGraph. */
function secondBackward(t: Tensor): AutogradError {
  const failure = releasedByFailure.get(t);
  if (failure !== undefined) {
    const reason = failure.error instanceof Error ? `${failure.error.name}: ${failure.error.message}` : String(failure.error);
    return new AutogradError(
      'backward',
      `tensor [${t.shape.join(', ')}] belongs to a graph freed in part when an earlier backward() failed in ${failure.op}'s backward (${reason}); run the forward again`,
      { cause: failure.error },
    );
  }
  return new AutogradError(
    'backward',
    `trying to backward through the graph a second time (tensor [${t.shape.join(', ')}]): backward() freed its saved values; pass { retainGraph: true } to the first backward() to keep them`,
  );
}

function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  // Iterative DFS: graphs of deep models would overflow the JS stack when recursive.
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const [t, next] = top;
    const inputs = t.gradFn?.inputs ?? [];
    if (next < inputs.length) {
      top[1] = next + 1;
      const child = inputs[next]!;
      // Checked before any gradient is computed, so a refused backward changes nothing.
      if (child.graphReleased && child.requiresGrad) throw secondBackward(child);
      if (child.gradFn !== null && !visited.has(child)) {
        visited.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order; // inputs before outputs
}

/** What zeroGrad() does with a gradient (torch's zero_grad(set_to_none=...)). */
export interface ZeroGradOptions {
  /** Dispose the gradient and set `grad` to null (default, as PyTorch since 2.0); false
   * zero-fills it in place and keeps the buffer. */
  setToNone?: boolean;
}

/** The gradients of `params` reset for the next backward (Module and Optimizer zeroGrad): set
 * to none (disposed: the next backward writes a fresh buffer, no zero fill) or zero-filled. */
export function resetGradients(params: Iterable<Tensor>, setToNone: boolean): void {
  for (const p of params) {
    if (p.grad === null) continue;
    if (setToNone) {
      if (!p.grad.disposed) p.grad.dispose();
      p.grad = null;
    } else if (!p.grad.disposed) p.backend.fill(p.grad.storage, 0);
  }
}

export interface BackwardOptions {
  /** Keep the graph and its intermediates alive (a second backward through it). */
  retainGraph?: boolean;
}

let leavesOfLastBackward: Tensor[] = [];

/** The leaves the last backward() reached, in the order the pass first reached them (from
 * the loss towards the inputs): where a non-finite gradient first appears (the Trainer). */
export function lastBackwardLeaves(): readonly Tensor[] {
  return leavesOfLastBackward;
}

/** Fills `.grad` of every leaf that requires grad. `gradient` defaults to 1 for a scalar.
 * Without retainGraph it then frees the graph: saved buffers always, and the intermediates
 * the graph owns (made inside a module's forward or a Trainer step, see libraryCall);
 * intermediates the user's code made or received stay readable. */
export function backward(root: Tensor, gradient?: Tensor, options: BackwardOptions = {}): void {
  checkOptions('backward', options, ['retainGraph']);
  if (root.graphReleased) throw secondBackward(root);
  if (!root.requiresGrad) {
    throw new AutogradError('backward', `tensor [${root.shape.join(', ')}] does not require grad (no tensor with requiresGrad reaches it)`);
  }
  if (gradient === undefined && root.size !== 1) {
    throw new ShapeError(
      'backward',
      `an implicit gradient needs a scalar output (size 1), got shape [${root.shape.join(', ')}] (size ${root.size}): reduce it (sum, mean) or pass backward(gradient) of that shape`,
      1,
      root.shape,
    );
  }
  if (gradient !== undefined) {
    if (gradient.shape.join(',') !== root.shape.join(',')) {
      throw ShapeError.mismatch('backward', 'gradient shape', root.shape, gradient.shape);
    }
    if (gradient.dtype !== 'f32') throw new DTypeError('backward', 'f32', gradient.dtype, 'gradient');
  }
  const backend = root.backend;
  const order = topologicalOrder(root);
  const grads = new Map<Tensor, Storage>();
  const rootGrad = backend.alloc('f32', root.size);
  if (gradient === undefined) backend.fill(rootGrad, 1);
  else backend.copy(rootGrad, gradient.storageFor('backward'));
  grads.set(root, rootGrad);
  const leaves = new Set<Tensor>();

  // A gradient handed over to several tensors (adopt: a residual add's dout is both its
  // inputs' gradient) is shared, read only, until one of them must change it: gradOf then
  // copies it for that tensor (copy on write). Most are read by their node and dropped before
  // any change, so the copy is never made. sharers: how many tensors hold a shared buffer.
  const sharers = new Map<Storage, number>();
  const unshare = (g: Storage): void => {
    const n = sharers.get(g)!;
    if (n === 2) sharers.delete(g);
    else sharers.set(g, n - 1);
  };
  const dropGrad = (t: Tensor, g: Storage): void => {
    grads.delete(t);
    if (sharers.has(g)) unshare(g);
    else backend.free(g);
  };

  // Gradients no kernel has written yet: allocated without a zero fill, which the first
  // writer either does (grad) or makes unnecessary (gradTarget, by overwriting).
  const unwritten = new Set<Storage>();
  const gradOf = (t: Tensor, overwrite: boolean): GradTarget | null => {
    if (!t.requiresGrad) return null;
    let g: Storage | undefined;
    if (t.gradFn === null) {
      // A leaf: accumulate across backward() calls, as PyTorch does until zeroGrad(); one with
      // no gradient (its first backward, or zeroGrad() set it to none) gets a fresh buffer.
      if (t.grad === null || t.grad.disposed) {
        const buffer = backend.allocUninit('f32', t.size);
        t.grad = new Tensor(buffer, t.shape, backend);
        unwritten.add(buffer);
      }
      leaves.add(t);
      g = t.grad.storageFor('backward');
    } else {
      g = grads.get(t);
      if (g === undefined) {
        g = backend.allocUninit('f32', t.size);
        grads.set(t, g);
        unwritten.add(g);
      } else if (sharers.has(g)) {
        // Another tensor's gradient too (adopt): t gets its own copy before it changes.
        const own = backend.allocUninit('f32', t.size);
        backend.copy(own, g);
        unshare(g);
        grads.set(t, own);
        g = own;
      }
    }
    const fresh = unwritten.delete(g);
    if (fresh && !overwrite) backend.fill(g, 0);
    return { storage: g, accumulate: !(fresh && overwrite) };
  };

  // Reverse topological order: when t's turn comes, every node that reads t (its consumers,
  // and t's own node) has run or runs now, so right after it t's gradient, its node's saved
  // buffers and (without retainGraph) t itself are dead. Freeing them here, as PyTorch drops
  // them when their last reference goes, keeps the peak near the forward's activations instead
  // of activations plus every intermediate gradient; and a freed block is what the backend's
  // pool hands to the next gradient of the same size.
  const deferred: Tensor[] = [];
  // t's node has run (or failed): its saved buffers and t's place in the graph go.
  const release = (t: Tensor, node: GradNode): void => {
    for (const s of node.saved) backend.free(s);
    t.gradFn = null;
    t.graphReleased = true;
    // No user code can hold what the graph owns, so it goes now (a training loop needs no
    // scope); the root, kept tensors and whatever the user's code holds stay readable. A
    // tensor with live views (a detach() outside the graph) may still be read through them by
    // a node later in the pass, so it goes at the end.
    if (t !== root && t.ownedByGraph && !t.kept) {
      if (t.hasLiveViews) deferred.push(t);
      else t.dispose();
    }
  };
  let i = order.length - 1;
  try {
    for (; i >= 0; i--) {
      const t = order[i]!;
      const node = t.gradFn;
      const g = grads.get(t);
      if (node !== null && g !== undefined) {
        const adopt = (j: number): boolean => {
          const input = node.inputs[j]!;
          // Only an intermediate with no gradient yet, of t's size, that is this node's input
          // once (x + x accumulates into the gradient it reads). Several inputs of one node
          // may adopt: they share g (see sharers).
          if (!input.requiresGrad || input.gradFn === null || grads.has(input) || input.size !== t.size) return false;
          if (node.inputs.indexOf(input) !== node.inputs.lastIndexOf(input)) return false;
          grads.set(input, g);
          sharers.set(g, (sharers.get(g) ?? 1) + 1);
          return true;
        };
        node.backward(g, (j) => gradOf(node.inputs[j]!, false)?.storage ?? null, adopt, (j) => gradOf(node.inputs[j]!, true));
      }
      if (g !== undefined) dropGrad(t, g);
      if (options.retainGraph || node === null) continue;
      release(t, node);
    }
  } catch (error) {
    // The nodes the pass reached before node i have run and are released; node i may have
    // written part of its gradients (into leaves too), so running it again would add those
    // twice: it is released as well, and a later backward() reaching any of them names this
    // failure (PyTorch too frees as it goes, and a second pass through a freed node raises).
    // The graph below node i never ran and stays usable. With retainGraph nothing was released.
    const failed = order[i]!;
    const op = failed.gradFn?.op ?? 'backward';
    if (!options.retainGraph) {
      if (failed.gradFn !== null) release(failed, failed.gradFn);
      for (let j = i; j < order.length; j++) {
        if (order[j]!.graphReleased) releasedByFailure.set(order[j]!, { op, error });
      }
    }
    throw error;
  } finally {
    leavesOfLastBackward = [...leaves];
    // After a throw, a buffer being handed over may be held under two tensors.
    for (const g of new Set(grads.values())) backend.free(g);
    for (const t of deferred) t.dispose();
  }
}
