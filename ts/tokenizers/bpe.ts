// Byte-level byte-pair encoding, as GPT-2 and Karpathy's minbpe do it: text becomes UTF-8
// bytes, and training repeatedly merges the most frequent adjacent pair of ids into a new id.
// Every string is representable (no unk is ever needed), and the merges are the whole model.
//
// Id layout: the specials first (pad 0, bos 1, eos 2, and unk 3 only when the caller names
// one), then the 256 bytes (byte b has id `specialCount + b`, so 3 + b by default), then one
// id per merge in the order learned (merge i creates id `specialCount + 256 + i`).

import { ConfigError } from '../tensor/errors.js';
import {
  assertNoForbiddenKeys,
  expectArray,
  expectHeader,
  expectInteger,
  expectOnlyKeys,
  expectRecord,
  formatError,
  MAX_VOCAB_SIZE,
  ownField,
  show,
  TOKENIZER_JSON_VERSION,
} from './json_checks.js';
import { checkTokenId, parseSpecials, resolveSpecials, specialsInIdOrder, specialsToJSON } from './specials.js';
import type { DecodeOptions, EncodeOptions, SpecialTokens, Tokenizer } from './tokenizer.js';

/** How text is cut into chunks before BPE; merges never cross a chunk boundary.
 * 'gpt2': GPT-2's pattern (contractions, letter runs, digit runs, punctuation runs, whitespace),
 * which keeps merges from gluing words to punctuation and makes training work on distinct
 * chunks. 'none': the whole text is one chunk (minbpe's BasicTokenizer). */
export type BpeSplit = 'gpt2' | 'none';

export interface BpeTrainOptions {
  /** Total vocabulary including the specials and the 256 bytes. Training stops early when no
   * adjacent pair is left to merge, so a short text can give a smaller vocabulary. */
  vocabSize: number;
  specials?: Partial<SpecialTokens>;
  split?: BpeSplit;
}

export interface BpeTokenizerJSON {
  kind: 'bpe';
  version: number;
  vocabSize: number;
  split: BpeSplit;
  specials: SpecialTokens;
  /** `merges[i] = [left, right]` creates id `specialCount + 256 + i`. */
  merges: Array<[number, number]>;
}

const BPE_JSON_KEYS = ['kind', 'version', 'vocabSize', 'split', 'specials', 'merges'] as const;
const BYTE_COUNT = 256;

// GPT-2's pattern made Unicode-aware. The alternatives together match every code point
// (anything not whitespace, letter or digit falls in the punctuation class), so the matches
// tile the text and joining them gives it back.
const GPT2_SPLIT_PATTERN = /'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

function splitText(text: string, split: BpeSplit): string[] {
  if (split === 'none') return text.length === 0 ? [] : [text];
  return text.match(GPT2_SPLIT_PATTERN) ?? [];
}

// Pairs are keyed by one number, left * 2^20 + right: ids stay below MAX_VOCAB_SIZE < 2^20, so
// keys are exact doubles, and ordering keys orders pairs by (left, right) - the tie-break rule.
const PAIR_KEY_BASE = 1 << 20;
const pairKey = (left: number, right: number): number => left * PAIR_KEY_BASE + right;
const pairLeft = (key: number): number => Math.floor(key / PAIR_KEY_BASE);
const pairRight = (key: number): number => key % PAIR_KEY_BASE;

/**
 * A max-heap of (count, pair key): higher count first, then lower key. Counts change as merges
 * proceed; instead of updating entries in place, a changed pair is pushed again and entries
 * whose count no longer matches the live count are dropped when they reach the top.
 */
class PairHeap {
  private readonly counts: number[] = [];
  private readonly keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  private before(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }

  private swap(i: number, j: number): void {
    const c = this.counts[i]!;
    this.counts[i] = this.counts[j]!;
    this.counts[j] = c;
    const k = this.keys[i]!;
    this.keys[i] = this.keys[j]!;
    this.keys[j] = k;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes the top entry and returns it as [count, key]. */
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0]!, this.keys[0]!];
    const last = this.counts.length - 1;
    this.swap(0, last);
    this.counts.pop();
    this.keys.pop();
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let best = i;
      if (left < last && this.before(left, best)) best = left;
      if (right < last && this.before(right, best)) best = right;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
    return top;
  }
}

