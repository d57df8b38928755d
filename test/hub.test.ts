// The Hub download and cache against a local server on 127.0.0.1 that serves the fixture
// folder in the Hub's layout (<repo>/resolve/<revision>/<file>, X-Repo-Commit and ETag
// headers, model.safetensors redirected to a "CDN" path as the Hub does for large files).
// HF_ENDPOINT points at it and the cache lives in a temporary folder; nothing reaches the internet.

import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import type { BackendName } from '../ts/backend/backend.js';
import * as generate from '../ts/generate/index.js';
import { GPT2LMHeadModel } from '../ts/models/gpt2.js';
import { downloadPretrained, hubCacheDir, HubError, hubFiles, resolvePretrained } from '../ts/models/hub.js';
import { ConfigError } from '../ts/tensor/errors.js';
import { HFTokenizer } from '../ts/tokenizers/hf.js';
import { getBackend } from './helpers/backends.js';
import { hfFixtureDir, loadHfExpected } from './helpers/hf_fixtures.js';

const REPO = 'ferro-test/tiny-gpt2';
const COMMIT = 'a'.repeat(40);
/** What the server says and sends: tests move the branch or corrupt the weights. */
const served = { commit: COMMIT, corruptWeights: false };
const FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'vocab.json', 'merges.txt'];

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const fixtureBytes = (name: string): Buffer => readFileSync(path.join(hfFixtureDir(), name));

let server: Server;
let endpoint: string;
let requests: string[] = [];
let cacheDir: string;
const savedEnv: Record<string, string | undefined> = {};

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = req.url ?? '';
    requests.push(url);
    const cdn = /^\/cdn\/(.+)$/.exec(url);
    if (cdn) {
      const body = Buffer.from(fixtureBytes(cdn[1]!));
      if (served.corruptWeights) body[body.length - 1] ^= 1;
      res.writeHead(200, { 'content-length': body.length, etag: `"${sha256(body)}"` });
      res.end(body);
      return;
    }
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url);
    if (!m || m[1] !== REPO || m[2] !== 'main') {
      res.writeHead(404, { 'content-type': 'text/plain', 'x-error-code': 'RepoNotFound' });
      res.end('Repository not found');
      return;
    }
    const file = m[3]!;
    if (!FILES.includes(file) || !existsSync(path.join(hfFixtureDir(), file))) {
      res.writeHead(404, { 'x-repo-commit': served.commit, 'x-error-code': 'EntryNotFound' });
      res.end('Entry not found');
      return;
    }
    const body = fixtureBytes(file);
    if (file === 'model.safetensors') {
      // As the Hub serves LFS files: a redirect carrying the commit and the blob's etag.
      res.writeHead(302, { location: `/cdn/${file}`, 'x-repo-commit': served.commit, 'x-linked-etag': `"${sha256(body)}"`, 'x-linked-size': body.length });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-length': body.length, 'x-repo-commit': served.commit, etag: `"${sha256(body).slice(0, 40)}"` });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  for (const key of ['HF_ENDPOINT', 'HF_HUB_CACHE', 'HF_HOME', 'HF_HUB_OFFLINE']) savedEnv[key] = process.env[key];
  cacheDir = mkdtempSync(path.join(tmpdir(), 'ferro-hub-'));
  process.env['HF_ENDPOINT'] = endpoint;
  process.env['HF_HUB_CACHE'] = cacheDir;
  delete process.env['HF_HUB_OFFLINE'];
  requests = [];
  served.commit = COMMIT;
  served.corruptWeights = false;
});

