// Fine-tuning the fixture GPT-2 on the project's text lowers its held-out loss, and the
// folder savePretrained writes has exactly the fixture folder's tensor names, shapes, dtypes
// and config fields, the tokenizer files copied, and loads back to the same logits.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, BackendName } from '../ts/backend/backend.js';
import * as generate from '../ts/generate/index.js';
import { readSafetensorsHeader } from '../ts/io/safetensors.js';
import { fineTune } from '../ts/models/finetune.js';
import { GPT2LMHeadModel } from '../ts/models/gpt2.js';
import { tidy } from '../ts/tensor/memory.js';
import { tensor } from '../ts/tensor/tensor.js';
import { getBackend, selectedBackends } from './helpers/backends.js';
import { hfFixtureDir, hfFixtureFile, loadHfExpected } from './helpers/hf_fixtures.js';

const dir = hfFixtureDir();
const text = readFileSync(path.resolve(__dirname, '../data/ferrous_notes.txt'), 'utf8');
const backends = (process.env['FERRO_BACKEND'] ? selectedBackends() : ['native', 'wasm']) as BackendName[];

function header(file: string) {
  const { entries } = readSafetensorsHeader(new Uint8Array(readFileSync(file)));
  return Object.fromEntries([...entries].map(([name, e]) => [name, { dtype: e.dtype, shape: e.shape }]));
}

for (const name of backends) {
  describe(`hf gpt2 fine-tune [${name}]`, () => {
    let backend: Backend;
    let model: GPT2LMHeadModel;
    let out: string;
    beforeAll(async () => {
      backend = await getBackend(name);
      model = await GPT2LMHeadModel.fromPretrained(dir, { backend });
      out = mkdtempSync(path.join(tmpdir(), 'ferro-gpt2-'));
    });
    afterAll(() => {
      model?.dispose();
      rmSync(out, { recursive: true, force: true });
    });

    it(`sampling and beam search equal with and without the KV cache [${name}]`, () => {
      const prompt = loadHfExpected(dir).prompts[0]!.input_ids;
      const sample = (useCache: boolean) => generate.sample(model, [prompt, prompt], { maxTokens: 12, temperature: 0.9, topK: 20, seed: 7, useCache });
      expect(sample(true).map((h) => h.tokens)).toEqual(sample(false).map((h) => h.tokens));
      const beam = (useCache: boolean) => generate.beamSearch(model, [prompt], { maxTokens: 10, beamSize: 3, useCache });
      const withCache = beam(true);
      expect(withCache[0]!.tokens).toHaveLength(10);
      expect(withCache.map((h) => h.tokens)).toEqual(beam(false).map((h) => h.tokens));
    });

    it(`50 steps on a text lower the held-out loss [${name}]`, () => {
      const ids = Int32Array.from(model.tokenizer().encode(text));
      const result = fineTune(model, ids, { steps: 50, batchSize: 8, context: 32, lr: 3e-3, seed: 1 });
      expect(result.trainer.step).toBe(50);
      expect(result.heldOutAfter).toBeLessThan(result.heldOutBefore - 0.5);
      const losses = result.trainer.history.map((m) => m.loss);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      expect(mean(losses.slice(-10))).toBeLessThan(mean(losses.slice(0, 10)));
    });

    it(`savePretrained writes the fixture's layout and loads back to the same logits [${name}]`, async () => {
      await model.savePretrained(out);
      expect(header(path.join(out, 'model.safetensors'))).toEqual(header(hfFixtureFile('model.safetensors', dir)));
      const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
      const fixtureConfig = JSON.parse(readFileSync(hfFixtureFile('config.json', dir), 'utf8')) as Record<string, unknown>;
      expect(Object.keys(config).sort()).toEqual(Object.keys(fixtureConfig).sort());
      expect(config).toEqual(fixtureConfig);
      for (const file of ['tokenizer.json', 'vocab.json', 'merges.txt']) {
        expect(readFileSync(path.join(out, file)).equals(readFileSync(hfFixtureFile(file, dir))), file).toBe(true);
      }
      const again = await GPT2LMHeadModel.fromPretrained(out, { backend });
      try {
        const ids = tensor([1, 5, 9, 33, 2], [1, 5], { dtype: 'i32', backend });
        model.eval();
        again.eval();
        const a = tidy(() => model.forward(ids).data());
        const b = tidy(() => again.forward(ids).data());
        expect(Array.from(b)).toEqual(Array.from(a));
        ids.dispose();
      } finally {
        again.dispose();
      }
    });
  });
}
