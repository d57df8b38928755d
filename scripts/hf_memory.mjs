#!/usr/bin/env node
// Peak memory of loading a GPT-2 checkpoint of GPT-2 small's shape (124M parameters, random
// weights written here in transformers' layout) with models.GPT2LMHeadModel.fromPretrained.
//
//   npm run build:ts && node scripts/hf_memory.mjs [--dtype F32|BF16] [--dir /tmp/...] [--keep]
//
// Each load runs in a fresh process (peak RSS from /proc's VmHWM covers that process only):
//   native: peak RSS of the whole process vs the weights' float32 size (target: <= 1.3x)
//   wasm:   the module's linear memory after loading (limit 4 GiB) and the process's peak RSS
// The checkpoint is written tensor by tensor, so the writer never holds it either.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CONFIG = {
  model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12,
  n_inner: null, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, resid_pdrop: 0.1, embd_pdrop: 0.1, attn_pdrop: 0.1,
  scale_attn_weights: true, tie_word_embeddings: true,
};

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

/** transformers' tensor names and file shapes (Conv1D weights [in, out]) for CONFIG. */
function tensors(c) {
  const e = c.n_embd;
  const list = [['transformer.wte.weight', [c.vocab_size, e]], ['transformer.wpe.weight', [c.n_positions, e]]];
  for (let i = 0; i < c.n_layer; i++) {
    const p = `transformer.h.${i}`;
    list.push([`${p}.ln_1.weight`, [e]], [`${p}.ln_1.bias`, [e]], [`${p}.attn.c_attn.weight`, [e, 3 * e]], [`${p}.attn.c_attn.bias`, [3 * e]],
      [`${p}.attn.c_proj.weight`, [e, e]], [`${p}.attn.c_proj.bias`, [e]], [`${p}.ln_2.weight`, [e]], [`${p}.ln_2.bias`, [e]],
      [`${p}.mlp.c_fc.weight`, [e, 4 * e]], [`${p}.mlp.c_fc.bias`, [4 * e]], [`${p}.mlp.c_proj.weight`, [4 * e, e]], [`${p}.mlp.c_proj.bias`, [e]]);
  }
  list.push(['transformer.ln_f.weight', [e]], ['transformer.ln_f.bias', [e]]);
  return list;
}

/** Writes model.safetensors one tensor at a time (header first, then each tensor's bytes). */
function writeCheckpoint(dir, dtype) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...CONFIG, torch_dtype: dtype === 'F32' ? 'float32' : 'bfloat16' }, null, 2));
  const size = dtype === 'F32' ? 4 : 2;
  const list = tensors(CONFIG);
  const header = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, shape] of list) {
    const bytes = shape.reduce((a, b) => a * b, 1) * size;
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const fd = openSync(path.join(dir, 'model.safetensors'), 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeSync(fd, len);
  writeSync(fd, json);
  let seed = 12345;
  let params = 0;
  for (const [, shape] of list) {
    const n = shape.reduce((a, b) => a * b, 1);
    params += n;
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      values[i] = (seed / 4294967296 - 0.5) * 0.04;
    }
    if (dtype === 'F32') writeSync(fd, new Uint8Array(values.buffer));
    else writeSync(fd, new Uint8Array(Uint16Array.from(new Uint32Array(values.buffer), (b) => b >>> 16).buffer)); // BF16 bits
  }
  closeSync(fd);
  return params;
}

function peakRssBytes() {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.resourceUsage().maxRSS * 1024;
}

/** The child: loads the folder on one backend and prints its measurements as JSON. */
async function child(dir, backendName) {
  const ff = await import(pathToFileURL(path.join(root, 'dist/index.js')).href);
  const backend = await ff.init({ backend: backendName });
  const before = peakRssBytes();
  const model = await ff.models.GPT2LMHeadModel.fromPretrained(dir, { backend });
  const result = {
    backend: backendName, parameters: model.numParameters(), weightBytes: model.loadStats.weightBytes,
    largestTensorBytes: model.loadStats.largestTensorBytes, peakScratchBytes: model.loadStats.peakScratchBytes,
    rssBeforeLoad: before, peakRss: peakRssBytes(), // before any forward pass
    wasmMemoryBytes: backendName === 'wasm' ? backend.memoryBytes?.() ?? null : null,
  };
  // A forward pass proves the weights are usable.
  const ids = ff.tensor([464, 318, 257], [1, 3], { dtype: 'i32', backend });
  result.logitsFinite = ff.tidy(() => Array.from(model.forward(ids).data().subarray(0, 100)).every(Number.isFinite));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv[2] === '--child') {
  await child(process.argv[3], process.argv[4]);
} else {
  const dtype = arg('dtype', 'F32');
  const dir = arg('dir', path.join(tmpdir(), `ferro-hf-memory-${dtype}`));
  if (dtype !== 'F32' && dtype !== 'BF16') throw new Error(`--dtype must be F32 or BF16, got ${dtype}`);
  const params = writeCheckpoint(dir, dtype);
  console.log(`wrote ${dir}: ${(params / 1e6).toFixed(1)}M parameters (GPT-2 small's shape), ${dtype}`);
  const mib = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  for (const backend of ['native', 'wasm']) {
    const run = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', dir, backend], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (run.status !== 0) {
      console.error(run.stderr);
      process.exitCode = 1;
      continue;
    }
    const r = JSON.parse(run.stdout.trim().split('\n').pop());
    const ratio = r.peakRss / r.weightBytes;
    console.log(`${backend}: weights ${mib(r.weightBytes)} (float32), largest tensor ${mib(r.largestTensorBytes)}, loader scratch peak ${mib(r.peakScratchBytes)}, ` +
      `process peak RSS ${mib(r.peakRss)} = ${ratio.toFixed(2)}x the weights (${mib(r.rssBeforeLoad)} before loading)` +
      (r.wasmMemoryBytes ? `, wasm linear memory ${mib(r.wasmMemoryBytes)} of 4096 MiB` : '') + `, logits finite: ${r.logitsFinite}`);
    if (backend === 'native' && ratio > 1.3) process.exitCode = 1;
  }
  if (!process.argv.includes('--keep')) rmSync(dir, { recursive: true, force: true });
}
