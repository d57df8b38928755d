#!/usr/bin/env node
// Fuzzing of the readers of untrusted files: safetensors, tokenizer JSON and checkpoints.
// Seeded; random inputs and mutations (bytes, header JSON, metadata JSON) of valid files.
// Every case must end in a success or a typed error of the library (FormatError,
// ShapeError/StateDictError, ConfigError, DTypeError); anything else (an untyped error, a
// case slower than HANG_MS) is a failure and the process exits 1.
//
//   npm run fuzz                                  100,000 cases, seed 1
//   node scripts/fuzz.mjs --cases 500000 --seed 7
//
// The library is passed in (`runFuzz(lib, ...)`), so test/fuzz.test.ts runs a seeded slice
// against the TypeScript sources and this script against dist/.

/** Slower than this counts as a hang. */
export const HANG_MS = 2000;

/** splitmix32-style PRNG: deterministic for a seed. */
export function makeRng(seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  const int = (n) => next() % n;
  return { next, int, pick: (arr) => arr[int(arr.length)], chance: (p) => next() / 4294967296 < p };
}

const INTERESTING_NUMBERS = [
  0, 1, -1, 2, 3, 7, 8, 255, 256, 65535, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 32 + 4, 2 ** 53, 2 ** 53 + 2, 2 ** 64, 1e12, 1e300,
  -(2 ** 31), -1e9, 0.5, -0.5, 1.5, Number.MAX_SAFE_INTEGER, Number.MIN_VALUE,
];
const INTERESTING_STRINGS = ['', 'F32', 'F64', 'I64', 'U8', 'BOOL', 'BF16', 'F8_E4M3', 'f32', 'char', 'bpe', '__proto__', 'constructor', 'prototype', '\u0000', '\ud800', 'x'.repeat(300)];

function randomValue(rng, depth = 0) {
  switch (rng.int(depth > 2 ? 4 : 7)) {
    case 0: return rng.pick(INTERESTING_NUMBERS);
    case 1: return rng.pick(INTERESTING_STRINGS);
    case 2: return rng.pick([null, true, false]);
    case 3: return rng.int(1000);
    case 4: return Array.from({ length: rng.int(4) }, () => randomValue(rng, depth + 1));
    case 5: return Object.fromEntries(Array.from({ length: rng.int(3) }, () => [rng.pick(['dtype', 'shape', 'data_offsets', 'kind', 'version', 'a', '0']), randomValue(rng, depth + 1)]));
    default: return [rng.pick(INTERESTING_NUMBERS), rng.pick(INTERESTING_NUMBERS)];
  }
}

/** Every (container, key) pair in a parsed JSON value. */
function slots(value, out = []) {
  if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) {
      out.push([value, key]);
      slots(value[key], out);
    }
  }
  return out;
}

/** One structural change to a parsed JSON value (in place; returns the root). */
function mutateJson(rng, root) {
  const all = slots(root);
  if (all.length === 0) return randomValue(rng);
  const [container, key] = rng.pick(all);
  const old = container[key];
  switch (rng.int(8)) {
    case 0: container[key] = randomValue(rng); break;
    case 1: if (Array.isArray(container)) container.splice(Number(key), 1); else delete container[key]; break;
    case 2: if (typeof old === 'number') container[key] = rng.pick([old + 1, old - 1, old * 2, -old, old * 1e6, old + 0.5]); else container[key] = randomValue(rng); break;
    case 3: if (Array.isArray(old)) old.push(randomValue(rng)); else container[key] = [old]; break;
    case 4: if (old !== null && typeof old === 'object' && !Array.isArray(old)) old[rng.pick(['extra', 'data_offsets', 'x'])] = randomValue(rng); else container[key] = { value: old }; break;
    case 5: if (Array.isArray(old) && old.length > 1) old.reverse(); else container[key] = String(old); break;
    case 6: { const [c2, k2] = rng.pick(all); container[key] = JSON.parse(JSON.stringify(c2[k2]) ?? 'null'); break; } // a copy of another entry
    default: container[key] = rng.pick(INTERESTING_NUMBERS);
  }
  return root;
}

