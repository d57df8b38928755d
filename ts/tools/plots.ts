// The run's pictures as SVG: Vega-Lite specifications compiled by vega-lite and rendered
// headless by vega (renderer 'none' + toSVG); contour geometry comes from d3-contour. No
// chart geometry is drawn by hand: the code only shapes data and picks encodings.
import { contours } from 'd3-contour';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { Landscape, Plane } from './landscape.js';

type Spec = vl.TopLevelSpec;

const FONT = { font: 'Helvetica, Arial, sans-serif', labelFontSize: 11, titleFontSize: 12 };
const CONFIG = {
  font: FONT.font,
  axis: { labelFontSize: FONT.labelFontSize, titleFontSize: FONT.titleFontSize, titleFontWeight: 'normal' as const },
  legend: { labelFontSize: FONT.labelFontSize, titleFontSize: FONT.titleFontSize, titleFontWeight: 'normal' as const },
  title: { fontSize: 14, anchor: 'start' as const },
  header: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal' as const },
  view: { stroke: '#ccc' },
};

/** Compiles a Vega-Lite spec and renders it to an SVG string (no DOM, no canvas). */
export async function renderSvg(spec: Spec): Promise<string> {
  const compiled = vl.compile({ ...spec, config: { ...CONFIG, ...(spec.config ?? {}) } } as Spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    // Standalone files need the namespace; vega writes it, make sure.
    return svg.includes('xmlns=') ? svg : svg.replace('<svg', '<svg xmlns="http://www.w3.org/2000/svg"');
  } finally {
    view.finalize();
  }
}

export interface MetricRecord {
  step: number;
  loss: number;
  lr: number;
  valLoss?: number;
}

/** Train loss and validation cross-entropy (log scale, left) and learning rate (right). */
export function lossSpec(records: readonly MetricRecord[], options: { trainLabel: string; valLabel: string; title: string }): Spec {
  const losses = [
    ...records.map((r) => ({ step: r.step, value: r.loss, series: options.trainLabel })),
    ...records.filter((r) => r.valLoss !== undefined).map((r) => ({ step: r.step, value: r.valLoss!, series: options.valLabel })),
  ].filter((d) => Number.isFinite(d.value) && d.value > 0);
  const lrs = records.map((r) => ({ step: r.step, lr: r.lr }));
  const color = {
    field: 'series', type: 'nominal' as const, title: null,
    scale: { domain: [options.trainLabel, options.valLabel, 'learning rate'], range: ['#1f77b4', '#d62728', '#7f7f7f'] },
    legend: { orient: 'top' as const, direction: 'horizontal' as const, labelLimit: 400, symbolStrokeWidth: 2.5 },
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: options.title,
    width: 560,
    height: 300,
    layer: [
      {
        data: { values: losses },
        mark: { type: 'line', strokeWidth: 1.6 },
        encoding: {
          x: { field: 'step', type: 'quantitative', title: 'optimiser step' },
          y: { field: 'value', type: 'quantitative', scale: { type: 'log' }, title: 'loss (nats per target token, log scale)' },
          color,
        },
      },
      {
        data: { values: lrs },
        mark: { type: 'line', strokeDash: [5, 3], strokeWidth: 1.3 },
        encoding: {
          x: { field: 'step', type: 'quantitative' },
          y: { field: 'lr', type: 'quantitative', title: 'learning rate', axis: { orient: 'right', format: '.1e', titleColor: '#7f7f7f' } },
          color: { datum: 'learning rate', type: 'nominal', scale: color.scale, legend: color.legend, title: null },
        },
      },
    ],
    resolve: { scale: { y: 'independent' } },
  } as Spec;
}

export interface AttentionPanel {
  /** e.g. "Encoder self-attention". */
  title: string;
  queryLabel: string;
  keyLabel: string;
  queries: string[];
  keys: string[];
  /** Per layer, per head, row-major [queries x keys]. */
  weights: Float32Array[][];
}

const shown = (t: string): string => (t === ' ' ? '␣' : t);

function labelExpr(tokens: string[]): string {
  return `[${tokens.map((t) => JSON.stringify(shown(t))).join(',')}][datum.value]`;
}