/**
 * Learns up to `maxMerges` merges over distinct chunks `words` occurring `wordCounts` times.
 * Pair counts are kept up to date incrementally: a merge touches only the chunks that contain
 * the pair, and only the pairs next to each merged position, so a step costs what it changes
 * rather than a pass over the corpus.
 */
function learnMerges(
  words: number[][],
  wordCounts: readonly number[],
  firstNewId: number,
  maxMerges: number,
): Array<[number, number]> {
  const pairCounts = new Map<number, number>();
  // Chunks that contained each pair at some point; entries may be stale (merging them away is
  // then a no-op), which is cheaper than removing them on every change.
  const pairWords = new Map<number, Set<number>>();
  const changed = new Set<number>();

  const addPair = (key: number, delta: number, word: number): void => {
    const next = (pairCounts.get(key) ?? 0) + delta;
    if (next === 0) pairCounts.delete(key);
    else pairCounts.set(key, next);
    changed.add(key);
    if (delta > 0) {
      let holders = pairWords.get(key);
      if (holders === undefined) pairWords.set(key, (holders = new Set()));
      holders.add(word);
    }
  };

  for (let w = 0; w < words.length; w++) {
    const ids = words[w]!;
    for (let i = 0; i + 1 < ids.length; i++) addPair(pairKey(ids[i]!, ids[i + 1]!), wordCounts[w]!, w);
  }
  const heap = new PairHeap();
  for (const [key, count] of pairCounts) heap.push(count, key);
  changed.clear();

  const merges: Array<[number, number]> = [];
  while (merges.length < maxMerges) {
    let best: number | undefined;
    while (heap.size > 0) {
      const [count, key] = heap.pop();
      if (pairCounts.get(key) === count) {
        best = key;
        break;
      }
    }
    if (best === undefined) break;

    const left = pairLeft(best);
    const right = pairRight(best);
    const newId = firstNewId + merges.length;
    merges.push([left, right]);

    for (const w of pairWords.get(best)!) {
      const ids = words[w]!;
      const count = wordCounts[w]!;
      const merged: number[] = [];
      let i = 0;
      while (i < ids.length) {
        if (i + 1 < ids.length && ids[i] === left && ids[i + 1] === right) {
          // The neighbour on the left is read from `merged` (it may be a merge just made
          // here), the one on the right from `ids` (the next merge will account for it):
          // in [a b a b] the second merge moves (new, a) to (new, new), as it should.
          addPair(best, -count, w);
          if (merged.length > 0) {
            const before = merged[merged.length - 1]!;
            addPair(pairKey(before, left), -count, w);
            addPair(pairKey(before, newId), count, w);
          }
          if (i + 2 < ids.length) {
            const after = ids[i + 2]!;
            addPair(pairKey(right, after), -count, w);
            addPair(pairKey(newId, after), count, w);
          }
          merged.push(newId);
          i += 2;
        } else {
          merged.push(ids[i]!);
          i += 1;
        }
      }
      words[w] = merged;
    }
    pairWords.delete(best);
    for (const key of changed) {
      const count = pairCounts.get(key);
      if (count !== undefined) heap.push(count, key);
    }
    changed.clear();
  }
  return merges;
}

export class BpeTokenizer implements Tokenizer {
  readonly kind = 'bpe' as const;
  readonly vocabSize: number;
  readonly padId = 0;
  readonly bosId = 1;
  readonly eosId = 2;
  readonly split: BpeSplit;
  readonly specials: Readonly<SpecialTokens>;
  /** Id of byte 0; byte b is `firstByteId + b`. */
  readonly firstByteId: number;
  private readonly merges: ReadonlyArray<readonly [number, number]>;
  private readonly firstMergeId: number;
  private readonly specialStrings: readonly string[];
  /** Pair key -> the id the pair merges into; lower ids were learned earlier and merge first. */
  private readonly mergedIdByPair: ReadonlyMap<number, number>;
  /** The UTF-8 bytes each non-special id stands for, indexed by `id - firstByteId`. */
  private readonly tokenBytes: readonly Uint8Array[];