/** JSON text with a prototype-polluting key spliced in after a random '{'. */
function injectForbiddenKey(rng, text) {
  const opens = [];
  for (let i = 0; i < text.length; i++) if (text[i] === '{') opens.push(i);
  if (opens.length === 0) return text;
  const at = rng.pick(opens) + 1;
  const key = rng.pick(['__proto__', 'constructor', 'prototype']);
  const value = rng.pick(['{"polluted": 1}', '1', '[]', '{"x": {"__proto__": {}}}']);
  const rest = text.slice(at).trimStart();
  return `${text.slice(0, at)}"${key}": ${value}${rest.startsWith('}') ? '' : ','}${text.slice(at)}`;
}

function mutateText(rng, text) {
  const chars = [...text];
  const n = 1 + rng.int(4);
  for (let i = 0; i < n && chars.length > 0; i++) {
    const at = rng.int(chars.length);
    switch (rng.int(5)) {
      case 0: chars[at] = rng.pick(['{', '}', '[', ']', '"', ',', ':', '0', '9', '-', 'e', '\\', 'x', ' ']); break;
      case 1: chars.splice(at, 1); break;
      case 2: chars.splice(at, 0, rng.pick(['"', '{}', '[]', '1e999', '-', 'null', '\\u0000'])); break;
      case 3: chars.length = at; break;
      default: chars.splice(at, 0, ...chars.slice(rng.int(chars.length), rng.int(chars.length)));
    }
  }
  return chars.join('');
}

function mutateBytes(rng, bytes) {
  let out = Uint8Array.from(bytes);
  const n = 1 + rng.int(6);
  for (let i = 0; i < n; i++) {
    const at = rng.int(Math.max(out.length, 1));
    switch (rng.int(7)) {
      case 0: if (out.length) out[at] ^= 1 << rng.int(8); break;
      case 1: if (out.length) out[at] = rng.pick([0, 0xff, 0x7f, 0x80, 0x22, 0x7b, 0x7d, 0x5b, 0x5d, rng.int(256)]); break;
      case 2: out = out.slice(0, at); break; // truncate
      case 3: { const extra = Uint8Array.from({ length: 1 + rng.int(64) }, () => rng.int(256)); const o = new Uint8Array(out.length + extra.length); o.set(out); o.set(extra, out.length); out = o; break; }
      case 4: { const o = new Uint8Array(out.length + 1); o.set(out.subarray(0, at)); o[at] = rng.int(256); o.set(out.subarray(at), at + 1); out = o; break; }
      case 5: if (out.length >= 8) new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(rng.pick(INTERESTING_NUMBERS.filter(Number.isInteger).map((v) => Math.abs(v))))), true); break;
      default: if (out.length > 1) out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + 1)]);
    }
  }
  return out;
}

/** Splits a safetensors file into its header object and data bytes (for valid files). */
function splitSafetensors(bytes) {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  return { header, data: bytes.subarray(8 + n) };
}

function joinSafetensors(rng, headerText, data) {
  const head = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + head.length + data.length);
  // Usually the right length; sometimes a wrong one.
  const n = rng.chance(0.9) ? head.length : rng.pick([head.length + 1, head.length - 1, 0, 2 ** 32, 2 ** 53, out.length]);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(Math.max(0, n))), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

/** A mutated safetensors file: random bytes, byte-level or header-level mutations. */
function safetensorsCase(rng, valid) {
  switch (rng.int(6)) {
    case 0: return Uint8Array.from({ length: rng.int(96) }, () => rng.int(256));
    case 1: case 2: return mutateBytes(rng, valid);
    case 3: {
      const { header, data } = splitSafetensors(valid);
      const n = 1 + rng.int(3);
      let h = header;
      for (let i = 0; i < n; i++) h = mutateJson(rng, h);
      return joinSafetensors(rng, JSON.stringify(h), rng.chance(0.8) ? data : data.subarray(0, rng.int(data.length + 1)));
    }
    case 4: {
      const { header, data } = splitSafetensors(valid);
      return joinSafetensors(rng, injectForbiddenKey(rng, JSON.stringify(header)), data);
    }
    default: {
      const { header, data } = splitSafetensors(valid);
      return joinSafetensors(rng, mutateText(rng, JSON.stringify(header)), data);
    }
  }
}

