// @tensorflow/tfjs on --backend=wasm (tfjs-backend-wasm, SIMD, one thread: its threaded
// build needs Web Workers, which it does not use in Node) or --backend=cpu (pure JS).
// W1: tf.matMul; W2: causal attention from tf ops; W4: one training step (forward,
// backward, Adam) of the same decoder-only model written with tf ops. tfjs-backend-wasm has
// no gradient for gather, so its embedding is a one-hot matmul; the cpu backend gathers.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { emit, inputs, measure, parseArgs, rateRecord, time, W1_QUICK, W1_SHAPES, W2, W4 } from '../lib/common.mjs';

const args = parseArgs();
const which = args.backend;
const want = (w) => !args.only || args.only.has(w);
const silence = console.warn;
console.warn = () => {}; // tfjs prints a hint to install tfjs-node
await tf.setBackend(which);
await tf.ready();
console.warn = silence;
const oneHotEmbedding = which === 'wasm';
const base = { implementation: 'tfjs', backend: which, threads: 1, quick: args.quick };

if (want('W1')) {
  for (const shape of args.quick ? W1_QUICK : W1_SHAPES) {
    const [m, k, n] = shape;
    const data = inputs.W1(shape);
    const a = tf.tensor2d(data.a, [m, k]);
    const b = tf.tensor2d(data.b, [k, n]);
    let c = null;
    await measure({
      ...base, workload: 'W1', shape, data, slow: which === 'cpu', verySlow: which === 'cpu' && m * k * n > 512 ** 3,
      run: () => { c?.dispose(); c = tf.matMul(a, b); c.dataSync(); },
      output: () => c.dataSync(),
    });
    c?.dispose();
    a.dispose();
    b.dispose();
  }
}

if (want('W2')) {
  const { b, h, t, d } = W2;
  const data = inputs.W2();
  const dims = [b, h, t, d];
  const q = tf.tensor4d(data.q, dims);
  const k = tf.tensor4d(data.k, dims);
  const v = tf.tensor4d(data.v, dims);
  const maskBias = causalBias(t);
  let out = null;
  await measure({
    ...base, workload: 'W2', shape: null, data, slow: which === 'cpu',
    run: () => {
      out?.dispose();
      out = tf.tidy(() => tf.matMul(tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(d)), maskBias)), v));
      out.dataSync();
    },
    output: () => out.dataSync(),
  });
  tf.dispose([q, k, v, maskBias, out]);
}

if (want('W4')) {
  try {
    const { step, variables } = decoderLM();
    const rows = inputs.W4();
    const { batch, seq, vocab } = W4;
    const ids = new Int32Array(batch * seq);
    const targets = new Int32Array(batch * seq);
    for (let r = 0; r < batch; r++) {
      for (let i = 0; i < seq; i++) {
        ids[r * seq + i] = rows[r * (seq + 1) + i];
        targets[r * seq + i] = rows[r * (seq + 1) + i + 1];
      }
    }
    const x = oneHotEmbedding ? tf.oneHot(tf.tensor1d(ids, 'int32'), vocab).toFloat() : tf.tensor1d(ids, 'int32');
    const y = tf.oneHot(tf.tensor1d(targets, 'int32'), vocab).toFloat();
    const losses = [step(x, y)];
    const timing = await time(() => { losses.push(step(x, y)); }, { quick: args.quick, slow: true, verySlow: which === 'cpu' });
    const [firstLoss, lastLoss] = [losses[0], losses.at(-1)];
    emit({ ...rateRecord({ ...base, workload: 'W4', shape: null, timing, checkError: null }), firstLoss, lastLoss, note: oneHotEmbedding ? 'embedding as one-hot matmul (no gather gradient)' : 'embedding by gather' });
    tf.dispose([x, y, ...variables]);
  } catch (e) {
    emit({ kind: 'failure', workload: 'W4', implementation: 'tfjs', backend: which, threads: 1, reason: String(e?.stack ?? e).split('\n').slice(0, 3).join(' | ') });
  }
}
process.exit(0);