/** One heat map per layer (rows) and head (columns) for each panel, stacked vertically. */
export function attentionSpec(panels: readonly AttentionPanel[], title: string): Spec {
  // Cells shrink (down to 9 px) so that a row of heads stays near 1100 px wide.
  const widest = Math.max(...panels.map((p) => p.keys.length * Math.max(1, p.weights[0]?.length ?? 1)));
  const cell = Math.max(9, Math.min(13, Math.floor(1100 / widest)));
  const font = cell < 11 ? 8 : 9;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    vconcat: panels.map((p) => {
      const values: { layer: string; head: string; q: number; k: number; w: number }[] = [];
      p.weights.forEach((heads, l) => heads.forEach((w, h) => {
        for (let q = 0; q < p.queries.length; q++) {
          for (let k = 0; k < p.keys.length; k++) values.push({ layer: `layer ${l + 1}`, head: `head ${h + 1}`, q, k, w: w[q * p.keys.length + k]! });
        }
      }));
      return {
        title: { text: p.title, fontSize: 13 },
        data: { values },
        facet: {
          row: { field: 'layer', type: 'nominal', title: null, header: { labelAngle: 0, labelAlign: 'left' } },
          column: { field: 'head', type: 'nominal', title: null },
        },
        spec: {
          width: cell * p.keys.length,
          height: cell * p.queries.length,
          mark: 'rect',
          encoding: {
            x: { field: 'k', type: 'ordinal', title: p.keyLabel, axis: { labelExpr: labelExpr(p.keys), labelAngle: 0, labelFontSize: font } },
            y: { field: 'q', type: 'ordinal', title: p.queryLabel, axis: { labelExpr: labelExpr(p.queries), labelFontSize: font } },
            color: { field: 'w', type: 'quantitative', title: 'attention weight', scale: { scheme: 'blues', domain: [0, 1] } },
            tooltip: [{ field: 'w', type: 'quantitative', format: '.3f' }],
          },
        },
      };
    }),
    resolve: { scale: { color: 'shared' } },
  } as Spec;
}

/** Contour lines of log(loss) over a plane, as line segments in the plane's coordinates
 * (d3-contour marching squares; pieces lying on the grid's border are dropped). */
export function contourLines(plane: Plane, levels = 14): { id: number; order: number; x: number; y: number; level: number }[] {
  const nx = plane.xs.length;
  const ny = plane.ys.length;
  const logs = plane.losses.map((l) => Math.log(Math.max(l, 1e-12)));
  const finite = logs.filter(Number.isFinite);
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  const thresholds = Array.from({ length: levels }, (_, i) => lo + ((hi - lo) * (i + 0.5)) / levels);
  const dx = nx > 1 ? plane.xs[1]! - plane.xs[0]! : 1;
  const dy = ny > 1 ? plane.ys[1]! - plane.ys[0]! : 1;
  // d3-contour puts value i at grid coordinate i + 0.5.
  const toX = (g: number): number => plane.xs[0]! + (g - 0.5) * dx;
  const toY = (g: number): number => plane.ys[0]! + (g - 0.5) * dy;
  const onBorder = (gx: number, gy: number): boolean => gx <= 0.5 + 1e-9 || gx >= nx - 0.5 - 1e-9 || gy <= 0.5 + 1e-9 || gy >= ny - 0.5 - 1e-9;
  const out: { id: number; order: number; x: number; y: number; level: number }[] = [];
  let id = 0;
  for (const c of contours().size([nx, ny]).thresholds(thresholds)(logs.map((v) => (Number.isFinite(v) ? v : hi)))) {
    for (const polygon of c.coordinates) {
      for (const ring of polygon) {
        let order = 0;
        let open = false;
        for (const [gx, gy] of ring as [number, number][]) {
          if (onBorder(gx, gy)) {
            if (open) id++;
            open = false;
            continue;
          }
          open = true;
          out.push({ id, order: order++, x: toX(gx), y: toY(gy), level: Math.exp(c.value) });
        }
        id++;
      }
    }
  }
  return out;
}

