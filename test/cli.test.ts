// The ferroformer CLI as a user runs it: a child process over the transpiled library.
// --help for every command; bad flags exit 2 with a one-line message; a short `train` leaves
// every file of the run folder (valid JSON, SVG, safetensors that reload into a model), and
// `--resume` continues it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setDefaultBackend } from '../ts/backend/registry.js';
import * as nn from '../ts/nn/index.js';
import { readSafetensors } from '../ts/io/safetensors.js';
import { loadTokenizer } from '../ts/tokenizers/index.js';
import { loadModelSafetensors } from '../ts/train/index.js';
import { getBackend } from './helpers/backends.js';
import { removeTranspiledLibrary, transpiledLibrary } from './helpers/transpile.js';

let cli = '';
let tmp = '';

function run(args: string[], timeout = 60_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout, env: { ...process.env, FERRO_DEBUG: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  cli = join(transpiledLibrary(), 'ts', 'cli', 'main.js');
  tmp = mkdtempSync(join(tmpdir(), 'ferro-cli-'));
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  removeTranspiledLibrary();
});

describe('ferroformer --help', () => {
  it('lists the commands', () => {
    const r = run(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['train', 'generate', 'eval', 'landscape']) expect(r.stdout).toContain(c);
  });
  for (const command of ['train', 'generate', 'eval', 'landscape', 'bench']) {
    it(`${command} --help`, () => {
      const r = run([command, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: ferroformer ${command}`);
    });
  }
  it('train --help names the main flags', () => {
    const out = run(['train', '--help']).stdout;
    for (const flag of ['--task', '--text', '--preset', '--steps', '--batch-size', '--backend', '--threads', '--seed', '--out', '--name', '--resume', '--workers']) expect(out).toContain(flag);
  });
});

describe('bad flags exit 2 with a message and no stack trace', () => {
  const cases: [string, string[], RegExp][] = [
    ['non-numeric steps', ['train', '--steps', 'abc'], /--steps.*abc/],
    ['zero batch size', ['train', '--batch-size', '0'], /--batch-size/],
    ['unknown task', ['train', '--task', 'poetry'], /dates, copy, reverse/],
    ['unknown backend', ['train', '--backend', 'gpu'], /--backend/],
    ['unknown option', ['train', '--frobnicate'], /unknown option/],
    ['unknown command', ['fly'], /unknown command/],
    ['task and text together', ['train', '--task', 'copy', '--text', 'x.txt', '--out', 'never'], /either --task or --text/],
    ['missing text file', ['train', '--text', 'no/such/file.txt', '--out', 'never'], /no such file/],
    ['heads not dividing d-model', ['train', '--d-model', '30', '--heads', '4', '--out', 'never'], /divisible/],
    ['resolution 1', ['landscape', '--resolution', '1'], /--resolution/],
    ['eval of a missing run', ['eval', 'no-such-run-here'], /no run folder 'no-such-run-here'/],
  ];
  for (const [title, args, message] of cases) {
    it(title, () => {
      const r = run(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  }
});

describe('train writes a complete run folder', () => {
  let runDir = '';
  beforeAll(() => {
    const r = run(['train', '--task', 'reverse', '--preset', 'tiny', '--steps', '12', '--batch-size', '8', '--backend', 'native',
      '--out', tmp, '--name', 'r1', '--checkpoint-every', '4', '--held-out', '20', '--samples', '2', '--resolution', '4', '--workers', '2'], 120_000);
    if (r.code !== 0) throw new Error(`train failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    expect(r.stdout).toMatch(/held-out exact match: greedy \d+\.\d% of 20, beam search \(4 beams\) \d+\.\d% on the same examples/);
    expect(r.stdout).toMatch(/greedy /);
    // Not a terminal: plain progress lines instead of a bar.
    expect(r.stdout).toMatch(/train +\d+\/12 +loss \d+\.\d+ +lr [\d.e+-]+ +\d+ tok\/s .*ETA/);
    runDir = join(tmp, 'r1');
  }, 120_000);

  it('has every file, and runs/latest points at it', () => {
    for (const f of ['config.json', 'tokenizer.json', 'model.safetensors', 'metrics.jsonl', 'loss.svg', 'attention.svg', 'landscape.svg', 'report.html', 'checkpoint.safetensors']) {
      expect(existsSync(join(runDir, f)), f).toBe(true);
    }
    expect(readlinkSync(join(tmp, 'latest'))).toBe('r1');
    for (const step of [0, 4, 8, 12]) expect(existsSync(join(runDir, 'checkpoints', `step-${step}.safetensors`))).toBe(true);
  });

  it('writes valid JSON: config, tokenizer, one metrics record per logged step', () => {
    const config = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8'));
    expect(config.kind).toBe('seq2seq');
    expect(config.train.steps).toBe(12);
    const tok = loadTokenizer(readFileSync(join(runDir, 'tokenizer.json'), 'utf8'));
    expect(tok.decode(tok.encode('abc'))).toBe('abc');
    const records = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.length).toBeGreaterThan(1);
    expect(records.at(-1).step).toBe(12);
    for (const r of records) for (const k of ['step', 'loss', 'lr', 'tokensPerSecond']) expect(Number.isFinite(r[k])).toBe(true);
    expect(records.some((r) => Number.isFinite(r.valLoss))).toBe(true);
  });

  it('draws SVG pictures and a self-contained report', () => {
    for (const f of ['loss.svg', 'attention.svg', 'landscape.svg']) {
      const svg = readFileSync(join(runDir, f), 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      expect(svg).not.toMatch(/NaN/);
    }
    expect(readFileSync(join(runDir, 'loss.svg'), 'utf8')).toContain('learning rate');
    const html = readFileSync(join(runDir, 'report.html'), 'utf8');
    expect(html.match(/<svg/g)?.length).toBeGreaterThanOrEqual(3);
    expect(html).not.toMatch(/<script|src="http|href="http/);
    expect(html).toContain('&quot;kind&quot;: &quot;seq2seq&quot;');
  });

  it('saves safetensors under PyTorch names that reload into the model', async () => {
    const backend = await getBackend('native');
    setDefaultBackend(backend);
    const config = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8'));
    const bytes = new Uint8Array(readFileSync(join(runDir, 'model.safetensors')));
    const { tensors } = readSafetensors(bytes);
    expect(tensors.has('encoder.layers.0.self_attn.in_proj_weight')).toBe(true);
    expect(tensors.has('generator.weight')).toBe(true);
    const model = new nn.Transformer(config.model, { backend, rng: new nn.Rng(999) });
    loadModelSafetensors(model, bytes);
    const w = tensors.get('decoder.layers.0.linear1.weight')!;
    expect(Array.from(model.stateDict().get('decoder.layers.0.linear1.weight')!.data())).toEqual(Array.from(w.data));
    model.dispose();
  });

  it('eval, generate and landscape work on the run', () => {
    const e = run(['eval', runDir, '--examples', '10', '--beam', '2']);
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/held-out cross-entropy \d/);
    expect(e.stdout).toMatch(/exact match: greedy/);
    const g = run(['generate', runDir, 'abcdefghij', '--beam', '2']);
    expect(g.code).toBe(0);
    expect(g.stdout).toMatch(/greedy [a-j]*/);
    expect(g.stdout).toMatch(/beam /);
    const l = run(['landscape', runDir, '--resolution', '3', '--workers', '1']);
    expect(l.code).toBe(0);
    const landscape = JSON.parse(readFileSync(join(runDir, 'landscape.json'), 'utf8'));
    expect(landscape.resolution).toBe(3);
    expect(landscape.planes.map((p: { kind: string }) => p.kind)).toEqual(['random', 'trajectory']);
    expect(landscape.planes[1].path.map((p: { step: number }) => p.step)).toEqual([0, 4, 8, 12]);
  });

  it('--resume continues from the checkpoint to a larger --steps', () => {
    const r = run(['train', '--resume', join(runDir, 'checkpoint.safetensors'), '--steps', '16', '--no-landscape', '--held-out', '10', '--samples', '1'], 120_000);
    expect(r.code, r.stderr).toBe(0);
    const records = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const steps = records.map((x) => x.step);
    expect(steps.at(-1)).toBe(16);
    expect(new Set(steps).size).toBe(steps.length);
    expect(existsSync(join(runDir, 'checkpoints', 'step-16.safetensors'))).toBe(true);
  });
});

describe('train --text: a character-level language model', () => {
  it('trains, writes the run folder, and generates from a prompt', () => {
    const text = Array.from({ length: 300 }, (_, i) => `line ${i % 7}: the cat sat on the mat and the dog sat on the log.`).join('\n');
    const file = join(tmp, 'tiny.txt');
    writeFileSync(file, text);
    const r = run(['train', '--text', file, '--preset', 'tiny', '--steps', '6', '--batch-size', '4', '--context', '16', '--out', tmp, '--name', 'lm', '--resolution', '3', '--workers', '1'], 120_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/character-level LM on tiny.txt/);
    const dir = join(tmp, 'lm');
    for (const f of ['config.json', 'tokenizer.json', 'model.safetensors', 'metrics.jsonl', 'loss.svg', 'attention.svg', 'landscape.svg', 'report.html']) expect(existsSync(join(dir, f)), f).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).kind).toBe('lm');
    // The LM's second column is a random sample, and its heading says how it was drawn.
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('<th>sampled (temperature 0.8, top-k 10)</th>');
    expect(html).not.toContain('beam search');
    expect(r.stdout).toMatch(/\n  sampled "/);
    const g = run(['generate', dir, 'the cat', '--max-tokens', '5', '--temperature', '0']);
    expect(g.code, g.stderr).toBe(0);
    expect(g.stdout.startsWith('the cat')).toBe(true);
    const bad = run(['generate', dir, 'the cat', '--max-tokens', '50']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/context 16/);
    const defaults = run(['generate', dir, 'the cat']);
    expect(defaults.code, defaults.stderr).toBe(0);
    expect(defaults.stdout.startsWith('the cat')).toBe(true);
  });
});
