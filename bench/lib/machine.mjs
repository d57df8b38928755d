// What the report says about the machine: the CPU model, the instruction sets the kernels
// and PyTorch can use, and the measured single-core FMA peak (bench/lib/fma_peak.rs, built
// with the rustc that builds the addon), against which the goals' "fraction of peak" is read.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';

/** Instruction-set flags worth naming, in /proc/cpuinfo spelling. */
const NAMED_FLAGS = ['sse4_2', 'avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512dq', 'avx512bw', 'avx512vl', 'avx512_vnni',
  'avx512_bf16', 'avx512_fp16', 'avx_vnni', 'amx_tile', 'amx_bf16', 'asimd', 'sve', 'sve2', 'i8mm', 'bf16'];

export function instructionSets() {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const line = info.split('\n').find((l) => /^(flags|Features)\s*:/.test(l)) ?? '';
    const have = new Set(line.split(':')[1]?.trim().split(/\s+/) ?? []);
    return NAMED_FLAGS.filter((f) => have.has(f));
  } catch {
    return [];
  }
}

/** {avx2, avx512} in GFLOP/s per core (null where the CPU lacks it), or {error}. */
export function fmaPeak() {
  const source = fileURLToPath(new URL('./fma_peak.rs', import.meta.url));
  const dir = fileURLToPath(new URL('../../target/bench/', import.meta.url));
  const binary = `${dir}fma_peak`;
  if (!existsSync(binary) || statSync(binary).mtimeMs < statSync(source).mtimeMs) {
    mkdirSync(dir, { recursive: true });
    const build = spawnSync('rustc', ['--edition', '2021', '-C', 'opt-level=3', '-C', 'target-cpu=native', source, '-o', binary], { encoding: 'utf8' });
    if (build.status !== 0) return { error: `rustc failed: ${(build.error?.message ?? build.stderr).trim().split('\n')[0]}` };
  }
  const run = spawnSync(binary, [], { encoding: 'utf8' });
  if (run.status !== 0) return { error: `fma_peak failed: ${run.stderr || run.error}` };
  return JSON.parse(run.stdout);
}

/** The widest measured peak, the one the goals refer to. */
export const bestPeak = (peak) => Math.max(peak?.avx2 ?? 0, peak?.avx512 ?? 0) || null;

export function describeMachine() {
  return { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, isa: instructionSets(), fmaPeak: fmaPeak() };
}
