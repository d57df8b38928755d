// The kernel table: one entry per kernel of crates/kernels that JavaScript can call. From it
// scripts/gen-kernels.mjs writes the napi exports (crates/node/src/kernels.rs), the wasm
// exports (crates/wasm/src/kernels.rs) and the TypeScript signatures and marshalling
// (ts/backend/kernels.generated.ts). Adding a kernel: write it (and its Rust test), add an
// entry here, run `node scripts/gen-kernels.mjs` (every build script does), implement it in
// the reference backend (ts/backend/reference/), then the op in ts/ops and its test.
//
// An entry:
// - `name`: the Rust function, `module` its path under the kernels crate; the JavaScript name
//   is its camelCase (`layernorm_forward` -> `layernormForward`), used by every backend and in
//   every error message.
// - `args`, in the kernel's order (buffers first, then scalars). Names are camelCase (their
//   Rust names are the snake_case). A buffer is `'<dtype> <role> [<dims>]'`: dtype f32, i32 or
//   u8; role `in` (read), `out` (overwritten) or `inout` (read and written: accumulating
//   gradients, optimiser state), `?` for an optional buffer (null / None), and a trailing
//   `or-empty` where the kernel takes an empty slice for an absent one; its length must be the
//   product of the dims (scalar names, derived names or numbers). A scalar is `usize`, `u32`,
//   `i32`, `f32`, `bool` or `activation` (a LinearActivation, passed to Rust as its code).
// - `derive`: dims the JavaScript caller does not pass: `['length', buffer]` (pointwise
//   kernels), `['rows', buffer, dim]` (rows of a [rows, dim] table, which must divide).
// - `checks` (crates/kernels/src/check.rs, mirrored by ts/backend/check.ts; those of scalars run
//   before the lengths, `ids` after them and the overlap check): `['ids', buffer, rows, ignore?]`,
//   `['within', start, len, dim]`, `['probability', scalar]`, `['step', scalar]`,
//   `['activation', scalar, { buffer: 'gelu' | 'any' }]` (which optional buffers each activation
//   needs: 'gelu' the GELUs', 'any' every one's but the identity's).
// - `parallel`: the kernel takes `&dyn Parallel` last. `returns`: `f64` for a kernel that
//   returns a number instead of writing a buffer. `doc`: the Backend method's doc comment.

/** Pointwise kernels: n is the length of their first buffer. */
const lengthOf = (buffer) => ({ n: ['length', buffer] });

