// The inputs of PyTorch's workloads, written as files so that PyTorch computes on exactly the
// bytes ferroformer does (bench/runners/pytorch.mjs, and bench/lib/duel.mjs for W4-W6), and
// how bench/lib/pytorch_bench.py is run.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inputs, NANOGPT, NANOGPT_OPTIM, nanogptInitialState, shapeName, W1_QUICK, W1_SHAPES, W2, W3, W4 } from './common.mjs';

export const PYTORCH_SCRIPT = fileURLToPath(new URL('./pytorch_bench.py', import.meta.url));

/** The environment of a PyTorch process at `threads` (torch.compile's C++ compiler and OpenMP
 * follow the thread setting too). */
export function pytorchEnv(threads) {
  return { ...process.env, OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
}

/** Writes the inputs of every workload `want` accepts into `dir`; returns the jobs, each
 * [spec for the script, workload, shape, data, output file]. */
export function writePytorchJobs(dir, { want, quick }) {
  const jobs = [];
  if (want('W1')) {
    for (const shape of quick ? W1_QUICK : W1_SHAPES) {
      const name = shapeName.W1(shape);
      const data = inputs.W1(shape);
      writeFileSync(join(dir, `W1-${name}.a.f32`), data.a);
      writeFileSync(join(dir, `W1-${name}.b.f32`), data.b);
      jobs.push([`W1:${name}`, 'W1', shape, data, `W1-${name}.c.f32`]);
    }
  }
  if (want('W2')) {
    const data = inputs.W2();
    for (const x of ['q', 'k', 'v']) writeFileSync(join(dir, `W2.${x}.f32`), data[x]);
    jobs.push([`W2:${W2.b},${W2.h},${W2.t},${W2.d}`, 'W2', null, data, 'W2.out.f32']);
  }
  if (want('W3')) {
    const data = inputs.W3();
    for (const x of ['x', 'gamma', 'beta']) writeFileSync(join(dir, `W3.${x}.f32`), data[x]);
    jobs.push([`W3:${W3.rows},${W3.dim},${W3.eps}`, 'W3', null, data, 'W3.y.f32']);
  }
  if (want('W4')) {
    writeFileSync(join(dir, 'W4.ids.i32'), inputs.W4());
    jobs.push([`W4:${[W4.vocab, W4.dModel, W4.nHeads, W4.numLayers, W4.dFF, W4.seq, W4.batch].join(',')}`, 'W4', null, null, null]);
  }

  for (const workload of ['W5', 'W6']) {
    if (!want(workload)) continue;
    const c = NANOGPT[workload];
    const state = nanogptInitialState(c);
    for (const [name, { data }] of state) writeFileSync(join(dir, `${workload}.param.${name}.f32`), data);
    writeFileSync(join(dir, `${workload}.ids.i32`), inputs[workload]());
    // W5 as many iterations as fit in the time budget; W6 (seconds each) a fixed few.
    const iterations = workload === 'W6' ? (quick ? 2 : 5) : 0;
    writeFileSync(join(dir, `${workload}.json`), JSON.stringify({ workload, config: c, parameters: [...state].map(([n, e]) => [n, e.shape]), ...NANOGPT_OPTIM, iterations }));
    jobs.push([`${workload}:${workload}.json`, workload, null, null, null]);
  }
  return jobs;
}
