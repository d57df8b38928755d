// State dicts made by PyTorch itself (test/fixtures/interop, written once by
// make_interop.py there): a subclass of nn.Transformer, and tied models saved with
// safetensors' save_model. They load into our models built with the README's defaults and
// give PyTorch's logits; ours are written under exactly PyTorch's names.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from '../ts/io/safetensors.js';
import * as nn from '../ts/nn/index.js';
import { tensor } from '../ts/tensor/tensor.js';
import { loadModelSafetensors, modelToSafetensors } from '../ts/train/checkpoint.js';
import { flattenParameters, flattenSnapshot } from '../ts/tools/landscape.js';
import { describeEachBackend, relErr } from './helpers/backends.js';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'interop');
const bytes = (name: string): Uint8Array => new Uint8Array(readFileSync(path.join(dir, `${name}.safetensors`)));
const io = readSafetensors(bytes('io')).tensors;

/** The README's Transformer for a PyTorch user: dimensions only, every other option default. */
const seq2seqConfig = { srcVocab: 11, tgtVocab: 13, dModel: 16, nHeads: 2, numEncoderLayers: 2, numDecoderLayers: 2, dFF: 32, dropout: 0 };
const lmConfig = { vocab: 12, dModel: 16, nHeads: 2, numLayers: 2, dFF: 32, dropout: 0, maxLen: 8, positions: 'learned' as const, tieWeights: true };

/** Names and shapes of a safetensors file, and its metadata. */
function layout(file: Uint8Array): { names: Map<string, string>; metadata: Record<string, string> } {
  const { tensors, metadata } = readSafetensors(file);
  return { names: new Map([...tensors].map(([k, t]) => [k, t.shape.join('x')])), metadata };
}

describeEachBackend('PyTorch interop', (ctx) => {
  const ids = (name: string) => {
    const t = io.get(name)!;
    return tensor(t.data as Int32Array, t.shape, { dtype: 'i32', backend: ctx.backend });
  };

  it("nn.Transformer's state dict (encoder.norm and decoder.norm included) loads strictly with the defaults and gives its logits", () => {
    const model = new nn.Transformer(seq2seqConfig, { backend: ctx.backend }).eval();
    expect(loadModelSafetensors(model, bytes('seq2seq'))).toEqual({ missingKeys: [], unexpectedKeys: [] });
    const logits = model.forward(ids('seq2seq.src'), ids('seq2seq.tgt'));
    expect(logits.shape).toEqual(io.get('seq2seq.logits')!.shape);
    expect(relErr(logits.data(), io.get('seq2seq.logits')!.data as Float32Array)).toBeLessThan(5e-4);
    // Ours into PyTorch: exactly the same names and shapes, so load_state_dict(strict=True) takes it.
    expect(layout(modelToSafetensors(model)).names).toEqual(layout(bytes('seq2seq')).names);
    logits.dispose();
    model.dispose();
  });

  it('a tied seq2seq model saved by save_model (generator.weight kept, tgt_embed.weight dropped) loads and we write the same file layout', () => {
    const model = new nn.Transformer({ ...seq2seqConfig, tieWeights: true }, { backend: ctx.backend }).eval();
    loadModelSafetensors(model, bytes('seq2seq_tied'));
    expect(model.stateDict().get('tgt_embed.weight')!.data()).toEqual(model.stateDict().get('generator.weight')!.data());
    const logits = model.forward(ids('seq2seq.src'), ids('seq2seq.tgt'));
    expect(relErr(logits.data(), io.get('seq2seq_tied.logits')!.data as Float32Array)).toBeLessThan(5e-4);
    const ours = layout(modelToSafetensors(model));
    const theirs = layout(bytes('seq2seq_tied'));
    expect(ours.names).toEqual(theirs.names);
    expect(ours.metadata['tgt_embed.weight']).toBe(theirs.metadata['tgt_embed.weight']);
    logits.dispose();
    model.dispose();
  });

  it('a tied LM with learned positions saved by save_model (embed.weight kept) loads and gives its logits', () => {
    const model = new nn.DecoderLM(lmConfig, { backend: ctx.backend }).eval();
    expect(loadModelSafetensors(model, bytes('lm_tied'))).toEqual({ missingKeys: [], unexpectedKeys: [] });
    const logits = model.forward(ids('lm.ids'));
    expect(relErr(logits.data(), io.get('lm_tied.logits')!.data as Float32Array)).toBeLessThan(5e-4);
    expect(layout(modelToSafetensors(model))).toEqual(layout(bytes('lm_tied')));
    logits.dispose();
    model.dispose();
  });
});

