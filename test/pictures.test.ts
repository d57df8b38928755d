// The run's pictures as files: every SVG is well-formed XML whatever text it carries (checked
// by saxes, a strict XML parser), the attention figure fits report.html's column with one cell
// size and no long numbers, loss.svg's axes and label-smoothing floor, the landscape's equal
// axis scales and checkpoint losses.
import { SaxesParser } from 'saxes';
import { describe, expect, it } from 'vitest';
import type { Landscape, Plane } from '../ts/tools/landscape.js';
import { ATTENTION_MAX_WIDTH, attentionSpec, contourBands, labelSmoothingFloor, landscapeSpec, lossSpec, renderSvg, tokenLabel, type AttentionPanel } from '../ts/tools/plots.js';
import { reportHtml } from '../ts/tools/report.js';

/** Parses `xml` strictly; returns the parser's errors (none for a well-formed document). */
function xmlErrors(xml: string): string[] {
  const errors: string[] = [];
  const parser = new SaxesParser({ xmlns: true });
  parser.on('error', (e) => errors.push(e.message));
  parser.write(xml).close();
  return errors;
}

const svgWidth = (svg: string): number => Number(/<svg[^>]*\swidth="([\d.]+)"/.exec(svg)![1]);

/** Attention weights that look like softmax rows: [layers][heads] of [queries x keys]. */
function panel(title: string, queries: string[], keys: string[], layers: number, heads: number): AttentionPanel {
  const weights = Array.from({ length: layers }, (_, l) => Array.from({ length: heads }, (_, h) => {
    const w = new Float32Array(queries.length * keys.length);
    for (let q = 0; q < queries.length; q++) {
      let sum = 0;
      for (let k = 0; k < keys.length; k++) sum += (w[q * keys.length + k] = Math.exp(Math.sin(q * 1.3 + k * 0.7 + l + h * 2.1) * 3));
      for (let k = 0; k < keys.length; k++) w[q * keys.length + k]! /= sum;
    }
    return w;
  }));
  return { title, queryLabel: 'query', keyLabel: 'key', queries, keys, weights };
}

const CONTROL_TEXT = 'ab\u001c\u0000<&>"\'\u0007\ud800\n\t\u007fz';

describe('SVG output is valid XML whatever the training text', () => {
  it('control characters, markup and lone surrogates in tokens and titles', async () => {
    const tokens = [...CONTROL_TEXT];
    const svg = await renderSvg(attentionSpec([panel('Self-attention \u001c', tokens, tokens, 1, 2)], `attention for ${CONTROL_TEXT}`));
    expect(xmlErrors(svg)).toEqual([]);
    // Control characters show as their control pictures; markup is escaped, not dropped.
    expect(svg).toContain('␜');
    expect(svg).toContain('␀');
    expect(svg).toContain('&lt;');
    expect(svg).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/);

    const loss = await renderSvg(lossSpec([{ step: 1, loss: 3, lr: 0.001 }, { step: 2, loss: 2, lr: 0.002, valLoss: 2.5 }], { trainLabel: 'train \u0001', valLabel: 'held-out', title: `loss on ${CONTROL_TEXT}` }));
    expect(xmlErrors(loss)).toEqual([]);
  });

  it('report.html shows control characters of samples as control pictures', () => {
    const html = reportHtml('/nonexistent-run-folder', {
      title: 'LM \u001c', facts: [['data', 'text\u0007']],
      samples: [{ input: 'a\u001cb', greedy: 'c\u0000d', sampled: '<e>\u001f' }], sampling: 'temperature 0.8, top-k 10',
    });
    expect(html).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/);
    expect(html).toContain('a␜b');
    expect(html).toContain('&lt;e&gt;␟');
  });

  it('tokenLabel names every control character and leaves other text alone', () => {
    expect(tokenLabel('\u001c')).toBe('␜');
    expect(tokenLabel('\n')).toBe('␊');
    expect(tokenLabel('\u007f')).toBe('␡');
    expect(tokenLabel(' ')).toBe('␣');
    expect(tokenLabel('é')).toBe('é');
    expect(tokenLabel('\ud800')).toBe('\ufffd');
  });
});

