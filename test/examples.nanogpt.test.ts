// examples/nanogpt/train.ts end to end, scaled down: the README's command with overrides
// (1 layer, 32 wide, 40 iterations) trains on data/ferrous_notes.txt, writes nanoGPT's
// state-dict names (the tied matrix once) and samples; bad overrides are refused by name.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { main } from '../examples/nanogpt/train.js';
import { readSafetensors } from '../ts/io/safetensors.js';
import { ConfigError } from '../ts/tensor/errors.js';

const out = mkdtempSync(path.join(tmpdir(), 'nanogpt-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

it('trains a character-level GPT, saves it under nanoGPT names and samples', async () => {
  const lines: string[] = [];
  const result = await main(
    ['--max_iters=60', '--eval_interval=30', '--eval_iters=4', '--n_layer=1', '--n_head=2', '--n_embd=32', '--block_size=32',
      '--warmup_iters=5', '--lr_decay_iters=60', '--learning_rate=3e-3', '--max_new_tokens=40', `--out_dir=${out}`],
    (line) => lines.push(line),
  );
  const vocab = (JSON.parse(readFileSync(path.join(out, 'meta.json'), 'utf8')) as { vocab_size: number }).vocab_size;
  expect(result.evals.map((e) => e.iter)).toEqual([0, 30, 60]);
  // Initial loss near ln(vocab) (N(0, 0.02) weights), and training lowers it.
  expect(Math.abs(result.evals[0]!.train - Math.log(vocab))).toBeLessThan(0.15);
  expect(result.evals[2]!.train).toBeLessThan(result.evals[0]!.train - 0.5);
  expect(lines).toContain('Overriding: n_layer = 1');
  expect(lines.some((l) => /^iter 60: loss \d+\.\d{4}, time/.test(l))).toBe(true);
  expect(Array.from(result.sample).length).toBe(41);
  const { tensors, metadata } = readSafetensors(readFileSync(path.join(out, 'model.safetensors')));
  const names = [...tensors.keys()].sort();
  // bias=False: no bias anywhere; the tied wte/lm_head matrix stored once, its other name in
  // the metadata (safetensors' save_model convention).
  expect(names).toEqual([
    'lm_head.weight', 'transformer.h.0.attn.c_attn.weight', 'transformer.h.0.attn.c_proj.weight', 'transformer.h.0.ln_1.weight', 'transformer.h.0.ln_2.weight',
    'transformer.h.0.mlp.c_fc.weight', 'transformer.h.0.mlp.c_proj.weight', 'transformer.ln_f.weight', 'transformer.wpe.weight',
  ]);
  expect(metadata['transformer.wte.weight']).toBe('lm_head.weight');
  expect(tensors.get('lm_head.weight')!.shape).toEqual([vocab, 32]);
  expect(JSON.parse(metadata['model_args']!)).toMatchObject({ n_layer: 1, n_embd: 32, bias: false, vocab_size: vocab });
});

it('refuses unknown or malformed overrides by name', async () => {
  await expect(main(['--n_layers=2'], () => {})).rejects.toThrow(ConfigError);
  await expect(main(['--n_layers=2'], () => {})).rejects.toThrow(/Unknown config key: n_layers/);
  await expect(main(['--max_iters=ten'], () => {})).rejects.toThrow(/--max_iters must be a number, got 'ten'/);
  await expect(main(['max_iters=10'], () => {})).rejects.toThrow(/expected --key=value/);
});
