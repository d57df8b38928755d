// W4 training steps in a loop for profiling, outside tinybench:
//   node --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile_w4.mjs [--backend=native|wasm] [--threads=N] [--steps=30]
// then open the .cpuprofile in Chrome DevTools (or sum self time per function). Needs dist/
// (`npm run build:ts`).
import { loadBackend } from '../dist/backend/init_node.js';
import { loadWasmBackend } from '../dist/backend/wasm.js';
import { nn, optim, setDefaultBackend, train } from '../dist/index.js';
import { inputs, parseArgs, W4 } from './lib/common.mjs';

const args = parseArgs();
const which = args.backend ?? 'native';
const backend = which === 'wasm' ? await loadWasmBackend({ threads: args.threads > 1 }) : await loadBackend(which);
backend.setThreads(args.threads);
setDefaultBackend(backend);
nn.manualSeed(1234);
const model = new nn.DecoderLM({
  vocab: W4.vocab, dModel: W4.dModel, nHeads: W4.nHeads, numLayers: W4.numLayers, dFF: W4.dFF,
  dropout: 0, activation: 'relu', normFirst: true, maxLen: W4.seq,
}, { backend });
const trainer = new train.Trainer({ model, optimizer: new optim.Adam(model.parameters(), { lr: 1e-3 }), loss: train.lmLoss() });
const batch = train.lmBatch(inputs.W4(), { backend, shape: [W4.batch, W4.seq + 1] });
for (let i = 0; i < 5; i++) trainer.trainStep(batch);
const steps = Number(args.steps ?? 30);
const t0 = performance.now();
for (let i = 0; i < steps; i++) trainer.trainStep(batch);
const ms = (performance.now() - t0) / steps;
console.log(`${which} x${args.threads}: ${ms.toFixed(1)} ms/step, ${(W4.batch * W4.seq / (ms / 1000)).toFixed(0)} tokens/s`);
process.exit(0);
