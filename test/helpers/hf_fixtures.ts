// Where the Hugging Face GPT-2 fixture folder lives: FERRO_HF_FIXTURES names one (another
// size and tokenizer in the same format), and the repository's copy
// test/fixtures/hf_gpt2_public is the default. The folder holds what `save_pretrained` wrote
// (config.json, model.safetensors, tokenizer.json, vocab.json, merges.txt, ...) plus
// expected.json / expected.safetensors made by transformers and tokenizers.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** FERRO_HF_FIXTURES (a folder), else the repository's copy test/fixtures/hf_gpt2_public. */
export function hfFixtureDir(): string {
  const env = process.env['FERRO_HF_FIXTURES'];
  return env && env.length > 0 ? path.resolve(env) : path.resolve(REPO_ROOT, 'test/fixtures/hf_gpt2_public');
}

/** A file of the fixture folder, by name (`config.json`, `tokenizer.json`, ...). */
export function hfFixtureFile(name: string, dir: string = hfFixtureDir()): string {
  return path.join(dir, name);
}

/** Whether the folder has the files every HF test needs. */
export function hfFixturesAvailable(dir: string = hfFixtureDir()): boolean {
  return ['config.json', 'model.safetensors', 'tokenizer.json', 'expected.json'].every((f) => existsSync(path.join(dir, f)));
}

/** One test string of expected.json with the ids `tokenizers` gave it. */
export interface HfExpectedString {
  text: string;
  utf8_hex: string;
  ids: number[];
  tokens: string[];
  roundtrip: boolean;
  roundtrip_hf_decode: boolean;
  n_ids: number;
}

/** One prompt of expected.json: its ids and the greedy continuation of `generate(do_sample=False)`. */
export interface HfExpectedPrompt {
  text: string;
  input_ids: number[];
  greedy_new_ids: number[];
  greedy_text: string;
  stopped_on_eos: boolean;
  [key: string]: unknown;
}

/** The parts of expected.json the tests read; every other field stays reachable by index. */
export interface HfExpected {
  strings: HfExpectedString[];
  prompts: HfExpectedPrompt[];
  model: { config: Record<string, unknown>; safetensors_keys: Record<string, number[]>; [key: string]: unknown };
  tokenizer: Record<string, unknown>;
  [key: string]: unknown;
}

const expectedCache = new Map<string, HfExpected>();

/** expected.json of the fixture folder, parsed once per folder. */
export function loadHfExpected(dir: string = hfFixtureDir()): HfExpected {
  let cached = expectedCache.get(dir);
  if (cached === undefined) {
    cached = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')) as HfExpected;
    expectedCache.set(dir, cached);
  }
  return cached;
}