function tokenizerCase(rng, validText) {
  switch (rng.int(5)) {
    case 0: return mutateText(rng, validText);
    case 1: return injectForbiddenKey(rng, validText);
    case 2: return JSON.stringify(randomValue(rng));
    default: {
      let v = JSON.parse(validText);
      const n = 1 + rng.int(3);
      for (let i = 0; i < n; i++) v = mutateJson(rng, v);
      return JSON.stringify(v);
    }
  }
}

/** A mutated checkpoint: bytes, tensors' header, or one metadata JSON value. */
function checkpointCase(rng, valid) {
  if (rng.chance(0.5)) return safetensorsCase(rng, valid);
  const { header, data } = splitSafetensors(valid);
  const meta = header.__metadata__;
  const key = rng.pick(Object.keys(meta));
  let text;
  if (rng.chance(0.2)) text = injectForbiddenKey(rng, meta[key]);
  else if (rng.chance(0.3)) text = mutateText(rng, meta[key]);
  else {
    let v;
    try {
      v = JSON.parse(meta[key]);
    } catch {
      v = meta[key];
    }
    text = JSON.stringify(mutateJson(rng, { v }).v ?? null);
  }
  meta[key] = rng.chance(0.1) ? rng.pick(INTERESTING_NUMBERS) : text;
  return joinSafetensors(rng, JSON.stringify(header), data);
}

/**
 * Runs `cases` seeded cases (a third per reader) against `lib`:
 * { io: {readSafetensors, writeSafetensors}, tokenizers: {CharTokenizer, BpeTokenizer, loadTokenizer},
 *   train: {checkpointToBytes, loadCheckpointBytes}, nn: {DecoderLM, Rng}, optim: {Adam},
 *   errors: [FormatError, ShapeError, ConfigError, DTypeError, NumericsError], backend }.
 * Returns counts per reader and outcome, the slowest case and the first failures.
 */
export function runFuzz(lib, { cases = 100_000, seed = 1, onProgress } = {}) {
  const rng = makeRng(seed);
  const { io, tokenizers, train, nn, optim, backend } = lib;
  const typed = lib.errors;

  // Valid seeds.
  const safetensorsSeed = io.writeSafetensors({
    a: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
    b: { dtype: 'I64', shape: [2], data: BigInt64Array.from([1n, -2n]) },
    c: { dtype: 'U8', shape: [1, 1, 3], data: Uint8Array.from([7, 8, 9]) },
    d: { dtype: 'BF16', shape: [0], data: new Uint16Array(0) },
    e: { dtype: 'F64', shape: [], data: Float64Array.from([3.5]) },
  }, { note: 'seed', n: '1' });
  const text = 'the quick brown fox jumps over the lazy dog; ünïcödé 🦊 text, again the fox';
  const tokenizerSeeds = [
    JSON.stringify(tokenizers.CharTokenizer.train(text)),
    JSON.stringify(tokenizers.BpeTokenizer.train(text, { vocabSize: 256 + 3 + 12 })),
  ];
  const makeModel = () => new nn.DecoderLM({ vocab: 7, dModel: 4, nHeads: 2, numLayers: 1, dFF: 8, dropout: 0.1, maxLen: 8 }, { backend, rng: new nn.Rng(3) });
  const model = makeModel();
  const optimizer = new optim.Adam(model.parameters());
  const source = makeModel();
  const sourceOpt = new optim.Adam(source.parameters());
  // One real step, so the checkpoint carries optimiser moments and advanced dropout counters.
  const batch = train.lmBatch([[1, 2, 3, 4, 5, 6]], { backend });
  const loss = train.lmLoss()(source, batch);
  loss.backward();
  loss.dispose();
  batch.input.dispose();
  batch.target.dispose();
  sourceOpt.step();
  const checkpointSeed = train.checkpointToBytes({ model: source, optimizer: sourceOpt, step: 5, extra: { note: 'seed' } });

  const readers = {
    safetensors: { make: () => safetensorsCase(rng, safetensorsSeed), run: (input) => io.readSafetensors(input) },
    tokenizer: { make: () => tokenizerCase(rng, rng.pick(tokenizerSeeds)), run: (input) => tokenizers.loadTokenizer(input) },
    checkpoint: { make: () => checkpointCase(rng, checkpointSeed), run: (input) => train.loadCheckpointBytes(input, { model, optimizer }) },
  };
  const counts = {};
  for (const name of Object.keys(readers)) counts[name] = { success: 0, typed: 0, failure: 0 };
  const errorNames = {};
  const failures = [];
  let slowest = { ms: 0, reader: '', case: -1 };
  const names = Object.keys(readers);
  for (let i = 0; i < cases; i++) {
    const name = names[i % names.length];
    const reader = readers[name];
    const input = reader.make();
    const started = performance.now();
    let outcome = 'success';
    let error = null;
    try {
      reader.run(input);
    } catch (e) {
      error = e;
      outcome = typed.some((cls) => e instanceof cls) ? 'typed' : 'failure';
    }
    const ms = performance.now() - started;
    if (ms > slowest.ms) slowest = { ms, reader: name, case: i };
    if (ms > HANG_MS && outcome !== 'failure') {
      outcome = 'failure';
      error = new Error(`took ${ms.toFixed(0)} ms (hang threshold ${HANG_MS} ms)`);
    }
    counts[name][outcome]++;
    if (error) {
      const key = `${name}: ${error?.name ?? typeof error}`;
      errorNames[key] = (errorNames[key] ?? 0) + 1;
    }
    if (outcome === 'failure' && failures.length < 10) {
      const preview = typeof input === 'string' ? input.slice(0, 300) : Buffer.from(input.subarray(0, 300)).toString('latin1');
      failures.push({ case: i, reader: name, error: `${error?.name}: ${error?.message}`, stack: String(error?.stack).split('\n').slice(0, 4).join('\n'), input: preview });
    }
    if (onProgress && (i + 1) % 10_000 === 0) onProgress(i + 1, counts);
  }
  model.dispose();
  source.dispose();
  optimizer.dispose();
  sourceOpt.dispose();
  const total = { success: 0, typed: 0, failure: 0 };
  for (const c of Object.values(counts)) for (const k of Object.keys(total)) total[k] += c[k];
  return { cases, seed, counts, total, errorNames, slowest, failures };
}

