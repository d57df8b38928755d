// The package.json that goes into the tarball, without the repository's scripts.
//
//   node scripts/pack-manifest.mjs strip     (prepack)  keeps package.json as
//                                             .package.json.unpacked and writes it without `scripts`
//   node scripts/pack-manifest.mjs restore   (postpack) puts the repository's package.json back
//
// A clone's `npm install` must build everything, so the repository keeps `prepare`; but in
// the published package `prepare` and the other scripts refer to sources and tools the
// tarball does not hold (scripts/, crates/, vitest), and npm 11 lists a tarball's
// `prepare` among the install scripts its users must approve. npm reads package.json again
// after prepack, so the tarball gets the stripped one. Publish the packed file
// (`npm pack && npm publish ferroformer-<version>.tgz`) so that the registry's manifest is
// the tarball's too.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const manifest = path.join(root, 'package.json');
const kept = path.join(root, '.package.json.unpacked');

const command = process.argv[2];
if (command === 'strip') {
  if (existsSync(kept)) {
    console.error(`pack-manifest: ${kept} exists: an earlier pack stopped before postpack. Run 'node scripts/pack-manifest.mjs restore' and pack again.`);
    process.exit(1);
  }
  const text = readFileSync(manifest, 'utf8');
  const pkg = JSON.parse(text);
  delete pkg.scripts;
  writeFileSync(kept, text);
  writeFileSync(manifest, `${JSON.stringify(pkg, null, 2)}\n`);
} else if (command === 'restore') {
  if (existsSync(kept)) renameSync(kept, manifest);
} else {
  console.error('usage: node scripts/pack-manifest.mjs strip|restore');
  process.exit(2);
}
