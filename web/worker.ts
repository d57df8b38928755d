// The training worker: loads ferroformer's browser entry (the wasm backend, threaded when the
// page is cross-origin isolated), trains an encoder-decoder Transformer on a synthetic task
// with the paper's recipe, and posts progress, held-out metrics, attention maps and samples.
import { dispose, generate, getDefaultBackend, init, nn, noGrad, optim, tensor, tidy, train, type Tensor } from 'ferroformer';
import type { AttentionMap, FromWorker, RunConfig, Sample, ToWorker } from './protocol.js';

interface WorkerScope {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker): void;
  crossOriginIsolated?: boolean;
}
const scope = self as unknown as WorkerScope;
const post = (message: FromWorker): void => scope.postMessage(message);

scope.onmessage = (event) => {
  if (event.data.type !== 'start') return;
  run(event.data.config).catch((error: unknown) => {
    post({ type: 'error', message: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  });
};

async function run(config: RunConfig): Promise<void> {
  // The threaded module loads only where shared memory exists (a cross-origin-isolated
  // page); init() waits until its Web Workers have joined before training starts.
  const backend = await init({ backend: 'wasm', threads: scope.crossOriginIsolated === true ? config.threads : 1 });
  const threaded = backend.capabilities.has('threads');
  const task = train.symbolTask(10);
  const transform = config.task === 'reverse' ? train.reverse : (s: number[]) => s;
  const rng = new nn.Rng(config.seed);
  const model = new nn.Transformer({
    srcVocab: task.vocab, tgtVocab: task.vocab, dModel: config.dModel, nHeads: config.heads,
    numEncoderLayers: config.layers, numDecoderLayers: config.layers, dFF: config.dFF, dropout: 0,
    padId: task.padId, maxLen: config.length + 2,
  }, { rng });
  const params = model.parameters().reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
  post({ type: 'ready', backend: backend.name, threads: backend.getThreads(), threadedModule: threaded, isolated: scope.crossOriginIsolated === true, params });

  const optimizer = new optim.Adam(model.parameters(), { betas: [0.9, 0.98], eps: 1e-9 });
  const trainer = new train.Trainer({
    model, optimizer, schedule: optim.noam(config.dModel, config.warmup, config.lrFactor), clipNorm: 1,
    loss: train.seq2seqLoss({ padId: task.padId, labelSmoothing: 0.1 }),
    tokens: (b: train.Seq2SeqBatch) => b.tokens,
  });
  const heldOut = train.symbolBatch(task, new nn.Rng(config.seed + 1), 64, config.length, transform);
  // The held-out measure is plain cross-entropy, as the CLI's: with label smoothing it would sit
  // on the training curve and never show the model getting better than the smoothed targets.
  const crossEntropy = train.seq2seqLoss({ padId: task.padId });
  const started = performance.now();
  let exactMatch = 0;
  for (let step = 1; step <= config.steps; step++) {
    const pairs = train.symbolBatch(task, rng, config.batch, config.length, transform);
    const batch = train.seq2seqBatch(pairs.src, pairs.tgt, { padId: task.padId });
    const m = trainer.trainStep(batch);
    dispose(batch);
    post({ type: 'step', step, loss: m.loss, lr: m.lr, tokensPerSecond: m.tokensPerSecond });
    if (step % config.evalEvery === 0 || step === config.steps) {
      exactMatch = evaluate(step);
      // Let the page draw between evaluations even on a busy machine.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
  post({ type: 'done', step: config.steps, seconds: (performance.now() - started) / 1000, exactMatch });

  function evaluate(step: number): number {
    const batch = train.seq2seqBatch(heldOut.src, heldOut.tgt, { padId: task.padId });
    model.eval();
    const loss = noGrad(() => tidy(() => crossEntropy(model, batch).item()));
    dispose(batch);
    const options = { maxTokens: config.length + 1, bosId: task.bosId, eosId: task.eosId };
    model.eval();
    const greedy = generate.greedy(model, heldOut.src, options);
    const beams = generate.beamSearch(model, heldOut.src.slice(0, 4), { ...options, beamSize: 4, lengthPenalty: 0.6 });
    const strip = (ids: number[]): number[] => ids.filter((t) => t !== task.eosId);
    const exact = greedy.filter((h, i) => h.tokens.join() === heldOut.tgt[i]!.slice(1).join()).length / greedy.length;
    const samples: Sample[] = beams.map((b, i) => ({
      input: heldOut.src[i]!, target: strip(heldOut.tgt[i]!.slice(1)), greedy: strip(greedy[i]!.tokens), beam: strip(b.tokens),
    }));
    const maps = attentionMaps(heldOut.src[0]!, heldOut.tgt[0]!);
    model.train();
    const workerTasks = (getDefaultBackend() as { workerTasks?: () => number }).workerTasks?.() ?? 0;
    post({ type: 'eval', step, loss, exactMatch: exact, samples, maps, workerTasks });
    return exact;
  }

  /** Every head of every layer for one held-out pair, the decoder teacher-forced. */
  function attentionMaps(src: number[], tgt: number[]): AttentionMap[] {
    const name = (t: number): string => (t === task.bosId ? '<s>' : t === task.eosId ? '</s>' : String(t));
    const srcLabels = src.map(name);
    const tgtLabels = tgt.slice(0, -1).map(name);
    return tidy(() => noGrad(() => {
      const s = tensor(src, [1, src.length], { dtype: 'i32' });
      const t = tensor(tgt.slice(0, -1), [1, tgt.length - 1], { dtype: 'i32' });
      const encoder: Tensor[] = [];
      const decoder = { self: [] as Tensor[], cross: [] as Tensor[] };
      const memory = model.encode(s, { maps: encoder });
      model.decode(t, memory, s, { maps: decoder });
      const out: AttentionMap[] = [];
      const add = (kind: AttentionMap['kind'], layers: Tensor[], queries: string[], keys: string[]): void => {
        layers.forEach((w, layer) => {
          const [, heads, tq, tk] = w.shape as [number, number, number, number];
          const data = w.data();
          for (let head = 0; head < heads; head++) {
            const weights = Array.from({ length: tq }, (_, q) => Array.from(data.subarray((head * tq + q) * tk, (head * tq + q + 1) * tk)));
            out.push({ kind, layer, head, queries, keys, weights });
          }
        });
      };
      add('encoder self', encoder, srcLabels, srcLabels);
      add('decoder self', decoder.self, tgtLabels, tgtLabels);
      add('decoder-source', decoder.cross, tgtLabels, srcLabels);
      return out;
    }));
  }
}
