// Messages between the page (main.ts) and the training worker (worker.ts).

/** What the page asks for; every field can be set from the page's query string. */
export interface RunConfig {
  task: 'reverse' | 'copy';
  steps: number;
  batch: number;
  /** Symbols per sequence. */
  length: number;
  dModel: number;
  heads: number;
  layers: number;
  dFF: number;
  /** Threads asked for when the page is cross-origin isolated (1 otherwise). */
  threads: number;
  /** Noam schedule: lr = lrFactor * dModel^-0.5 * min(step^-0.5, step * warmup^-1.5). */
  warmup: number;
  lrFactor: number;
  /** Held-out loss, attention maps and samples every this many steps. */
  evalEvery: number;
  seed: number;
}

export type ToWorker = { type: 'start'; config: RunConfig };

export interface Sample {
  input: number[];
  target: number[];
  greedy: number[];
  beam: number[];
}

/** One attention map: [queries][keys] weights of one head in one layer. */
export interface AttentionMap {
  kind: 'encoder self' | 'decoder self' | 'decoder-source';
  layer: number;
  head: number;
  queries: string[];
  keys: string[];
  weights: number[][];
}

export type FromWorker =
  | { type: 'ready'; backend: string; threads: number; threadedModule: boolean; isolated: boolean; params: number }
  | { type: 'step'; step: number; loss: number; lr: number; tokensPerSecond: number }
  | { type: 'eval'; step: number; loss: number; exactMatch: number; samples: Sample[]; maps: AttentionMap[]; workerTasks: number }
  | { type: 'done'; step: number; seconds: number; exactMatch: number }
  | { type: 'error'; message: string };
