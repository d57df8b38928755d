// Kill during save, on native and wasm: a child process trains a small model and saves a checkpoint after every
// step (train.saveCheckpoint: temp file, fsync, rename); it is killed with SIGKILL at seeded
// random moments, 20 times, each new child resuming from the file the last one left. After
// every kill the checkpoint must load and equal, bit for bit (weights, Adam moments, step), a
// state the child had announced, no older than the last save it had reported complete. The
// temp files of killed children do not pile up: the next save removes them.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import * as nn from '../ts/nn/index.js';
import * as optim from '../ts/optim/index.js';
import { loadCheckpoint, saveCheckpoint } from '../ts/train/index.js';
import { getBackend } from './helpers/backends.js';
import { removeTranspiledLibrary, transpiledLibrary } from './helpers/transpile.js';

const KILLS = 20;
const CONFIG = { vocab: 50, dModel: 64, nHeads: 4, numLayers: 2, dFF: 256, dropout: 0.1, maxLen: 32 };

/** FNV-1a over the float32 bytes of every parameter and Adam moment, and the step. Kept
 * free of imports: its source is also pasted into the child script. */
function hashState(model: { parameters(): { data(): ArrayLike<number> }[] }, optimizer: { stateEntries(): { m: unknown; v: unknown; step: number }[] }, read: (s: unknown) => ArrayLike<number>, step: number): string {
  let h = 0x811c9dc5;
  const eat = (values: ArrayLike<number>): void => {
    const bytes = new Uint8Array(Float32Array.from(values).buffer);
    for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193) >>> 0;
  };
  for (const p of model.parameters()) eat(p.data());
  for (const e of optimizer.stateEntries()) {
    eat(read(e.m));
    eat(read(e.v));
    eat([e.step]);
  }
  eat([step]);
  return h.toString(16);
}

const CHILD = (libDir: string): string => `
import { existsSync, writeSync } from 'node:fs';
const lib = await import(${JSON.stringify(`${libDir}/ts/index.js`)});
const [path, backendName] = process.argv.slice(2);
const backend = await lib.loadBackend(backendName);
const model = new lib.nn.DecoderLM(${JSON.stringify(CONFIG)}, { backend, rng: new lib.nn.Rng(1) });
const optimizer = new lib.optim.Adam(model.parameters());
const trainer = new lib.train.Trainer({ model, optimizer, loss: lib.train.lmLoss(), clipNorm: 1 });
const hashState = ${hashState.toString()};
const say = (line) => writeSync(1, line + '\\n'); // synchronous: nothing is lost to a SIGKILL
if (existsSync(path)) trainer.step = (await lib.train.loadCheckpoint(path, { model, optimizer })).step;
say('resumed ' + trainer.step);
const rng = new lib.nn.Rng(7);
for (;;) {
  const ids = rng.uniform(8 * 17, 0, 50);
  const rows = Array.from({ length: 8 }, (_, r) => Array.from(ids.subarray(r * 17, r * 17 + 17), (x) => Math.min(49, Math.floor(x))));
  const batch = lib.train.lmBatch(rows, { backend });
  trainer.trainStep(batch);
  lib.dispose(batch);
  say('begin ' + trainer.step + ' ' + hashState(model, optimizer, (s) => backend.read(s), trainer.step));
  await lib.train.saveCheckpoint(path, { model, optimizer, step: trainer.step });
  say('saved ' + trainer.step);
}
`;

const dir = mkdtempSync(join(tmpdir(), 'ferro-kill-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  removeTranspiledLibrary();
});

/** Seeded delays (ms). */
function delays(seed: number, n: number, max: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % max;
  });
}

interface ChildLog {
  begun: Map<number, string>;
  lastSaved: number;
  lastBegun: number;
  resumedAt: number;
}

function runChild(script: string, path: string, backendName: string, log: ChildLog, until: (line: string) => boolean): { child: ChildProcess; reached: Promise<void>; exited: Promise<void> } {
  const child = spawn(process.execPath, [script, path, backendName], { stdio: ['ignore', 'pipe', 'pipe'] });
  let buffer = '';
  let stderr = '';
  let resolveReached!: () => void;
  const reached = new Promise<void>((r) => (resolveReached = r));
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      const [kind, step, hash] = line.split(' ');
      if (kind === 'begin') {
        log.begun.set(Number(step), hash!);
        log.lastBegun = Number(step);
      } else if (kind === 'saved') log.lastSaved = Number(step);
      else if (kind === 'resumed') log.resumedAt = Number(step);
      if (until(line)) resolveReached();
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve, reject) => {
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve();
      else reject(new Error(`child exited by itself (code ${code}, signal ${signal}): ${stderr}`));
    });
  });
  return { child, reached, exited };
}

for (const backendName of ['native', 'wasm'] as const) {
  it(`a checkpoint survives ${KILLS} SIGKILLs at random points of training and saving [${backendName}]`, async () => {
    const libDir = transpiledLibrary();
    const script = join(libDir, 'kill_child.mjs');
    writeFileSync(script, CHILD(libDir));
    const runDir = mkdtempSync(join(dir, `${backendName}-`));
    const path = join(runDir, 'ckpt.safetensors');
    const backend = await getBackend(backendName);
    const model = new nn.DecoderLM(CONFIG, { backend, rng: new nn.Rng(99) });
    const optimizer = new optim.Adam(model.parameters());
    const log: ChildLog = { begun: new Map(), lastSaved: -1, lastBegun: -1, resumedAt: -1 };
    let midSave = 0;
    let maxLitter = 0;
    const waits = delays(2024, KILLS, 300);
    for (let k = 0; k < KILLS; k++) {
      log.lastSaved = -1;
      log.lastBegun = -1;
      // The first child must complete one save (there is no file before it); later ones are
      // killed at a random moment after they resumed, possibly before their first save.
      const { child, reached, exited } = runChild(script, path, backendName, log, (line) => (k === 0 ? line.startsWith('saved') : line.startsWith('resumed')));
      await Promise.race([reached, exited]);
      await new Promise((r) => setTimeout(r, waits[k]));
      child.kill('SIGKILL');
      await exited;
      if (log.lastBegun > log.lastSaved) midSave++;

      expect(existsSync(path)).toBe(true);
      const { step } = await loadCheckpoint(path, { model, optimizer });
      // Atomic: the newest completed save or the one in flight (renamed before the kill), never
      // anything older than what the child reported as saved, never a torn file.
      const floor = log.lastSaved >= 0 ? log.lastSaved : log.resumedAt;
      expect(step).toBeGreaterThanOrEqual(floor);
      expect(step).toBeLessThanOrEqual(Math.max(log.lastBegun, log.resumedAt));
      expect(log.begun.has(step)).toBe(true);
      expect(hashState(model, optimizer, (s) => backend.read(s as never), step)).toBe(log.begun.get(step));
      const litter = readdirSync(runDir).filter((n) => n.endsWith('.tmp')).length;
      maxLitter = Math.max(maxLitter, litter);
      expect(litter).toBeLessThanOrEqual(1);
    }
    console.log(`kill test [${backendName}]: ${KILLS} kills, ${midSave} between 'begin' and 'saved', last step ${log.lastBegun}, at most ${maxLitter} temp file(s) left at once`);
    // The next save (another process) removes what the last killed child left.
    await saveCheckpoint(path, { model, optimizer, step: 0 });
    expect(readdirSync(runDir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  }, 180_000);
}
