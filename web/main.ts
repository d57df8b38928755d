// The demo page: starts the training worker, follows its messages, and draws the loss curve
// and the attention maps with Vega-Lite (compiled here, rendered by Vega as SVG).
import { changeset, parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { AttentionMap, FromWorker, RunConfig, Sample, ToWorker } from './protocol.js';

/** Defaults; any field can be overridden from the query string (`?steps=200&task=copy`). */
function runConfig(): RunConfig {
  const query = new URLSearchParams(location.search);
  const int = (key: string, fallback: number, min = 1): number => {
    const value = Number(query.get(key) ?? fallback);
    if (!Number.isInteger(value) || value < min) throw new RangeError(`demo: ?${key} must be an integer >= ${min}, got ${query.get(key)}`);
    return value;
  };
  const positive = (key: string, fallback: number): number => {
    const value = Number(query.get(key) ?? fallback);
    if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`demo: ?${key} must be a positive number, got ${query.get(key)}`);
    return value;
  };
  const task = query.get('task') ?? 'reverse';
  if (task !== 'reverse' && task !== 'copy') throw new RangeError(`demo: ?task must be reverse or copy, got ${task}`);
  return {
    task, steps: int('steps', 300), batch: int('batch', 32), length: int('length', 8), dModel: int('dModel', 64),
    heads: int('heads', 4), layers: int('layers', 2), dFF: int('dFF', 128),
    threads: int('threads', Math.max(1, Math.min(4, navigator.hardwareConcurrency || 2))),
    // The paper's schedule with a peak learning rate of about 0.004 (measured: a peak of 0.02
    // stalls at the unigram loss for 100+ steps; this reaches the label-smoothing floor by ~150).
    warmup: int('warmup', 40), lrFactor: positive('lrFactor', 0.3),
    evalEvery: int('evalEvery', 25), seed: int('seed', 1234, 0),
  };
}

const $ = <T extends HTMLElement = HTMLElement>(selector: string): T => {
  const element = document.querySelector<T>(selector);
  if (element === null) throw new Error(`demo: ${selector} is missing from the page`);
  return element;
};
const text = (testid: string, value: string): void => {
  $(`[data-testid=${testid}]`).textContent = value;
};

// ---- charts ----------------------------------------------------------------------------------

/** The training loss is against label-smoothed targets (it levels off above zero); the
 * held-out curve is plain cross-entropy, the CLI's measure. */
const TRAIN_SERIES = 'train batch (label smoothing 0.1)';
const HELD_OUT_SERIES = 'held-out cross-entropy';

const lossSpec: TopLevelSpec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  width: 520,
  height: 260,
  // Streamed data changes the axes' label widths: lay the chart out again on every update.
  autosize: { type: 'pad', resize: true },
  data: { name: 'loss' },
  mark: { type: 'line', interpolate: 'monotone', point: false },
  encoding: {
    x: { field: 'step', type: 'quantitative', title: 'training step', scale: { nice: false } },
    y: { field: 'loss', type: 'quantitative', title: 'loss (nats/token)', scale: { zero: true } },
    color: {
      field: 'series', type: 'nominal', title: null,
      scale: { domain: [TRAIN_SERIES, HELD_OUT_SERIES], range: ['#4c78a8', '#f58518'] },
      legend: { orient: 'top-right', labelLimit: 320 },
    },
  },
  config: { view: { stroke: null } },
};

type MapRow = { kind: AttentionMap['kind']; layer: string; head: string; query: string; key: string; weight: number };

/** One block per attention kind (its rows and columns are the same sequences in every layer
 * and head, so a facet with shared scales); one colour scale for all. Built with the data
 * inline and redrawn whole at each evaluation (Vega's facets do not stream well). */
function attentionSpec(rows: MapRow[]): TopLevelSpec {
  const axis = (title: string) => ({
    title, labelExpr: "split(datum.value, '|')[1]", labelAngle: 0, titleFontSize: 10, labelFontSize: 9,
  });
  const block = (kind: AttentionMap['kind']) => ({
    title: { text: kind === 'decoder-source' ? 'decoder → source (cross-attention)' : `${kind}-attention`, anchor: 'start' as const, fontSize: 12 },
    transform: [{ filter: { field: 'kind', equal: kind } }],
    facet: {
      row: { field: 'layer', type: 'nominal' as const, title: null, header: { labelFontSize: 11 } },
      column: { field: 'head', type: 'nominal' as const, title: null, header: { labelFontSize: 11 } },
    },
    spec: {
      width: { step: 12 },
      height: { step: 12 },
      mark: 'rect' as const,
      encoding: {
        x: { field: 'key', type: 'ordinal' as const, axis: axis('key') },
        y: { field: 'query', type: 'ordinal' as const, axis: axis('query') },
        color: { field: 'weight', type: 'quantitative' as const, title: 'attention weight', scale: { domain: [0, 1], scheme: 'blues' } },
        tooltip: [{ field: 'weight', type: 'quantitative' as const, format: '.3f' }],
      },
    },
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values: rows },
    vconcat: (['encoder self', 'decoder self', 'decoder-source'] as const).map(block),
    resolve: { scale: { color: 'shared' } },
    config: { view: { stroke: '#dde1e8' } },
  };
}

async function chart(spec: TopLevelSpec, container: string): Promise<View> {
  const view = new View(parse(compile(spec).spec), { renderer: 'svg', container: $(container), hover: true });
  await view.runAsync();
  return view;
}

