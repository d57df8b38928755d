// The GPT-2 page (web/gpt2.html) in Debian's Chromium: Vite builds web/, the fixture folder
// (FERRO_HF_FIXTURES, default test/fixtures/hf_gpt2_public) is copied into the build and
// served by web/serve.mjs, and the page loads it by URL (fetch, weights streamed into wasm
// memory), encodes each expected.json prompt with the checkpoint's tokenizer.json and
// generates greedily: the prompt ids and the new ids must equal transformers' generate().
// Also the checkpoint the build ships (models/tiny-gpt2/) loads and generates.
// Needs Chromium (`apt-get install chromium`, or CHROMIUM_PATH) and a current dist/.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { serveDemo } from '../web/serve.mjs';
import { hfFixtureDir, loadHfExpected } from './helpers/hf_fixtures.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const chromiumPath = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Files fromPretrained asks for that a checkpoint may lack (a 404 there is expected). */
const OPTIONAL = ['tokenizer_config.json', 'vocab.json', 'merges.txt', 'special_tokens_map.json', 'generation_config.json'];

let outDir = '';
let browser: Browser | undefined;
let server: Server | undefined;
let origin = '';

beforeAll(async () => {
  if (!existsSync(chromiumPath)) {
    throw new Error(`GPT-2 browser test: no Chromium at ${chromiumPath}; install it with \`apt-get install -y chromium\` or set CHROMIUM_PATH`);
  }
  if (!existsSync(join(repo, 'dist/browser.js'))) throw new Error('GPT-2 browser test: dist/browser.js is missing; run `npm run build:ts`');
  outDir = mkdtempSync(join(tmpdir(), 'ferroformer-gpt2-web-'));
  const build = spawnSync(process.execPath, [join(repo, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'web/vite.config.ts',
    '--outDir', outDir, '--emptyOutDir', '--logLevel', 'error'], { cwd: repo, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`GPT-2 browser test: vite build failed (${build.status})\n${build.stdout}\n${build.stderr}`);
  const served = join(outDir, 'models', 'under-test');
  mkdirSync(served, { recursive: true });
  for (const file of readdirSync(hfFixtureDir())) {
    if (!file.startsWith('expected.')) copyFileSync(join(hfFixtureDir(), file), join(served, file));
  }
  server = await serveDemo({ dir: outDir, port: 0, isolation: false });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (server) await new Promise((done) => server!.close(done));
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

interface PageRun {
  status: string;
  detail: string;
  promptIds: number[];
  newIds: number[];
  text: string;
  errors: string[];
  requested: string[];
  loadStats: { peakScratchBytes: number; largestTensorBytes: number; weightBytes: number } | null;
}

/** Opens gpt2.html with the query, waits for done or error, and reads the page. */
async function runPage(query: Record<string, string>, setup?: (page: Page) => Promise<void>): Promise<PageRun> {
  const context = await browser!.newContext();
  const page: Page = await context.newPage();
  await setup?.(page);
  const errors: string[] = [];
  const requested: string[] = [];
  const missing = new Set<string>();
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('response', (r) => {
    requested.push(new URL(r.url()).pathname);
    if (r.status() >= 400) {
      const name = r.url().split('/').pop()!;
      if (r.status() === 404 && OPTIONAL.includes(name)) missing.add(r.url());
      else errors.push(`HTTP ${r.status()} for ${r.url()}`);
    }
  });
  page.on('console', (m) => {
    // Chromium logs every 404 as a console error; an optional file's is expected.
    const isExpected404 = m.text().includes('404') && [...missing].some((u) => m.location().url === u);
    if (m.type() === 'error' && !isExpected404) errors.push(`console: ${m.text()}`);
  });
  await page.goto(`${origin}/gpt2.html?${new URLSearchParams(query)}`);
  await page.waitForFunction(() => ['done', 'error'].includes(document.querySelector('[data-testid=gpt2-status]')?.textContent ?? ''), null, { timeout: 90_000 });
  const get = (id: string): Promise<string> => page.locator(`[data-testid=${id}]`).innerText();
  const run: PageRun = {
    status: await get('gpt2-status'),
    detail: await page.locator('#gpt2-detail').innerText(),
    promptIds: JSON.parse((await get('gpt2-prompt-ids')) || '[]') as number[],
    newIds: JSON.parse((await get('gpt2-ids')) || '[]') as number[],
    text: await get('gpt2-text'),
    errors,
    requested,
    loadStats: JSON.parse((await get('gpt2-load-stats')) || 'null') as PageRun['loadStats'],
  };
  await context.close();
  return run;
}

describe('GPT-2 page (Chromium, wasm backend)', () => {
  const expected = loadHfExpected();
  expected.prompts.forEach((prompt, j) => {
    it(`prompt${j} greedy tokens equal transformers' generate() [wasm, browser]`, async () => {
      const run = await runPage({ model: './models/under-test/', prompt: prompt.text, tokens: String(prompt.greedy_new_ids.length) });
      expect(run.status, run.detail).toBe('done');
      expect(run.errors).toEqual([]);
      expect(run.promptIds).toEqual(prompt.input_ids);
      // generate() stops at EOS; the fixture says whether it did.
      expect(run.newIds).toEqual(prompt.greedy_new_ids);
      expect(run.requested).toContain('/models/under-test/model.safetensors');
      expect(run.requested).toContain('/models/under-test/tokenizer.json');
      // Streamed from fetch into wasm memory: the scratch besides the weights is one tensor
      // gathered for transposition plus one conversion block (ts/models/weights_stream.ts's
      // TRANSPOSE_BLOCK, 256 KiB of float32), never a second copy of the file.
      const keys = expected.model.safetensors_keys;
      const config = expected.model.config as { tie_word_embeddings: boolean };
      const stored = Object.entries(keys).filter(([name]) => name !== 'lm_head.weight' || !config.tie_word_embeddings);
      const floats = stored.map(([, shape]) => shape.reduce((a, b) => a * b, 1));
      expect(run.loadStats!.weightBytes).toBe(4 * floats.reduce((a, b) => a + b, 0));
      expect(run.loadStats!.largestTensorBytes).toBe(4 * Math.max(...floats));
      expect(run.loadStats!.peakScratchBytes).toBeLessThanOrEqual(run.loadStats!.largestTensorBytes + 4 * 65536);
      expect(run.loadStats!.peakScratchBytes).toBeLessThan(run.loadStats!.weightBytes / 2);
    }, 120_000);
  });

  it("a Hub name loads from huggingface.co's resolve/main/ URLs (answered by the test) [wasm, browser]", async () => {
    const prompt = expected.prompts[0]!;
    const hub = 'https://huggingface.co/ferro-test/tiny-gpt2/resolve/main/';
    const answered: string[] = [];
    const run = await runPage({ model: 'ferro-test/tiny-gpt2', prompt: prompt.text, tokens: String(prompt.greedy_new_ids.length) }, async (page) => {
      // Nothing leaves the machine: Chromium's requests to the Hub are answered from the fixture folder.
      await page.route('https://huggingface.co/**', async (route) => {
        const url = route.request().url();
        const name = url.startsWith(hub) ? url.slice(hub.length) : '';
        const file = join(hfFixtureDir(), name);
        answered.push(url);
        const cors = { 'access-control-allow-origin': '*' };
        if (name === '' || name.startsWith('expected.') || name.includes('/') || !existsSync(file)) {
          await route.fulfill({ status: 404, headers: cors, body: 'Entry not found' });
        } else {
          await route.fulfill({ status: 200, headers: cors, body: readFileSync(file) });
        }
      });
    });
    expect(run.status, run.detail).toBe('done');
    expect(run.errors).toEqual([]);
    expect(answered).toContain(`${hub}model.safetensors`);
    expect(answered).toContain(`${hub}tokenizer.json`);
    expect(run.newIds).toEqual(prompt.greedy_new_ids);
  }, 120_000);

  it('the checkpoint shipped with the build loads and samples [wasm, browser]', async () => {
    const run = await runPage({ mode: 'sample', tokens: '8' });
    expect(run.status, run.detail).toBe('done');
    expect(run.errors).toEqual([]);
    expect(run.newIds.length).toBeGreaterThan(0);
    expect(run.newIds.length).toBeLessThanOrEqual(8);
    expect(run.requested).toContain('/models/tiny-gpt2/model.safetensors');
  }, 120_000);

  it('a folder without a checkpoint is reported on the page with the URL', async () => {
    const run = await runPage({ model: './models/none/' });
    expect(run.status).toBe('error');
    expect(run.detail).toMatch(/models\/none\/config\.json.*404/);
  }, 120_000);
});
