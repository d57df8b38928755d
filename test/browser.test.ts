// The browser demo in a real browser: builds web/ with Vite (which bundles the package's
// "browser" entry and the .wasm files it finds through new URL(..., import.meta.url)),
// serves it with and without cross-origin isolation, and drives Debian's Chromium through
// playwright-core. Each page trains in a Web Worker on the wasm backend; the test follows
// [data-testid=step] and [data-testid=loss], expects the loss to fall, status to read
// `done`, no console errors, the mode the page says it ran in (the threaded module with
// several threads when isolated, one thread otherwise, and a sentence on where the kernels
// ran that agrees with the Web Workers' task count), a held-out curve of plain cross-entropy,
// and a page no wider than the 1400 px window.
// Needs Chromium (`apt-get install chromium`; .ci/run installs it) or CHROMIUM_PATH, and a
// current dist/ (`npm run build:ts`; npm install runs it).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveDemo } from '../web/serve.mjs';

const repo = fileURLToPath(new URL('..', import.meta.url));
const chromiumPath = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];
/** Small enough for a shared 2-core machine; the demo's own default is longer. */
const STEPS = 150;
const EVAL_EVERY = 50;

interface Reading { step: number; loss: number }

let outDir = '';
let browser: Browser | undefined;
const servers: Server[] = [];

function listen(isolation: boolean): Promise<Server> {
  return serveDemo({ dir: outDir, port: 0, isolation }).then((server) => {
    servers.push(server);
    return server;
  });
}

beforeAll(async () => {
  if (!existsSync(chromiumPath)) {
    throw new Error(`browser test: no Chromium at ${chromiumPath}. Install it with \`apt-get install -y chromium\` ` +
      '(.ci/run does), or point CHROMIUM_PATH at a Chromium binary.');
  }
  if (!existsSync(join(repo, 'dist/browser.js'))) {
    throw new Error('browser test: dist/browser.js is missing; run `npm run build:ts` (npm install runs it)');
  }
  outDir = mkdtempSync(join(tmpdir(), 'ferroformer-web-'));
  const build = spawnSync(process.execPath, [join(repo, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'web/vite.config.ts',
    '--outDir', outDir, '--emptyOutDir', '--logLevel', 'error'], { cwd: repo, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`browser test: vite build failed (${build.status})\n${build.stdout}\n${build.stderr}`);
  browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all(servers.map((s) => new Promise((done) => s.close(done))));
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

/** Loads the demo, follows it until `done` (or an error), and returns what it saw. */
async function runDemo(isolation: boolean): Promise<{ page: Page; readings: Reading[]; errors: string[]; status: string }> {
  const server = await listen(isolation);
  const { port } = server.address() as AddressInfo;
  const context = await browser!.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) errors.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  await page.goto(`http://127.0.0.1:${port}/?steps=${STEPS}&evalEvery=${EVAL_EVERY}`);
  const readings: Reading[] = [];
  const deadline = Date.now() + 90_000;
  let status = '';
  while (Date.now() < deadline) {
    const seen = await page.evaluate(() => {
      const get = (id: string): string => document.querySelector(`[data-testid=${id}]`)?.textContent ?? '';
      return { status: get('status'), step: Number(get('step')), loss: Number(get('loss')) };
    });
    status = seen.status;
    if (seen.step > 0 && Number.isFinite(seen.loss) && seen.step !== readings.at(-1)?.step) readings.push({ step: seen.step, loss: seen.loss });
    if (status === 'done' || status === 'error') break;
    await page.waitForTimeout(200);
  }
  return { page, readings, errors, status };
}

/** Mean loss of the readings within the first (or last) fifth of the run. */
function meanLoss(readings: Reading[], from: number, to: number): number {
  const picked = readings.filter((r) => r.step >= from && r.step <= to);
  expect(picked.length, `readings between steps ${from} and ${to}: ${JSON.stringify(readings)}`).toBeGreaterThan(0);
  return picked.reduce((s, r) => s + r.loss, 0) / picked.length;
}

describe('browser demo (Chromium, wasm backend in a Web Worker)', () => {
  it("Vite bundles the package's browser entry with both wasm modules, and nothing of the Node entry", () => {
    const assets = readdirSync(join(outDir, 'assets'));
    const wasm = assets.filter((f) => f.endsWith('.wasm'));
    expect(wasm, assets.join(', ')).toHaveLength(2);
    expect(wasm.filter((f) => /^ferroformer-threads-/.test(f))).toHaveLength(1);
    expect(wasm.filter((f) => /^ferroformer-(?!threads-)/.test(f))).toHaveLength(1);
    expect(assets.filter((f) => f.endsWith('.node') || f.startsWith('native'))).toEqual([]);
  });

  for (const isolation of [true, false]) {
    it(isolation ? 'cross-origin isolated: threaded module, several threads' : 'not isolated: single-threaded module', async () => {
      const { page, readings, errors, status } = await runDemo(isolation);
      const text = (id: string): Promise<string> => page.locator(`[data-testid=${id}]`).innerText();
      expect(errors).toEqual([]);
      expect(status, await page.locator('#detail').innerText()).toBe('done');

      // Which mode it ran in.
      expect(await text('isolated')).toBe(String(isolation));
      const threads = Number(await text('threads'));
      const detail = await page.locator('#detail').innerText();
      const note = page.locator('[data-testid=threads-note]');
      const workerTasks = Number(await note.getAttribute('data-worker-tasks'));
      const sentence = await note.innerText();
      if (isolation) {
        expect(threads).toBeGreaterThan(1);
        expect(detail).toContain('threaded module');
        expect(detail).not.toContain('single-threaded');
        // Small kernel calls stay on the calling thread, so the Web Workers may have had none.
        if (workerTasks > 0) expect(sentence).toContain(`${threads - 1} Web Worker`);
        else expect(sentence).toContain(`no kernel call was large enough to be worth splitting across the ${threads} threads`);
      } else {
        expect(threads).toBe(1);
        expect(detail).toContain('single-threaded module');
        expect(workerTasks).toBe(0);
        expect(sentence).toBe("Kernels ran on the training worker's thread.");
      }
      // A sentence, not a counter.
      expect(sentence).not.toMatch(/\d{3,}/);

      // The held-out curve is plain cross-entropy (the CLI's measure): a model that gets most
      // examples right scores far below its training loss against label-smoothed targets, which
      // cannot go below 0.54 nats here (ε 0.1 over 13 classes).
      expect(Number(await text('heldout'))).toBeLessThan(0.8 * Number(await text('loss')));

      // Nothing sticks out of a 1400 px window.
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1400);

      // The loss, read off the page as it trained, falls.
      expect(readings.at(-1)?.step).toBe(STEPS);
      expect(readings.length, JSON.stringify(readings)).toBeGreaterThanOrEqual(5);
      const early = meanLoss(readings, 1, readings[0]!.step + STEPS / 5);
      const late = meanLoss(readings, STEPS - STEPS / 5, STEPS);
      expect(late, JSON.stringify(readings)).toBeLessThan(early * 0.75);
      expect(Number(await text('loss'))).toBeLessThan(readings[0]!.loss);

      // The pictures and samples are there: the loss curve and every attention block.
      expect(await page.locator('#loss-chart svg path').count()).toBeGreaterThan(0);
      expect(await page.locator('#attention-chart svg').count()).toBe(1);
      expect(await page.locator('#samples tbody tr').count()).toBe(4);
      await page.context().close();
    }, 120_000);
  }
});
