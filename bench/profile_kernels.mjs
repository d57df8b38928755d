// Where a training step's time goes, per backend kernel: wraps every function of the backend
// in a timer, runs W4 (DecoderLM), W5 or W6 (examples/nanogpt) training steps, and prints each
// kernel's share of the step beside the time spent outside kernels (JavaScript: autograd,
// validation, allocation).
//   node bench/profile_kernels.mjs --workload=W6 [--backend=native|wasm] [--threads=1] [--steps=5]
// Needs dist/ (`npm run build:ts`); W5/W6 compile examples/nanogpt/build when it is missing or stale.
import { loadBackend } from '../dist/backend/init_node.js';
import { loadWasmBackend } from '../dist/backend/wasm.js';
import { nanogptTraining, parseArgs, w4Training } from './lib/common.mjs';

const args = parseArgs();
const workload = args.workload ?? 'W6';
const which = args.backend ?? 'native';
const threads = Number(args.threads ?? 1);
const raw = which === 'wasm' ? await loadWasmBackend({ threads: threads > 1 }) : await loadBackend(which);
raw.setThreads(threads);

const totals = new Map(); // kernel name → { ms, calls }
let timing = false;
const backend = new Proxy(raw, {
  get(target, key) {
    const value = Reflect.get(target, key, target);
    if (typeof value !== 'function') return value;
    return (...a) => {
      if (!timing) return value.apply(target, a);
      const t0 = performance.now();
      const out = value.apply(target, a);
      const entry = totals.get(key) ?? { ms: 0, calls: 0 };
      entry.ms += performance.now() - t0;
      entry.calls += 1;
      totals.set(key, entry);
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

const rows = [...totals].map(([name, { ms, calls }]) => ({ name, ms: ms / steps, calls: calls / steps })).sort((a, b) => b.ms - a.ms);
const inKernels = rows.reduce((s, r) => s + r.ms, 0);
console.log(`${workload} ${which} x${threads}: ${stepMs.toFixed(1)} ms/step, ${(tokens / (stepMs / 1000)).toFixed(0)} tokens/s; kernels ${inKernels.toFixed(1)} ms, outside kernels ${(stepMs - inKernels).toFixed(1)} ms`);
console.log('kernel'.padEnd(32) + 'ms/step'.padStart(10) + 'share'.padStart(8) + 'calls/step'.padStart(12));
for (const r of rows) {
  if (r.ms < stepMs * 0.002) continue;
  console.log(String(r.name).padEnd(32) + r.ms.toFixed(2).padStart(10) + `${(100 * r.ms / stepMs).toFixed(1)}%`.padStart(8) + String(r.calls).padStart(12));
}
process.exit(0);
