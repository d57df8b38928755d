// The Hugging Face Hub by name (Node): 'owner/name' becomes files in a local cache, downloaded
// once from `<endpoint>/<repo>/resolve/<revision>/<file>` and reused by every later call.
//
// Contract (what the model loader calls):
//   hubFiles(repo, options?): Promise<PretrainedFiles>
//       read / readOptional / stream by file name, as sources.ts's other sources; each file is
//       downloaded into the cache on first use (the weights streamed to disk, never held in
//       memory) and then read from disk. readOptional gives null for a file the repo lacks.
//       In a browser (or with cache: false) the files are fetched from the endpoint directly.
//   downloadPretrained(repo, options?): Promise<string>
//       fetches config.json and model.safetensors (required) and the tokenizer and generation
//       files the repo has (tokenizer.json, tokenizer_config.json, vocab.json, merges.txt,
//       generation_config.json); returns the snapshot folder, an ordinary checkpoint folder.
//   resolvePretrained(source, options?): Promise<{ dir: string }>
//       a local folder as it is, 'owner/name' through downloadPretrained.
//   HubError (a ConfigError) names the URL and carries it with the HTTP status (null when the
//       server could not be reached): offline, 404 (repository, revision or file missing),
//       401/403 (private or gated repositories are not supported).
//
// Settings, as huggingface_hub reads them: endpoint = options.endpoint, else HF_ENDPOINT, else
// https://huggingface.co; cache = options.cacheDir, else HF_HUB_CACHE, else $HF_HOME/hub, else
// ~/.cache/huggingface/hub; HF_HUB_OFFLINE=1 (or options.offline) never touches the network.
//
// The cache is the Hub's own layout, shared with Python's huggingface_hub and transformers:
//   models--owner--name/refs/<revision>            the commit the revision resolved to
//   models--owner--name/blobs/<etag>               file contents
//   models--owner--name/snapshots/<commit>/<file>  relative symlink to ../../blobs/<etag>
//   models--owner--name/.no_exist/<commit>/<file>  an optional file the repo does not have
// A revision resolves once: a cached snapshot is used without asking the server again (as
// transformers.js does), so a moved branch is picked up with `forceDownload: true`.
// The Hub redirects large files to a CDN; the first response (redirects not followed) carries
// X-Repo-Commit and X-Linked-Etag, which name the snapshot and the blob.

import { ConfigError } from '../tensor/errors.js';
import { fromUrl, type PretrainedFiles, type WeightStream } from './sources.js';

export interface HubOptions {
  /** Branch, tag or commit. Default 'main'. */
  revision?: string;
  /** Default HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Default HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir?: string;
  /** Use the cache only. Default: HF_HUB_OFFLINE is 1/true/yes/on. */
  offline?: boolean;
  /** Download again even when the snapshot has the file. Default false. */
  forceDownload?: boolean;
  /** A bar on stderr for files of 1 MiB or more (default: only when stderr is a terminal),
   * or a callback receiving every chunk's progress. */
  progress?: boolean | ((file: string, loaded: number, total: number | null) => void);
  /** Default globalThis.fetch (tests pass their own). */
  fetch?: typeof fetch;
  /** false: no cache, the files are fetched from the endpoint on every read (hubFiles only;
   * what a browser always gets, its HTTP cache aside). Default true in Node. */
  cache?: boolean;
}

/** A download that failed: the URL, and the HTTP status (null when nothing answered). */
export class HubError extends ConfigError {
  override name = 'HubError';
  constructor(
    message: string,
    readonly url: string,
    readonly status: number | null,
  ) {
    super('hub', message);
  }
}

const HUB_REPO = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;
const COMMIT = /^[0-9a-f]{40}$/;
const BAR_MIN_BYTES = 1 << 20;
/** Files downloadPretrained fetches when the repo has them. */
const OPTIONAL_FILES = ['tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt', 'generation_config.json'];

type Fs = typeof import('node:fs');
type Path = typeof import('node:path');

const isNode = (): boolean => typeof process !== 'undefined' && Boolean(process.versions?.node);

async function nodeModules(): Promise<{ fs: Fs; path: Path; os: typeof import('node:os'); crypto: typeof import('node:crypto') }> {
  if (!isNode()) {
    throw new ConfigError('hub', 'the Hub cache needs Node (in a browser, load the checkpoint from its resolve/<revision>/ URL)');
  }
  const [fs, path, os, crypto] = await Promise.all([import('node:fs'), import('node:path'), import('node:os'), import('node:crypto')]);
  return { fs, path, os, crypto };
}

