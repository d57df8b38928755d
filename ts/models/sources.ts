// Where a pretrained checkpoint's files come from: a local folder (Node), a folder URL
// (fetch, streamed), the Hugging Face Hub by 'owner/name', or files already in memory
// (Uint8Array, string or Blob, e.g. from an <input type=file>). Every kind gives the same
// small interface: whole small files (config.json, tokenizer.json) and the weights as a
// stream of chunks, so a checkpoint is never held in memory twice.
import { nodeBuiltin } from '../backend/node_builtin.js';
import { ConfigError, FormatError } from '../tensor/errors.js';
import type { HubOptions } from './hub.js';
import { bytesChunks, readableChunks } from './weights_stream.js';

/** A file given directly: its bytes, its text, a Blob (File), or a stream of its bytes (a
 * fetch body, read once, length unknown). */
export type FileData = Uint8Array | string | Blob | ReadableStream<Uint8Array>;

/** Files by name; a Blob or a stream is streamed. */
export type FileMap = Map<string, FileData> | Record<string, FileData>;

/** A folder path (Node), a folder URL, 'owner/name' on the Hub, or the files themselves. */
export type PretrainedSource = string | URL | FileMap;

export interface WeightStream {
  /** The file's name as errors should show it (path or URL). */
  name: string;
  chunks: AsyncIterable<Uint8Array>;
  /** Bytes in the file, when known. */
  length: number | null;
}

export interface PretrainedFiles {
  read(name: string): Promise<Uint8Array>;
  readOptional(name: string): Promise<Uint8Array | null>;
  stream(name: string, onProgress?: (loaded: number, total: number | null) => void): Promise<WeightStream>;
}

export interface OpenOptions {
  revision?: string;
  /** Hub settings for 'owner/name' (endpoint, cache folder, offline, progress bar). */
  hub?: HubOptions;
}

/** Counts bytes as they pass, for a progress callback. */
async function* counted(chunks: AsyncIterable<Uint8Array>, total: number | null, onProgress?: (loaded: number, total: number | null) => void): AsyncGenerator<Uint8Array> {
  let loaded = 0;
  for await (const chunk of chunks) {
    loaded += chunk.length;
    onProgress?.(loaded, total);
    yield chunk;
  }
}

function fromFileMap(map: FileMap): PretrainedFiles {
  const files = map instanceof Map ? map : new Map(Object.entries(map));
  const bytesOf = async (name: string): Promise<Uint8Array | null> => {
    const f = files.get(name);
    if (f === undefined) return null;
    if (typeof f === 'string') return new TextEncoder().encode(f);
    if (f instanceof Uint8Array) return f;
    if (f instanceof Blob) return new Uint8Array(await f.arrayBuffer());
    return new Uint8Array(await new Response(f).arrayBuffer());
  };
  const need = (name: string): never => {
    throw new ConfigError('fromPretrained', `the files given have no ${name} (got ${[...files.keys()].join(', ') || 'none'})`);
  };
  return {
    read: async (name) => (await bytesOf(name)) ?? need(name),
    readOptional: bytesOf,
    async stream(name, onProgress) {
      const f = files.get(name) ?? need(name);
      if (typeof Blob !== 'undefined' && f instanceof Blob) {
        return { name, chunks: counted(readableChunks(f.stream()), f.size, onProgress), length: f.size };
      }
      if (typeof ReadableStream !== 'undefined' && f instanceof ReadableStream) {
        return { name, chunks: counted(readableChunks(f), null, onProgress), length: null };
      }
      const bytes = (await bytesOf(name))!;
      return { name, chunks: counted(bytesChunks(bytes), bytes.length, onProgress), length: bytes.length };
    },
  };
}

