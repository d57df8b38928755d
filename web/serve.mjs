#!/usr/bin/env node
// Serves the built demo (web/dist) with node:http. Cross-origin isolation (COOP + COEP, so
// SharedArrayBuffer and the threaded wasm module are available) is on unless ISOLATION=0.
// `npm run demo:web` builds the page, then runs this on PORT (default 5173).
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
};

const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/**
 * Starts a static server for `dir`; resolves to the server once it listens.
 * @param {{ dir?: string, port?: number, host?: string, isolation?: boolean }} options
 * @returns {Promise<import('node:http').Server>}
 */
export function serveDemo({ dir = fileURLToPath(new URL('./dist', import.meta.url)), port = 5173, host = '127.0.0.1', isolation = true } = {}) {
  const root = resolve(dir);
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    let file = normalize(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) return send(response, 403, 'forbidden');
    let stat = statOrNull(file);
    if (stat?.isDirectory()) {
      file = join(file, 'index.html');
      stat = statOrNull(file);
    }
    if (stat === null || !stat.isFile()) return send(response, 404, 'not found');
    response.writeHead(200, {
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Content-Length': stat.size,
      'Cache-Control': 'no-cache',
      ...(isolation ? ISOLATION_HEADERS : {}),
    });
    if (request.method === 'HEAD') return response.end();
    createReadStream(file).pipe(response);
  });
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => done(server));
  });
}

function statOrNull(file) {
  try {
    return statSync(file);
  } catch {
    return null;
  }
}

function send(response, status, message) {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  response.end(message);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const port = Number(process.env.PORT ?? 5173);
  const isolation = process.env.ISOLATION !== '0';
  const host = process.env.HOST ?? '127.0.0.1';
  const dir = fileURLToPath(new URL('./dist', import.meta.url));
  if (statOrNull(join(dir, 'index.html')) === null) {
    console.error('web/dist/index.html is missing: build the page first (npm run demo:web does)');
    process.exit(1);
  }
  await serveDemo({ dir, port, host, isolation });
  console.log(`ferroformer demo on http://${host}:${port}/ (${isolation ? 'cross-origin isolated: threaded' : 'not isolated: single-threaded'}; ` +
    `${isolation ? 'ISOLATION=0 turns isolation off' : 'unset ISOLATION for threads'})`);
}