describe('attention figure', () => {
  const source = [...'Thursday, December 18, 1924'];
  const output = ['<s>', ...'1924-12-18'];
  const panels = [
    panel('Encoder', source, source, 2, 4),
    panel('Decoder self', output, output, 2, 4),
    panel('Decoder-source', output, source, 2, 4),
  ];

  it('fits report.html (1250 px), with one cell size in every panel and no long numbers', async () => {
    const svg = await renderSvg(attentionSpec(panels, 'attention'));
    expect(svgWidth(svg)).toBeLessThanOrEqual(ATTENTION_MAX_WIDTH + 40);
    expect(svgWidth(svg)).toBeLessThanOrEqual(1218);
    // Cells are vega rect paths "M0,0h{w}v{h}h-{w}Z": one size for all 9,000-odd of them.
    const sizes = new Set([...svg.matchAll(/d="M0,0h([\d.]+)v([\d.]+)h-/g)].map((m) => `${m[1]}x${m[2]}`).filter((s) => s.split('x')[0] === s.split('x')[1]));
    expect(sizes.size).toBe(1);
    const cell = Number([...sizes][0]!.split('x')[0]);
    expect(cell).toBeGreaterThanOrEqual(10);
    expect(svg).not.toMatch(/\d\.\d{6,}/);
    // 2 x 4 squares of 27 x 27, 2 x 4 of 11 x 11, 2 x 4 of 11 x 27: about 9,000 cells, each
    // one short <path> now (with a 12-digit aria-label each, the file was 2 MB, 210 bytes a cell).
    expect(svg.length / 9000).toBeLessThan(100);
    expect(xmlErrors(svg)).toEqual([]);
  });

  it('keeps tick labels at least 10 px at the usual lengths', async () => {
    const svg = await renderSvg(attentionSpec(panels, 'attention'));
    const sizes = [...svg.matchAll(/class="mark-text role-axis-label"[^]*?font-size="(\d+)px"/g)].map((m) => Number(m[1]));
    expect(sizes.length).toBeGreaterThan(0);
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(10);
  });
});

describe('report.html', () => {
  it('heads a language model\'s random samples "sampled", with how they were drawn, not "beam search"', () => {
    const html = reportHtml('/nonexistent-run-folder', { title: 't', facts: [], samples: [{ input: 'the ', greedy: 'cat', sampled: 'dog' }], sampling: 'temperature 0.8, top-k 10' });
    expect(html).toContain('<th>sampled (temperature 0.8, top-k 10)</th>');
    expect(html).not.toContain('beam search');
    const seq2seq = reportHtml('/nonexistent-run-folder', { title: 't', facts: [], samples: [{ input: 'x', reference: 'y', greedy: 'y', beam: 'y' }] });
    expect(seq2seq).toContain('<th>beam search</th>');
    expect(seq2seq).not.toContain('sampled');
  });
});

describe('loss.svg', () => {
  const records = Array.from({ length: 30 }, (_, i) => ({ step: (i + 1) * 10, loss: 0.75 + 3 / (i + 1), lr: i < 10 ? 0.0015 * (i + 1) : 0.015 / Math.sqrt(i - 8), ...(i % 2 ? { valLoss: 2 / (i + 1) } : {}) }));

  it('labels the learning-rate axis without 0.0e+0 and draws the label-smoothing floor', async () => {
    const svg = await renderSvg(lossSpec(records, { trainLabel: 'train', valLabel: 'held-out', title: 't', smoothing: { epsilon: 0.1, vocab: 62 } }));
    expect(svg).not.toContain('e+0');
    expect(svg).toContain('label-smoothing floor 0.726');
    expect(xmlErrors(svg)).toEqual([]);
    const plain = await renderSvg(lossSpec(records, { trainLabel: 'train', valLabel: 'held-out', title: 't' }));
    expect(plain).not.toContain('label-smoothing floor');
  });

  it('the floor is the least cross-entropy against smoothed targets', () => {
    const v = 7;
    const eps = 0.2;
    const q = Array.from({ length: v }, (_, j) => (j === 0 ? 1 - eps : 0) + eps / v);
    const crossEntropy = (p: number[]): number => -q.reduce((s, qj, j) => s + qj * Math.log(p[j]!), 0);
    const floor = labelSmoothingFloor(eps, v);
    expect(crossEntropy(q)).toBeCloseTo(floor, 12);
    // Any other distribution does worse.
    for (let trial = 0; trial < 20; trial++) {
      const raw = q.map((qj, j) => qj * Math.exp(0.3 * Math.sin(trial * 3.1 + j)));
      const total = raw.reduce((a, b) => a + b, 0);
      expect(crossEntropy(raw.map((r) => r / total))).toBeGreaterThan(floor);
    }
    expect(labelSmoothingFloor(0, 62)).toBe(0);
  });
});

describe('landscape.svg', () => {
  const grid = (lo: number, hi: number, n: number): number[] => Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
  const surface = (xs: number[], ys: number[], f: (x: number, y: number) => number): number[] => ys.flatMap((y) => xs.map((x) => f(x, y)));
  const random: Plane = { kind: 'random', xs: grid(-1, 1, 7), ys: grid(-1, 1, 7), losses: surface(grid(-1, 1, 7), grid(-1, 1, 7), (x, y) => 0.2 + x * x + y * y) };
  const xs = grid(-56, 7, 7);
  const ys = grid(-14, 14, 7);
  const trajectory: Plane = {
    kind: 'trajectory', xs, ys, explained: [0.8, 0.1],
    losses: surface(xs, ys, (x, y) => 0.2 + (x * x) / 400 + (y * y) / 100),
    path: [
      { step: 0, x: -50, y: 2, planeLoss: 1.0, heldOutLoss: 4.6 },
      { step: 100, x: -20, y: 8, planeLoss: 0.6, heldOutLoss: 0.9 },
      { step: 200, x: 0, y: 0, planeLoss: 0.2, heldOutLoss: 0.2 },
    ],
  };
  const landscape: Landscape = { resolution: 7, centerLoss: 0.2, evalExamples: 64, planes: [random, trajectory] };

  it('draws both axes of a plane at the same scale', () => {
    const spec = landscapeSpec(landscape, 't') as unknown as { hconcat: { width: number; height: number }[] };
    const [r, t] = spec.hconcat;
    expect(r!.width).toBe(r!.height);
    const dx = xs[1]! - xs[0]!;
    const dy = ys[1]! - ys[0]!;
    const unitsWide = xs.at(-1)! - xs[0]! + dx;
    const unitsHigh = ys.at(-1)! - ys[0]! + dy;
    expect(t!.width / unitsWide).toBeCloseTo(t!.height / unitsHigh, 1);
  });

  it('shows each checkpoint\'s own held-out loss and says the path is a projection', async () => {
    const svg = await renderSvg(landscapeSpec(landscape, 't'));
    expect(xmlErrors(svg)).toEqual([]);
    expect(svg).toContain('step 0 (start): held-out loss 4.60');
    expect(svg).toContain('projected');
    expect(svg).toContain('slice');
    // The start's dot is coloured by its held-out loss (4.6), not the plane's (1.0) under it.
    expect(svg).toMatch(/heldOutLoss: 4\.600; planeLoss: 1\.000/);
    expect(svgWidth(svg)).toBeLessThanOrEqual(1218);
  });

  it('fills bands that cover the whole plane, corners included', () => {
    const toPixel = (x: number, y: number): [number, number] => [x, y];
    const [base] = contourBands(random, 10, toPixel);
    const points = base!.geometry.coordinates.flat(2);
    const d = (random.xs[1]! - random.xs[0]!) / 2;
    expect(Math.min(...points.map((p) => p[0]!))).toBeLessThanOrEqual(-1 - d);
    expect(Math.max(...points.map((p) => p[0]!))).toBeGreaterThanOrEqual(1 + d);
    // The corner itself lies inside the lowest band's outer ring (marching squares would cut it).
    const ring = base!.geometry.coordinates[0]![0]!;
    const inside = (px: number, py: number): boolean => {
      let odd = false;
      for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
        const [xi, yi] = ring[i]!;
        const [xj, yj] = ring[j]!;
        if ((yi! > py) !== (yj! > py) && px < ((xj! - xi!) * (py - yi!)) / (yj! - yi!) + xi!) odd = !odd;
      }
      return odd;
    };
    expect(inside(-1 - d + 1e-6, -1 - d + 1e-6)).toBe(true);
    expect(inside(1 + d - 1e-6, 1 + d - 1e-6)).toBe(true);
  });
});
