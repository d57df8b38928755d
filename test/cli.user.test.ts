// The CLI as a new user meets it (issue 10, section 2), each case a child process in a temp
// folder: Ctrl-C and SIGTERM during `train` (the terminal restored, a checkpoint, one line
// saying how to resume), runs/latest only on finished runs, generate's defaults on every kind
// of run, resume below the checkpoint's step, hostile --text files and SVGs that stay valid
// XML, unknown characters at generate, the error messages, greedy and beam search compared on
// the same examples, and `bench` only where the benchmarks are.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from '../ts/io/safetensors.js';
import { removeTranspiledLibrary, transpiledLibrary } from './helpers/transpile.js';

const repository = join(dirname(fileURLToPath(import.meta.url)), '..');
let cli = '';
let tmp = '';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI run to completion with `cwd` as its current folder (runs/ is resolved there). */
function run(args: string[], cwd = tmp, timeout = 120_000): Result {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', timeout, env: { ...process.env, FERRO_DEBUG: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Resolves once `check()` holds (polled every 50 ms); rejects after `ms`. */
async function until(check: () => boolean, ms: number): Promise<void> {
  const began = Date.now();
  while (!check()) {
    if (Date.now() - began > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const metricsLines = (dir: string): number => (existsSync(join(dir, 'metrics.jsonl')) ? readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).length : 0);

/** Starts a long `train` of the reverse task in `out`, sends `signal` once a few steps are
 * logged, and returns what it printed and its exit code. */
async function trainAndInterrupt(out: string, name: string, signal: NodeJS.Signals): Promise<Result> {
  const child = spawn(process.execPath, [cli, 'train', '--task', 'reverse', '--preset', 'tiny', '--steps', '100000', '--batch-size', '8', '--backend', 'native',
    '--out', out, '--name', name, '--log-every', '1', '--no-landscape'], { cwd: tmp, env: { ...process.env, FERRO_DEBUG: '' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolveExit) => child.on('exit', (code) => resolveExit(code)));
  await until(() => metricsLines(join(out, name)) >= 3, 60_000);
  child.kill(signal);
  const code = await exited;
  return { code, stdout, stderr };
}

const RESUME_LINE = /^interrupted at step (\d+); resume with: ferroformer train --resume (\S+)$/;

const checkpointStep = (path: string): number => Number(readSafetensors(new Uint8Array(readFileSync(path))).metadata['step']);

/** Characters XML 1.0 does not allow anywhere in a document. */
const NOT_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/;

beforeAll(() => {
  cli = join(transpiledLibrary(), 'ts', 'cli', 'main.js');
  tmp = mkdtempSync(join(tmpdir(), 'ferro-cli-user-'));
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  removeTranspiledLibrary();
});

describe('Ctrl-C and SIGTERM during train', () => {
  it('SIGINT: one line saying how to resume, a checkpoint at that step, no runs/latest, and the resume finishes the run', async () => {
    const out = join(tmp, 'sigint');
    const r = await trainAndInterrupt(out, 'r', 'SIGINT');
    expect(r.code).toBe(130);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    const [, step, path] = lines[0]!.match(RESUME_LINE)!;
    expect(path).toBe('sigint/r/checkpoint.safetensors'); // relative to the current folder
    expect(checkpointStep(join(tmp, path!))).toBe(Number(step));
    expect(Number(step)).toBeGreaterThanOrEqual(3);
    // The run has no model: latest does not move to it, and the commands say how to finish it.
    expect(existsSync(join(out, 'latest'))).toBe(false);
    const e = run(['eval', join(out, 'r')]);
    expect(e.code).toBe(2);
    expect(e.stderr).toContain(`run r is incomplete: training stopped at step ${step} of 100000`);
    expect(e.stderr).toContain('resume it with: ferroformer train --resume sigint/r/checkpoint.safetensors');
    expect(e.stderr).not.toMatch(/ENOENT/);
    const noLatest = run(['eval'], out);
    expect(noLatest.code).toBe(2);
    expect(noLatest.stderr).toMatch(/runs\/latest does not exist/);

    const resumed = run(['train', '--resume', path!, '--steps', String(Number(step) + 4), '--held-out', '10', '--samples', '0', '--no-landscape']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(checkpointStep(join(tmp, path!))).toBe(Number(step) + 4);
    expect(existsSync(join(out, 'r', 'model.safetensors'))).toBe(true);
    expect(readlinkSync(join(out, 'latest'))).toBe('r');
  });

  it('SIGTERM: the same line, exit code 143', async () => {
    const r = await trainAndInterrupt(join(tmp, 'sigterm'), 't', 'SIGTERM');
    expect(r.code).toBe(143);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(RESUME_LINE);
  });

  it('Ctrl-C on a terminal: the progress bar gives back the cursor and line wrapping', async () => {
    // script(1) (util-linux) runs the command on a pseudo-terminal; writing ^C to it makes the
    // terminal send SIGINT, as a user's Ctrl-C does.
    const command = [process.execPath, cli, 'train', '--task', 'reverse', '--preset', 'tiny', '--steps', '100000', '--batch-size', '8', '--backend', 'native',
      '--out', join(tmp, 'tty'), '--name', 'p', '--log-every', '1', '--no-landscape'].map((a) => `'${a}'`).join(' ');
    const child = spawn('script', ['-q', '-f', '-e', '-c', command, '/dev/null'], { cwd: tmp, env: { ...process.env, FERRO_DEBUG: '' } });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolveExit) => child.on('exit', (code) => resolveExit(code)));
    await until(() => metricsLines(join(tmp, 'tty', 'p')) >= 3 && /\d+\/100000/.test(output), 60_000);
    child.stdin.write('\x03');
    expect(await exited).toBe(130);
    expect(output).toContain('\x1b[?25l'); // the bar hid the cursor and turned wrapping off
    expect(output).toContain('\x1b[?7l');
    const tail = output.slice(output.lastIndexOf('^C'));
    expect(tail).toContain('\x1b[?25h');
    expect(tail).toContain('\x1b[?7h');
    expect(tail).toMatch(/interrupted at step \d+; resume with: ferroformer train --resume tty\/p\/checkpoint.safetensors/);
    expect(existsSync(join(tmp, 'tty', 'p', 'checkpoint.safetensors'))).toBe(true);
  });
});

describe('a finished seq2seq run', () => {
  const runs = (): string => join(tmp, 'runs');
  const dir = (): string => join(runs(), 'rev');
  let trained: Result;
  beforeAll(() => {
    trained = run(['train', '--task', 'reverse', '--preset', 'tiny', '--steps', '8', '--batch-size', '8', '--backend', 'native',
      '--name', 'rev', '--held-out', '120', '--samples', '1', '--no-landscape']);
    if (trained.code !== 0) throw new Error(`train failed (${trained.code}):\n${trained.stdout}\n${trained.stderr}`);
  });

  it('the summary compares greedy and beam search on the same examples', () => {
    expect(trained.stdout).toMatch(/held-out exact match: greedy \d+\.\d% of 120; on the first 100 of them: greedy \d+\.\d%, beam search \(4 beams\) \d+\.\d%\n/);
    const e = run(['eval', 'rev', '--examples', '10', '--beam', '2']);
    expect(e.stdout).toMatch(/exact match: greedy \d+\.\d% of 10, beam search \(2 beams\) \d+\.\d% on the same examples\n/);
  });

  it('--steps below (or at) the checkpoint\'s step is a usage error that changes nothing', () => {
    const files = ['config.json', 'metrics.jsonl', 'checkpoint.safetensors', 'model.safetensors', 'report.html'];
    const before = files.map((f) => readFileSync(join(dir(), f)));
    for (const steps of ['4', '8']) {
      const r = run(['train', '--resume', 'runs/rev/checkpoint.safetensors', '--steps', steps]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`--steps ${steps} is (below|at) the checkpoint's step 8; give --steps above 8`));
      expect(r.stdout).toBe('');
    }
    const without = run(['train', '--resume', 'runs/rev/checkpoint.safetensors']);
    expect(without.code).toBe(2);
    expect(without.stderr).toMatch(/already at the run's last step 8/);
    files.forEach((f, i) => expect(readFileSync(join(dir(), f)).equals(before[i]!), f).toBe(true));
  });

  it('generate works with its defaults and names characters the tokenizer never saw, and a length the task never trained on', () => {
    const g = run(['generate', 'rev', 'abcdefghij']);
    expect(g.code, g.stderr).toBe(0);
    expect(g.stdout).toMatch(/greedy [a-j]*\nbeam /);
    expect(g.stderr).toBe('');
    const unknown = run(['generate', 'rev', 'abcxyzxabc']);
    expect(unknown.code).toBe(0);
    expect(unknown.stderr.trim()).toBe(`warning: "abcxyzxabc": characters 'x', 'y', 'z' never occurred in this run's training data; the model reads them as unknown`);
    const short = run(['generate', 'rev', 'abcdefg']);
    expect(short.code).toBe(0);
    expect(short.stdout).toMatch(/greedy [a-j]*\nbeam /);
    expect(short.stderr.trim()).toBe('warning: "abcdefg" has 7 characters; the reverse task trains on strings of exactly 10, so the model never learned this length');
  });

  it('eval through runs/latest names the run, not "latest"', () => {
    const e = run(['eval']);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toMatch(/^rev on native: held-out cross-entropy/);
  });

  it('a missing run is named as given, without runs/ doubled', () => {
    const nested = run(['eval', 'runs/nope']);
    expect(nested.code).toBe(2);
    expect(nested.stderr).toContain(`no run folder 'runs/nope'`);
    expect(nested.stderr).not.toContain('runs/runs');
    const absolute = run(['landscape', join(tmp, 'no-such-folder')]);
    expect(absolute.code).toBe(2);
    expect(absolute.stderr).toContain(`no run folder '${join(tmp, 'no-such-folder')}'`);
    expect(absolute.stderr).not.toMatch(/runs\/\//);
    const bare = run(['eval', 'nope']);
    expect(bare.stderr).toContain(`no run folder 'nope' (nor runs/nope)`);
    const notRun = run(['eval', tmp]);
    expect(notRun.code).toBe(2);
    expect(notRun.stderr).toMatch(/is not a run folder \(no config.json in it\)/);
  });

  it('generate with only an input does not take it for a run', () => {
    const r = run(['generate', 'abcdefghij']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('error: generate takes the run first, then the inputs: ferroformer generate runs/latest "abcdefghij"');
    const noInput = run(['generate', 'rev']);
    expect(noInput.code).toBe(2);
    expect(noInput.stderr).toMatch(/give at least one input after the run/);
  });

  it('a truncated model.safetensors is named in the error', () => {
    const copy = join(runs(), 'truncated');
    cpSync(dir(), copy, { recursive: true });
    const weights = join(copy, 'model.safetensors');
    truncateSync(weights, Math.floor(readFileSync(weights).length / 2));
    const r = run(['eval', 'truncated']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(weights);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a run written before config.json recorded finalNorm (no final LayerNorms then) still loads', () => {
    const copy = join(runs(), 'older');
    cpSync(dir(), copy, { recursive: true });
    const config = JSON.parse(readFileSync(join(copy, 'config.json'), 'utf8'));
    expect(config.model.finalNorm).toBe(true);
    delete config.model.finalNorm;
    writeFileSync(join(copy, 'config.json'), JSON.stringify(config));
    const { tensors } = readSafetensors(new Uint8Array(readFileSync(join(copy, 'model.safetensors'))));
    for (const name of [...tensors.keys()]) if (/^(encoder|decoder)\.norm\./.test(name)) tensors.delete(name);
    writeFileSync(join(copy, 'model.safetensors'), writeSafetensors(tensors as Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>));
    const e = run(['eval', 'older', '--examples', '5']);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toMatch(/^older on native: held-out cross-entropy \d/);
  });

  it('a config.json that no longer matches the weights: the first few mismatches and their counts', () => {
    const copy = join(runs(), 'mismatch');
    cpSync(dir(), copy, { recursive: true });
    const config = JSON.parse(readFileSync(join(copy, 'config.json'), 'utf8'));
    config.model.dModel = 48;
    config.model.numDecoderLayers = 2;
    writeFileSync(join(copy, 'config.json'), JSON.stringify(config));
    const r = run(['generate', 'mismatch', 'abc']);
    expect(r.code).toBe(1);
    const message = r.stderr.trim();
    expect(message.split('\n')).toHaveLength(1);
    expect(message.length).toBeLessThan(700);
    expect(message).toContain(`${join(copy, 'model.safetensors')} does not match ${join(copy, 'config.json')}`);
    expect(message).toMatch(/\d{2} shape mismatches \(.*; \.\.\.\)/);
    expect(message).toMatch(/\d+ missing keys \(decoder\.layers\.1\./);
  });
});

describe('language-model runs', () => {
  const dir = (): string => join(tmp, 'runs', 'lm');
  beforeAll(() => {
    const text = Array.from({ length: 200 }, (_, i) => `line ${i % 7}: the cat sat on the mat.`).join('\n');
    writeFileSync(join(tmp, 'lm.txt'), text);
    const r = run(['train', '--text', 'lm.txt', '--preset', 'tiny', '--steps', '4', '--batch-size', '4', '--context', '24', '--name', 'lm', '--no-landscape', '--samples', '1']);
    if (r.code !== 0) throw new Error(`train failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  });

  it('generate with its defaults continues to the end of the context', () => {
    const g = run(['generate', 'lm', 'the cat sat']);
    expect(g.code, g.stderr).toBe(0);
    expect(g.stdout.startsWith('the cat sat')).toBe(true);
    expect([...g.stdout.replace(/\n$/, '')].length).toBe(24); // 11 prompt characters + 13 generated
  });

  it('a prompt that fills the context is a usage error', () => {
    const g = run(['generate', 'lm', 'the cat sat on the mat. ']);
    expect(g.code).toBe(2);
    expect(g.stderr).toMatch(/has 24 characters; this model's context is 24, so a prompt takes 1 to 23/);
  });
});

describe('--text files that are not plain text', () => {
  it('a folder is a usage error', () => {
    mkdirSync(join(tmp, 'a-folder'), { recursive: true });
    const r = run(['train', '--text', 'a-folder', '--out', 'never']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`error: --text: 'a-folder' is a folder; give a text file`);
  });

  it('bytes that are not UTF-8, or NUL bytes, are refused', () => {
    const latin1 = Buffer.from('caf\xe9 au lait '.repeat(200), 'latin1');
    writeFileSync(join(tmp, 'latin1.txt'), latin1);
    const r = run(['train', '--text', 'latin1.txt', '--out', 'never']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^error: --text: 'latin1.txt' is not UTF-8 text \(invalid byte 0xe9 at offset 3\)/);
    writeFileSync(join(tmp, 'binary.bin'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, ...Array.from({ length: 2000 }, (_, i) => (i * 37) % 128)]));
    const b = run(['train', '--text', 'binary.bin', '--out', 'never']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/looks binary \(a NUL byte at offset 7\)/);
    expect(existsSync(join(tmp, 'never'))).toBe(false);
  });

  it('control characters: a warning, and every SVG and the report stay valid XML characters', () => {
    const controls = '\x1c\x07\x1b';
    const text = Array.from({ length: 120 }, (_, i) => `${controls[i % 3]}line ${i % 5}\tof text${controls[(i + 1) % 3]}\n`).join('');
    const file = join(tmp, `odd\x07name.txt`);
    writeFileSync(file, text);
    const r = run(['train', '--text', file, '--preset', 'tiny', '--steps', '4', '--batch-size', '4', '--context', '16', '--name', 'controls', '--resolution', '3', '--workers', '1', '--samples', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^warning: --text: '.*' has 240 control character\(s\) \(U\+001C, U\+0007, U\+001B\)/);
    const dir = join(tmp, 'runs', 'controls');
    for (const f of ['loss.svg', 'attention.svg', 'landscape.svg', 'report.html']) {
      const content = readFileSync(join(dir, f), 'utf8');
      expect(content, f).not.toMatch(NOT_XML);
    }
    expect(readFileSync(join(dir, 'attention.svg'), 'utf8')).toMatch(/[\u241c\u2407\u241b]/); // drawn as control pictures
    expect(readFileSync(join(dir, 'loss.svg'), 'utf8')).toContain('odd\u2407name.txt');
  });
});

describe('bench', () => {
  it('is not listed, and says where the benchmarks are, in an installation without bench/', () => {
    const help = run(['--help']);
    expect(help.stdout).not.toMatch(/^\s+bench/m);
    for (const c of ['train', 'generate', 'eval', 'landscape']) expect(help.stdout).toMatch(new RegExp(`^\\s+${c}`, 'm'));
    const r = run(['bench']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/repository checkout .*bench\/.*npm run bench/);
  });

  it('is listed and runs `npm run bench` in a checkout that has bench/', () => {
    // A checkout's layout: the CLI two folders below package.json, and bench/run.mjs.
    const checkout = join(tmp, 'checkout');
    cpSync(join(transpiledLibrary(), 'ts'), join(checkout, 'ts'), { recursive: true });
    cpSync(join(transpiledLibrary(), 'build'), join(checkout, 'build'), { recursive: true, dereference: false });
    symlinkSync(join(repository, 'node_modules'), join(checkout, 'node_modules'));
    writeFileSync(join(checkout, 'package.json'), JSON.stringify({ type: 'module', scripts: { bench: 'node bench/run.mjs' } }));
    mkdirSync(join(checkout, 'bench'));
    writeFileSync(join(checkout, 'bench', 'run.mjs'), `console.log('bench ran with ' + JSON.stringify(process.argv.slice(2)));\n`);
    const main = join(checkout, 'ts', 'cli', 'main.js');
    const help = spawnSync(process.execPath, [main, '--help'], { cwd: tmp, encoding: 'utf8' });
    expect(help.stdout).toMatch(/^\s+bench/m);
    const r = spawnSync(process.execPath, [main, 'bench', '--quick'], { cwd: tmp, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('bench ran with ["--quick"]');
  });
});
