// Shared by the trajectory suites (test/parity/trajectory.test.ts, nanogpt.test.ts): the
// relative error of a scalar, the float32 "sub-eps" gradient elements left out of the final
// weight comparison, and that comparison itself (relative Frobenius error per tensor).
import { expect } from 'vitest';
import type { Tensor } from '../../ts/tensor/tensor.js';

export function relative(got: number, want: number): number {
  return Math.abs(got - want) / Math.max(Math.abs(want), 1e-12);
}

/** Marks, per parameter, the elements whose gradient this step is non-zero, within ten times
 * Adam's eps and below 1e-4 of its tensor's largest: float32 carries no correct digits there,
 * and Adam turns whatever they hold into a step of up to lr (see trajectory.test.ts). */
export function markSubEps(flagsByName: Map<string, Uint8Array>, params: Iterable<[string, Tensor]>, eps: number): void {
  for (const [name, p] of params) {
    const g = p.grad!.data();
    let flags = flagsByName.get(name);
    if (!flags) flagsByName.set(name, (flags = new Uint8Array(g.length)));
    let largest = 0;
    for (let i = 0; i < g.length; i++) largest = Math.max(largest, Math.abs(g[i]!));
    for (let i = 0; i < g.length; i++) {
      const a = Math.abs(g[i]!);
      if (a !== 0 && a <= 10 * eps && a < 1e-4 * largest) flags[i] = 1;
    }
  }
}

/** Every final weight within `tol` relative Frobenius error of PyTorch's, elements flagged in
 * `excluded` left out (each skip is logged). */
export function expectFinalWeights(
  label: string,
  finals: Map<string, { data?: ArrayLike<number> }>,
  params: Map<string, ArrayLike<number>>,
  excluded: Map<string, Uint8Array>,
  tol = 1e-3,
): void {
  expect(finals.size).toBeGreaterThan(0);
  for (const [name, want] of finals) {
    const got = params.get(name);
    expect(got, `${label}: no parameter ${name}`).toBeDefined();
    const w = want.data as ArrayLike<number>;
    const flags = excluded.get(name);
    let diff = 0;
    let norm = 0;
    let skipped = 0;
    for (let i = 0; i < w.length; i++) {
      norm += w[i]! ** 2;
      if (flags?.[i]) skipped++;
      else diff += (got![i]! - w[i]!) ** 2;
    }
    if (skipped > 0) console.log(`${label} ${name}: ${skipped} of ${w.length} elements had sub-eps float64 gradients`);
    const err = Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-12);
    expect(err, `${label} final ${name}: relative Frobenius error ${err}`).toBeLessThanOrEqual(tol);
  }
}