afterEach(() => {
  for (const [key, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  rmSync(cacheDir, { recursive: true, force: true });
});

describe('Hub download into the cache', () => {
  it('downloadPretrained writes the Hub layout and the files equal the served ones', async () => {
    const dir = await downloadPretrained(REPO, { progress: false });
    const root = path.join(cacheDir, 'models--ferro-test--tiny-gpt2');
    expect(dir).toBe(path.join(root, 'snapshots', COMMIT));
    expect(readFileSync(path.join(root, 'refs', 'main'), 'utf8')).toBe(COMMIT);
    for (const file of ['config.json', 'model.safetensors', 'tokenizer.json', 'vocab.json', 'merges.txt']) {
      expect(sha256(readFileSync(path.join(dir, file))), file).toBe(sha256(fixtureBytes(file)));
      expect(lstatSync(path.join(dir, file)).isSymbolicLink(), file).toBe(true);
    }
    // The weights' blob is named by the redirect's X-Linked-Etag, the link is relative.
    const weightsSha = sha256(fixtureBytes('model.safetensors'));
    expect(readlinkSync(path.join(dir, 'model.safetensors'))).toBe(path.join('..', '..', 'blobs', weightsSha));
    expect(requests).toContain('/cdn/model.safetensors');
  });

  it('a second call is served from the cache without a request', async () => {
    const first = await downloadPretrained(REPO, { progress: false });
    const count = requests.length;
    expect(count).toBeGreaterThanOrEqual(FILES.length);
    const again = await resolvePretrained(REPO, { progress: false });
    expect(again.dir).toBe(first);
    expect(requests.length).toBe(count);
  });

  it('hubFiles downloads lazily: read, stream and readOptional', async () => {
    const files = await hubFiles(REPO, { progress: false });
    expect(requests).toEqual([]);
    const config = JSON.parse(new TextDecoder().decode(await files.read('config.json'))) as { n_layer: number };
    expect(config.n_layer).toBe((loadHfExpected().model.config as { n_layer: number }).n_layer);
    expect(requests).toEqual([`/${REPO}/resolve/main/config.json`]);

    const seen: number[] = [];
    const weights = await files.stream('model.safetensors', (loaded) => seen.push(loaded));
    const parts: Uint8Array[] = [];
    for await (const chunk of weights.chunks) parts.push(chunk);
    const bytes = Buffer.concat(parts);
    expect(weights.length).toBe(bytes.length);
    expect(sha256(bytes)).toBe(sha256(fixtureBytes('model.safetensors')));
    expect(seen.at(-1)).toBe(bytes.length);

    expect(await files.readOptional('pytorch_model.bin')).toBeNull();
    const count = requests.length;
    expect(await (await hubFiles(REPO)).readOptional('pytorch_model.bin')).toBeNull();
    expect(requests.length).toBe(count); // absence cached in .no_exist
  });

  it('cache: false (what a browser gets) fetches every read from the endpoint and writes nothing', async () => {
    const files = await hubFiles(REPO, { cache: false });
    expect(new TextDecoder().decode(await files.read('config.json'))).toBe(fixtureBytes('config.json').toString('utf8'));
    await files.read('config.json');
    expect(requests).toEqual([`/${REPO}/resolve/main/config.json`, `/${REPO}/resolve/main/config.json`]);
    expect(await files.readOptional('pytorch_model.bin')).toBeNull();
    expect(readdirSync(cacheDir)).toEqual([]);
  });

  it('the tokenizer from the downloaded folder gives the fixture ids', async () => {
    const files = await hubFiles(REPO, { progress: false });
    const text = (b: Uint8Array): string => new TextDecoder().decode(b);
    const tok = HFTokenizer.fromJSON(text(await files.read('tokenizer.json')), text(await files.read('tokenizer_config.json')));
    for (const s of loadHfExpected().strings) expect(tok.encode(s.text)).toEqual(s.ids);
  });

  it('a progress callback sees every byte of each file', async () => {
    const last = new Map<string, [number, number | null]>();
    await downloadPretrained(REPO, { progress: (file, loaded, total) => last.set(file, [loaded, total]) });
    const size = fixtureBytes('model.safetensors').length;
    expect(last.get('model.safetensors')).toEqual([size, size]);
  });

  it('HF_HUB_OFFLINE uses the cache, and names the cache when a file is not there', async () => {
    await downloadPretrained(REPO, { progress: false });
    process.env['HF_HUB_OFFLINE'] = '1';
    const count = requests.length;
    const { dir } = await resolvePretrained(REPO);
    expect(existsSync(path.join(dir, 'model.safetensors'))).toBe(true);
    expect(requests.length).toBe(count);
    const err = await downloadPretrained('ferro-test/other').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as Error).message).toMatch(/offline mode.*models--ferro-test--other/);
  });
});

describe('Hub cache consistency', () => {
  it('a branch that moved after a partial download gives one complete snapshot of the new commit', async () => {
    await (await hubFiles(REPO, { progress: false })).read('config.json');
    const moved = 'b'.repeat(40);
    served.commit = moved;
    const dir = await downloadPretrained(REPO, { progress: false });
    const root = path.join(cacheDir, 'models--ferro-test--tiny-gpt2');
    expect(dir).toBe(path.join(root, 'snapshots', moved));
    expect(readFileSync(path.join(root, 'refs', 'main'), 'utf8')).toBe(moved);
    for (const file of ['config.json', 'model.safetensors', 'tokenizer.json']) expect(existsSync(path.join(dir, file)), file).toBe(true);
  });

  it('weights that do not hash to the announced SHA-256 are refused and not cached', async () => {
    served.corruptWeights = true;
    const err = (await downloadPretrained(REPO, { progress: false }).catch((e: unknown) => e)) as HubError;
    expect(err).toBeInstanceOf(HubError);
    expect(err.message).toMatch(/model\.safetensors is corrupt: its SHA-256 is [0-9a-f]{64}, the server announced [0-9a-f]{64}/);
    const root = path.join(cacheDir, 'models--ferro-test--tiny-gpt2');
    expect(existsSync(path.join(root, 'snapshots', COMMIT, 'model.safetensors'))).toBe(false);
    expect(readdirSync(path.join(root, 'blobs')).filter((f) => f.endsWith('.incomplete'))).toEqual([]);
    served.corruptWeights = false;
    const dir = await downloadPretrained(REPO, { progress: false });
    expect(sha256(readFileSync(path.join(dir, 'model.safetensors')))).toBe(sha256(fixtureBytes('model.safetensors')));
  });
});