/** [T, T] additive mask: 0 where key j <= query i, -1e9 above the diagonal. */
function causalBias(t) {
  const m = new Float32Array(t * t);
  for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) m[i * t + j] = -1e9;
  return tf.tensor2d(m, [t, t]);
}

/** The W4 model (pre-LN decoder-only, ReLU, sinusoidal positions, final LayerNorm) and a
 * training step returning the loss (read back, as ferroformer's Trainer does). */
function decoderLM() {
  const { vocab, dModel: d, nHeads: H, numLayers, dFF, seq: T, batch: B } = W4;
  const dh = d / H;
  const glorot = (shape) => tf.variable(tf.randomUniform(shape, -Math.sqrt(6 / (shape[0] + shape[1])), Math.sqrt(6 / (shape[0] + shape[1])), 'float32', 7));
  const zeros = (n) => tf.variable(tf.zeros([n]));
  const ones = (n) => tf.variable(tf.ones([n]));
  const embed = tf.variable(tf.randomNormal([vocab, d], 0, 1, 'float32', 5));
  const layers = Array.from({ length: numLayers }, () => ({
    ln1g: ones(d), ln1b: zeros(d), wqkv: glorot([d, 3 * d]), bqkv: zeros(3 * d), wo: glorot([d, d]), bo: zeros(d),
    ln2g: ones(d), ln2b: zeros(d), w1: glorot([d, dFF]), b1: zeros(dFF), w2: glorot([dFF, d]), b2: zeros(d),
  }));
  const lnfg = ones(d);
  const lnfb = zeros(d);
  const wg = glorot([d, vocab]);
  const bg = zeros(vocab);
  const pe = new Float32Array(T * d);
  for (let p = 0; p < T; p++) {
    for (let i = 0; i < d; i += 2) {
      const a = p / 10000 ** (i / d);
      pe[p * d + i] = Math.sin(a);
      pe[p * d + i + 1] = Math.cos(a);
    }
  }
  const peT = tf.tile(tf.tensor2d(pe, [T, d]), [B, 1]);
  const mask = causalBias(T);
  const layerNorm = (x, g, b) => {
    const mean = tf.mean(x, -1, true);
    const xc = tf.sub(x, mean);
    const variance = tf.mean(tf.square(xc), -1, true);
    return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, 1e-5))), g), b);
  };
  const heads = (x) => tf.transpose(tf.reshape(x, [B, T, H, dh]), [0, 2, 1, 3]);
  const forward = (onehot) => {
    const e = oneHotEmbedding ? tf.matMul(onehot, embed) : tf.gather(embed, onehot);
    let x = tf.add(tf.mul(e, Math.sqrt(d)), peT);
    for (const L of layers) {
      const h = layerNorm(x, L.ln1g, L.ln1b);
      const [q, k, v] = tf.split(tf.add(tf.matMul(h, L.wqkv), L.bqkv), 3, 1);
      const p = tf.softmax(tf.add(tf.mul(tf.matMul(heads(q), heads(k), false, true), 1 / Math.sqrt(dh)), mask));
      const o = tf.reshape(tf.transpose(tf.matMul(p, heads(v)), [0, 2, 1, 3]), [B * T, d]);
      x = tf.add(x, tf.add(tf.matMul(o, L.wo), L.bo));
      const h2 = layerNorm(x, L.ln2g, L.ln2b);
      x = tf.add(x, tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(h2, L.w1), L.b1)), L.w2), L.b2));
    }
    return tf.add(tf.matMul(layerNorm(x, lnfg, lnfb), wg), bg);
  };
  const variables = [embed, ...layers.flatMap((L) => Object.values(L)), lnfg, lnfb, wg, bg];
  const optimizer = tf.train.adam(1e-3);
  const step = (x, y) => {
    const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, forward(x)), true, variables);
    const value = loss.dataSync()[0];
    loss.dispose();
    return value;
  };
  return { step, variables: [...variables, peT, mask] };
}
