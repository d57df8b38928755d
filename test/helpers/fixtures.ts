// Loads a PyTorch fixture set: `<base>.json` (the case list) + `<base>.safetensors` (the
// tensors, named `<case name>.<tensor>`). The base path comes from FERRO_FIXTURES (a path
// without extension) so the same tests run against a private fixture set, and defaults to
// test/fixtures/public (a copy of the public set kept in the repository).

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { readSafetensors, type SafetensorsTensor } from '../../ts/io/safetensors.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** One entry of the case list; everything beyond op and name is op-specific. */
export interface FixtureCase {
  op: string;
  name: string;
  [key: string]: unknown;
}

export interface Fixtures {
  /** The base path (no extension) the set was loaded from. */
  base: string;
  /** The whole JSON document (seed, convention, ...). */
  meta: Record<string, unknown>;
  cases: FixtureCase[];
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
  has(name: string): boolean;
  /** The tensor `name`, or an Error naming it and the fixture file. */
  get(name: string): SafetensorsTensor;
  /** `get(name).data` converted to float64 (the reference backend's storage). */
  f64(name: string): Float64Array;
  /** The tensors of one case, keyed by the part after `<case>.` */
  caseTensors(caseName: string): Map<string, SafetensorsTensor>;
  /** The cases whose op is one of `ops`. */
  casesOf(...ops: string[]): FixtureCase[];
}

/** FERRO_FIXTURES (without extension), else the repository's copy `test/fixtures/public`. */
export function fixturePath(): string {
  const env = process.env['FERRO_FIXTURES'];
  return env && env.length > 0 ? path.resolve(env) : path.resolve(REPO_ROOT, 'test/fixtures/public');
}

/** Whether both files of the set exist (tests skip with a reason when not). */
export function fixturesAvailable(base: string = fixturePath()): boolean {
  return existsSync(`${base}.json`) && existsSync(`${base}.safetensors`);
}

const cache = new Map<string, Fixtures>();

export function loadFixtures(base: string = fixturePath()): Fixtures {
  const cached = cache.get(base);
  if (cached) return cached;

  const meta = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as Record<string, unknown>;
  const rawCases = meta['cases'];
  if (!Array.isArray(rawCases)) throw new Error(`${base}.json: "cases" must be an array`);
  const cases = rawCases.map((c: unknown, i): FixtureCase => {
    const o = c as Record<string, unknown>;
    if (typeof o?.['op'] !== 'string' || typeof o['name'] !== 'string') {
      throw new Error(`${base}.json: cases[${i}] needs string "op" and "name"`);
    }
    return o as FixtureCase;
  });
  const { tensors, metadata } = readSafetensors(readFileSync(`${base}.safetensors`));

  const get = (name: string): SafetensorsTensor => {
    const t = tensors.get(name);
    if (!t) throw new Error(`fixture tensor ${name} not found in ${base}.safetensors`);
    return t;
  };
  const fixtures: Fixtures = {
    base,
    meta,
    cases,
    tensors,
    metadata,
    has: (name) => tensors.has(name),
    get,
    f64: (name) => {
      const { data } = get(name);
      if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Float64Array.from(data, Number);
      return Float64Array.from(data);
    },
    caseTensors: (caseName) => {
      const prefix = `${caseName}.`;
      const out = new Map<string, SafetensorsTensor>();
      for (const [k, t] of tensors) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), t);
      return out;
    },
    casesOf: (...ops) => cases.filter((c) => ops.includes(c.op)),
  };
  cache.set(base, fixtures);
  return fixtures;
}
