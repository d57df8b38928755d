// W4-W6 against PyTorch eager step by step: both implementations set up once, each in a process
// of its own that waits on its stdin, and the parent alternates short slices of training steps
// between them (ours then PyTorch's, then PyTorch's then ours, ...), so that each pair of slices
// runs within a second or two of each other. A run of the whole plan compares processes that
// ran minutes apart, and on a shared VM the speed of the same binary moves by 20-40% from
// minute to minute; a pair of adjacent slices sees the same machine. Each slice's figure is the
// median of its step times; the ratio is the median over pairs of PyTorch's slice over ours
// (above 1: ferroformer faster), with the spread of the pairs beside it. Only one process
// computes at a time: the other is blocked reading its next command.
//
// The same protocol compares our two thread counts (native ×2 against ×1, W4 and W5).
//
// Protocol (both sides): the server prints one JSON line {"ready": true, "losses": [first two
// steps' losses], "params"} after setting up and warming up, then answers each line `run K`
// with {"ms": [K step times]} and exits at `quit`.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { benchPython, median } from './common.mjs';
import { PYTORCH_SCRIPT, pytorchEnv, writePytorchJobs } from './pytorch_jobs.mjs';

/** Slices per duel and steps per slice: about half a second of work per slice (W6 is seconds
 * per step: one step per slice). The pair ratios spread over ±20% on a shared host, so the
 * median needs a couple of dozen pairs to settle within a few percent (W6: 12, ~1 min).
 * Before the pairs each side runs `warmup` untimed steps (beyond its server's own two): V8
 * compiles the step's hot JavaScript with its optimizing tier only after some 20-200 steps
 * (W5: ~3-6 ms of JS per step until step 40, ~0.7 from step 320; bench/notes.md), and a
 * training run lasts thousands of steps, so the pairs compare steady states. At W6 the JS is
 * ~1% of a step. */
const PLAN = {
  W4: { slices: 24, steps: 6, warmup: 100 },
  W5: { slices: 24, steps: 6, warmup: 100 },
  W6: { slices: 12, steps: 1, warmup: 2 },
};

/** The server side for ferroformer: after `losses` (the warm-up steps), answers `run K` with
 * K timed calls of `step`. */
