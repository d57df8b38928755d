// GPT-2 config options the public fixture leaves at their defaults, against transformers
// (test/fixtures/hf_gpt2_variants, made by scripts/gen_hf_gpt2_variants.py): attention scaled
// by 1/(layer_idx + 1), unscaled attention, exact-erf GELU, ReLU, an explicit n_inner, an
// untied head, gelu_pytorch_tanh and bfloat16 weights. Logits within 1e-4, loss within 5e-4.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, BackendName } from '../ts/backend/backend.js';
import { GPT2LMHeadModel } from '../ts/models/gpt2.js';
import { tidy } from '../ts/tensor/memory.js';
import { tensor } from '../ts/tensor/tensor.js';
import { getBackend, relErr, selectedBackends } from './helpers/backends.js';

const root = path.resolve(__dirname, 'fixtures/hf_gpt2_variants');
const variants = readdirSync(root).sort();
const backends = (process.env['FERRO_BACKEND'] ? selectedBackends() : ['native', 'wasm']) as BackendName[];

interface Expected { config: Record<string, unknown>; input_ids: number[][]; labels: number[][]; logits: number[]; loss: number }

it('there are variants to check', () => expect(variants.length).toBeGreaterThanOrEqual(3));

for (const name of backends) {
  for (const variant of variants) {
    describe(`hf gpt2 variant ${variant} [${name}]`, () => {
      const dir = path.join(root, variant);
      const expected = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')) as Expected;
      let backend: Backend;
      let model: GPT2LMHeadModel;
      beforeAll(async () => {
        backend = await getBackend(name);
        model = await GPT2LMHeadModel.fromPretrained(dir, { backend });
        model.eval();
      });
      afterAll(() => model?.dispose());

      it(`${variant} logits and loss [${name}]`, () => {
        for (const [key, value] of Object.entries(expected.config)) expect(model.config[key], key).toEqual(value);
        const [b, t] = [expected.input_ids.length, expected.input_ids[0]!.length];
        const ids = tensor(expected.input_ids.flat(), [b, t], { dtype: 'i32', backend });
        const logits = tidy(() => model.forward(ids).data());
        expect(relErr(logits, expected.logits)).toBeLessThan(1e-4);
        const loss = tidy(() => model.loss(ids, expected.labels).item());
        expect(relErr([loss], [expected.loss])).toBeLessThan(5e-4);
        ids.dispose();
      });
    });
  }
}