// ---- page ------------------------------------------------------------------------------------

interface LossRow { step: number; loss: number; series: string }

async function main(): Promise<void> {
  const config = runConfig();
  text('steps', String(config.steps));
  const lossView = await chart(lossSpec, '#loss-chart');
  $('#about').textContent = `An encoder-decoder Transformer (d_model ${config.dModel}, ${config.heads} heads, ${config.layers}+${config.layers} layers) ` +
    `learns to ${config.task} ${config.length} symbols, trained in a Web Worker on ferroformer's WebAssembly backend ` +
    '(Adam, Noam schedule, label smoothing 0.1). Query options: ?steps=, ?task=copy|reverse, ?threads=, ?batch=.';

  // Loss rows arrive at every step; the chart is redrawn at most every 100 ms.
  let pending: LossRow[] = [];
  let drawing = false;
  const flush = async (): Promise<void> => {
    if (drawing || pending.length === 0) return;
    drawing = true;
    const rows = pending;
    pending = [];
    await lossView.change('loss', changeset().insert(rows)).runAsync();
    drawing = false;
  };
  // Attention maps are redrawn one evaluation after the other.
  let maps: Promise<void> = Promise.resolve();
  const timer = setInterval(() => void flush().catch(fail), 100);

  let threads = 1;
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  worker.onerror = (event) => fail(new Error(`worker: ${event.message}`));
  worker.onmessage = (event: MessageEvent<FromWorker>) => {
    const m = event.data;
    switch (m.type) {
      case 'ready':
        threads = m.threads;
        text('threads', String(m.threads));
        text('isolated', String(crossOriginIsolated));
        text('status', 'training');
        $('#detail').textContent = `${m.backend} backend, ${m.threadedModule ? 'threaded' : 'single-threaded'} module, ` +
          `${m.threads} thread(s), ${m.params.toLocaleString('en')} parameters`;
        break;
      case 'step':
        text('step', String(m.step));
        text('loss', m.loss.toFixed(4));
        text('lr', m.lr.toExponential(2));
        text('speed', String(Math.round(m.tokensPerSecond)));
        pending.push({ step: m.step, loss: m.loss, series: TRAIN_SERIES });
        break;
      case 'eval':
        pending.push({ step: m.step, loss: m.loss, series: HELD_OUT_SERIES });
        text('heldout', m.loss.toFixed(4));
        text('exact', `${(m.exactMatch * 100).toFixed(0)}%`);
        showThreads(threads, m.workerTasks);
        showSamples(m.step, m.samples);
        maps = maps.then(() => showMaps(m.step, m.maps)).catch(fail);
        break;
      case 'done':
        clearInterval(timer);
        void Promise.all([flush(), maps]).then(() => {
          text('status', 'done');
          $('#detail').textContent += ` · ${m.step} steps in ${m.seconds.toFixed(1)} s, held-out exact match ${(m.exactMatch * 100).toFixed(0)}%`;
        }).catch(fail);
        worker.terminate();
        break;
      case 'error':
        clearInterval(timer);
        fail(new Error(`training worker: ${m.message}`));
        break;
    }
  };
  worker.postMessage({ type: 'start', config } satisfies ToWorker);
}

/** Where the kernels ran, in words; the count of kernel tasks Web Workers took stays in a
 * data attribute (the browser test reads it). */
function showThreads(threads: number, workerTasks: number): void {
  const note = $('[data-testid=threads-note]');
  note.dataset['workerTasks'] = String(workerTasks);
  const helpers = threads - 1;
  note.textContent = threads === 1
    ? 'Kernels ran on the training worker\'s thread.'
    : workerTasks > 0
      ? `Kernels ran on ${threads} threads: the training worker and ${helpers} Web Worker${helpers === 1 ? '' : 's'} sharing each large kernel call.`
      : `Kernels ran on the training worker's thread: no kernel call was large enough to be worth splitting across the ${threads} threads.`;
}

function showSamples(step: number, samples: Sample[]): void {
  $('#samples-step').textContent = `(step ${step})`;
  const body = $('#samples tbody');
  body.replaceChildren(...samples.map((s) => {
    const row = document.createElement('tr');
    const want = s.target.join(' ');
    for (const [value, judged] of [[s.input, false], [s.target, false], [s.greedy, true], [s.beam, true]] as const) {
      const cell = document.createElement('td');
      cell.textContent = value.join(' ');
      if (judged) cell.className = value.join(' ') === want ? 'ok' : 'bad';
      row.append(cell);
    }
    return row;
  }));
}

let attentionView: View | null = null;

async function showMaps(step: number, maps: AttentionMap[]): Promise<void> {
  // A position prefix keeps repeated tokens apart on the axes; the labels show the token only.
  const label = (i: number, token: string): string => `${String(i).padStart(3, '0')}|${token}`;
  const rows = maps.flatMap((m) => m.weights.flatMap((weights, q) => weights.map((weight, k): MapRow => ({
    kind: m.kind, layer: `layer ${m.layer + 1}`, head: `head ${m.head + 1}`, query: label(q, m.queries[q]!), key: label(k, m.keys[k]!), weight,
  }))));
  attentionView?.finalize();
  $('#attention-chart').replaceChildren();
  attentionView = await chart(attentionSpec(rows), '#attention-chart');
  $('#maps-step').textContent = `(step ${step})`;
}

function fail(error: unknown): void {
  text('status', 'error');
  $('#detail').textContent = String(error);
  console.error(error);
}

main().catch(fail);
