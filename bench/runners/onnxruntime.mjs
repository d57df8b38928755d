// onnxruntime-node (--runtime=node) or onnxruntime-web (--runtime=web, its wasm build in
// Node) on models built in code: W1 MatMul, W2 causal attention (Transpose, MatMul, Mul,
// Add of a constant mask, Softmax, MatMul), W3 LayerNormalization. --threads=N sets
// intraOpNumThreads (node) or env.wasm.numThreads (web; fixed for the process).
import { attentionModel, layerNormModel, matmulModel } from '../lib/onnx_models.mjs';
import { inputs, measure, parseArgs, W1_QUICK, W1_SHAPES, W2, W3 } from '../lib/common.mjs';

const args = parseArgs();
const web = args.runtime === 'web';
const threads = args.threads;
const want = (w) => !args.only || args.only.has(w);
const ort = web ? await import('onnxruntime-web') : (await import('onnxruntime-node')).default;
if (web) {
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.simd = true;
}
const sessionOptions = web
  ? { executionProviders: ['wasm'], graphOptimizationLevel: 'all' }
  : { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };
const base = { implementation: web ? 'onnxruntime-web' : 'onnxruntime-node', backend: web ? 'wasm' : 'cpu', threads, quick: args.quick };
const T = (data, dims) => new ort.Tensor('float32', data, dims);

if (want('W1')) {
  for (const shape of args.quick ? W1_QUICK : W1_SHAPES) {
    const [m, k, n] = shape;
    const data = inputs.W1(shape);
    const session = await ort.InferenceSession.create(matmulModel(m, k, n), sessionOptions);
    const feeds = { A: T(data.a, [m, k]), B: T(data.b, [k, n]) };
    let last = null;
    await measure({
      ...base, workload: 'W1', shape, data,
      run: async () => { last = await session.run(feeds); },
      output: () => last.C.data,
    });
    await session.release();
  }
}

if (want('W2')) {
  const { b, h, t, d } = W2;
  const data = inputs.W2();
  const session = await ort.InferenceSession.create(attentionModel(b, h, t, d), sessionOptions);
  const dims = [b, h, t, d];
  const feeds = { q: T(data.q, dims), k: T(data.k, dims), v: T(data.v, dims) };
  let last = null;
  await measure({
    ...base, workload: 'W2', shape: null, data,
    run: async () => { last = await session.run(feeds); },
    output: () => last.out.data,
  });
  await session.release();
}

if (want('W3')) {
  const { rows, dim, eps } = W3;
  const data = inputs.W3();
  const session = await ort.InferenceSession.create(layerNormModel(rows, dim, data.gamma, data.beta, eps), sessionOptions);
  const feeds = { x: T(data.x, [rows, dim]) };
  let last = null;
  await measure({
    ...base, workload: 'W3', shape: null, data,
    run: async () => { last = await session.run(feeds); },
    output: () => last.y.data,
  });
  await session.release();
}
process.exit(0);