function planeSpec(plane: Plane, centerLoss: number, colorDomain: [number, number]): object {
  const nx = plane.xs.length;
  const dx = nx > 1 ? plane.xs[1]! - plane.xs[0]! : 1;
  const dy = plane.ys.length > 1 ? plane.ys[1]! - plane.ys[0]! : 1;
  const cells = plane.losses.map((loss, i) => {
    const x = plane.xs[i % nx]!;
    const y = plane.ys[Math.floor(i / nx)]!;
    // Cells overlap by 2% so that anti-aliasing leaves no seams between them.
    return { x: x - 0.51 * dx, x2: x + 0.51 * dx, y: y - 0.51 * dy, y2: y + 0.51 * dy, loss: Math.max(loss, colorDomain[0]) };
  });
  const xDomain = [plane.xs[0]! - dx / 2, plane.xs[nx - 1]! + dx / 2];
  const yDomain = [plane.ys[0]! - dy / 2, plane.ys[plane.ys.length - 1]! + dy / 2];
  const random = plane.kind === 'random';
  const pct = (v: number | undefined): string => `${((v ?? 0) * 100).toFixed(1)}%`;
  const xTitle = random ? 'α (multiples of random direction δ)' : `PC1: L2 distance (${pct(plane.explained?.[0])} of path variance)`;
  const yTitle = random ? 'β (multiples of random direction η)' : `PC2: L2 distance (${pct(plane.explained?.[1])} of path variance)`;
  const x = { field: 'x', type: 'quantitative', scale: { domain: xDomain, nice: false, zero: false }, title: xTitle, axis: { grid: false } };
  const y = { field: 'y', type: 'quantitative', scale: { domain: yDomain, nice: false, zero: false }, title: yTitle, axis: { grid: false } };
  const layers: object[] = [
    {
      data: { values: cells },
      mark: { type: 'rect', clip: true },
      encoding: {
        x, x2: { field: 'x2' }, y, y2: { field: 'y2' },
        color: { field: 'loss', type: 'quantitative', title: ['held-out loss', '(nats/token, log)'], scale: { type: 'log', scheme: 'viridis', domain: colorDomain, reverse: true }, legend: { format: '.2~f', gradientLength: 300 } },
      },
    },
    {
      data: { values: contourLines(plane) },
      mark: { type: 'line', strokeWidth: 0.8, color: '#222', opacity: 0.55, interpolate: 'linear' },
      encoding: { x: { ...x }, y: { ...y }, detail: { field: 'id', type: 'nominal' }, order: { field: 'order', type: 'quantitative' } },
    },
  ];
  if (plane.path && plane.path.length > 0) {
    const path = plane.path.map((p) => ({ ...p, label: `step ${p.step}` }));
    const ends = [path[0]!, ...path.slice(-1)].map((p, i) => ({ ...p, label: i === 0 ? `step ${p.step} (start)` : `step ${p.step} (end)` }));
    layers.push(
      {
        data: { values: path },
        mark: { type: 'line', color: '#e4572e', strokeWidth: 2, point: { color: '#e4572e', size: 28, filled: true } },
        encoding: {
          x: { ...x }, y: { ...y }, order: { field: 'step', type: 'quantitative' },
          tooltip: [{ field: 'step', type: 'quantitative' }, { field: 'loss', type: 'quantitative', format: '.3f' }],
        },
      },
      {
        data: { values: ends },
        mark: { type: 'text', align: 'left', dx: 6, dy: -7, fontSize: 11, fontWeight: 'bold', color: '#b22222' },
        encoding: { x: { ...x }, y: { ...y }, text: { field: 'label' } },
      },
    );
  }
  layers.push({
    data: { values: [{ x: 0, y: 0, label: `θ* (loss ${centerLoss.toFixed(3)})` }] },
    layer: [
      { mark: { type: 'point', shape: 'diamond', size: 110, filled: true, color: 'white', stroke: 'black', strokeWidth: 1.2 } },
      { mark: { type: 'text', align: random ? 'left' : 'right', dx: random ? 9 : -9, dy: 13, fontSize: 11, color: '#111', fontWeight: 'bold' }, encoding: { text: { field: 'label' } } },
    ],
    encoding: { x: { ...x }, y: { ...y } },
  });
  return {
    width: 380,
    height: 340,
    layer: layers,
  };
}

export function landscapeSpec(landscape: Landscape, title: string): Spec {
  const all = landscape.planes.flatMap((p) => [...p.losses, ...(p.path ?? []).map((q) => q.loss)]).filter((v) => Number.isFinite(v) && v > 0);
  const lo = Math.max(Math.min(...all), 1e-4);
  const hi = Math.max(...all);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: title,
      subtitle: [
        `loss = cross-entropy on ${landscape.evalExamples} held-out examples, dropout off; ${landscape.resolution}×${landscape.resolution} grid per plane; lines: equal loss; ◆ = trained weights θ*`,
        'left: L(θ* + α·δ + β·η) on a random plane, δ and η Gaussian, filter-normalised (each weight-matrix row scaled to the norm of the trained row)',
        ...(landscape.planes.length > 1 ? ['right: the plane of the top-2 principal components of the checkpoints θᵢ − θ*; red: the optimiser\'s path, one dot per checkpoint'] : []),
      ],
      subtitlePadding: 6,
    },
    spacing: 40,
    hconcat: landscape.planes.map((p) => planeSpec(p, landscape.centerLoss, [lo, hi])),
    resolve: { scale: { color: 'shared' } },
  } as Spec;
}