describe('Hub errors', () => {
  it('a missing repository is a HubError with the URL and status 404', async () => {
    const err = await downloadPretrained('ferro-test/missing', { progress: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect(err).toBeInstanceOf(ConfigError);
    const hubErr = err as HubError;
    expect(hubErr.status).toBe(404);
    expect(hubErr.url).toBe(`${endpoint}/ferro-test/missing/resolve/main/config.json`);
    expect(hubErr.message).toContain(hubErr.url);
  });

  it('an unknown revision is a 404 naming it', async () => {
    const err = (await downloadPretrained(REPO, { revision: 'v9', progress: false }).catch((e: unknown) => e)) as HubError;
    expect(err.status).toBe(404);
    expect(err.message).toMatch(/resolve\/v9\/config\.json.*revision v9/);
  });

  it('an endpoint nobody answers on is a HubError naming the URL, status null', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const err = (await downloadPretrained(REPO, { endpoint: `http://127.0.0.1:${port}`, progress: false }).catch((e: unknown) => e)) as HubError;
    expect(err).toBeInstanceOf(HubError);
    expect(err.status).toBeNull();
    expect(err.message).toContain(`cannot reach http://127.0.0.1:${port}/${REPO}/resolve/main/config.json`);
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it('names that are not owner/name are refused before any request', async () => {
    await expect(hubFiles('no-slash')).rejects.toThrow(ConfigError);
    await expect(resolvePretrained('../etc/passwd')).rejects.toThrow(/neither a folder nor a Hub name/);
    await expect(hubFiles(REPO, { revision: '../../x' })).rejects.toThrow(/revision/);
    expect(requests).toEqual([]);
  });

  it('the cache folder follows HF_HUB_CACHE, then HF_HOME, then ~/.cache/huggingface/hub', async () => {
    process.env['HF_HUB_CACHE'] = '/tmp/a-hub-cache';
    expect(await hubCacheDir()).toBe('/tmp/a-hub-cache');
    delete process.env['HF_HUB_CACHE'];
    process.env['HF_HOME'] = '/tmp/an-hf-home';
    expect(await hubCacheDir()).toBe('/tmp/an-hf-home/hub');
    delete process.env['HF_HOME'];
    expect(await hubCacheDir()).toMatch(/\.cache\/huggingface\/hub$/);
  });
});

describe('GPT-2 from the Hub by name', () => {
  const prompt = loadHfExpected().prompts[0]!;
  const greedyOf = (model: GPT2LMHeadModel): number[] => {
    const tok = model.tokenizer();
    const ids = tok.encode(prompt.text);
    expect(ids).toEqual(prompt.input_ids);
    const [hyp] = generate.greedy(model, [ids], { maxTokens: prompt.greedy_new_ids.length, eosId: tok.eosTokenId, useCache: true });
    return hyp!.tokens;
  };

  for (const name of ['native', 'wasm'] as BackendName[]) {
    it(`the cached snapshot loads and generates the fixture's greedy tokens [${name}]`, async () => {
      const backend = await getBackend(name);
      const { dir } = await resolvePretrained(REPO, { progress: false });
      const model = await GPT2LMHeadModel.fromPretrained(dir, { backend });
      try {
        model.eval();
        expect(greedyOf(model)).toEqual(prompt.greedy_new_ids);
      } finally {
        model.dispose();
      }
    });

    it(`fromPretrained('owner/name') fetches from HF_ENDPOINT and generates the fixture's greedy tokens [${name}]`, async () => {
      const backend = await getBackend(name);
      const model = await GPT2LMHeadModel.fromPretrained(REPO, { backend });
      try {
        model.eval();
        expect(requests).toContain(`/${REPO}/resolve/main/model.safetensors`);
        expect(greedyOf(model)).toEqual(prompt.greedy_new_ids);
      } finally {
        model.dispose();
      }
    });
  }
});
