import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Two cores: forks keep native addons and wasm instances isolated per file.
    pool: 'forks',
    // Generous: CI machines are shared (2 cores); speed targets live in bench/, not here.
    testTimeout: 180_000,
    hookTimeout: 120_000,
  },
});
