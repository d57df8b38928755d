// Where a training step's time goes, per backend kernel: wraps every function of the backend
// in a timer, runs W4 (DecoderLM), W5 or W6 (examples/nanogpt) training steps, and prints each
// kernel's share of the step beside the time spent outside kernels (JavaScript: autograd,
// validation, allocation).
//   node bench/profile_kernels.mjs --workload=W6 [--backend=native|wasm] [--threads=1] [--steps=5]
// Needs dist/ (`npm run build:ts`) and, for W5/W6, examples/nanogpt/build (`tsc -p examples/nanogpt`).
import { loadBackend } from '../dist/backend/init_node.js';
import { loadWasmBackend } from '../dist/backend/wasm.js';
import { nn, optim, setDefaultBackend, tensor, train } from '../dist/index.js';
import { inputs, NANOGPT, NANOGPT_OPTIM, nanogptInitialState, parseArgs, W4 } from './lib/common.mjs';

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
setDefaultBackend(backend);

function w4Step() {
  nn.manualSeed(1234);
  const model = new nn.DecoderLM({
    vocab: W4.vocab, dModel: W4.dModel, nHeads: W4.nHeads, numLayers: W4.numLayers, dFF: W4.dFF,
    dropout: 0, activation: 'relu', normFirst: true, maxLen: W4.seq,
  }, { backend });
  const trainer = new train.Trainer({ model, optimizer: new optim.Adam(model.parameters(), { lr: 1e-3 }), loss: train.lmLoss() });
  const batch = train.lmBatch(inputs.W4(), { backend, shape: [W4.batch, W4.seq + 1] });
  return { tokens: W4.batch * W4.seq, step: () => trainer.trainStep(batch) };
}

async function nanogptStep(name) {
  const { GPT, GPTConfig } = await import('../examples/nanogpt/build/model.js');
  const c = NANOGPT[name];
  const model = new GPT(GPTConfig({ n_layer: c.n_layer, n_head: c.n_head, n_embd: c.n_embd, block_size: c.block_size, vocab_size: c.vocab_size, bias: c.bias, dropout: 0 }), { backend });
  model.loadStateDict(nanogptInitialState(c));
  const { learningRate, betas, weightDecay, gradClip } = NANOGPT_OPTIM;
  const optimizer = model.configureOptimizers(weightDecay, learningRate, betas);
  const ids = inputs[name]();
  const [B, T] = [c.batch_size, c.block_size];
  const rows = (offset) => Int32Array.from({ length: B * T }, (_, i) => ids[Math.floor(i / T) * (T + 1) + (i % T) + offset]);
  const X = tensor(rows(0), [B, T], { backend, dtype: 'i32' });
  const Y = tensor(rows(1), [B, T], { backend, dtype: 'i32' });
  return {
    tokens: B * T,
    step: () => {
      const [, loss] = model.forward(X, Y);
      loss.item();
      loss.backward();
      loss.dispose();
      optim.clipGradNorm(model.parameters(), gradClip);
      optimizer.step();
      optimizer.zeroGrad();
    },
  };
}

const { tokens, step } = workload === 'W4' ? w4Step() : await nanogptStep(workload);
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