  private constructor(specials: SpecialTokens, split: BpeSplit, merges: ReadonlyArray<readonly [number, number]>) {
    this.specials = Object.freeze(specialsToJSON(specials));
    this.specialStrings = specialsInIdOrder(specials);
    this.split = split;
    this.firstByteId = this.specialStrings.length;
    this.firstMergeId = this.firstByteId + BYTE_COUNT;
    this.merges = Object.freeze(merges.map(([a, b]) => Object.freeze([a, b] as const)));
    this.vocabSize = this.firstMergeId + merges.length;

    const mergedIdByPair = new Map<number, number>();
    const tokenBytes: Uint8Array[] = [];
    for (let b = 0; b < BYTE_COUNT; b++) tokenBytes.push(Uint8Array.of(b));
    merges.forEach(([a, b], i) => {
      mergedIdByPair.set(pairKey(a, b), this.firstMergeId + i);
      const leftBytes = tokenBytes[a - this.firstByteId]!;
      const rightBytes = tokenBytes[b - this.firstByteId]!;
      const bytes = new Uint8Array(leftBytes.length + rightBytes.length);
      bytes.set(leftBytes);
      bytes.set(rightBytes, leftBytes.length);
      tokenBytes.push(bytes);
    });
    this.mergedIdByPair = mergedIdByPair;
    this.tokenBytes = tokenBytes;
  }

  /**
   * Learns merges until the vocabulary reaches `vocabSize` or no adjacent pair is left.
   * The most frequent pair wins; ties go to the lowest (left, right) ids, so training is
   * deterministic. Like minbpe, a pair occurring once still merges when budget remains.
   * @throws ConfigError when vocabSize is not an integer in [specials + 256, 1,000,000].
   */
  static train(text: string, options: BpeTrainOptions): BpeTokenizer {
    const op = 'BpeTokenizer.train';
    if (typeof text !== 'string') throw new ConfigError(op, `text must be a string, got ${show(text)}`);
    if (typeof options !== 'object' || options === null) {
      throw new ConfigError(op, `options must be an object with vocabSize, got ${show(options)}`);
    }
    const specials = resolveSpecials(op, options.specials, false);
    const split = options.split ?? 'gpt2';
    if (split !== 'gpt2' && split !== 'none') throw new ConfigError(op, `split must be 'gpt2' or 'none', got ${show(split)}`);
    const firstByteId = specialsInIdOrder(specials).length;
    const minVocab = firstByteId + BYTE_COUNT;
    const { vocabSize } = options;
    if (typeof vocabSize !== 'number' || !Number.isInteger(vocabSize) || vocabSize < minVocab || vocabSize > MAX_VOCAB_SIZE) {
      throw new ConfigError(
        op,
        `vocabSize must be an integer in [${minVocab}, ${MAX_VOCAB_SIZE}] ` +
          `(${firstByteId} specials + 256 bytes at least), got ${show(vocabSize)}`,
      );
    }

    // Train on distinct chunks with their counts: natural text repeats its words heavily.
    const chunkCounts = new Map<string, number>();
    for (const chunk of splitText(text, split)) chunkCounts.set(chunk, (chunkCounts.get(chunk) ?? 0) + 1);
    const encoder = new TextEncoder();
    const words: number[][] = [];
    const wordCounts: number[] = [];
    for (const [chunk, count] of chunkCounts) {
      const bytes = encoder.encode(chunk);
      if (bytes.length < 2) continue; // no pair inside
      words.push(Array.from(bytes, (b) => firstByteId + b));
      wordCounts.push(count);
    }
    const merges = learnMerges(words, wordCounts, minVocab, vocabSize - minVocab);
    return new BpeTokenizer(specials, split, merges);
  }

