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

/** Code points XML 1.0 forbids: C0 controls but tab, newline and carriage return; lone
 * surrogates; U+FFFE and U+FFFF. One such character anywhere makes the whole SVG unreadable. */
const NOT_XML = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** `text` with each control character as its Unicode control picture (␜ for U+001C, ␊ for a
 * newline, ␡ for DEL) and anything else XML cannot hold as U+FFFD: text from training data
 * made visible, and safe in SVG and HTML. */
export function controlPictures(text: string): string {
  return text
    .replace(/[\u0000-\u001f\u007f]/g, (c) => (c === '\u007f' ? '\u2421' : String.fromCharCode(0x2400 + c.charCodeAt(0))))
    .replace(NOT_XML, '\ufffd');
}

/** A token as a tick label: as controlPictures, and a space as ␣. A token made only of
 * invisible characters would otherwise leave its row unlabelled. */
export function tokenLabel(token: string): string {
  return token === ' ' ? '␣' : controlPictures(token);
}

/** Compiles a Vega-Lite spec and renders it to an SVG string (no DOM, no canvas). vega escapes
 * markup in text but passes control characters through; they are replaced here, whatever text
 * (a title, a file name, a token) carried them in, so that the file is always valid XML. */
export async function renderSvg(spec: Spec): Promise<string> {
  const compiled = vl.compile({ ...spec, config: { ...CONFIG, ...(spec.config ?? {}) } } as Spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    const svg = (await view.toSVG()).replace(NOT_XML, '\ufffd');
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

/**
 * The least cross-entropy a model can reach against label-smoothed targets: the entropy of
 * the smoothed distribution itself, (1 - ε + ε/V) on the target and ε/V on each of the other
 * V - 1 classes (PyTorch's `label_smoothing`). The training loss levels off here, however
 * good the model. E.g. ε 0.1, V 62: 0.726 nats.
 */
export function labelSmoothingFloor(epsilon: number, vocab: number): number {
  if (!(epsilon > 0) || vocab < 2) return 0;
  const other = epsilon / vocab;
  const target = 1 - epsilon + other;
  return -target * Math.log(target) - (vocab - 1) * other * Math.log(other);
}

/** Train loss and validation cross-entropy (log scale, left) and learning rate (right); with
 * label smoothing, a dotted line at the floor the training loss cannot go below. */
export function lossSpec(records: readonly MetricRecord[], options: { trainLabel: string; valLabel: string; title: string; smoothing?: { epsilon: number; vocab: number } }): Spec {
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
  const x = { field: 'step', type: 'quantitative' as const };
  const y = { field: 'value', type: 'quantitative' as const, scale: { type: 'log' as const }, title: 'loss (nats per target token, log scale)' };
  const floor = options.smoothing ? labelSmoothingFloor(options.smoothing.epsilon, options.smoothing.vocab) : 0;
  const lossLayers: object[] = [{
    data: { values: losses },
    mark: { type: 'line', strokeWidth: 1.6 },
    encoding: { x: { ...x, title: 'optimiser step' }, y, color },
  }];
  if (floor > 0 && losses.length > 0) {
    const { epsilon, vocab } = options.smoothing!;
    const last = Math.max(...losses.map((d) => d.step));
    lossLayers.push({
      data: { values: [{ value: floor, step: last, label: `label-smoothing floor ${floor.toFixed(3)} (ε ${epsilon}, ${vocab} classes)` }] },
      layer: [
        { mark: { type: 'rule', strokeDash: [2, 2], strokeWidth: 1.2, color: '#1f77b4' }, encoding: { y } },
        { mark: { type: 'text', align: 'right', baseline: 'bottom', dy: -3, fontSize: 10, color: '#1f4e79' }, encoding: { x, y, text: { field: 'label' } } },
      ],
    });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: options.title,
    width: 560,
    height: 300,
    layer: [
      { layer: lossLayers },
      {
        data: { values: lrs },
        mark: { type: 'line', strokeDash: [5, 3], strokeWidth: 1.3 },
        encoding: {
          x,
          // '~g': 0.002, 0.018 and a plain 0 (a '.1e' format printed 0.0e+0 at the origin).
          y: { field: 'lr', type: 'quantitative', title: 'learning rate', axis: { orient: 'right', format: '.2~g', titleColor: '#7f7f7f' } },
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

function labelExpr(tokens: string[]): string {
  return `[${tokens.map((t) => JSON.stringify(tokenLabel(t))).join(',')}][datum.value]`;
}

/** report.html's column is 1250 px wide; the attention figure stays within this. */
export const ATTENTION_MAX_WIDTH = 1200;
/** Room a row of squares needs besides the squares: the y-axis labels and title (measured
 * about 46 px for one-character labels). */
const ATTENTION_AXIS_WIDTH = 56;
/** Between two squares of a row. */
const ATTENTION_GAP = 16;
/** Cell sizes in pixels, largest first: below 10 the tick labels would be unreadable. */
const ATTENTION_CELLS = [14, 13, 12, 11, 10];

/** One heat map per layer and head for each panel, stacked vertically. Every panel uses the
 * same cell size. Preferred: each layer's heads side by side (a layers x heads grid) at the
 * largest cell from 14 px down to 10 px that fits the width; where none does, the heads wrap
 * onto several rows (whole divisors of the head count) at the largest cell that fits one head
 * per row; very long sequences shrink the cells below 10 px. */
export function attentionSpec(panels: readonly AttentionPanel[], title: string): Spec {
  const headsOf = (p: AttentionPanel): number => Math.max(1, p.weights[0]?.length ?? 1);
  const rowWidth = (p: AttentionPanel, cell: number, columns: number): number => ATTENTION_AXIS_WIDTH + columns * (p.keys.length * cell + ATTENTION_GAP);
  const fitsAll = (cell: number, columns: (p: AttentionPanel) => number): boolean => panels.every((p) => rowWidth(p, cell, columns(p)) <= ATTENTION_MAX_WIDTH);
  const longest = Math.max(1, ...panels.map((p) => p.keys.length));
  const cell = ATTENTION_CELLS.find((c) => fitsAll(c, headsOf))
    ?? ATTENTION_CELLS.find((c) => fitsAll(c, () => 1))
    ?? Math.max(2, Math.floor((ATTENTION_MAX_WIDTH - ATTENTION_AXIS_WIDTH - ATTENTION_GAP) / longest));
  const font = cell >= 12 ? 11 : cell >= 10 ? 10 : 8;
  // Wide enough for a label at this font (about 0.62 em per character), else vertical.
  const angle = (tokens: string[]): number => (Math.max(...tokens.map((t) => [...tokenLabel(t)].length)) * font * 0.62 <= cell + 3 ? 0 : -90);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    vconcat: panels.map((p) => {
      const layers = p.weights.length;
      const heads = headsOf(p);
      // All heads of a layer on one row if they fit; else the largest divisor of the head count.
      let columns = heads;
      while (columns > 1 && (heads % columns !== 0 || rowWidth(p, cell, columns) > ATTENTION_MAX_WIDTH)) columns--;
      const names: string[] = [];
      const values: { square: string; q: number; k: number; w: number }[] = [];
      p.weights.forEach((perHead, l) => perHead.forEach((w, h) => {
        const square = layers === 1 && heads === 1 ? '' : `layer ${l + 1} · head ${h + 1}`;
        names.push(square);
        for (let q = 0; q < p.queries.length; q++) {
          // Three decimals are all a colour can show.
          for (let k = 0; k < p.keys.length; k++) values.push({ square, q, k, w: Math.round(w[q * p.keys.length + k]! * 1000) / 1000 });
        }
      }));
      return {
        title: { text: p.title, fontSize: 13 },
        data: { values },
        facet: { field: 'square', type: 'nominal', title: null, sort: names, header: { labelFontSize: 11, labelPadding: 3 } },
        columns,
        spacing: { column: ATTENTION_GAP, row: 10 },
        spec: {
          width: cell * p.keys.length,
          height: cell * p.queries.length,
          // No per-cell aria-label: thousands of "k: 3; q: 5; w: 0.12" strings were most of the file.
          mark: { type: 'rect', aria: false },
          encoding: {
            x: { field: 'k', type: 'ordinal', title: p.keyLabel, axis: { labelExpr: labelExpr(p.keys), labelAngle: angle(p.keys), labelFontSize: font, labelPadding: 2, titleFontSize: 11 } },
            y: { field: 'q', type: 'ordinal', title: p.queryLabel, axis: { labelExpr: labelExpr(p.queries), labelFontSize: font, labelPadding: 2, titleFontSize: 11 } },
            color: {
              field: 'w', type: 'quantitative', title: 'attention weight', scale: { scheme: 'blues', domain: [0, 1] },
              legend: { orient: 'top', direction: 'horizontal', gradientLength: 220, titleOrient: 'left', titleAnchor: 'end', titleBaseline: 'middle' },
            },
          },
        },
      };
    }),
    spacing: 24,
    resolve: { scale: { color: 'shared' } },
  } as Spec;
}

/** Bands of the surface's log(loss): `bands` equal steps between the plane's least and
 * greatest finite loss. Non-finite losses count as the greatest. */
function logLevels(plane: Plane, bands: number): { logs: number[]; lo: number; hi: number; thresholds: number[] } {
  const raw = plane.losses.map((l) => Math.log(Math.max(l, 1e-12)));
  const finite = raw.filter(Number.isFinite);
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  const thresholds = Array.from({ length: bands }, (_, i) => lo + ((hi - lo) * i) / bands);
  return { logs: raw.map((v) => (Number.isFinite(v) ? v : hi)), lo, hi, thresholds };
}

/** Grid coordinates of d3-contour (value i covers [i, i + 1]) to the plane's coordinates. */
function gridToPlane(plane: Plane): { toX: (g: number) => number; toY: (g: number) => number; dx: number; dy: number } {
  const dx = plane.xs.length > 1 ? plane.xs[1]! - plane.xs[0]! : 1;
  const dy = plane.ys.length > 1 ? plane.ys[1]! - plane.ys[0]! : 1;
  return { toX: (g) => plane.xs[0]! + (g - 0.5) * dx, toY: (g) => plane.ys[0]! + (g - 0.5) * dy, dx, dy };
}

/** Contour lines of log(loss) over a plane, as line segments in the plane's coordinates
 * (d3-contour marching squares; pieces lying on the grid's border are dropped). The lines are
 * the inner boundaries of `contourBands(plane, levels)`. */
export function contourLines(plane: Plane, levels = 14): { id: number; order: number; x: number; y: number; level: number }[] {
  const nx = plane.xs.length;
  const ny = plane.ys.length;
  const { logs, thresholds } = logLevels(plane, levels);
  const { toX, toY } = gridToPlane(plane);
  const onBorder = (gx: number, gy: number): boolean => gx <= 0.5 + 1e-9 || gx >= nx - 0.5 - 1e-9 || gy <= 0.5 + 1e-9 || gy >= ny - 0.5 - 1e-9;
  const out: { id: number; order: number; x: number; y: number; level: number }[] = [];
  let id = 0;
  for (const c of contours().size([nx, ny]).thresholds(thresholds.slice(1))(logs)) {
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

export interface ContourBand {
  type: 'Feature';
  /** A loss inside the band (the geometric middle of its bounds), for its colour. */
  properties: { loss: number };
  /** Where log(loss) is at least the band's lower bound, in the plane's coordinates. */
  geometry: { type: 'MultiPolygon'; coordinates: number[][][][] };
}

/** The surface as filled bands (d3-contour, linear interpolation between grid points), each
 * painted over the one below, so that colours follow the same interpolated surface as the
 * contour lines instead of one flat cell per grid point. Coordinates go through `toPixel`
 * (plane coordinates in, the picture's pixels out). The grid is padded by one copy of its
 * edge on each side, so that marching squares does not cut the corners of the picture; the
 * padding lies outside the axes' domain and is clipped. */
export function contourBands(plane: Plane, bands: number, toPixel: (x: number, y: number) => [number, number]): ContourBand[] {
  const { logs, lo, hi, thresholds } = logLevels(plane, bands);
  const { toX, toY } = gridToPlane(plane);
  const nx = plane.xs.length;
  const ny = plane.ys.length;
  const clamp = (i: number, n: number): number => Math.min(n - 1, Math.max(0, i));
  const padded = Array.from({ length: (nx + 2) * (ny + 2) }, (_, i) => logs[clamp(Math.floor(i / (nx + 2)) - 1, ny) * nx + clamp((i % (nx + 2)) - 1, nx)]!);
  return contours().size([nx + 2, ny + 2]).thresholds(thresholds)(padded).map((c, i) => ({
    type: 'Feature' as const,
    properties: { loss: Math.exp(lo + ((hi - lo) * (i + 0.5)) / bands) },
    geometry: {
      type: 'MultiPolygon' as const,
      coordinates: c.coordinates.map((polygon) => polygon.map((ring) => ring.map(([gx, gy]) => toPixel(toX(gx! - 1), toY(gy! - 1))))),
    },
  }));
}

/** Longest side of a plane's square of the picture, in pixels. */
const PLANE_SIDE = 330;
/** Bands of colour per plane; every second boundary is also drawn as a contour line. */
const PLANE_BANDS = 24;

/** A text label over a white halo (drawn twice: a wide white stroke, then the text), readable
 * on any colour of the surface. */
function haloText(mark: object, encoding: object): object {
  return {
    layer: [
      { mark: { type: 'text', ...mark, stroke: 'white', strokeWidth: 3.5, strokeOpacity: 0.85, strokeJoin: 'round' }, encoding },
      { mark: { type: 'text', ...mark }, encoding },
    ],
  };
}

function planeSpec(plane: Plane, centerLoss: number, colorDomain: [number, number]): object {
  const { dx, dy } = gridToPlane(plane);
  const xDomain: [number, number] = [plane.xs[0]! - dx / 2, plane.xs[plane.xs.length - 1]! + dx / 2];
  const yDomain: [number, number] = [plane.ys[0]! - dy / 2, plane.ys[plane.ys.length - 1]! + dy / 2];
  // The same units per pixel on both axes, so that distances and angles are true.
  const pixelsPerUnit = PLANE_SIDE / Math.max(xDomain[1] - xDomain[0], yDomain[1] - yDomain[0]);
  const width = Math.round((xDomain[1] - xDomain[0]) * pixelsPerUnit);
  const height = Math.round((yDomain[1] - yDomain[0]) * pixelsPerUnit);
  const random = plane.kind === 'random';
  const pct = (v: number | undefined): string => `${((v ?? 0) * 100).toFixed(1)}%`;
  const xTitle = random ? 'α (multiples of random direction δ)' : `PC1: L2 distance (${pct(plane.explained?.[0])} of path variance)`;
  // Two lines: the plane can be short, and a longer title would push the pictures apart.
  const yTitle = random ? ['β (multiples of', 'random direction η)'] : ['PC2: L2 distance', `(${pct(plane.explained?.[1])} of path variance)`];
  const x = { field: 'x', type: 'quantitative', scale: { domain: xDomain, nice: false, zero: false }, title: xTitle, axis: { grid: false } };
  const y = { field: 'y', type: 'quantitative', scale: { domain: yDomain, nice: false, zero: false }, title: yTitle, axis: { grid: false } };
  const color = (field: string): object => ({
    field, type: 'quantitative', title: ['held-out loss', '(nats/token, log)'],
    scale: { type: 'log', scheme: 'viridis', domain: colorDomain, reverse: true }, legend: { format: '.2~f', gradientLength: 300 },
  });
  const layers: object[] = [
    {
      // Bands come in pixels (the same linear map as the x and y scales): vega-lite gives all
      // the concatenated planes one projection, so it cannot be the one that maps them.
      data: { values: contourBands(plane, PLANE_BANDS, (px, py) => [(px - xDomain[0]) * pixelsPerUnit, (yDomain[1] - py) * pixelsPerUnit]) },
      mark: { type: 'geoshape', strokeWidth: 0, clip: true, aria: false },
      projection: { type: 'identity', scale: 1, translate: [0, 0] },
      encoding: { color: color('properties.loss') },
    },
    {
      data: { values: contourLines(plane, PLANE_BANDS / 2) },
      mark: { type: 'line', strokeWidth: 0.8, color: '#222', opacity: 0.55, interpolate: 'linear', aria: false },
      encoding: { x, y, detail: { field: 'id', type: 'nominal' }, order: { field: 'order', type: 'quantitative' } },
    },
  ];
  if (plane.path && plane.path.length > 0) {
    const path = plane.path;
    const first = path[0]!;
    const last = path[path.length - 1]!;
    const ends = [
      { ...first, label: `step ${first.step} (start): held-out loss ${first.heldOutLoss.toFixed(2)}` },
      ...(path.length > 1 ? [{ ...last, label: `step ${last.step} (end)` }] : []),
    ];
    layers.push(
      {
        data: { values: path },
        mark: { type: 'line', color: '#e4572e', strokeWidth: 2 },
        encoding: { x, y, order: { field: 'step', type: 'quantitative' } },
      },
      {
        data: { values: path },
        // Each checkpoint coloured by its own held-out loss, not the surface's under it.
        mark: { type: 'point', filled: true, size: 46, stroke: '#222', strokeWidth: 0.9, opacity: 1 },
        encoding: {
          x, y, color: color('heldOutLoss'),
          tooltip: [{ field: 'step', type: 'quantitative' }, { field: 'heldOutLoss', type: 'quantitative', format: '.3f' }, { field: 'planeLoss', type: 'quantitative', format: '.3f' }],
        },
      },
      {
        data: { values: ends },
        ...haloText({ align: 'left', dx: 7, dy: -8, fontSize: 11, fontWeight: 'bold', color: '#8b0000' }, { x, y, text: { field: 'label' } }),
      },
    );
  }
  layers.push({
    data: { values: [{ x: 0, y: 0, label: `θ* (loss ${centerLoss.toFixed(3)})` }] },
    layer: [
      { mark: { type: 'point', shape: 'diamond', size: 110, filled: true, color: 'white', stroke: 'black', strokeWidth: 1.2 }, encoding: { x, y } },
      haloText({ align: random ? 'left' : 'right', dx: random ? 9 : -9, dy: 13, fontSize: 11, color: '#111', fontWeight: 'bold' }, { x, y, text: { field: 'label' } }),
    ],
  });
  return { width, height, layer: layers };
}

export function landscapeSpec(landscape: Landscape, title: string): Spec {
  const all = landscape.planes.flatMap((p) => [...p.losses, ...(p.path ?? []).map((q) => q.heldOutLoss)]).filter((v) => Number.isFinite(v) && v > 0);
  const lo = Math.max(Math.min(...all), 1e-4);
  const hi = Math.max(...all);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: title,
      // Short lines: vega measures text without a font here and overestimates long ones.
      subtitle: [
        `loss = cross-entropy on ${landscape.evalExamples} held-out examples, dropout off; ${landscape.resolution}×${landscape.resolution} grid per plane, colours interpolated`,
        'between grid points; lines: equal loss; ◆ = the trained weights θ*; both axes of a plane at the same scale',
        'left: L(θ* + α·δ + β·η) on a random plane; δ, η Gaussian, filter-normalised (each weight-matrix row',
        'scaled to the norm of the trained row)',
        ...(landscape.planes.length > 1
          ? [
            'right: the plane through θ* of the top-2 principal components of the checkpoints θᵢ − θ*; the surface is',
            'a slice of the loss, the path the checkpoints projected onto it, each dot coloured by that checkpoint\'s',
            'own held-out loss L(θᵢ), not the surface\'s',
          ]
          : []),
      ],
      subtitlePadding: 6,
    },
    spacing: 30,
    hconcat: landscape.planes.map((p) => planeSpec(p, landscape.centerLoss, [lo, hi])),
    resolve: { scale: { color: 'shared' } },
  } as Spec;
}
