// Draws a run's pictures into its folder: loss.svg from metrics.jsonl, attention.svg for one
// example, landscape.svg (+ landscape.json with the numbers), and report.html around them.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nn, noGrad, tensor, tidy, type Tensor } from '../index.js';
import { writeFileAtomic } from '../train/checkpoint_file.js';
import { computeLandscape, type Landscape, type LandscapeOptions } from './landscape.js';
import { attentionSpec, landscapeSpec, lossSpec, renderSvg, type AttentionPanel, type MetricRecord } from './plots.js';
import { reportHtml, type ReportSummary } from './report.js';
import type { AnyModel } from './run.js';
import type { tokenizers } from '../index.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

export function readMetrics(runDir: string): MetricRecord[] {
  const path = join(runDir, 'metrics.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as MetricRecord);
}

/** The output vocabulary of a run (the classes its loss is over), from config.json. */
function outputVocab(runDir: string): number | null {
  const path = join(runDir, 'config.json');
  if (!existsSync(path)) return null;
  const model = (JSON.parse(readFileSync(path, 'utf8')) as { model?: { tgtVocab?: number; vocab?: number } }).model;
  return model?.tgtVocab ?? model?.vocab ?? null;
}

export async function drawLoss(runDir: string, title: string, kind: 'seq2seq' | 'lm', labelSmoothing: number): Promise<void> {
  const trainLabel = labelSmoothing > 0 ? `train loss (label smoothing ${labelSmoothing})` : 'train loss';
  const valLabel = kind === 'seq2seq' ? 'held-out cross-entropy' : 'validation cross-entropy';
  const vocab = outputVocab(runDir);
  const smoothing = labelSmoothing > 0 && vocab !== null ? { epsilon: labelSmoothing, vocab } : undefined;
  const svg = await renderSvg(lossSpec(readMetrics(runDir), { trainLabel, valLabel, title, smoothing }));
  await writeFileAtomic(join(runDir, 'loss.svg'), text(svg));
}

function splitHeads(t: Tensor): Float32Array[] {
  // [1, H, Tq, Tk] -> H arrays of Tq * Tk.
  const [, h, tq, tk] = t.shape as [number, number, number, number];
  const data = Float32Array.from(t.data() as ArrayLike<number>);
  return Array.from({ length: h }, (_, i) => data.slice(i * tq * tk, (i + 1) * tq * tk));
}

/** Attention maps of one example: for the encoder-decoder, `src` ids and the decoder input
 * (BOS + output); for the LM, `src` = the token ids. Labels are the decoded characters. */
export function attentionPanels(model: AnyModel, tok: tokenizers.Tokenizer, src: number[], decoderInput: number[] = []): AttentionPanel[] {
  const label = (id: number): string => (id === tok.bosId ? '<s>' : id === tok.eosId ? '</s>' : tok.decode([id]) || '?');
  return noGrad(() => tidy(() => {
    const backend = model.backend;
    const s = tensor(Int32Array.from(src), [1, src.length], { dtype: 'i32', backend });
    if (model instanceof nn.Transformer) {
      const enc: Tensor[] = [];
      const memory = model.encode(s, { maps: enc });
      const t = tensor(Int32Array.from(decoderInput), [1, decoderInput.length], { dtype: 'i32', backend });
      const maps: nn.AttentionMaps = { self: [], cross: [] };
      model.decode(t, memory, s, { maps });
      const srcLabels = src.map(label);
      const tgtLabels = decoderInput.map(label);
      return [
        { title: 'Encoder self-attention: source attends to source', queryLabel: 'source (query)', keyLabel: 'source (key)', queries: srcLabels, keys: srcLabels, weights: enc.map(splitHeads) },
        { title: 'Decoder self-attention (causal): output so far attends to itself', queryLabel: 'decoder input (query)', keyLabel: 'decoder input (key)', queries: tgtLabels, keys: tgtLabels, weights: maps.self.map(splitHeads) },
        { title: 'Decoder-source attention: each output position attends to the source', queryLabel: 'decoder input (query)', keyLabel: 'source (key)', queries: tgtLabels, keys: srcLabels, weights: maps.cross.map(splitHeads) },
      ];
    }
    const maps: Tensor[] = [];
    model.forward(s, { maps });
    const labels = src.map(label);
    return [{ title: 'Self-attention (causal): each position attends to the text before it', queryLabel: 'position (query)', keyLabel: 'position (key)', queries: labels, keys: labels, weights: maps.map(splitHeads) }];
  }));
}

export async function drawAttention(runDir: string, panels: AttentionPanel[], title: string): Promise<void> {
  await writeFileAtomic(join(runDir, 'attention.svg'), text(await renderSvg(attentionSpec(panels, title))));
}

export async function drawLandscape(runDir: string, options: LandscapeOptions, title: string): Promise<Landscape> {
  const landscape = await computeLandscape(runDir, options);
  await writeFileAtomic(join(runDir, 'landscape.json'), text(JSON.stringify(landscape)));
  await writeFileAtomic(join(runDir, 'landscape.svg'), text(await renderSvg(landscapeSpec(landscape, title))));
  return landscape;
}

/** report.html from the pictures in the folder and summary.json (written at training time). */
export async function writeReport(runDir: string, summary?: ReportSummary): Promise<void> {
  const path = join(runDir, 'summary.json');
  const s = summary ?? (existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as ReportSummary) : { title: runDir, facts: [], samples: [] });
  if (summary) await writeFileAtomic(path, text(JSON.stringify(summary, null, 2)));
  await writeFileAtomic(join(runDir, 'report.html'), text(reportHtml(runDir, s)));
}
