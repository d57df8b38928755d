// report.html: one self-contained page per run (no external files or scripts): the summary,
// the pictures inlined as SVG, sample outputs and the configuration.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlPictures } from './plots.js';

export interface Sample {
  input: string;
  reference?: string;
  greedy: string;
  /** Beam search's output (sequence-to-sequence runs). */
  beam?: string;
  /** A random sample (language-model runs); the summary's `sampling` says how it was drawn. */
  sampled?: string;
}

export interface ReportSummary {
  title: string;
  /** [label, value] rows shown at the top. */
  facts: [string, string][];
  samples: Sample[];
  /** How `sampled` outputs were drawn, for their column's heading, e.g. "temperature 0.8, top-k 10". */
  sampling?: string;
}

/** Text for HTML: markup escaped, control characters from the training text (but tab and line
 * breaks) made visible. */
const escape = (s: string): string => s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\ufffe\uffff\ud800-\udfff]/gu, (c) => controlPictures(c)).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function svgOf(runDir: string, file: string): string {
  const path = join(runDir, file);
  if (!existsSync(path)) return `<p class="missing">${escape(file)} was not drawn for this run.</p>`;
  // Drop any XML prolog so the SVG can sit inline in HTML.
  return readFileSync(path, 'utf8').replace(/^<\?xml[^>]*>\s*/, '');
}

export function reportHtml(runDir: string, summary: ReportSummary): string {
  const config = existsSync(join(runDir, 'config.json')) ? readFileSync(join(runDir, 'config.json'), 'utf8') : '{}';
  const hasBeam = summary.samples.some((s) => s.beam !== undefined);
  const hasSampled = summary.samples.some((s) => s.sampled !== undefined);
  const hasRef = summary.samples.some((s) => s.reference !== undefined);
  const mark = (s: Sample, out: string | undefined): string => {
    if (out === undefined) return '';
    const cls = s.reference === undefined ? '' : out === s.reference ? ' class="ok"' : ' class="bad"';
    return `<td${cls}><code>${escape(out)}</code></td>`;
  };
  const rows = summary.samples.map((s) => `<tr><td><code>${escape(s.input)}</code></td>${hasRef ? `<td><code>${escape(s.reference ?? '')}</code></td>` : ''}${mark(s, s.greedy)}${hasBeam ? mark(s, s.beam) : ''}${hasSampled ? mark(s, s.sampled) : ''}</tr>`).join('\n');
  const sampledHeading = `sampled${summary.sampling ? ` (${escape(summary.sampling)})` : ''}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escape(summary.title)}</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; margin: 2rem auto; max-width: 1250px; color: #222; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.ok { background: #eaf7ea; } td.bad { background: #fbeaea; }
.figure { overflow-x: auto; } pre { background: #f6f6f6; padding: .8rem; overflow-x: auto; font-size: .85rem; }
.missing { color: #a00; }
</style>
</head>
<body>
<h1>${escape(summary.title)}</h1>
<table>${summary.facts.map(([k, v]) => `<tr><th>${escape(k)}</th><td>${escape(v)}</td></tr>`).join('')}</table>
<h2>Loss and learning rate</h2>
<div class="figure">${svgOf(runDir, 'loss.svg')}</div>
<h2>Samples</h2>
<table><tr><th>input</th>${hasRef ? '<th>reference</th>' : ''}<th>greedy</th>${hasBeam ? '<th>beam search</th>' : ''}${hasSampled ? `<th>${sampledHeading}</th>` : ''}</tr>
${rows}
</table>
<h2>Attention</h2>
<p>Each square is one head of one layer: row = the position asking (query), column = the position attended to (key), darker = more weight. Every row sums to 1. Every block uses the same cell size.</p>
<div class="figure">${svgOf(runDir, 'attention.svg')}</div>
<h2>Loss landscape</h2>
<p>Left: the loss on a plane through the trained weights θ*, spanned by two random directions, each scaled filter by filter (row by row of every weight matrix) to the norms of the trained weights, as in Li et al. (2018); biases and layer-norm parameters stay fixed. A wide basin around the diamond means the solution is robust to perturbation. Right: the plane through θ* of the top two principal components of the checkpoints' offsets from θ*; the axis titles say how much of the path's variance each direction captures. The surface is a slice of the loss through that plane, and the red path is the optimiser's route projected onto it, checkpoint by checkpoint, ending at θ*. The checkpoints themselves lie off the plane, so each dot is coloured by that checkpoint's own held-out loss, which can differ from the surface's colour under it (at the start, by a lot). Both axes of a plane are drawn at the same scale.</p>
<div class="figure">${svgOf(runDir, 'landscape.svg')}</div>
<h2>Configuration</h2>
<pre>${escape(config)}</pre>
</body>
</html>
`;
}
