// The package's browser entry as a bundler sees it: Vite bundles dist/browser.js (the
// "browser" export condition) as a library, following every import, static and dynamic. A
// browser bundle must not reference Node's modules: Vite would warn ("Module "node:fs" has
// been externalized for browser compatibility") and swap in an empty stub, which fails at run
// time. Node-only code in modules both entries share takes Node's modules from
// ts/backend/node_builtin.ts at call time instead of importing them.
// Needs a current dist/ (`npm run build:ts`; npm install runs it).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build, createLogger, type Rolldown } from 'vite';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('..', import.meta.url));
const entry = fileURLToPath(new URL('../dist/browser.js', import.meta.url));

/** Node's built-in module names, with or without the `node:` prefix, in an import or require. */
const NODE_IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)["'](?:node:[\w/]+|fs|fs\/promises|path|os|crypto|worker_threads|child_process|url|events|readline|stream|util)["']/;

describe('browser bundle of the package', () => {
  it('references no Node module, and Vite has nothing to warn about', async () => {
    if (!existsSync(entry)) throw new Error('dist/browser.js is missing; run `npm run build:ts` (npm install runs it)');
    const warnings: string[] = [];
    const logger = createLogger('warn', { allowClearScreen: false });
    logger.warn = (message) => void warnings.push(message);
    // Rolldown's own warnings reach Vite's logger through onLog.
    logger.warnOnce = logger.warn;
    // Vite reports externalized Node modules in production builds only; vitest sets NODE_ENV=test.
    const nodeEnv = process.env['NODE_ENV'];
    process.env['NODE_ENV'] = 'production';
    const output = await build({
      configFile: false,
      mode: 'production',
      root: repo,
      logLevel: 'warn',
      customLogger: logger,
      build: {
        write: false,
        minify: false,
        lib: { entry, formats: ['es'], fileName: 'ferroformer' },
        rolldownOptions: { checks: { bundlerTimings: false }, onLog(level, log, handler) { if (level === "warn") warnings.push(log.message); handler(level, log); } },
      },
    }).finally(() => {
      process.env['NODE_ENV'] = nodeEnv;
    }) as Rolldown.RolldownOutput | Rolldown.RolldownOutput[];
    const chunks = (Array.isArray(output) ? output : [output]).flatMap((o) => o.output).filter((c) => c.type === 'chunk');
    expect(chunks.length).toBeGreaterThan(0);
    expect(warnings.filter((w) => /externalized for browser compatibility|node:/.test(w))).toEqual([]);
    const nodeReferences = chunks.flatMap((c) => [...c.code.matchAll(new RegExp(`${NODE_IMPORT.source}|["']node:[\\w/]+["']`, 'g'))].map((m) => `${c.fileName}: ${m[0]}`));
    expect(nodeReferences).toEqual([]);
    // The bundle is the real thing: the wasm backend's loader and the library's API are in it.
    const code = chunks.map((c) => c.code).join('\n');
    expect(code).toContain('loadWasmBackend');
    expect(code).toContain('crossEntropy');
  }, 120_000);
});
