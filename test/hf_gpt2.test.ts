// Parity with transformers' GPT2LMHeadModel on the fixture folder (FERRO_HF_FIXTURES, default
// test/fixtures/hf_gpt2_public): the model loaded from the folder's config.json and
// model.safetensors gives transformers' logits (1e-4 relative), greedy continuations (with
// the KV cache, token for token), loss on a labelled batch (5e-4) and gradients of the named
// parameters (1e-3). Shapes, prompts and parameter names all come from expected.json.
// Native and wasm; the float64 reference backend too when FERRO_BACKEND names it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, BackendName } from '../ts/backend/backend.js';
import * as generate from '../ts/generate/index.js';
import { readSafetensors, toFloat32, type SafetensorsTensor } from '../ts/io/safetensors.js';
import { GPT2LMHeadModel } from '../ts/models/gpt2.js';
import * as ops from '../ts/ops/index.js';
import { tidy } from '../ts/tensor/memory.js';
import { tensor } from '../ts/tensor/tensor.js';
import { getBackend, relErr, selectedBackends } from './helpers/backends.js';
import { hfFixtureDir, hfFixtureFile, loadHfExpected } from './helpers/hf_fixtures.js';
import { readFileSync } from 'node:fs';

const dir = hfFixtureDir();
const expected = loadHfExpected(dir);
const reference = readSafetensors(new Uint8Array(readFileSync(hfFixtureFile('expected.safetensors', dir)))).tensors;
const lossCase = expected['loss'] as { grad_params: string[] };

function want(name: string): SafetensorsTensor {
  const t = reference.get(name);
  if (!t) throw new Error(`expected.safetensors has no ${name}`);
  return t;
}
const f32 = (name: string) => toFloat32(want(name).dtype, want(name).data);
const ints = (name: string) => Array.from(want(name).data as Int32Array);

/** [rows, cols] -> [cols, rows]: our [out, in] gradients against transformers' Conv1D [in, out]. */
function transposed(values: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c]!;
  return out;
}

const backends = (process.env['FERRO_BACKEND'] ? selectedBackends() : ['native', 'wasm']) as BackendName[];

for (const name of backends) {
  describe(`hf gpt2 [${name}]`, () => {
    let backend: Backend;
    let model: GPT2LMHeadModel;
    beforeAll(async () => {
      backend = await getBackend(name);
      model = await GPT2LMHeadModel.fromPretrained(dir, { backend });
      model.eval();
    });
    afterAll(() => model?.dispose());

    it(`config [${name}]`, () => {
      for (const [key, value] of Object.entries(expected.model.config)) expect(model.config[key], key).toEqual(value);
      const names = model.namedParameters().map(([n]) => n).sort();
      const inFile = Object.keys(expected.model.safetensors_keys).sort();
      // A tied head is not a parameter of its own (torch's named_parameters() agrees).
      expect(names).toEqual(inFile.filter((n) => n !== 'lm_head.weight' || !model.config.tie_word_embeddings));
    });

    expected.strings.forEach((s, i) => {
      it(`text${i} ids [${name}]`, () => {
        // The tokenizer read with the model (tokenizer.json), as transformers' AutoTokenizer.
        const tok = model.tokenizer();
        expect(ints(`text${i}.ids`)).toEqual(s.ids);
        expect(tok.encode(s.text)).toEqual(s.ids);
        expect(tok.decode(s.ids)).toBe(s.text);
      });
    });

    expected.prompts.forEach((prompt, j) => {
      it(`prompt${j} logits [${name}]`, () => {
        const ids = ints(`prompt${j}.input_ids`);
        expect(ids).toEqual(prompt.input_ids);
        expect(model.tokenizer().encode(prompt.text)).toEqual(ids);
        const logits = tidy(() => model.forward(tensor(ids, [1, ids.length], { dtype: 'i32', backend })).data());
        expect(relErr(logits, f32(`prompt${j}.logits`))).toBeLessThan(1e-4);
      });

      it(`prompt${j} greedy [${name}]`, () => {
        const greedy = ints(`prompt${j}.greedy`);
        expect(greedy).toEqual(prompt.greedy_new_ids);
        const eos = prompt.stopped_on_eos ? model.config.eos_token_id : null;
        const [hyp] = generate.greedy(model, [prompt.input_ids], { maxTokens: greedy.length, eosId: eos, useCache: true });
        expect(hyp!.tokens).toEqual(greedy);
      });
    });

    it(`loss [${name}]`, () => {
      const ids = tensor(ints('loss.input_ids'), want('loss.input_ids').shape, { dtype: 'i32', backend });
      const labels = tensor(ints('loss.labels'), want('loss.labels').shape, { dtype: 'i32', backend });
      const loss = model.loss(ids, labels);
      expect(relErr([loss.item()], f32('loss.loss'))).toBeLessThan(5e-4);
      model.zeroGrad();
      loss.backward();
      loss.dispose();
      const params = new Map(model.namedParameters());
      for (const param of lossCase.grad_params) {
        const p = params.get(param);
        expect(p, param).toBeDefined();
        const ours = p!.grad!.data();
        const theirs = f32(`loss.grad.${param}`);
        const got = /\.(c_attn|c_proj|c_fc)\.weight$/.test(param) ? transposed(ours, p!.shape[0]!, p!.shape[1]!) : ours;
        expect(relErr(got, theirs), param).toBeLessThan(1e-3);
      }
      model.zeroGrad();
      ids.dispose();
      labels.dispose();
    });
  });
}

// GPT-2's gelu_new, 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))), on each backend against the
// formula in float64, forward and gradient.
for (const name of backends) {
  describe(`gelu_tanh [${name}]`, () => {
    it(`values and gradient against float64 [${name}]`, async () => {
      const backend = await getBackend(name);
      const xs = Array.from({ length: 101 }, (_, i) => -6 + i * 0.12);
      const f = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
      const x = tensor(xs, [xs.length], { backend, requiresGrad: true });
      const y = ops.geluTanh(x);
      expect(relErr(y.data(), xs.map(f))).toBeLessThan(1e-6);
      y.backward(tensor(new Float32Array(xs.length).fill(1), [xs.length], { backend }));
      const h = 1e-5;
      expect(relErr(x.grad!.data(), xs.map((v) => (f(Math.fround(v) + h) - f(Math.fround(v) - h)) / (2 * h)))).toBeLessThan(1e-5);
    });
  });
}