function envFlag(name: string): boolean {
  return /^(1|true|yes|on)$/i.test(process.env[name] ?? '');
}

/** The cache folder: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
export async function hubCacheDir(): Promise<string> {
  const { path, os } = await nodeModules();
  const hubCache = process.env['HF_HUB_CACHE'];
  if (hubCache) return path.resolve(hubCache);
  const home = process.env['HF_HOME'];
  if (home) return path.resolve(home, 'hub');
  return path.join(os.homedir(), '.cache', 'huggingface', 'hub');
}

/** The endpoint without a trailing slash: options, else HF_ENDPOINT, else huggingface.co. */
export function hubEndpoint(endpoint?: string): string {
  const env = typeof process !== 'undefined' ? process.env?.['HF_ENDPOINT'] : undefined;
  return (endpoint ?? (env && env.length > 0 ? env : 'https://huggingface.co')).replace(/\/+$/, '');
}

/** `<endpoint>/<repo>/resolve/<revision>/<file>` */
export function hubFileUrl(repo: string, file: string, revision = 'main', endpoint?: string): string {
  return `${hubEndpoint(endpoint)}/${repo}/resolve/${encodeURIComponent(revision)}/${file}`;
}

function checkRepo(repo: string): void {
  if (typeof repo !== 'string' || !HUB_REPO.test(repo)) {
    throw new ConfigError('hub', `a Hub repository is named 'owner/name', got ${JSON.stringify(repo)}`);
  }
}

