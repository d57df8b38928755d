#!/usr/bin/env node
// Builds the WebAssembly kernels: build/ferroformer.wasm (simd128, single-threaded) and,
// when the toolchain allows it, build/ferroformer-threads.wasm (shared memory + atomics),
// build/ferroformer-relaxed.wasm (simd128 + relaxed SIMD, single-threaded) and
// build/ferroformer-threads-relaxed.wasm (both: without it, an engine with relaxed SIMD would
// have to choose between threads and the fused multiply-add, and one relaxed thread beats
// two plain ones on W4).
//
// Finds a Rust toolchain that can target wasm32-unknown-unknown, in this order:
//   (a) a rustup toolchain with the wasm32-unknown-unknown target installed: plain cargo;
//   (b) Debian's rustc-web/cargo-web (/usr/bin) with rust-web-src: no prebuilt wasm32 std
//       ships there, so std is built from the packaged sources with -Zbuild-std, its
//       dependencies taken from the vendor folder that comes with them (works offline);
//   (c) as root on Debian: apt-get install those packages, then (b);
//   (d) otherwise: exit 1 naming the command to run.
// A failure of the main module exits 1; the others only ever warn (FERRO_WASM_THREADS=0 skips
// both threaded modules, FERRO_WASM_RELAXED=0 both relaxed ones). Cargo builds into
// target/wasm* (one folder per module), apart from the native build; wasm-opt -O3 (binaryen,
// a devDependency) writes build/.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
// The kernel exports are generated from scripts/kernel-table.mjs: bring them up to date first.
import './gen-kernels.mjs';

const TARGET = 'wasm32-unknown-unknown';
const root = fileURLToPath(new URL('..', import.meta.url));
const crateDir = join(root, 'crates', 'wasm');
const buildDir = join(root, 'build');
const cargoOutput = (targetDir) => join(targetDir, TARGET, 'release', 'ferroformer_wasm.wasm');
const DEBIAN_PACKAGES = ['rustc-web', 'cargo-web', 'rust-web-src', 'lld'];
// The threaded module imports its memory, whose limits the JS side must match: both are
// constants of ts/backend/wasm_threads.ts (THREADS_INITIAL_PAGES, THREADS_MAXIMUM_PAGES). 4 MiB
// holds the static data and the main thread's 1 MiB stack; 4 GiB is the wasm32 limit.
const THREADS_INITIAL_MEMORY = 64 * 65536;
const THREADS_MAX_MEMORY = 65536 * 65536;

class BuildError extends Error {}

