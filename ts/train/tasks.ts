// Synthetic sequence-to-sequence tasks generated in code (no download): the Annotated
// Transformer's copy task and its reverse. Ids: 0 pad, 1..symbols the symbols, then BOS, EOS.
import type { Rng } from '../nn/init.js';

export interface SymbolTask {
  /** Symbols are ids 1..symbols. */
  symbols: number;
  padId: 0;
  bosId: number;
  eosId: number;
  vocab: number;
}

export function symbolTask(symbols = 10): SymbolTask {
  return { symbols, padId: 0, bosId: symbols + 1, eosId: symbols + 2, vocab: symbols + 3 };
}

export interface PairBatch {
  src: number[][];
  /** [BOS, ...output, EOS] */
  tgt: number[][];
}

/** `batch` random sequences of `length` symbols, and the target made by `transform`. */
export function symbolBatch(task: SymbolTask, rng: Rng, batch: number, length: number, transform: (src: number[]) => number[] = (s) => s): PairBatch {
  const src: number[][] = [];
  const tgt: number[][] = [];
  for (let i = 0; i < batch; i++) {
    const s = Array.from({ length }, () => 1 + Math.floor(rng.next() * task.symbols));
    src.push(s);
    tgt.push([task.bosId, ...transform(s), task.eosId]);
  }
  return { src, tgt };
}

export const reverse = (s: number[]): number[] => [...s].reverse();
