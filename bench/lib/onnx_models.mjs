// Small ONNX models built in code (onnx-proto), so the onnxruntime peers run the same
// workloads as ferroformer: W1 MatMul, W2 causal attention from primitives, W3 LayerNormalization.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { onnx } = require('onnx-proto');

const FLOAT = onnx.TensorProto.DataType.FLOAT;

function valueInfo(name, dims) {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  });
}

function floatInit(name, dims, data) {
  return onnx.TensorProto.create({ name, dims, dataType: FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
}

function model(nodes, inputs, outputs, initializers = [], opset = 17) {
  const graph = onnx.GraphProto.create({ name: 'bench', node: nodes, input: inputs, output: outputs, initializer: initializers });
  const m = onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: opset }], producerName: 'ferroformer-bench', graph });
  return onnx.ModelProto.encode(m).finish();
}

/** W1: C[m,n] = A[m,k] B[k,n]. */
export function matmulModel(m, k, n) {
  return model(
    [onnx.NodeProto.create({ opType: 'MatMul', input: ['A', 'B'], output: ['C'] })],
    [valueInfo('A', [m, k]), valueInfo('B', [k, n])],
    [valueInfo('C', [m, n])],
  );
}

/** W2: out = softmax(q k^T * scale + causal) v with q, k, v [B, H, T, D]; the causal mask is
 * an additive constant [T, T] (0 on and below the diagonal, -inf above). */
export function attentionModel(b, h, t, d) {
  const mask = new Float32Array(t * t);
  for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) mask[i * t + j] = -Infinity;
  const scale = new Float32Array([1 / Math.sqrt(d)]);
  const N = (opType, input, output, attribute = []) => onnx.NodeProto.create({ opType, input, output, attribute });
  return model(
    [
      N('Transpose', ['k'], ['kt'], [onnx.AttributeProto.create({ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: [0, 1, 3, 2] })]),
      N('MatMul', ['q', 'kt'], ['s']),
      N('Mul', ['s', 'scale'], ['ss']),
      N('Add', ['ss', 'mask'], ['sm']),
      N('Softmax', ['sm'], ['p'], [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 })]),
      N('MatMul', ['p', 'v'], ['out']),
    ],
    [valueInfo('q', [b, h, t, d]), valueInfo('k', [b, h, t, d]), valueInfo('v', [b, h, t, d])],
    [valueInfo('out', [b, h, t, d])],
    [floatInit('mask', [t, t], mask), floatInit('scale', [], scale)],
  );
}

/** W3: LayerNormalization (opset 17) over the last axis of x [rows, dim], gamma and beta [dim]. */
export function layerNormModel(rows, dim, gamma, beta, eps = 1e-5) {
  return model(
    [onnx.NodeProto.create({
      opType: 'LayerNormalization', input: ['x', 'gamma', 'beta'], output: ['y'],
      attribute: [
        onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 }),
        onnx.AttributeProto.create({ name: 'epsilon', type: onnx.AttributeProto.AttributeType.FLOAT, f: eps }),
      ],
    })],
    [valueInfo('x', [rows, dim])],
    [valueInfo('y', [rows, dim])],
    [floatInit('gamma', [dim], gamma), floatInit('beta', [dim], beta)],
  );
}
