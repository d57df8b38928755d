// Where a training step's time goes, per backend kernel: wraps every function of the backend
// in a timer, runs W4 (DecoderLM), W5 or W6 (examples/nanogpt) training steps, and prints each
// kernel's share of the step beside the time spent outside kernels (JavaScript: autograd,
// validation, allocation).
//   node bench/profile_kernels.mjs --workload=W6 [--backend=native|wasm] [--threads=1] [--steps=5] [--by-shape]
// --relaxed (wasm; node --experimental-wasm-relaxed-simd) loads the relaxed-SIMD module.
// --by-shape splits the linear calls by rows x in -> out and activation, with their GFLOP/s.
// Needs dist/ (`npm run build:ts`); W5/W6 compile examples/nanogpt/build when it is missing or stale.
import { loadBackend } from '../dist/backend/init_node.js';
import { loadWasmBackend } from '../dist/backend/wasm.js';
import { nanogptTraining, parseArgs, w4Training } from './lib/common.mjs';

const args = parseArgs();
const workload = args.workload ?? 'W6';
const which = args.backend ?? 'native';
const threads = Number(args.threads ?? 1);
const raw = which === 'wasm' ? await loadWasmBackend({ threads: threads > 1, relaxed: args.relaxed !== undefined }) : await loadBackend(which);
raw.setThreads(threads);

const byShape = args['by-shape'] !== undefined;
const totals = new Map(); // kernel name (with its linear shape under --by-shape) → { ms, calls, flops }

/** linearForward / linearBackward: rows, inF, outF, activation sit at fixed argument positions. */
function linearKey(key, a) {
  const at = key === 'linearForward' ? 5 : key === 'linearBackward' ? 8 : -1;
  if (!byShape || at < 0) return { name: key, flops: 0 };
  const [rows, inF, outF, act] = a.slice(at, at + 4);
  const products = key === 'linearForward' ? 1 : (a[0] === null ? 0 : 1) + (a[1] === null ? 0 : 1);
  return { name: `${key} ${rows}x${inF}->${outF} ${act}`, flops: 2 * rows * inF * outF * products };
}
let timing = false;
const backend = new Proxy(raw, {
  get(target, key) {
    const value = Reflect.get(target, key, target);
    if (typeof value !== 'function') return value;
    return (...a) => {
      if (!timing) return value.apply(target, a);
      const t0 = performance.now();
      const out = value.apply(target, a);
      const { name, flops } = linearKey(key, a);
      const entry = totals.get(name) ?? { ms: 0, calls: 0, flops: 0 };
      entry.ms += performance.now() - t0;
      entry.calls += 1;
      entry.flops += flops;
      totals.set(name, entry);
      return out;
    };
  },
});

const { tokens, step } = workload === 'W4' ? await w4Training(backend) : await nanogptTraining(workload, backend);
for (let i = 0; i < 2; i++) step();
const steps = Number(args.steps ?? (workload === 'W6' ? 5 : 30));
timing = true;
const t0 = performance.now();
for (let i = 0; i < steps; i++) step();
const stepMs = (performance.now() - t0) / steps;
timing = false;

const rows = [...totals].map(([name, { ms, calls, flops }]) => ({ name, ms: ms / steps, calls: calls / steps, gflops: flops / ms / 1e6 })).sort((a, b) => b.ms - a.ms);
const inKernels = rows.reduce((s, r) => s + r.ms, 0);
console.log(`${workload} ${which} x${threads}: ${stepMs.toFixed(1)} ms/step, ${(tokens / (stepMs / 1000)).toFixed(0)} tokens/s; kernels ${inKernels.toFixed(1)} ms, outside kernels ${(stepMs - inKernels).toFixed(1)} ms`);
const width = byShape ? 48 : 32;
console.log('kernel'.padEnd(width) + 'ms/step'.padStart(10) + 'share'.padStart(8) + 'calls/step'.padStart(12) + (byShape ? '  GFLOP/s' : ''));
for (const r of rows) {
  if (r.ms < stepMs * 0.002) continue;
  const rate = r.gflops > 0 ? r.gflops.toFixed(1).padStart(9) : '';
  console.log(String(r.name).padEnd(width) + r.ms.toFixed(2).padStart(10) + `${(100 * r.ms / stepMs).toFixed(1)}%`.padStart(8) + String(r.calls).padStart(12) + rate);
}
process.exit(0);
