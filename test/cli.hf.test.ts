// The CLI on Hugging Face GPT-2 checkpoints, as a user runs it (a child process over the
// transpiled library): `generate <hf-folder> "prompt"` continues with transformers' greedy
// tokens; `train --init <hf-folder> --text file` fine-tunes, writes a run folder that is a
// Hugging Face folder (plus metrics, loss.svg, run.json), moves runs/latest, and that folder
// generates in turn; misuse exits 2 with one line.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensorsHeader } from '../ts/io/safetensors.js';
import { HFTokenizer } from '../ts/tokenizers/hf.js';
import { hfFixtureDir, hfFixtureFile, loadHfExpected } from './helpers/hf_fixtures.js';
import { removeTranspiledLibrary, transpiledLibrary } from './helpers/transpile.js';

const names = (file: string): string[] => [...readSafetensorsHeader(new Uint8Array(readFileSync(file))).entries.keys()].sort();

let cli = '';
let tmp = '';
const fixture = hfFixtureDir();
const textFile = resolve(__dirname, '../data/ferrous_notes.txt');

function run(args: string[], timeout = 120_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout, cwd: tmp, env: { ...process.env, FERRO_DEBUG: '', HF_HUB_OFFLINE: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  cli = join(transpiledLibrary(), 'ts', 'cli', 'main.js');
  tmp = mkdtempSync(join(tmpdir(), 'ferro-cli-hf-'));
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  removeTranspiledLibrary();
});

describe('ferroformer on Hugging Face GPT-2 folders', () => {
  it('generate <hf-folder> "prompt" --temperature 0 gives transformers\' greedy continuation', () => {
    const prompt = loadHfExpected(fixture).prompts[0]!;
    const r = run(['generate', fixture, prompt.text, '--temperature', '0', '--max-tokens', String(prompt.greedy_new_ids.length), '--backend', 'native']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const tok = HFTokenizer.fromJSON(readFileSync(hfFixtureFile('tokenizer.json', fixture), 'utf8'));
    const eos = 0;
    const wantTokens = prompt.greedy_new_ids.filter((t) => t !== eos);
    // Control characters other than tab and newline are printed as their control pictures.
    const shown = (prompt.text + tok.decode(wantTokens)).replace(/[\u0000-\u0008\u000b-\u001f]/g, (ch) => String.fromCharCode(0x2400 + ch.charCodeAt(0)));
    expect(r.stdout.replace(/\n$/, '')).toBe(shown);
  });

  it('train --init <hf-folder> --text fine-tunes into a Hugging Face run folder that generate takes', () => {
    const r = run(['train', '--init', fixture, '--text', textFile, '--steps', '30', '--context', '32', '--lr', '0.003', '--name', 'ft', '--backend', 'native'], 300_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const m = /held-out cross-entropy (\d+\.\d+) -> (\d+\.\d+)/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![2])).toBeLessThan(Number(m![1]));
    const dir = join(tmp, 'runs', 'ft');
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'metrics.jsonl', 'loss.svg', 'run.json']) expect(existsSync(join(dir, f)), f).toBe(true);
    expect(readlinkSync(join(tmp, 'runs', 'latest'))).toBe('ft');
    expect(names(join(dir, 'model.safetensors'))).toEqual(names(hfFixtureFile('model.safetensors', fixture)));
    const metrics = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; valLoss?: number });
    expect(metrics.at(-1)!.step).toBe(30);
    expect(metrics.at(-1)!.valLoss).toBeLessThan(metrics[0]!.valLoss!);
    const g = run(['generate', 'latest', 'The forge', '--max-tokens', '5', '--seed', '3', '--backend', 'wasm']);
    expect(g.code).toBe(0);
    expect(g.stdout.startsWith('The forge')).toBe(true);
    // runs/latest now points at it: eval and landscape say what it is and what takes it.
    for (const command of [['eval'], ['landscape', 'latest']]) {
      const r2 = run(command);
      expect(r2.code).toBe(2);
      expect(r2.stderr).toMatch(/is a Hugging Face GPT-2 folder \(as ferroformer train --init writes\), not a run of ferroformer train --task or --text; eval and landscape take those. Continue its text with: ferroformer generate .*ft "<prompt>"/);
    }
  });

  it('Ctrl-C during train --init stops at a step, saves the weights so far and leaves runs/latest alone', async () => {
    const child = spawn(process.execPath, [cli, 'train', '--init', fixture, '--text', textFile, '--steps', '100000', '--name', 'stopped', '--backend', 'native'],
      { cwd: tmp, env: { ...process.env, FERRO_DEBUG: '' } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += String(d);
    });
    await new Promise<void>((started) => child.stdout.on('data', (d: Buffer) => {
      if (String(d).includes('fine-tuning')) started();
    }));
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((exited) => child.on('exit', (c) => exited(c)));
    expect(code).toBe(130);
    expect(stderr).toMatch(/interrupted at step \d+; the weights so far are in .*stopped/);
    const dir = join(tmp, 'runs', 'stopped');
    expect(names(join(dir, 'model.safetensors'))).toEqual(names(hfFixtureFile('model.safetensors', fixture)));
    const latest = join(tmp, 'runs', 'latest');
    if (existsSync(latest)) expect(readlinkSync(latest)).not.toBe('stopped');
  });

  it('misuse exits 2 with one line', () => {
    const noText = run(['train', '--init', fixture]);
    expect(noText.code).toBe(2);
    expect(noText.stderr).toMatch(/--init needs --text/);
    const notGpt2 = run(['train', '--init', tmp, '--text', textFile]);
    expect(notGpt2.code).toBe(2);
    expect(notGpt2.stderr).toMatch(/neither a Hugging Face GPT-2 folder/);
    const noPrompt = run(['generate', fixture]);
    expect(noPrompt.code).toBe(2);
    expect(noPrompt.stderr).toMatch(/at least one prompt/);
    for (const r of [noText, notGpt2, noPrompt]) expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