/** Files under a base URL (a folder URL, or the Hub's resolve/<revision>/ layout). */
export function fromUrl(base: string, fetchFn: typeof fetch = fetch): PretrainedFiles {
  const root = base.endsWith('/') ? base : `${base}/`;
  const get = async (name: string, optional: boolean): Promise<Response | null> => {
    const url = new URL(name, root).href;
    let response: Response;
    try {
      response = await fetchFn(url);
    } catch (e) {
      throw new ConfigError('fromPretrained', `cannot fetch ${url}: ${(e as Error).message}`);
    }
    if (response.status === 404 && optional) return null;
    if (!response.ok) throw new ConfigError('fromPretrained', `${url} answered ${response.status} ${response.statusText}`);
    return response;
  };
  return {
    async read(name) {
      return new Uint8Array(await (await get(name, false))!.arrayBuffer());
    },
    async readOptional(name) {
      const r = await get(name, true);
      return r === null ? null : new Uint8Array(await r.arrayBuffer());
    },
    async stream(name, onProgress) {
      const r = (await get(name, false))!;
      const header = r.headers.get('content-length');
      const length = header !== null && /^\d+$/.test(header) ? Number(header) : null;
      if (r.body === null) throw new FormatError(`${r.url || name}: response has no body`);
      return { name: r.url || new URL(name, root).href, chunks: counted(readableChunks(r.body), length, onProgress), length };
    },
  };
}

/** Whether `p` is a file (or, with `folder`, a folder); false where there is no file system. */
async function exists(p: string, folder = false): Promise<boolean> {
  const host = (globalThis as { process?: { getBuiltinModule?: unknown } }).process;
  if (typeof host?.getBuiltinModule !== 'function') return false;
  try {
    const stat = await nodeBuiltin('fs/promises', 'fromPretrained').stat(p);
    return folder ? stat.isDirectory() : stat.isFile();
  } catch {
    return false;
  }
}

/** A local folder (Node): files are read whole, the weights streamed in 1 MiB chunks. Node's
 * modules come from nodeBuiltin, so the browser bundle references none. */
function fromFolder(dir: string): PretrainedFiles {
  const fs = nodeBuiltin('fs/promises', 'fromPretrained');
  const file = (name: string) => nodeBuiltin('path', 'fromPretrained').join(dir, name);
  const need = async (name: string): Promise<void> => {
    if (await exists(file(name))) return;
    const hint = name !== 'model.safetensors' ? ''
      : (await exists(file('pytorch_model.bin'))) ? ' (only pytorch_model.bin is there: convert it with transformers, model.save_pretrained(dir, safe_serialization=True))'
      : (await exists(file('model.safetensors.index.json'))) ? ' (sharded checkpoints are not supported)' : '';
    throw new ConfigError('fromPretrained', `${file(name)} does not exist${hint}`);
  };
  return {
    async read(name) {
      await need(name);
      return new Uint8Array(await fs.readFile(file(name)));
    },
    async readOptional(name) {
      return (await exists(file(name))) ? new Uint8Array(await fs.readFile(file(name))) : null;
    },
    async stream(name, onProgress) {
      await need(name);
      const handle = await fs.open(file(name));
      const length = (await handle.stat()).size;
      // The stream closes the handle when it ends or is destroyed.
      const chunks = handle.createReadStream({ highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>;
      return { name: file(name), chunks: counted(chunks, length, onProgress), length };
    },
  };
}

const HUB_REPO = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** Opens a checkpoint's files from any source fromPretrained takes. */
export async function openPretrained(source: PretrainedSource, options: OpenOptions = {}): Promise<PretrainedFiles> {
  if (source instanceof URL) return fromUrl(source.href);
  if (typeof source !== 'string') return fromFileMap(source);
  if (/^https?:\/\//.test(source)) return fromUrl(source);
  if (await exists(source, true)) return fromFolder(source);
  if (HUB_REPO.test(source)) {
    const revision = options.revision ?? options.hub?.revision ?? 'main';
    if (!(await exists('.', true))) {
      // A browser: the Hub's files by URL (it allows cross-origin requests), without a cache.
      const endpoint = (options.hub?.endpoint ?? 'https://huggingface.co').replace(/\/+$/, '');
      return fromUrl(`${endpoint}/${source}/resolve/${encodeURIComponent(revision)}/`, options.hub?.fetch);
    }
    // Node: hub.ts and its disk cache. The specifier is a variable so that a bundler building
    // the browser entry does not pull hub.ts (Node's modules, a terminal progress bar) in.
    const hubModule = './hub.js';
    const { hubFiles } = (await import(/* @vite-ignore */ hubModule)) as typeof import('./hub.js');
    return hubFiles(source, { ...options.hub, revision });
  }
  throw new ConfigError('fromPretrained', `${source} is neither a folder, a URL nor a Hub name 'owner/name'`);
}