/** ETag as huggingface_hub stores it: no quotes, no weak prefix. */
function cleanEtag(etag: string | null): string | null {
  if (etag === null) return null;
  const clean = etag.replace(/^W\//, '').replace(/^"|"$/g, '');
  return /^[\w.-]+$/.test(clean) ? clean : null;
}

/** One repository's folder in the cache, at one revision. */
class RepoCache {
  readonly root: string;
  private commit: string | null = null;

  constructor(
    private readonly m: { fs: Fs; path: Path; crypto: typeof import('node:crypto') },
    cacheDir: string,
    readonly repo: string,
    readonly revision: string,
  ) {
    this.root = m.path.join(cacheDir, `models--${repo.replace('/', '--')}`);
  }

  /** The commit the revision resolved to last time, if any. */
  cachedCommit(): string | null {
    if (this.commit !== null) return this.commit;
    if (COMMIT.test(this.revision)) return (this.commit = this.revision);
    const ref = this.m.path.join(this.root, 'refs', this.revision);
    if (this.m.fs.existsSync(ref)) this.commit = this.m.fs.readFileSync(ref, 'utf8').trim();
    return this.commit;
  }

  snapshotDir(commit: string): string {
    return this.m.path.join(this.root, 'snapshots', commit);
  }

  /** The cached file, or 'missing' when the repo is known not to have it, or null. */
  lookup(file: string): string | 'missing' | null {
    const commit = this.cachedCommit();
    if (commit === null) return null;
    const p = this.m.path.join(this.snapshotDir(commit), file);
    if (this.m.fs.existsSync(p)) return p;
    if (this.m.fs.existsSync(this.m.path.join(this.root, '.no_exist', commit, file))) return 'missing';
    return null;
  }

  setCommit(commit: string): void {
    this.commit = commit;
    if (commit !== this.revision) {
      const ref = this.m.path.join(this.root, 'refs', this.revision);
      this.m.fs.mkdirSync(this.m.path.dirname(ref), { recursive: true });
      this.m.fs.writeFileSync(ref, commit);
    }
  }

  markMissing(commit: string, file: string): void {
    const p = this.m.path.join(this.root, '.no_exist', commit, file);
    this.m.fs.mkdirSync(this.m.path.dirname(p), { recursive: true });
    this.m.fs.writeFileSync(p, '');
  }

  /** Moves a finished download into blobs/ and links it from the snapshot. */
  install(commit: string, file: string, tmp: string, etag: string): string {
    const { fs, path } = this.m;
    const blob = path.join(this.root, 'blobs', etag);
    fs.mkdirSync(path.dirname(blob), { recursive: true });
    fs.renameSync(tmp, blob);
    const link = path.join(this.snapshotDir(commit), file);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.rmSync(link, { force: true });
    try {
      fs.symlinkSync(path.relative(path.dirname(link), blob), link);
    } catch {
      // No symlinks (Windows without developer mode): huggingface_hub then keeps a copy.
      fs.copyFileSync(blob, link);
    }
    return link;
  }

  tmpPath(): string {
    const name = `${this.m.crypto.randomBytes(8).toString('hex')}.incomplete`;
    return this.m.path.join(this.root, 'blobs', name);
  }
}

interface ProgressSink {
  update(loaded: number): void;
  stop(): void;
}

async function progressFor(options: HubOptions, file: string, total: number | null): Promise<ProgressSink> {
  const { progress } = options;
  if (typeof progress === 'function') return { update: (loaded) => progress(file, loaded, total), stop: () => {} };
  const wanted = progress ?? Boolean(process.stderr.isTTY);
  if (!wanted || total === null || total < BAR_MIN_BYTES) return { update: () => {}, stop: () => {} };
  const { default: cliProgress } = await import('cli-progress');
  const mib = (bytes: number): string => (bytes / (1 << 20)).toFixed(1);
  const bar = new cliProgress.SingleBar(
    { format: `${file} {bar} {percentage}% | {mib}/${mib(total)} MiB | ETA {eta_formatted}`, stream: process.stderr, hideCursor: true, barsize: 24 },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { mib: mib(0) });
  return { update: (loaded) => bar.update(loaded, { mib: mib(loaded) }), stop: () => bar.stop() };
}

/** GET without following redirects (their headers name the commit and blob), then the target. */
async function fetchFile(fetchFn: typeof fetch, url: string): Promise<{ response: Response; first: Response }> {
  const attempt = async (target: string, redirect: RequestRedirect): Promise<Response> => {
    try {
      return await fetchFn(target, { redirect });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (e as Error).message;
      throw new HubError(`cannot reach ${target} (${why}); offline? Set HF_HUB_OFFLINE=1 to use the cache only`, target, null);
    }
  };
  const first = await attempt(url, 'manual');
  const location = first.headers.get('location');
  if (first.status >= 300 && first.status < 400 && location !== null) {
    await first.body?.cancel();
    return { response: await attempt(new URL(location, url).href, 'follow'), first };
  }
  return { response: first, first };
}

function statusError(url: string, response: Response, repo: string, revision: string): HubError {
  const { status } = response;
  if (status === 404) {
    return new HubError(`${url} answered 404 Not Found: the repository ${repo}, its revision ${revision} or the file does not exist`, url, status);
  }
  if (status === 401 || status === 403) {
    return new HubError(`${url} answered ${status}: the repository ${repo} is private or gated (downloads with a token are not supported)`, url, status);
  }
  return new HubError(`${url} answered ${status} ${response.statusText}`, url, status);
}

/** Downloads one file into the cache (or finds it there); null for an optional file the repo lacks. */
async function ensureFile(cache: RepoCache, file: string, optional: boolean, options: HubOptions): Promise<string | null> {
  const { fs, path, crypto } = await nodeModules();
  const url = hubFileUrl(cache.repo, file, cache.revision, options.endpoint);
  if (!options.forceDownload) {
    const found = cache.lookup(file);
    if (found === 'missing' && optional) return null;
    if (found !== null && found !== 'missing') return found;
  }
  if (options.offline ?? (envFlag('HF_HUB_OFFLINE') || envFlag('TRANSFORMERS_OFFLINE'))) {
    if (optional) return null;
    throw new HubError(`offline mode (HF_HUB_OFFLINE) and ${file} of ${cache.repo}@${cache.revision} is not in the cache ${cache.root}`, url, null);
  }

  const { response, first } = await fetchFile(options.fetch ?? fetch, url);
  if (response.status === 404 && first.status === 404 && optional) {
    // The revision exists when the server names its commit; remember the file is absent.
    const commit = first.headers.get('x-repo-commit') ?? cache.cachedCommit();
    if (commit !== null) {
      cache.setCommit(commit);
      cache.markMissing(commit, file);
    }
    await response.body?.cancel();
    return null;
  }
  if (!response.ok || response.body === null) throw statusError(url, response.ok ? first : response, cache.repo, cache.revision);

  const commit = first.headers.get('x-repo-commit') ?? cache.cachedCommit() ?? cache.revision;
  const lengthHeader = response.headers.get('content-length');
  const total = lengthHeader !== null && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : null;
  const hash = crypto.createHash('sha256');
  const tmp = cache.tmpPath();
  fs.mkdirSync(path.dirname(tmp), { recursive: true });
  const out = fs.createWriteStream(tmp);
  const bar = await progressFor(options, file, total);
  let loaded = 0;
  try {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      hash.update(value);
      loaded += value.length;
      if (!out.write(value)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
      bar.update(loaded);
    }
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  } catch (e) {
    out.destroy();
    fs.rmSync(tmp, { force: true });
    if (e instanceof HubError) throw e;
    throw new HubError(`download of ${url} failed after ${loaded} bytes (${(e as Error).message})`, url, null);
  } finally {
    bar.stop();
  }
  if (total !== null && loaded !== total) {
    fs.rmSync(tmp, { force: true });
    throw new HubError(`download of ${url} stopped at ${loaded} of ${total} bytes`, url, null);
  }
  const digest = hash.digest('hex');
  const etag = cleanEtag(first.headers.get('x-linked-etag') ?? first.headers.get('etag') ?? response.headers.get('etag')) ?? digest;
  // LFS files' etag is their SHA-256: a download that does not hash to it is corrupt.
  if (/^[0-9a-f]{64}$/.test(etag) && etag !== digest) {
    fs.rmSync(tmp, { force: true });
    throw new HubError(`download of ${url} is corrupt: its SHA-256 is ${digest}, the server announced ${etag}`, url, null);
  }
  cache.setCommit(commit);
  return cache.install(commit, file, tmp, etag);
}

async function openCache(repo: string, options: HubOptions): Promise<RepoCache> {
  checkRepo(repo);
  const m = await nodeModules();
  const revision = options.revision ?? 'main';
  if (typeof revision !== 'string' || revision.length === 0 || revision.includes('..')) {
    throw new ConfigError('hub', `revision must be a branch, tag or commit, got ${JSON.stringify(revision)}`);
  }
  return new RepoCache(m, options.cacheDir ?? (await hubCacheDir()), repo, revision);
}

/** A Hub repository's files through the cache, downloaded on first use. */
export async function hubFiles(repo: string, options: HubOptions = {}): Promise<PretrainedFiles> {
  if (options.cache === false || !isNode()) {
    checkRepo(repo);
    return fromUrl(hubFileUrl(repo, '', options.revision ?? 'main', options.endpoint), options.fetch);
  }
  const cache = await openCache(repo, options);
  const { fs } = await nodeModules();
  const need = async (name: string): Promise<string> => (await ensureFile(cache, name, false, options))!;
  return {
    async read(name) {
      return new Uint8Array(await fs.promises.readFile(await need(name)));
    },
    async readOptional(name) {
      const p = await ensureFile(cache, name, true, options);
      return p === null ? null : new Uint8Array(await fs.promises.readFile(p));
    },
    async stream(name, onProgress): Promise<WeightStream> {
      const p = await need(name);
      const length = (await fs.promises.stat(p)).size;
      const chunks = fs.createReadStream(p, { highWaterMark: 1 << 22 }) as AsyncIterable<Uint8Array>;
      async function* counted(): AsyncGenerator<Uint8Array> {
        let loaded = 0;
        for await (const chunk of chunks) {
          loaded += chunk.length;
          onProgress?.(loaded, length);
          yield chunk;
        }
      }
      return { name: p, chunks: counted(), length };
    },
  };
}

/** Downloads a checkpoint into the cache and returns its snapshot folder. */
export async function downloadPretrained(repo: string, options: HubOptions = {}): Promise<string> {
  const cache = await openCache(repo, options);
  const { fs, path } = await nodeModules();
  const required = ['config.json', 'model.safetensors'];
  // A branch that moved since a partial download gives files of two commits: the second pass
  // completes the newer snapshot (lookups then follow the updated ref).
  for (let pass = 0; pass < 2; pass++) {
    for (const file of required) await ensureFile(cache, file, false, options);
    for (const file of OPTIONAL_FILES) await ensureFile(cache, file, true, options);
    const dir = cache.snapshotDir(cache.cachedCommit()!);
    if (required.every((file) => fs.existsSync(path.join(dir, file)))) return dir;
  }
  const url = hubFileUrl(repo, 'config.json', cache.revision, options.endpoint);
  throw new HubError(`${repo}@${cache.revision} kept changing while it was downloaded; try again`, url, null);
}

/** A local folder as it is; 'owner/name' downloaded (or found) in the Hub cache. */
export async function resolvePretrained(source: string, options: HubOptions = {}): Promise<{ dir: string }> {
  const { fs } = await nodeModules();
  if (fs.existsSync(source) && fs.statSync(source).isDirectory()) return { dir: source };
  if (HUB_REPO.test(source)) return { dir: await downloadPretrained(source, options) };
  throw new ConfigError('hub', `${JSON.stringify(source)} is neither a folder nor a Hub name 'owner/name'`);
}