  /** @throws FormatError as tokenizerFromJSON does. */
  static fromJSON(json: unknown): BpeTokenizer {
    assertNoForbiddenKeys(json);
    const record = expectRecord(json, 'tokenizer');
    expectHeader(record, 'bpe');
    expectOnlyKeys(record, 'tokenizer', BPE_JSON_KEYS);
    const vocabSize = expectInteger(ownField(record, 'vocabSize'), 'vocabSize', 0, MAX_VOCAB_SIZE + 1);
    const split = ownField(record, 'split');
    if (split !== 'gpt2' && split !== 'none') throw formatError('split', `must be "gpt2" or "none", got ${show(split)}`);
    const specials = parseSpecials(ownField(record, 'specials'), false);
    const firstByteId = specialsInIdOrder(specials).length;
    const firstMergeId = firstByteId + BYTE_COUNT;
    const rawMerges = expectArray(ownField(record, 'merges'), 'merges', MAX_VOCAB_SIZE - firstMergeId);
    if (vocabSize !== firstMergeId + rawMerges.length) {
      throw formatError(
        'vocabSize',
        `must equal ${firstByteId} specials + 256 bytes + ${rawMerges.length} merges ` +
          `= ${firstMergeId + rawMerges.length}, got ${vocabSize}`,
      );
    }
    const seen = new Set<number>();
    const merges: Array<[number, number]> = [];
    for (let i = 0; i < rawMerges.length; i++) {
      const field = `merges[${i}]`;
      const pair = expectArray(rawMerges[i], field, 2);
      if (pair.length !== 2) throw formatError(field, `must be a pair [left, right], got ${show(pair)}`);
      // A merge may combine bytes and earlier merges only: never a special, never itself or later.
      const newId = firstMergeId + i;
      const left = expectInteger(pair[0], `${field}[0]`, firstByteId, newId);
      const right = expectInteger(pair[1], `${field}[1]`, firstByteId, newId);
      const key = pairKey(left, right);
      if (seen.has(key)) throw formatError(field, `duplicates an earlier merge [${left}, ${right}]`);
      seen.add(key);
      merges.push([left, right]);
    }
    return new BpeTokenizer(specials, split, merges);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new ConfigError('BpeTokenizer.encode', `text must be a string, got ${show(text)}`);
    const ids: number[] = [];
    if (options.addBos) ids.push(this.bosId);
    // TextEncoder writes a lone surrogate as U+FFFD, the one input that does not round-trip.
    const encoder = new TextEncoder();
    for (const chunk of splitText(text, this.split)) {
      for (const id of this.encodeChunk(encoder.encode(chunk))) ids.push(id);
    }
    if (options.addEos) ids.push(this.eosId);
    return ids;
  }

  /** Applies merges in the order learned (lowest resulting id first), each to every
   * non-overlapping occurrence left to right, exactly as training rewrote its chunks. */
  private encodeChunk(bytes: Uint8Array): number[] {
    let ids = Array.from(bytes, (b) => this.firstByteId + b);
    while (ids.length >= 2) {
      let bestId = Infinity;
      for (let i = 0; i + 1 < ids.length; i++) {
        const merged = this.mergedIdByPair.get(pairKey(ids[i]!, ids[i + 1]!));
        if (merged !== undefined && merged < bestId) bestId = merged;
      }
      if (bestId === Infinity) break;
      const [left, right] = this.merges[bestId - this.firstMergeId]!;
      const next: number[] = [];
      for (let i = 0; i < ids.length; i++) {
        if (i + 1 < ids.length && ids[i] === left && ids[i + 1] === right) {
          next.push(bestId);
          i += 1;
        } else {
          next.push(ids[i]!);
        }
      }
      ids = next;
    }
    return ids;
  }

  /** Bytes are joined before decoding, and invalid UTF-8 (a prefix of a multi-byte character,
   * say, when decoding a partial generation) becomes U+FFFD rather than an error. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skipSpecial = options.skipSpecial ?? true;
    // ignoreBOM keeps a leading U+FEFF that was part of the text instead of stripping it.
    const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
    const parts: string[] = [];
    let pending: Uint8Array[] = [];
    let pendingLength = 0;
    const flush = (): void => {
      if (pending.length === 0) return;
      const bytes = new Uint8Array(pendingLength);
      let offset = 0;
      for (const piece of pending) {
        bytes.set(piece, offset);
        offset += piece.length;
      }
      parts.push(decoder.decode(bytes));
      pending = [];
      pendingLength = 0;
    };
    for (let i = 0; i < ids.length; i++) {
      const id = checkTokenId('BpeTokenizer.decode', ids, i, this.vocabSize);
      if (id >= this.firstByteId) {
        const bytes = this.tokenBytes[id - this.firstByteId]!;
        pending.push(bytes);
        pendingLength += bytes.length;
      } else if (!skipSpecial) {
        flush();
        parts.push(this.specialStrings[id]!);
      }
    }
    flush();
    return parts.join('');
  }

  /** The number of learned merges (vocabSize - specials - 256). */
  get mergeCount(): number {
    return this.merges.length;
  }

  toJSON(): BpeTokenizerJSON {
    return {
      kind: 'bpe',
      version: TOKENIZER_JSON_VERSION,
      vocabSize: this.vocabSize,
      split: this.split,
      specials: specialsToJSON(this.specials),
      merges: this.merges.map(([a, b]) => [a, b]),
    };
  }
}
