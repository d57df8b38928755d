#!/usr/bin/env node
// Manual check (not part of npm test: it needs Python's huggingface_hub): ts/models/hub.ts's
// cache and huggingface_hub's are interchangeable. A local server plays the Hub (X-Repo-Commit,
// ETags, the weights redirected to another host as the Hub's CDN); Python downloads into one
// cache that we then read offline, and we download into another that Python reads offline.
// Run after `npm run build:ts`: PYTHON=/path/to/python node scripts/check_hub_interop.mjs
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
const { downloadPretrained } = await import('../dist/models/hub.js');
const FIX = fileURLToPath(new URL('../test/fixtures/hf_gpt2_public/', import.meta.url));
const COMMIT = 'c'.repeat(40);
const sha = (b) => createHash('sha256').update(b).digest('hex');
const server = createServer((req, res) => {
  const url = req.url;
  const cdn = /^\/cdn\/(.+)$/.exec(url);
  if (cdn) { const b = readFileSync(FIX + cdn[1]); res.writeHead(200, { 'content-length': b.length, etag: `"${sha(b)}"` }); return res.end(b); }
  const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url);
  let body; try { body = readFileSync(FIX + m[3]); } catch { res.writeHead(404, { 'x-repo-commit': COMMIT, 'x-error-code': 'EntryNotFound' }); return res.end(); }
  if (m[3] === 'model.safetensors') {
    res.writeHead(302, { location: `http://localhost:${server.address().port}/cdn/${m[3]}`, 'x-repo-commit': COMMIT, 'x-linked-etag': `"${sha(body)}"`, 'x-linked-size': body.length, 'content-length': 0 }); return res.end();
  }
  res.writeHead(200, { 'content-length': body.length, 'x-repo-commit': COMMIT, etag: `"${sha(body).slice(0, 40)}"` }); res.end(body);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const endpoint = `http://127.0.0.1:${server.address().port}`;
// 1. Python downloads into cache A; we read it offline.
const cacheA = mkdtempSync(join(tmpdir(), 'pyhub-'));
/** Runs Python with HF_ENDPOINT at the local Hub and HF_HUB_CACHE at `cache`; [exit code, output]. */
const py = (code, cache) => new Promise((resolve) => {
  const env = { ...process.env, HF_ENDPOINT: endpoint, HF_HUB_CACHE: cache, HF_HUB_DISABLE_TELEMETRY: '1' };
  const child = spawn(process.env.PYTHON ?? 'python3', ['-c', code], { env });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  child.on('close', (exitCode) => resolve([exitCode, out]));
});
const check = (ok, what, detail) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) {
    console.log(detail);
    process.exitCode = 1;
  }
};
const [pyCode, pyOut] = await py(`
from huggingface_hub import hf_hub_download
for f in ['config.json','model.safetensors','tokenizer.json']:
    print(hf_hub_download('o/n', f))
`, cacheA);
check(pyCode === 0, 'huggingface_hub downloads from the local Hub', pyOut);
process.env.HF_HUB_OFFLINE = '1';
try {
  const dir = await downloadPretrained('o/n', { cacheDir: cacheA, progress: false }).catch((e) => e.message);
  check(dir === join(cacheA, 'models--o--n', 'snapshots', COMMIT), "hub.ts reads huggingface_hub's cache offline", dir);
} finally { delete process.env.HF_HUB_OFFLINE; }
// 2. We download into cache B; Python finds it offline.
const cacheB = mkdtempSync(join(tmpdir(), 'jshub-'));
await downloadPretrained('o/n', { endpoint, cacheDir: cacheB, progress: false });
const [code2, out2] = await py(`
import os; os.environ['HF_HUB_OFFLINE']='1'
from huggingface_hub import try_to_load_from_cache, hf_hub_download
print(try_to_load_from_cache('o/n', 'model.safetensors'))
print(hf_hub_download('o/n', 'config.json'))
from huggingface_hub import scan_cache_dir
r = scan_cache_dir(); print([(x.repo_id, x.size_on_disk, [ (rv.commit_hash, sorted(f.file_name for f in rv.files)) for rv in x.revisions]) for x in r.repos], r.warnings)
`, cacheB);
check(code2 === 0 && out2.includes(join(cacheB, 'models--o--n', 'snapshots', COMMIT, 'model.safetensors')) && out2.trim().endsWith('[]'),
  "huggingface_hub reads hub.ts's cache offline (scan_cache_dir: no warnings)", out2);
server.close();
for (const dir of [cacheA, cacheB]) rmSync(dir, { recursive: true, force: true });