export async function serveSteps(step, { losses, params }) {
  process.stdout.write(`${JSON.stringify({ ready: true, losses, params })}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    const [command, count] = line.trim().split(/\s+/);
    if (command !== 'run') break;
    const ms = [];
    for (let i = 0; i < Number(count); i++) {
      const t0 = performance.now();
      step();
      ms.push(performance.now() - t0);
    }
    process.stdout.write(`${JSON.stringify({ ms })}\n`);
  }
}

/** A server process: `request(line)` sends a command and resolves with its JSON answer. */
function server(command, argv, env) {
  const child = spawn(command, argv, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const answers = [];
  let waiting = null;
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  // A server that died already closed its stdin: the exit is reported through `exited`.
  child.stdin.on('error', () => {});
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (!line.startsWith('{')) return;
    const answer = JSON.parse(line);
    if (waiting) { const w = waiting; waiting = null; w.resolve(answer); } else answers.push(answer);
  });
  const exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  const next = () => (answers.length ? Promise.resolve(answers.shift())
    : new Promise((resolve, reject) => {
      waiting = { resolve };
      exited.then((code) => reject(new Error(`${command} exited ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`)));
    }));
  return {
    ready: next,
    request: (line) => { child.stdin.write(`${line}\n`); return next(); },
    close: async () => { child.stdin.end('quit\n'); await exited; },
  };
}

/** One duel: `workload` on two servers, ours ([command, argv, env]) against a peer, named
 * `peer` in the record; `threads` is ours. */
async function duel(workload, threads, [oursCommand, oursArgv, oursEnv], [peerCommand, peerArgv, peerEnv], peerName, quick) {
  const { slices, steps, warmup } = PLAN[workload];
  const ours = server(oursCommand, oursArgv, oursEnv);
  const peer = server(peerCommand, peerArgv, peerEnv);
  try {
    const [oursReady, peerReady] = [await ours.ready(), await peer.ready()];
    await ours.request(`run ${warmup}`);
    await peer.request(`run ${warmup}`);
    const pairs = [];
    for (let i = 0; i < (quick ? Math.ceil(slices / 2) : slices); i++) {
      const order = i % 2 === 0 ? [ours, peer] : [peer, ours];
      const [first, second] = [await order[0].request(`run ${steps}`), await order[1].request(`run ${steps}`)];
      const [o, p] = i % 2 === 0 ? [first, second] : [second, first];
      pairs.push({ oursMs: median(o.ms), peerMs: median(p.ms) });
    }
    const ratios = pairs.map((x) => x.peerMs / x.oursMs);
    return {
      kind: 'duel', workload, threads, peer: peerName, steps, warmup, pairs, date: new Date().toISOString(), load: loadavg()[0],
      ratio: median(ratios), ratioMin: Math.min(...ratios), ratioMax: Math.max(...ratios),
      oursMs: median(pairs.map((x) => x.oursMs)), peerMs: median(pairs.map((x) => x.peerMs)),
      oursLosses: oursReady.losses, peerLosses: peerReady.losses, params: [oursReady.params, peerReady.params],
    };
  } finally {
    await Promise.all([ours.close(), peer.close()]);
  }
}

/** Our native server for `workload` at `threads`. */
function native(workload, threads) {
  const runner = fileURLToPath(new URL('../runners/ferroformer.mjs', import.meta.url));
  return [process.execPath, [runner, '--backend=native', `--threads=${threads}`, `--serve=${workload}`], process.env];
}

/** Native ×2 against native ×1 for these (W6's pair would take minutes; its plan rows show it). */
const THREAD_DUELS = ['W4', 'W5'];

/** Every duel of `workloads` (W4, W5, W6 among them): against PyTorch eager at 1 and 2
 * threads, and ×2 against ×1 (THREAD_DUELS); a duel that cannot run gives a failure record
 * with the reason. */
export async function runDuels(workloads, { quick = false, log = () => {} } = {}) {
  const python = benchPython();
  const records = [];
  const dir = mkdtempSync(join(tmpdir(), 'ferro-bench-duel-'));
  try {
    const jobs = writePytorchJobs(dir, { want: (w) => w in PLAN && workloads.includes(w), quick });
    const run = async (workload, threads, peerServer, peerName, what) => {
      try {
        const record = await duel(workload, threads, native(workload, threads), peerServer, peerName, quick);
        log(`  duel ${workload} ${what}: ours ${record.oursMs.toFixed(1)} ms/step, ${peerName} ${record.peerMs.toFixed(1)}: ${record.ratio.toFixed(2)}x (pairs ${record.ratioMin.toFixed(2)}-${record.ratioMax.toFixed(2)})\n`);
        records.push(record);
      } catch (e) {
        records.push({ kind: 'failure', workload, implementation: 'duel', backend: `native / ${peerName}`, threads, reason: String(e?.message ?? e) });
      }
    };
    for (const [spec, workload] of jobs) {
      for (const threads of [1, 2]) {
        if (python === null) {
          records.push({ kind: 'failure', workload, implementation: 'duel', backend: 'native / PyTorch eager', threads, reason: 'PyTorch is not installed: run `node bench/install.mjs`' });
          continue;
        }
        const peer = [python, [PYTORCH_SCRIPT, 'serve', dir, 'eager', String(threads), spec], pytorchEnv(threads)];
        await run(workload, threads, peer, 'PyTorch eager', `x${threads}`);
      }
      // Two threads against one, the same way (the goal that two threads never lose).
      if (THREAD_DUELS.includes(workload)) await run(workload, 2, native(workload, 1), 'ferroformer native ×1', 'x2 against x1');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return records;
}
