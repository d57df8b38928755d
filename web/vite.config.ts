// Builds the browser demo (npm run demo:web). The worker imports 'ferroformer' by name: this
// directory lies inside the package, so the name resolves to the package itself through
// package.json "exports" (Node's self-reference), with Vite's "browser" condition picking
// dist/browser.js, exactly as in a user's app with ferroformer in node_modules. That module
// finds build/*.wasm through new URL(..., import.meta.url), which Vite copies into the build.
// dist/ must be current: `npm run build:ts` (npm install runs it).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { gpt2Demo } from './gpt2.vite.mjs';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  worker: { format: 'es' },
  // gpt2.html and the tiny checkpoint it loads (web/gpt2.vite.mjs).
  plugins: [gpt2Demo()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // vega + vega-lite are most of the page's script.
    chunkSizeWarningLimit: 2000,
    // Rolldown's "plugins took long" notice only says the machine was busy.
    rolldownOptions: { checks: { bundlerTimings: false } },
  },
});