/** stdout of a command, or null when it is missing or fails. */
function capture(cmd, args, env = process.env) {
  const result = spawnSync(cmd, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
  return result.status === 0 ? result.stdout.trim() : null;
}

/** Runs a command with inherited output; throws BuildError naming it on failure. */
function run(cmd, args, { env = process.env, cwd = root, shownEnv = [] } = {}) {
  const assignments = shownEnv.filter((name) => env[name] !== undefined).map((name) => `${name}="${env[name]}"`);
  console.log(`build-wasm: $ ${[...assignments, cmd, ...args].join(' ')}`);
  const result = spawnSync(cmd, args, { stdio: 'inherit', env, cwd });
  if (result.error) throw new BuildError(`${cmd} could not be started: ${result.error.message}`);
  if (result.status !== 0) throw new BuildError(`${cmd} ${args[0] ?? ''} exited with status ${result.status}`);
}

const hasTarget = (sysroot) => sysroot !== null && existsSync(join(sysroot, 'lib', 'rustlib', TARGET, 'lib'));
const stdSources = (sysroot) => join(sysroot, 'lib', 'rustlib', 'src', 'rust', 'library');

// ---- toolchain discovery -----------------------------------------------------------------

/** (a) The active toolchain first (it honours rust-toolchain files), then every other one. */
function findRustupToolchain() {
  if (capture('rustup', ['--version']) === null) return null;
  const active = capture('rustc', ['--print', 'sysroot']);
  if (hasTarget(active)) {
    return { kind: 'rustup', label: `rustup (active toolchain, ${capture('rustc', ['--version'])})`, cargo: ['cargo'], sysroot: active };
  }
  const toolchains = (capture('rustup', ['toolchain', 'list']) ?? '').split('\n')
    .map((line) => line.split(/\s+/)[0]).filter(Boolean);
  for (const toolchain of toolchains) {
    const sysroot = capture('rustc', [`+${toolchain}`, '--print', 'sysroot']);
    if (hasTarget(sysroot)) {
      return { kind: 'rustup', label: `rustup toolchain ${toolchain}`, cargo: ['cargo', `+${toolchain}`], sysroot };
    }
  }
  return null;
}

/** (b) Debian's rustc-web: a wasm-capable rustc, cargo, the std sources with their vendor folder, wasm-ld. */
function findDebianToolchain() {
  const rustc = '/usr/bin/rustc';
  const cargo = '/usr/bin/cargo';
  if (!existsSync(rustc) || !existsSync(cargo)) return null;
  const sysroot = capture(rustc, ['--print', 'sysroot']);
  if (sysroot === null) return null;
  const targets = capture(rustc, ['--print', 'target-list']) ?? '';
  if (!targets.split('\n').includes(TARGET)) return null;
  const library = stdSources(sysroot);
  const vendor = join(library, 'vendor');
  if (!existsSync(join(library, 'std')) || !existsSync(vendor)) return null;
  const linker = ['/usr/bin/wasm-ld', 'wasm-ld'].find((candidate) => capture(candidate, ['--version']) !== null);
  if (linker === undefined) return null;
  return {
    kind: 'debian-build-std',
    label: `Debian ${capture(rustc, ['--version'])} with -Zbuild-std from ${library}`,
    cargo: [cargo], rustc, sysroot, vendor, linker,
  };
}

const isRootOnDebian = () => existsSync('/etc/debian_version') && process.getuid?.() === 0;

/** (c) Installs Debian's wasm toolchain; refreshes the package lists only if the first try fails. */
function installDebianToolchain() {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = ['install', '-y', '--no-install-recommends', ...DEBIAN_PACKAGES];
  console.log(`build-wasm: no wasm32 Rust toolchain found; installing ${DEBIAN_PACKAGES.join(' ')} with apt-get`);
  try {
    run('apt-get', install, { env });
  } catch {
    run('apt-get', ['update'], { env });
    run('apt-get', install, { env });
  }
}

function howToInstall() {
  if (capture('rustup', ['--version']) !== null) return `rustup target add ${TARGET}`;
  if (existsSync('/etc/debian_version')) return `sudo apt-get install -y ${DEBIAN_PACKAGES.join(' ')}`;
  return `install rustup (https://rustup.rs), then: rustup target add ${TARGET}`;
}

function findToolchain() {
  const found = findRustupToolchain() ?? findDebianToolchain();
  if (found !== null) return found;
  if (isRootOnDebian()) {
    installDebianToolchain();
    const installed = findDebianToolchain();
    if (installed !== null) return installed;
    throw new BuildError(`installed ${DEBIAN_PACKAGES.join(' ')} but still found no usable wasm32 toolchain`);
  }
  throw new BuildError(`no Rust toolchain that can build for ${TARGET} was found. Run:\n  ${howToInstall()}`);
}

// ---- cargo ---------------------------------------------------------------------------------

/**
 * Cargo invocation for one variant. `buildStd` rebuilds std for the target, which the
 * Debian toolchain always needs (it ships no wasm32 std) and atomics always need (the
 * prebuilt std is compiled without them).
 */
function cargoBuild(toolchain, { targetDir, features, linkArgs = [], buildStd }) {
  const rustflags = [`-C target-feature=${features.map((f) => `+${f}`).join(',')}`, ...linkArgs.map((a) => `-C link-arg=${a}`)];
  const env = { ...process.env, RUSTFLAGS: rustflags.join(' ') };
  delete env.CARGO_ENCODED_RUSTFLAGS; // would override RUSTFLAGS
  const args = ['build', '--release', '--target', TARGET, '--target-dir', targetDir];
  if (toolchain.kind === 'debian-build-std') {
    // Debian's cargo must drive Debian's rustc (rustup's proxies come first on many PATHs).
    env.PATH = `/usr/bin:${env.PATH ?? ''}`;
    env.RUSTC = toolchain.rustc;
    env.RUSTFLAGS += ` -C linker=${toolchain.linker}`;
  }
  if (buildStd) {
    env.RUSTC_BOOTSTRAP = '1'; // -Zbuild-std is unstable; the std sources match this rustc exactly
    args.push('-Zbuild-std=std,panic_abort');
    if (toolchain.kind === 'debian-build-std') {
      // Offline: std's own dependencies come from the vendor folder shipped with its sources.
      args.push('--config', "source.crates-io.replace-with='vendored'",
        '--config', `source.vendored.directory='${toolchain.vendor}'`);
    }
  }
  const [cargo, ...prefix] = toolchain.cargo;
  run(cargo, [...prefix, ...args], { env, cwd: crateDir, shownEnv: ['RUSTC', 'RUSTC_BOOTSTRAP', 'RUSTFLAGS'] });
  return cargoOutput(targetDir);
}

// ---- post-processing -------------------------------------------------------------------------

function findWasmOpt() {
  const local = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'wasm-opt.cmd' : 'wasm-opt');
  if (existsSync(local)) return local;
  return capture('wasm-opt', ['--version']) !== null ? 'wasm-opt' : null;
}

