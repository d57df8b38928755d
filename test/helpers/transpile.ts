// The library as plain JavaScript for child processes and worker threads, which cannot load
// TypeScript the way vitest does: every ts/**/*.ts transpiled (types stripped, no checking)
// into node_modules/.cache/ferroformer-js-<pid>/ts, with build/ linked beside it so the
// native addon and the wasm module load from the usual relative paths.
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function* tsFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* tsFiles(path);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) yield path;
  }
}

let built: string | null = null;

/** Transpiles ts/ once per process; returns the folder holding ts/ (import `${dir}/ts/index.js`). */
export function transpiledLibrary(): string {
  if (built !== null) return built;
  const out = join(root, 'node_modules', '.cache', `ferroformer-js-${process.pid}`);
  rmSync(out, { recursive: true, force: true });
  for (const file of tsFiles(join(root, 'ts'))) {
    const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: false },
      fileName: file,
    });
    const target = join(out, relative(root, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, outputText);
  }
  writeFileSync(join(out, 'package.json'), '{"type": "module"}\n');
  symlinkSync(join(root, 'build'), join(out, 'build'));
  built = out;
  return out;
}

export function removeTranspiledLibrary(): void {
  if (built !== null) rmSync(built, { recursive: true, force: true });
  built = null;
}
