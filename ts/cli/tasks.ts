// The sequence-to-sequence tasks the CLI trains on, generated in code (no download):
// date normalisation (dates written in many human formats -> ISO 8601), and the copy and
// reverse tasks written as characters. Every task is character level: one CharTokenizer over
// a fixed alphabet serves source and target, so ids are stable across runs.
import { nn, tokenizers } from '../index.js';

export type TaskName = 'dates' | 'copy' | 'reverse';
export const TASK_NAMES: readonly TaskName[] = ['dates', 'copy', 'reverse'];

export interface Example {
  src: string;
  tgt: string;
}

export interface Seq2SeqTask {
  name: TaskName;
  /** Characters every source and target is written in. */
  alphabet: string;
  /** Longest source and target, in characters. */
  maxSrcLen: number;
  maxTgtLen: number;
  /** The one source length training draws, when there is only one (copy, reverse). */
  srcLength?: number;
  /** One example drawn with `rng`. */
  sample(rng: nn.Rng): Example;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

const pad2 = (n: number): string => String(n).padStart(2, '0');
const ordinal = (d: number): string => {
  const tens = d % 100;
  if (tens >= 11 && tens <= 13) return `${d}th`;
  return `${d}${['th', 'st', 'nd', 'rd'][d % 10] ?? 'th'}`;
};

interface DateParts {
  y: number;
  m: number;
  d: number;
  /** 0 = Sunday. */
  wd: number;
}

/** The formats a date is written in. Each one is unambiguous: slashes are US order
 * (month/day/year), dots European (day.month.year), as their users read them. */
const DATE_FORMATS: ((p: DateParts) => string)[] = [
  ({ y, m, d }) => `${MONTHS[m - 1]} ${d}, ${y}`,
  ({ y, m, d }) => `${MONTHS[m - 1]!.slice(0, 3)} ${d}, ${y}`,
  ({ y, m, d }) => `${d} ${MONTHS[m - 1]} ${y}`,
  ({ y, m, d }) => `${d} ${MONTHS[m - 1]!.slice(0, 3)} ${y}`,
  ({ y, m, d }) => `${ordinal(d)} of ${MONTHS[m - 1]}, ${y}`,
  ({ y, m, d }) => `${MONTHS[m - 1]} ${ordinal(d)}, ${y}`,
  ({ y, m, d, wd }) => `${WEEKDAYS[wd]}, ${MONTHS[m - 1]} ${d}, ${y}`,
  ({ y, m, d, wd }) => `${WEEKDAYS[wd]!.slice(0, 3)}, ${d} ${MONTHS[m - 1]!.slice(0, 3)} ${y}`,
  ({ y, m, d }) => `${pad2(m)}/${pad2(d)}/${y}`,
  ({ y, m, d }) => `${m}/${d}/${y}`,
  ({ y, m, d }) => `${pad2(d)}.${pad2(m)}.${y}`,
  ({ y, m, d }) => `${y}/${pad2(m)}/${pad2(d)}`,
  ({ y, m, d }) => `${y}${pad2(m)}${pad2(d)}`,
  ({ y, m, d }) => `${MONTHS[m - 1]!.toUpperCase()} ${d} ${y}`,
  ({ y, m, d }) => `${d} ${MONTHS[m - 1]!.slice(0, 3).toLowerCase()} ${y}`,
];

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const isLeap = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;

/** Dates from 1900-01-01 to 2099-12-31 in 15 human formats -> YYYY-MM-DD. */
export function datesTask(): Seq2SeqTask {
  const alphabet = [...new Set([...MONTHS, ...WEEKDAYS, ...MONTHS.map((m) => m.toUpperCase()), ...MONTHS.map((m) => m.toLowerCase())].join('') + '0123456789 ,./-')]
    .sort()
    .join('');
  return {
    name: 'dates',
    alphabet,
    maxSrcLen: 32,
    maxTgtLen: 10,
    sample(rng) {
      const y = 1900 + Math.floor(rng.next() * 200);
      const m = 1 + Math.floor(rng.next() * 12);
      const days = m === 2 && isLeap(y) ? 29 : DAYS_IN_MONTH[m - 1]!;
      const d = 1 + Math.floor(rng.next() * days);
      const wd = new Date(Date.UTC(y, m - 1, d)).getUTCDay();
      const format = DATE_FORMATS[Math.floor(rng.next() * DATE_FORMATS.length)]!;
      return { src: format({ y, m, d, wd }), tgt: `${y}-${pad2(m)}-${pad2(d)}` };
    },
  };
}

/** Random strings of `length` letters a..j, copied or reversed (the Annotated Transformer's
 * synthetic task, written as characters). */
export function symbolStringTask(name: 'copy' | 'reverse', length = 10): Seq2SeqTask {
  const alphabet = 'abcdefghij';
  return {
    name,
    alphabet,
    maxSrcLen: length,
    maxTgtLen: length,
    srcLength: length,
    sample(rng) {
      const s = Array.from({ length }, () => alphabet[Math.floor(rng.next() * alphabet.length)]!).join('');
      return { src: s, tgt: name === 'copy' ? s : [...s].reverse().join('') };
    },
  };
}

export function makeTask(name: TaskName): Seq2SeqTask {
  return name === 'dates' ? datesTask() : symbolStringTask(name);
}

export function taskTokenizer(task: Seq2SeqTask): tokenizers.CharTokenizer {
  return tokenizers.CharTokenizer.train(task.alphabet);
}

/** A held-out set of `count` distinct examples (seeded), and a predicate telling whether a
 * source belongs to it, so training never sees a held-out input. */
export function heldOut(task: Seq2SeqTask, count: number, seed: number): { examples: Example[]; has(src: string): boolean } {
  const rng = new nn.Rng(seed);
  const seen = new Set<string>();
  const examples: Example[] = [];
  for (let tries = 0; examples.length < count && tries < count * 20; tries++) {
    const e = task.sample(rng);
    if (seen.has(e.src)) continue;
    seen.add(e.src);
    examples.push(e);
  }
  return { examples, has: (src) => seen.has(src) };
}
