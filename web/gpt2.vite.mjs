// Vite plugin for the GPT-2 page: builds web/gpt2.html beside index.html, and serves the tiny
// GPT-2 checkpoint of the test fixtures (test/fixtures/hf_gpt2_public) at models/tiny-gpt2/:
// copied into the build (so web/serve.mjs serves it) and served by the dev server.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = fileURLToPath(new URL('.', import.meta.url));
const CHECKPOINT = fileURLToPath(new URL('../test/fixtures/hf_gpt2_public/', import.meta.url));
const ROUTE = 'models/tiny-gpt2/';
/** What a checkpoint folder needs in the browser: no expected.* (test data). */
const FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'vocab.json', 'merges.txt'];

/** @returns {import('vite').Plugin} */
export function gpt2Demo() {
  const present = () => FILES.filter((f) => existsSync(join(CHECKPOINT, f)));
  return {
    name: 'ferroformer-gpt2-demo',
    config(config) {
      const build = config.build ?? {};
      const options = build.rolldownOptions ?? build.rollupOptions ?? {};
      const input = options.input ?? { main: join(WEB, 'index.html') };
      return { build: { rolldownOptions: { input: { ...input, gpt2: join(WEB, 'gpt2.html') } } } };
    },
    generateBundle() {
      for (const file of present()) this.emitFile({ type: 'asset', fileName: ROUTE + file, source: readFileSync(join(CHECKPOINT, file)) });
    },
    configureServer(server) {
      server.middlewares.use((request, response, next) => {
        const path = new URL(request.url ?? '/', 'http://localhost').pathname;
        const file = path.startsWith('/' + ROUTE) ? path.slice(ROUTE.length + 1) : null;
        if (file === null || !present().includes(file)) return next();
        response.setHeader('Content-Type', file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
        response.end(readFileSync(join(CHECKPOINT, file)));
      });
    },
  };
}