export const KERNELS = [
  // ---- matmul ----
  {
    name: 'matmul_forward', module: 'ops::matmul', parallel: true,
    doc: 'out [batch, m, n] (+)= op(a) · op(b); op(a) is [m, k] (a stored [batch, k, m] when transA), op(b) is [k, n].',
    args: {
      out: 'f32 inout [batch, m, n]', a: 'f32 in [batch, m, k]', b: 'f32 in [batch, k, n]',
      batch: 'usize', m: 'usize', k: 'usize', n: 'usize', transA: 'bool', transB: 'bool', accumulate: 'bool',
    },
  },
  {
    name: 'matmul_backward', module: 'ops::matmul', parallel: true,
    args: {
      da: 'f32 inout? [batch, m, k]', db: 'f32 inout? [batch, k, n]', dout: 'f32 in [batch, m, n]',
      a: 'f32 in [batch, m, k]', b: 'f32 in [batch, k, n]',
      batch: 'usize', m: 'usize', k: 'usize', n: 'usize', transA: 'bool', transB: 'bool',
    },
  },

  // ---- fused linear ----
  {
    name: 'linear_forward', module: 'ops::linear', parallel: true,
    doc: 'out [rows, outF] = act(x [rows, inF] · weight [outF, inF]ᵀ + bias); `actGrad` (the GELUs only, else null) receives act\'(x · weightᵀ + bias), the derivative its backward multiplies dout by.',
    args: {
      out: 'f32 out [rows, outF]', actGrad: 'f32 out? [rows, outF]', x: 'f32 in [rows, inF]',
      weight: 'f32 in [outF, inF]', bias: 'f32 in? [outF]',
      rows: 'usize', inF: 'usize', outF: 'usize', activation: 'activation',
    },
    checks: [['activation', 'activation', { actGrad: 'gelu' }]],
  },
  {
    name: 'linear_backward', module: 'ops::linear', parallel: true,
    doc: 'dbias accumulates, dx and dweight too unless accumulateDx / accumulateDweight is false (then it is overwritten: a gradient nothing has written yet needs no zero fill); dpre [rows, outF] is scratch (overwritten); saved is the forward\'s out (ReLU) or actGrad (the GELUs: dpre = dout ∘ actGrad). dpre and saved are null for the identity.',
    args: {
      dx: 'f32 inout? [rows, inF]', dweight: 'f32 inout? [outF, inF]', dbias: 'f32 inout? [outF]',
      dpre: 'f32 out? [rows, outF] or-empty', dout: 'f32 in [rows, outF]', x: 'f32 in [rows, inF]',
      weight: 'f32 in [outF, inF]', saved: 'f32 in? [rows, outF] or-empty',
      rows: 'usize', inF: 'usize', outF: 'usize', activation: 'activation', accumulateDx: 'bool', accumulateDweight: 'bool',
    },
    checks: [['activation', 'activation', { dpre: 'any', saved: 'any' }]],
  },

  // ---- softmax, layernorm ----
  {
    name: 'softmax_forward', module: 'ops::softmax', parallel: true,
    doc: 'Row softmax over the entries where mask (u8, 1 = keep) is set; a row with nothing visible is all zeros.',
    args: { out: 'f32 out [rows, cols]', inp: 'f32 in [rows, cols]', mask: 'u8 in? [rows, cols]', rows: 'usize', cols: 'usize' },
  },
  {
    name: 'softmax_backward', module: 'ops::softmax', parallel: true,
    args: { dinp: 'f32 inout [rows, cols]', dout: 'f32 in [rows, cols]', out: 'f32 in [rows, cols]', rows: 'usize', cols: 'usize' },
  },
  {
    name: 'layernorm_forward', module: 'ops::layernorm', parallel: true,
    args: {
      out: 'f32 out [rows, dim]', mean: 'f32 out [rows]', rstd: 'f32 out [rows]', inp: 'f32 in [rows, dim]',
      weight: 'f32 in [dim]', bias: 'f32 in [dim]', rows: 'usize', dim: 'usize', eps: 'f32',
    },
  },
  {
    name: 'layernorm_backward', module: 'ops::layernorm', parallel: true,
    args: {
      dinp: 'f32 inout [rows, dim]', dweight: 'f32 inout [dim]', dbias: 'f32 inout [dim]', dout: 'f32 in [rows, dim]',
      inp: 'f32 in [rows, dim]', weight: 'f32 in [dim]', mean: 'f32 in [rows]', rstd: 'f32 in [rows]',
      rows: 'usize', dim: 'usize',
    },
  },

  // ---- attention ----
  {
    name: 'attention_forward', module: 'ops::attention', parallel: true,
    doc: 'Flash attention: lse [B, H, Tq] (log-sum-exp of each row\'s scaled scores, -inf where no key is visible) is saved instead of the [Tq, Tk] weights. dropoutP > 0 drops weight (b, h, i, j) as dropout would element (b, h, i, j) of the [B, H, Tq, Tk] weights for seed and offset (lse stays the undropped softmax\'s).',
    args: {
      out: 'f32 out [b, h, tq, d]', lse: 'f32 out [b, h, tq]', q: 'f32 in [b, h, tq, d]', k: 'f32 in [b, h, tk, d]',
      v: 'f32 in [b, h, tk, d]', keyMask: 'u8 in? [b, tk]',
      b: 'usize', h: 'usize', tq: 'usize', tk: 'usize', d: 'usize', causal: 'bool', scale: 'f32',
      dropoutP: 'f32', seed: 'u32', offset: 'u32',
    },
    checks: [['probability', 'dropoutP']],
  },
  {
    name: 'attention_probs', module: 'ops::attention', parallel: true,
    doc: 'The weights [B, H, Tq, Tk] of a forward pass, rebuilt from its lse (for attention maps).',
    args: {
      probs: 'f32 out [b, h, tq, tk]', q: 'f32 in [b, h, tq, d]', k: 'f32 in [b, h, tk, d]', lse: 'f32 in [b, h, tq]',
      keyMask: 'u8 in? [b, tk]', b: 'usize', h: 'usize', tq: 'usize', tk: 'usize', d: 'usize', causal: 'bool', scale: 'f32',
    },
  },
  {
    name: 'attention_backward', module: 'ops::attention', parallel: true,
    doc: 'Recomputes the weights tile by tile from q, k and lse; `out` is the forward\'s output; dropoutP, seed and offset those of the forward.',
    args: {
      dq: 'f32 inout [b, h, tq, d]', dk: 'f32 inout [b, h, tk, d]', dv: 'f32 inout [b, h, tk, d]', dout: 'f32 in [b, h, tq, d]',
      q: 'f32 in [b, h, tq, d]', k: 'f32 in [b, h, tk, d]', v: 'f32 in [b, h, tk, d]', out: 'f32 in [b, h, tq, d]',
      lse: 'f32 in [b, h, tq]', keyMask: 'u8 in? [b, tk]',
      b: 'usize', h: 'usize', tq: 'usize', tk: 'usize', d: 'usize', causal: 'bool', scale: 'f32',
      dropoutP: 'f32', seed: 'u32', offset: 'u32',
    },
    checks: [['probability', 'dropoutP']],
  },
  {
    name: 'attention_packed_forward', module: 'ops::attention', parallel: true,
    doc: 'Self-attention on a packed projection: q, k and v are the parts of qkv [B, T, 3, H, D] (flash-attn\'s qkvpacked layout), out is [B, T, H, D], lse [B, H, T]; otherwise attentionForward with Tq = Tk = T.',
    args: {
      out: 'f32 out [b, t, h, d]', lse: 'f32 out [b, h, t]', qkv: 'f32 in [b, t, 3, h, d]', keyMask: 'u8 in? [b, t]',
      b: 'usize', h: 'usize', t: 'usize', d: 'usize', causal: 'bool', scale: 'f32',
      dropoutP: 'f32', seed: 'u32', offset: 'u32',
    },
    checks: [['probability', 'dropoutP']],
  },
  {
    name: 'attention_packed_backward', module: 'ops::attention', parallel: true,
    doc: 'Backward of attentionPackedForward: accumulates dqkv [B, T, 3, H, D] from dout [B, T, H, D], or overwrites it when accumulate is false.',
    args: {
      dqkv: 'f32 inout [b, t, 3, h, d]', dout: 'f32 in [b, t, h, d]', qkv: 'f32 in [b, t, 3, h, d]', out: 'f32 in [b, t, h, d]',
      lse: 'f32 in [b, h, t]', keyMask: 'u8 in? [b, t]',
      b: 'usize', h: 'usize', t: 'usize', d: 'usize', causal: 'bool', scale: 'f32',
      dropoutP: 'f32', seed: 'u32', offset: 'u32', accumulate: 'bool',
    },
    checks: [['probability', 'dropoutP']],
  },

  // ---- activations ----
  { name: 'relu_forward', module: 'ops::activation', derive: lengthOf('out'), args: { out: 'f32 out [n]', inp: 'f32 in [n]' } },
  { name: 'relu_backward', module: 'ops::activation', derive: lengthOf('dinp'), args: { dinp: 'f32 inout [n]', dout: 'f32 in [n]', inp: 'f32 in [n]' } },
  { name: 'gelu_forward', module: 'ops::activation', parallel: true, derive: lengthOf('out'), args: { out: 'f32 out [n]', inp: 'f32 in [n]' } },
  { name: 'gelu_backward', module: 'ops::activation', parallel: true, derive: lengthOf('dinp'), args: { dinp: 'f32 inout [n]', dout: 'f32 in [n]', inp: 'f32 in [n]' } },
  {
    name: 'gelu_tanh_forward', module: 'ops::activation', parallel: true, derive: lengthOf('out'), doc: "GELU's tanh approximation (GPT-2's `gelu_new`).",
    args: { out: 'f32 out [n]', inp: 'f32 in [n]' },
  },
  { name: 'gelu_tanh_backward', module: 'ops::activation', parallel: true, derive: lengthOf('dinp'), args: { dinp: 'f32 inout [n]', dout: 'f32 in [n]', inp: 'f32 in [n]' } },

  // ---- embedding, loss, dropout ----
  {
    name: 'embedding_forward', module: 'ops::embedding', derive: { n: ['length', 'ids'], vocab: ['rows', 'table', 'dim'] },
    doc: 'ids: i32 storage; dim = table row length.',
    args: { out: 'f32 out [n, dim]', ids: 'i32 in [n]', table: 'f32 in [vocab, dim]', dim: 'usize' },
    checks: [['ids', 'ids', 'vocab']],
  },
  {
    name: 'embedding_backward', module: 'ops::embedding', derive: { n: ['length', 'ids'], vocab: ['rows', 'dtable', 'dim'] },
    args: { dtable: 'f32 inout [vocab, dim]', dout: 'f32 in [n, dim]', ids: 'i32 in [n]', dim: 'usize' },
    checks: [['ids', 'ids', 'vocab']],
  },
  {
    name: 'cross_entropy_forward', module: 'ops::cross_entropy', parallel: true,
    args: {
      loss: 'f32 out [1]', lse: 'f32 out [rows]', logits: 'f32 in [rows, vocab]', targets: 'i32 in [rows]',
      rows: 'usize', vocab: 'usize', ignoreIndex: 'i32', labelSmoothing: 'f32',
    },
    checks: [['ids', 'targets', 'vocab', 'ignoreIndex']],
  },
  {
    name: 'cross_entropy_backward', module: 'ops::cross_entropy', parallel: true,
    doc: 'Accumulates dlogits, or overwrites it when accumulate is false (ignored rows zero): a gradient nothing has written yet needs no zero fill.',
    args: {
      dlogits: 'f32 inout [rows, vocab]', dloss: 'f32 in [1]', logits: 'f32 in [rows, vocab]', lse: 'f32 in [rows]',
      targets: 'i32 in [rows]', rows: 'usize', vocab: 'usize', ignoreIndex: 'i32', labelSmoothing: 'f32', accumulate: 'bool',
    },
    checks: [['ids', 'targets', 'vocab', 'ignoreIndex']],
  },
  {
    name: 'dropout_forward', module: 'ops::dropout', derive: lengthOf('out'),
    doc: 'keep: u8 storage. seed and offset are u32.',
    args: { out: 'f32 out [n]', keep: 'u8 out [n]', inp: 'f32 in [n]', p: 'f32', seed: 'u32', offset: 'u32' },
    checks: [['probability', 'p']],
  },
  {
    name: 'dropout_backward', module: 'ops::dropout', derive: lengthOf('dinp'),
    args: { dinp: 'f32 inout [n]', dout: 'f32 in [n]', keep: 'u8 in [n]', p: 'f32' },
    checks: [['probability', 'p']],
  },

  // ---- elementwise and layout ----
  { name: 'add_forward', module: 'ops::elementwise', parallel: true, derive: lengthOf('out'), args: { out: 'f32 out [n]', a: 'f32 in [n]', b: 'f32 in [n]' } },
  {
    name: 'accumulate', module: 'ops::elementwise', parallel: true, derive: lengthOf('dst'), doc: 'dst += alpha * src',
    args: { dst: 'f32 inout [n]', src: 'f32 in [n]', alpha: 'f32' },
  },
  { name: 'scale_forward', module: 'ops::elementwise', parallel: true, derive: lengthOf('out'), args: { out: 'f32 out [n]', inp: 'f32 in [n]', s: 'f32' } },
  { name: 'scale_inplace', module: 'ops::elementwise', parallel: true, derive: lengthOf('x'), args: { x: 'f32 inout [n]', s: 'f32' } },
  { name: 'mul_forward', module: 'ops::elementwise', parallel: true, derive: lengthOf('out'), args: { out: 'f32 out [n]', a: 'f32 in [n]', b: 'f32 in [n]' } },
  {
    name: 'bias_add_forward', module: 'ops::elementwise', parallel: true,
    args: { out: 'f32 out [rows, cols]', inp: 'f32 in [rows, cols]', bias: 'f32 in [cols]', rows: 'usize', cols: 'usize' },
  },
  {
    name: 'bias_add_backward', module: 'ops::elementwise',
    args: { dbias: 'f32 inout [cols]', dout: 'f32 in [rows, cols]', rows: 'usize', cols: 'usize' },
  },
  {
    name: 'transpose12_forward', module: 'ops::elementwise', parallel: true, doc: 'inp [a, b, c, d] -> out [a, c, b, d]',
    args: { out: 'f32 out [a, c, b, d]', inp: 'f32 in [a, b, c, d]', a: 'usize', b: 'usize', c: 'usize', d: 'usize' },
  },
  {
    name: 'transpose12_backward', module: 'ops::elementwise', parallel: true,
    args: { dinp: 'f32 inout [a, b, c, d]', dout: 'f32 in [a, c, b, d]', a: 'usize', b: 'usize', c: 'usize', d: 'usize' },
  },
  {
    name: 'narrow_forward', module: 'ops::elementwise', parallel: true, doc: 'inp [outer, dim, inner] -> out [outer, len, inner] from `start` along axis 1',
    args: {
      out: 'f32 out [outer, len, inner]', inp: 'f32 in [outer, dim, inner]',
      outer: 'usize', dim: 'usize', inner: 'usize', start: 'usize', len: 'usize',
    },
    checks: [['within', 'start', 'len', 'dim']],
  },
  {
    name: 'narrow_backward', module: 'ops::elementwise', parallel: true,
    args: {
      dinp: 'f32 inout [outer, dim, inner]', dout: 'f32 in [outer, len, inner]',
      outer: 'usize', dim: 'usize', inner: 'usize', start: 'usize', len: 'usize',
    },
    checks: [['within', 'start', 'len', 'dim']],
  },
  {
    name: 'split_heads_forward', module: 'ops::heads', parallel: true,
    doc: 'out [a, c, b, d] = inp [a, b, dim, d] narrowed to [start, start + c) along axis 2, axes 1 and 2 swapped: one of q, k, v [B, H, T, D] out of a packed projection [B, T, 3E] (a = B, b = T, dim = 3H, c = H, start = part·H).',
    args: {
      out: 'f32 out [a, c, b, d]', inp: 'f32 in [a, b, dim, d]',
      a: 'usize', b: 'usize', c: 'usize', d: 'usize', dim: 'usize', start: 'usize',
    },
    checks: [['within', 'start', 'c', 'dim']],
  },
  {
    name: 'split_heads_backward', module: 'ops::heads', parallel: true,
    doc: 'dinp [a, b, dim, d] at [start, start + c) along axis 2 += dout [a, c, b, d] with axes 1 and 2 swapped back.',
    args: {
      dinp: 'f32 inout [a, b, dim, d]', dout: 'f32 in [a, c, b, d]',
      a: 'usize', b: 'usize', c: 'usize', d: 'usize', dim: 'usize', start: 'usize',
    },
    checks: [['within', 'start', 'c', 'dim']],
  },
  {
    name: 'sum_squares', module: 'ops::elementwise', parallel: true, derive: lengthOf('x'), returns: 'f64',
    doc: 'Sum of squares, accumulated in float64.',
    args: { x: 'f32 in [n]' },
  },

  // ---- optimiser ----
  {
    name: 'adam_update', module: 'optim::adam', parallel: true, derive: lengthOf('param'),
    doc: 'In-place Adam/AdamW update of param, m, v (see crates/kernels/src/optim/adam.rs); step is 1-based.',
    args: {
      param: 'f32 inout [n]', m: 'f32 inout [n]', v: 'f32 inout [n]', grad: 'f32 in [n]',
      lr: 'f32', beta1: 'f32', beta2: 'f32', eps: 'f32', weightDecay: 'f32', step: 'u32', decoupled: 'bool',
    },
    checks: [['step', 'step']],
  },

  // ---- tensor ops (ts/ops/{binary, unary, reduce, views, indexing}.ts) ----
  // Shapes and strides are small i32 buffers; a strided operand's length is only bounded by
  // its view: the 'shape' and 'view' checks (check.rs) test both before the kernel runs.
  {
    name: 'binary_forward', module: 'ops::broadcast', parallel: true,
    derive: { n: ['length', 'out'], na: ['length', 'a'], nb: ['length', 'b'], ndim: ['length', 'shape'] },
    doc: 'out [shape] = a op b, a and b read through their i32 strides over shape (0 where broadcast); code: a BinaryOp code (ts/ops/binary.ts).',
    args: { out: 'f32 out [n]', a: 'f32 in [na]', b: 'f32 in [nb]', shape: 'i32 in [ndim]', aStrides: 'i32 in [ndim]', bStrides: 'i32 in [ndim]', code: 'u32' },
    checks: [['shape', 'out', 'shape'], ['view', 'a', 'shape', 'aStrides'], ['view', 'b', 'shape', 'bStrides']],
  },
  {
    name: 'binary_backward', module: 'ops::broadcast', parallel: true,
    derive: { n: ['length', 'dout'], na: ['length', 'a'], nb: ['length', 'b'], ndim: ['length', 'shape'] },
    doc: 'da, db (either null) accumulate dL/da, dL/db summed over the dims each was broadcast along.',
    args: {
      da: 'f32 inout? [na]', db: 'f32 inout? [nb]', dout: 'f32 in [n]', a: 'f32 in [na]', b: 'f32 in [nb]',
      shape: 'i32 in [ndim]', aStrides: 'i32 in [ndim]', bStrides: 'i32 in [ndim]', code: 'u32',
    },
    checks: [['shape', 'dout', 'shape'], ['view', 'a', 'shape', 'aStrides'], ['view', 'b', 'shape', 'bStrides']],
  },
  {
    name: 'compare_forward', module: 'ops::broadcast', parallel: true,
    derive: { n: ['length', 'out'], na: ['length', 'a'], nb: ['length', 'b'], ndim: ['length', 'shape'] },
    doc: 'out [shape] (u8) = 1 where a op b holds, for a comparison code (eq..ge), broadcast as binaryForward.',
    args: { out: 'u8 out [n]', a: 'f32 in [na]', b: 'f32 in [nb]', shape: 'i32 in [ndim]', aStrides: 'i32 in [ndim]', bStrides: 'i32 in [ndim]', code: 'u32' },
    checks: [['shape', 'out', 'shape'], ['view', 'a', 'shape', 'aStrides'], ['view', 'b', 'shape', 'bStrides']],
  },
  {
    name: 'where_forward', module: 'ops::broadcast', parallel: true,
    derive: { n: ['length', 'out'], nc: ['length', 'cond'], na: ['length', 'a'], nb: ['length', 'b'], ndim: ['length', 'shape'] },
    doc: 'out [shape] = cond (u8, nonzero) ? a : b, each read through its strides.',
    args: {
      out: 'f32 out [n]', cond: 'u8 in [nc]', a: 'f32 in [na]', b: 'f32 in [nb]',
      shape: 'i32 in [ndim]', condStrides: 'i32 in [ndim]', aStrides: 'i32 in [ndim]', bStrides: 'i32 in [ndim]',
    },
    checks: [['shape', 'out', 'shape'], ['view', 'cond', 'shape', 'condStrides'], ['view', 'a', 'shape', 'aStrides'], ['view', 'b', 'shape', 'bStrides']],
  },
  {
    name: 'where_backward', module: 'ops::broadcast',
    derive: { n: ['length', 'dout'], nc: ['length', 'cond'], ndim: ['length', 'shape'], na: ['length', 'da'], nb: ['length', 'db'] },
    doc: 'da (where cond) and db (elsewhere), either null, accumulate dout summed over their broadcast dims.',
    args: {
      da: 'f32 inout? [na]', db: 'f32 inout? [nb]', dout: 'f32 in [n]', cond: 'u8 in [nc]',
      shape: 'i32 in [ndim]', condStrides: 'i32 in [ndim]', aStrides: 'i32 in [ndim]', bStrides: 'i32 in [ndim]',
    },
    checks: [['shape', 'dout', 'shape'], ['view', 'cond', 'shape', 'condStrides'], ['view', 'da', 'shape', 'aStrides'], ['view', 'db', 'shape', 'bStrides']],
  },
  {
    name: 'unary_forward', module: 'ops::unary', parallel: true, derive: lengthOf('out'),
    doc: 'out = op(inp); code: a UnaryOp code (ts/ops/unary.ts), p0 / p1 its scalars.',
    args: { out: 'f32 out [n]', inp: 'f32 in [n]', code: 'u32', p0: 'f32', p1: 'f32' },
  },
  {
    name: 'unary_backward', module: 'ops::unary', parallel: true, derive: lengthOf('dinp'),
    args: { dinp: 'f32 inout [n]', dout: 'f32 in [n]', inp: 'f32 in [n]', code: 'u32', p0: 'f32', p1: 'f32' },
  },
  {
    name: 'reduce_forward', module: 'ops::reduce', parallel: true,
    doc: 'out [outer, inner] = reduce over n of inp [outer, n, inner]; code: a ReduceOp code; correction: var\'s divisor n - correction.',
    args: { out: 'f32 out [outer, inner]', inp: 'f32 in [outer, n, inner]', outer: 'usize', n: 'usize', inner: 'usize', code: 'u32', correction: 'f32' },
  },
  {
    name: 'reduce_backward', module: 'ops::reduce', parallel: true,
    args: {
      dinp: 'f32 inout [outer, n, inner]', dout: 'f32 in [outer, inner]', inp: 'f32 in [outer, n, inner]', out: 'f32 in [outer, inner]',
      outer: 'usize', n: 'usize', inner: 'usize', code: 'u32', correction: 'f32',
    },
  },
  {
    name: 'max_dim_forward', module: 'ops::reduce', parallel: true,
    doc: 'out, indices (i32) [outer, inner]: max (min) over n of inp [outer, n, inner] and its first index; backward is gatherBackward.',
    args: { out: 'f32 out [outer, inner]', indices: 'i32 out [outer, inner]', inp: 'f32 in [outer, n, inner]', outer: 'usize', n: 'usize', inner: 'usize', min: 'bool' },
  },
  {
    name: 'softmax_dim_forward', module: 'ops::reduce', parallel: true,
    doc: 'softmax (log-softmax) of inp [outer, n, inner] along n.',
    args: { out: 'f32 out [outer, n, inner]', inp: 'f32 in [outer, n, inner]', outer: 'usize', n: 'usize', inner: 'usize', log: 'bool' },
  },
  {
    name: 'softmax_dim_backward', module: 'ops::reduce', parallel: true,
    args: { dinp: 'f32 inout [outer, n, inner]', dout: 'f32 in [outer, n, inner]', out: 'f32 in [outer, n, inner]', outer: 'usize', n: 'usize', inner: 'usize', log: 'bool' },
  },
  {
    name: 'strided_copy_forward', module: 'ops::strided', parallel: true,
    derive: { n: ['length', 'out'], len: ['length', 'inp'], ndim: ['length', 'shape'] },
    doc: 'out [shape] (contiguous) = the view (shape, i32 strides, offset) of inp.',
    args: { out: 'f32 out [n]', inp: 'f32 in [len]', shape: 'i32 in [ndim]', strides: 'i32 in [ndim]', offset: 'i32' },
    checks: [['shape', 'out', 'shape'], ['view', 'inp', 'shape', 'strides', 'offset']],
  },
  {
    name: 'strided_copy_backward', module: 'ops::strided', parallel: true,
    derive: { n: ['length', 'dout'], len: ['length', 'dinp'], ndim: ['length', 'shape'] },
    doc: 'Accumulates dout [shape] into the view (shape, strides, offset) of dinp (a zero stride sums).',
    args: { dinp: 'f32 inout [len]', dout: 'f32 in [n]', shape: 'i32 in [ndim]', strides: 'i32 in [ndim]', offset: 'i32' },
    checks: [['shape', 'dout', 'shape'], ['view', 'dinp', 'shape', 'strides', 'offset']],
  },
  {
    name: 'triangle_forward', module: 'ops::strided',
    doc: 'tril (upper false: col - row <= diagonal kept) or triu (col - row >= diagonal) of inp [batch, rows, cols].',
    args: { out: 'f32 out [batch, rows, cols]', inp: 'f32 in [batch, rows, cols]', batch: 'usize', rows: 'usize', cols: 'usize', diagonal: 'i32', upper: 'bool' },
  },
  {
    name: 'triangle_backward', module: 'ops::strided',
    args: { dinp: 'f32 inout [batch, rows, cols]', dout: 'f32 in [batch, rows, cols]', batch: 'usize', rows: 'usize', cols: 'usize', diagonal: 'i32', upper: 'bool' },
  },
  {
    name: 'gather_forward', module: 'ops::index', parallel: true,
    doc: 'out [outer, k, inner] = inp [outer, n, inner] at [o, index[o, j, i], i] (index i32, checked < n).',
    args: { out: 'f32 out [outer, k, inner]', inp: 'f32 in [outer, n, inner]', index: 'i32 in [outer, k, inner]', outer: 'usize', n: 'usize', k: 'usize', inner: 'usize' },
    checks: [['ids', 'index', 'n']],
  },
  {
    name: 'gather_backward', module: 'ops::index', parallel: true,
    doc: 'dinp at [o, index[o, j, i], i] += dout [outer, k, inner]: also scatter_add and max(dim)\'s backward.',
    args: { dinp: 'f32 inout [outer, n, inner]', dout: 'f32 in [outer, k, inner]', index: 'i32 in [outer, k, inner]', outer: 'usize', n: 'usize', k: 'usize', inner: 'usize' },
    checks: [['ids', 'index', 'n']],
  },
  {
    name: 'index_select_forward', module: 'ops::index', parallel: true,
    doc: 'out [outer, k, inner] = inp [outer, n, inner] at [o, index[j], :].',
    args: { out: 'f32 out [outer, k, inner]', inp: 'f32 in [outer, n, inner]', index: 'i32 in [k]', outer: 'usize', n: 'usize', k: 'usize', inner: 'usize' },
    checks: [['ids', 'index', 'n']],
  },
  {
    name: 'index_select_backward', module: 'ops::index', parallel: true,
    doc: 'dinp at [o, index[j], :] += dout; rows with index == paddingIdx get nothing (-1: none).',
    args: {
      dinp: 'f32 inout [outer, n, inner]', dout: 'f32 in [outer, k, inner]', index: 'i32 in [k]',
      outer: 'usize', n: 'usize', k: 'usize', inner: 'usize', paddingIdx: 'i32',
    },
    checks: [['ids', 'index', 'n']],
  },
];