describeEachBackend('state dict loading', (ctx) => {
  const model = () => new nn.DecoderLM({ ...lmConfig, tieWeights: false }, { backend: ctx.backend });

  it('loadModelSafetensors with strict false returns the missing and unexpected keys', () => {
    const m = model();
    const { tensors } = readSafetensors(bytes('lm_tied'));
    tensors.set('extra.weight', { dtype: 'F32', shape: [2], data: new Float32Array(2) });
    const result = m.loadStateDict(tensors, { strict: false });
    expect(result).toEqual({ missingKeys: ['generator.weight'], unexpectedKeys: ['extra.weight'] });
    const file = modelToSafetensors(new nn.Linear(3, 2, { backend: ctx.backend }));
    const relaxed = loadModelSafetensors(m, file, { strict: false });
    expect(relaxed.missingKeys).toEqual(m.namedParameters().map(([k]) => k));
    expect([...relaxed.unexpectedKeys].sort()).toEqual(['bias', 'weight']);
    m.dispose();
  });

  it("a DDP state dict (every key prefixed 'module.') is named as such in the error, and stripPrefix loads it", () => {
    const source = model();
    const target = model();
    const prefixed = new Map([...source.stateDict()].map(([k, t]) => [`module.${k}`, t]));
    expect(() => target.loadStateDict(prefixed)).toThrow(/every key starts with 'module\.' \(a state dict saved from a DistributedDataParallel.*stripPrefix: 'module\.'/);
    expect(target.loadStateDict(prefixed, { stripPrefix: 'module.' })).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect(target.stateDict().get('blocks.layers.1.linear2.weight')!.data()).toEqual(source.stateDict().get('blocks.layers.1.linear2.weight')!.data());
    source.dispose();
    target.dispose();
  });

  it("a tied Transformer's snapshot (tgt_embed.weight written as generator.weight) flattens for the loss landscape", () => {
    const m = new nn.Transformer({ ...seq2seqConfig, tieWeights: true }, { backend: ctx.backend });
    expect([...readSafetensors(modelToSafetensors(m)).tensors.keys()]).not.toContain('tgt_embed.weight');
    expect(flattenSnapshot(m, modelToSafetensors(m))).toEqual(flattenParameters(m));
    m.dispose();
  });

  it('a state dict error lists the first few keys and the count, not every name', () => {
    const m = model();
    let message = '';
    try {
      m.loadStateDict({});
    } catch (e) {
      message = (e as Error).message;
    }
    const count = m.namedParameters().length;
    expect(count).toBeGreaterThan(10);
    expect(message).toContain(`(${count} in all)`);
    expect(message.length).toBeLessThan(400);
    m.dispose();
  });
});

/** bfloat16 bits of each float32 (round to nearest even, as torch's .to(torch.bfloat16)). */
function toBF16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  return Uint16Array.from(bits, (b) => (b + 0x7fff + ((b >>> 16) & 1)) >>> 16);
}

describeEachBackend('half-precision and float64 checkpoints', (ctx) => {
  const source = readSafetensors(bytes('lm_tied'));
  const converted = (dtype: 'F64' | 'BF16'): Uint8Array => {
    const out = new Map<string, { dtype: 'F64' | 'BF16'; shape: number[]; data: Float64Array | Uint16Array }>();
    for (const [name, t] of source.tensors) {
      const f32 = t.data as Float32Array;
      out.set(name, { dtype, shape: t.shape, data: dtype === 'F64' ? Float64Array.from(f32) : toBF16(f32) });
    }
    return writeSafetensors(out, source.metadata);
  };

  it('an F64 file loads with the same values and logits as the F32 one', () => {
    const model = new nn.DecoderLM(lmConfig, { backend: ctx.backend }).eval();
    expect(loadModelSafetensors(model, converted('F64'))).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect(Float32Array.from(model.stateDict().get('embed.weight')!.data())).toEqual(source.tensors.get('embed.weight')!.data);
    model.dispose();
  });

  it('a BF16 file loads, each weight the bfloat16 rounding of the float32 one', () => {
    const model = new nn.DecoderLM(lmConfig, { backend: ctx.backend }).eval();
    loadModelSafetensors(model, converted('BF16'));
    const want = source.tensors.get('embed.weight')!.data as Float32Array;
    const got = model.stateDict().get('embed.weight')!.data();
    const rounded = new Float32Array(new Uint32Array(Array.from(toBF16(want), (h) => h << 16)).buffer);
    expect(Float32Array.from(got)).toEqual(rounded);
    expect(relErr(got, want)).toBeGreaterThan(0);
    expect(relErr(got, want)).toBeLessThan(1e-2);
    model.dispose();
  });

  it('a non-float parameter dtype is refused, naming the tensor and its dtype', () => {
    const model = new nn.DecoderLM(lmConfig, { backend: ctx.backend });
    const ints = new Map([...source.tensors].map(([k, t]) => [k, { dtype: 'I32' as const, shape: t.shape, data: new Int32Array(t.data.length) }]));
    expect(() => loadModelSafetensors(model, writeSafetensors(ints))).toThrow(/loadModel: .* has dtype I32; parameters load from F32, F64, F16 or BF16/);
    model.dispose();
  });
});
