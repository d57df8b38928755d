// W4 training steps in a loop for profiling, outside tinybench:
//   node --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile_w4.mjs [--backend=native|wasm] [--threads=N] [--steps=30]
// then open the .cpuprofile in Chrome DevTools (or sum self time per function). Needs dist/
// (`npm run build:ts`).
import { loadBackend } from '../dist/backend/init_node.js';
import { loadWasmBackend } from '../dist/backend/wasm.js';
import { parseArgs, w4Training } from './lib/common.mjs';

const args = parseArgs();
const which = args.backend ?? 'native';
const backend = which === 'wasm' ? await loadWasmBackend({ threads: args.threads > 1 }) : await loadBackend(which);
backend.setThreads(args.threads);
const { tokens, step } = await w4Training(backend);
for (let i = 0; i < 5; i++) step();
const steps = Number(args.steps ?? 30);
const t0 = performance.now();
for (let i = 0; i < steps; i++) step();
const ms = (performance.now() - t0) / steps;
console.log(`${which} x${args.threads}: ${ms.toFixed(1)} ms/step, ${(tokens / (ms / 1000)).toFixed(0)} tokens/s`);
process.exit(0);