async function main() {
  const args = process.argv.slice(2);
  const arg = (name, fallback) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const cases = arg('cases', 100_000);
  const seed = arg('seed', 1);
  const lib = await import('../dist/index.js');
  const backend = await lib.init({ backend: 'auto' });
  const { FormatError, ShapeError, ConfigError, DTypeError, NumericsError } = lib;
  const rssStart = process.memoryUsage().rss;
  const started = performance.now();
  const report = runFuzz(
    { io: lib.io, tokenizers: lib.tokenizers, train: lib.train, nn: lib.nn, optim: lib.optim, backend, errors: [FormatError, ShapeError, ConfigError, DTypeError, NumericsError] },
    { cases, seed, onProgress: (n, c) => process.stderr.write(`\r${n} cases ... ${JSON.stringify(c)}`) },
  );
  process.stderr.write('\n');
  const seconds = (performance.now() - started) / 1000;
  const rssEnd = process.memoryUsage().rss;
  console.log(`fuzz: ${report.cases} cases, seed ${report.seed}, backend ${backend.name}, ${seconds.toFixed(1)} s`);
  console.log('reader       success   typed error   other (failure)');
  for (const [name, c] of Object.entries(report.counts)) {
    console.log(`${name.padEnd(12)} ${String(c.success).padStart(7)}   ${String(c.typed).padStart(11)}   ${String(c.failure).padStart(7)}`);
  }
  console.log(`${'total'.padEnd(12)} ${String(report.total.success).padStart(7)}   ${String(report.total.typed).padStart(11)}   ${String(report.total.failure).padStart(7)}`);
  console.log('errors by class:', JSON.stringify(report.errorNames));
  console.log(`slowest case: ${report.slowest.ms.toFixed(1)} ms (${report.slowest.reader} #${report.slowest.case}); rss ${(rssStart / 2 ** 20).toFixed(0)} -> ${(rssEnd / 2 ** 20).toFixed(0)} MiB`);
  for (const f of report.failures) console.log('FAILURE', JSON.stringify(f, null, 1));
  process.exitCode = report.total.failure === 0 ? 0 : 1;
}

const invoked = process.argv[1] ? new URL(`file://${process.argv[1]}`).href : '';
if (import.meta.url === invoked) await main();