/**
 * wasm-opt -O3. Features are read from the module's target_features section (SIMD,
 * bulk memory, atomics...), so nothing the compiler used is lost; --enable-simd makes sure
 * binaryen never drops SIMD even if that section were missing.
 */
function optimise(input, output) {
  const wasmOpt = findWasmOpt();
  if (wasmOpt === null) {
    console.warn(`build-wasm: warning: wasm-opt not found (npm install binaryen); copying ${output} unoptimised`);
    copyFileSync(input, output);
    return;
  }
  run(wasmOpt, ['-O3', '--enable-simd', '--strip-debug', '--strip-producers', input, '-o', output]);
}

/** This Node validates SIMD (it is the floor we support), so an invalid module is a build bug. */
const isValidModule = (file) => WebAssembly.validate(readFileSync(file));

const kib = (file) => `${(statSync(file).size / 1024).toFixed(1)} KiB`;

// ---- main ------------------------------------------------------------------------------------

function buildMain(toolchain) {
  const built = cargoBuild(toolchain, {
    targetDir: join(root, 'target', 'wasm'),
    features: ['simd128'],
    buildStd: toolchain.kind === 'debian-build-std',
  });
  const output = join(buildDir, 'ferroformer.wasm');
  optimise(built, output);
  if (!isValidModule(output)) throw new BuildError(`${output} does not validate as WebAssembly`);
  console.log(`build-wasm: wrote ${output} (${kib(output)})`);
}

/** A threaded module: `name` in build/, compiled with `features` besides the atomics. */
function buildThreads(toolchain, { name, features, targetDir }) {
  const output = join(buildDir, name);
  if (!existsSync(join(stdSources(toolchain.sysroot), 'std'))) {
    console.warn(`build-wasm: warning: skipping ${name}: atomics need the std sources (rustup component add rust-src)`);
    return;
  }
  try {
    const built = cargoBuild(toolchain, {
      targetDir: join(root, 'target', targetDir),
      features: [...features, 'atomics', 'bulk-memory', 'mutable-globals'],
      // Memory comes from JS (a shared WebAssembly.Memory every worker instantiates over);
      // each worker's instance gets its own stack (__stack_pointer) and thread-local block
      // (__wasm_init_tls), allocated by the main thread.
      linkArgs: ['--shared-memory', '--import-memory', `--initial-memory=${THREADS_INITIAL_MEMORY}`,
        `--max-memory=${THREADS_MAX_MEMORY}`, '--export=__stack_pointer', '--export=__wasm_init_tls',
        '--export=__tls_size', '--export=__tls_align'],
      buildStd: true,
    });
    optimise(built, output);
    console.log(`build-wasm: wrote ${output} (${kib(output)})`);
  } catch (error) {
    rmSync(output, { force: true }); // never leave a stale threaded module beside a fresh main one
    console.warn(`build-wasm: warning: ${name} was not built (optional): ${error.message}`);
  }
}

/** build/ferroformer-relaxed.wasm: the single-threaded module with relaxed SIMD (fma as
 * f32x4.relaxed_madd), loaded where the engine validates relaxed SIMD (Chromium; Node 20
 * behind --experimental-wasm-relaxed-simd). Optional: FERRO_WASM_RELAXED=0 skips it. */
function buildRelaxed(toolchain) {
  const output = join(buildDir, 'ferroformer-relaxed.wasm');
  try {
    const built = cargoBuild(toolchain, {
      targetDir: join(root, 'target', 'wasm-relaxed'),
      features: ['simd128', 'relaxed-simd'],
      buildStd: toolchain.kind === 'debian-build-std',
    });
    optimise(built, output);
    console.log(`build-wasm: wrote ${output} (${kib(output)})`);
  } catch (error) {
    rmSync(output, { force: true });
    console.warn(`build-wasm: warning: ferroformer-relaxed.wasm was not built (optional): ${error.message}`);
  }
}

try {
  const toolchain = findToolchain();
  console.log(`build-wasm: toolchain: ${toolchain.label}`);
  mkdirSync(buildDir, { recursive: true });
  buildMain(toolchain);
  const [threads, relaxed] = [process.env.FERRO_WASM_THREADS !== '0', process.env.FERRO_WASM_RELAXED !== '0'];
  if (threads) buildThreads(toolchain, { name: 'ferroformer-threads.wasm', features: ['simd128'], targetDir: 'wasm-threads' });
  if (relaxed) buildRelaxed(toolchain);
  if (threads && relaxed) {
    buildThreads(toolchain, { name: 'ferroformer-threads-relaxed.wasm', features: ['simd128', 'relaxed-simd'], targetDir: 'wasm-threads-relaxed' });
  }
} catch (error) {
  const message = error instanceof BuildError ? error.message : error.stack;
  console.error(`build-wasm: error: ${message}`);
  process.exit(1);
}
