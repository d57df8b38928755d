import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Examples import the package by name, as a user would; under test that name means the
    // sources in ts/ (one module graph with the tests), not a possibly stale dist/.
    alias: [{ find: /^ferroformer$/, replacement: fileURLToPath(new URL('./ts/index.ts', import.meta.url)) }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // Two cores: forks keep native addons and wasm instances isolated per file.
    pool: 'forks',
    // Generous: CI machines are shared (2 cores); speed targets live in bench/, not here.
    testTimeout: 180_000,
    hookTimeout: 120_000,
  },
});
