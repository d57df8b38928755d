// Modules a PyTorch user writes: a subclass with its own parameters, buffers and children;
// the containers; stateDict / loadStateDict under PyTorch's names; LayerNorm without bias;
// weight tying; and the PyTorch habits the constructors must honour or refuse loudly.
import { describe, expect, it } from 'vitest';
import { loadBackend } from '../ts/backend/init_node.js';
import { setDefaultBackend } from '../ts/backend/registry.js';
import * as nn from '../ts/nn/index.js';
import * as ops from '../ts/ops/index.js';
import * as optim from '../ts/optim/index.js';
import { ConfigError, DisposedError } from '../ts/tensor/errors.js';
import { Tensor, tensor } from '../ts/tensor/tensor.js';
import { loadModelSafetensors, modelToSafetensors } from '../ts/train/checkpoint.js';
import { readSafetensors } from '../ts/io/safetensors.js';

const backend = await loadBackend('reference');
setDefaultBackend(backend);

/** A user's module: a parameter, a persistent buffer, a non-persistent one and children. */
class Scaled extends nn.Module {
  readonly scale: Tensor;
  readonly steps: Tensor;
  readonly mask: Tensor;
  readonly proj: nn.Linear;
  readonly blocks: nn.ModuleList<nn.Linear>;
  constructor() {
    super(backend);
    this.scale = this.registerParameter('scale', tensor([2, 2, 2], [3], { backend }));
    this.steps = this.registerBuffer('steps', tensor([0], [1], { backend }));
    this.mask = this.registerBuffer('mask', tensor([1, 1, 0], [3], { backend }), { persistent: false });
    this.proj = this.registerModule('proj', new nn.Linear(3, 3, { backend }));
    this.blocks = this.registerModule('blocks', new nn.ModuleList([new nn.Linear(3, 3, { backend }), new nn.Linear(3, 3, false)].map((l) => l), { backend }));
  }
  forward(x: Tensor): Tensor {
    let h = ops.addBias(this.proj.forward(x), this.scale);
    for (const block of this.blocks) h = block.forward(h);
    return h;
  }
}

describe('user modules', () => {
  it('registers parameters, buffers and children under PyTorch names', () => {
    const m = new Scaled();
    expect(m.namedParameters().map(([n]) => n)).toEqual(['scale', 'proj.weight', 'proj.bias', 'blocks.0.weight', 'blocks.0.bias', 'blocks.1.weight']);
    expect(m.namedBuffers().map(([n]) => n)).toEqual(['steps', 'mask']);
    // Non-persistent buffers stay out of the state dict (register_buffer(persistent=False)).
    expect([...m.stateDict().keys()]).toEqual(['scale', 'steps', 'proj.weight', 'proj.bias', 'blocks.0.weight', 'blocks.0.bias', 'blocks.1.weight']);
    expect(m.parameters()).not.toContain(m.steps);
    expect(m.steps.requiresGrad).toBe(false);
    expect(m.blocks.length).toBe(2);
    expect(m.blocks.at(-1).bias).toBeNull();
    const y = m.forward(tensor([1, 2, 3, 4, 5, 6], [2, 3], { backend }));
    expect(y.shape).toEqual([2, 3]);
    m.dispose();
    expect(m.steps.disposed && m.mask.disposed && m.scale.disposed).toBe(true);
  });

  it('loads a state dict into parameters and persistent buffers, refusing unknown keys', () => {
    const a = new Scaled();
    const b = new Scaled();
    a.steps.backend.write(a.steps.storage, [7]);
    b.loadStateDict(a.stateDict());
    for (const [name, t] of b.stateDict()) expect(Array.from(t.data()), name).toEqual(Array.from(a.stateDict().get(name)!.data()));
    expect(() => b.loadStateDict({ ...Object.fromEntries(a.stateDict()), mask: a.mask })).toThrow(/unexpected keys: mask/);
    const err = (() => {
      try {
        b.loadStateDict({});
      } catch (e) {
        return e as Error;
      }
      return null;
    })();
    expect(err?.name).toBe('StateDictError');
  });

  it('modelToSafetensors writes the persistent buffers too, so a module loads its own file strictly', () => {
    const a = new Scaled();
    a.steps.backend.write(a.steps.storage, [5]);
    const file = modelToSafetensors(a);
    expect([...readSafetensors(file).tensors.keys()].sort()).toEqual([...a.stateDict().keys()].sort());
    const b = new Scaled();
    expect(loadModelSafetensors(b, file)).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect(Array.from(b.steps.data())).toEqual([5]);
    a.dispose();
    b.dispose();
  });

  it('apply visits children first, then the module (PyTorch order)', () => {
    const seq = new nn.Sequential(new nn.Linear(2, 2, { backend }), new nn.Sequential(new nn.LayerNorm(2, { backend })));
    const seen: string[] = [];
    expect(seq.apply((m) => seen.push(m.constructor.name))).toBe(seq);
    expect(seen).toEqual(['Linear', 'LayerNorm', 'Sequential', 'Sequential']);
  });

  it('Sequential chains and names its children; ModuleDict by key', () => {
    const seq = new nn.Sequential(new nn.Linear(4, 8, { backend }), new nn.LayerNorm(8, { backend, bias: false }), new nn.Linear(8, 2, { backend }));
    expect([...seq.stateDict().keys()]).toEqual(['0.weight', '0.bias', '1.weight', '2.weight', '2.bias']);
    expect(seq.forward(tensor(new Float32Array(12), [3, 4], { backend })).shape).toEqual([3, 2]);
    const named = new nn.Sequential({ fc: new nn.Linear(2, 2, { backend }) });
    expect([...named.stateDict().keys()]).toEqual(['fc.weight', 'fc.bias']);
    const dict = new nn.ModuleDict({ enc: new nn.Linear(2, 3, { backend }), dec: new nn.Linear(3, 2, { backend }) });
    expect(dict.keys()).toEqual(['enc', 'dec']);
    expect([...dict.stateDict().keys()]).toEqual(['enc.weight', 'enc.bias', 'dec.weight', 'dec.bias']);
    expect(() => dict.get('nope')).toThrow(/no module 'nope' \(keys: enc, dec\)/);
    expect(() => dict.set('enc', new nn.Linear(2, 2, { backend }))).toThrow(ConfigError);
    expect(() => new nn.Sequential(3 as never)).toThrow(/must be an nn.Module, got number/);
  });

  it('LayerNorm(bias: false) has no bias key and normalises with weight only', () => {
    const ln = new nn.LayerNorm(4, 1e-5, { backend, bias: false });
    expect(ln.bias).toBeNull();
    expect([...ln.stateDict().keys()]).toEqual(['weight']);
    expect(ln.namedBuffers()).toEqual([]);
    const y = ln.forward(tensor([1, 2, 3, 4], [1, 4], { backend })).data();
    expect(Math.abs(Array.from(y).reduce((s, v) => s + v, 0))).toBeLessThan(1e-9);
    expect(new nn.LayerNorm(4, { backend }).bias).not.toBeNull();
  });

  it('ties one tensor under two names: saved once, loaded from either name', () => {
    class Tied extends nn.Module {
      readonly wte = this.registerModule('wte', new nn.Embedding(5, 3, { backend }));
      readonly head = this.registerModule('lm_head', new nn.Linear(3, 5, { backend, bias: false }));
      constructor() {
        super(backend);
        this.wte.weight = this.head.weight;
      }
    }
    const m = new Tied();
    expect(m.wte.weight).toBe(m.head.weight);
    expect([...m.stateDict().keys()]).toEqual(['wte.weight', 'lm_head.weight']);
    expect(m.parameters().length).toBe(1);
    const saved = readSafetensors(modelToSafetensors(m)).tensors;
    expect([...saved.keys()]).toEqual(['lm_head.weight']);
    const other = new Tied();
    loadModelSafetensors(other, modelToSafetensors(m));
    expect(Array.from(other.wte.weight.data())).toEqual(Array.from(m.wte.weight.data()));
    const third = new Tied();
    third.loadStateDict({ 'wte.weight': m.wte.weight });
    expect(Array.from(third.head.weight.data())).toEqual(Array.from(m.wte.weight.data()));
    expect(() => (m.head.weight = tensor(new Float32Array(6), [2, 3], { backend }))).toThrow(/must keep its shape \[5, 3\]/);
  });
});

describe('PyTorch habits', () => {
  it('new Linear(4, 3, false) has no bias', () => {
    const l = new nn.Linear(4, 3, false);
    expect(l.bias).toBeNull();
    expect([...l.stateDict().keys()]).toEqual(['weight']);
    expect(new nn.Linear(4, 3, true).bias).not.toBeNull();
  });

  it('optimisers take lr positionally, a module, and refuse empty lists', () => {
    const l = new nn.Linear(4, 3, { backend });
    expect(new optim.Adam(l.parameters(), 0.01).lr).toBe(0.01);
    expect(new optim.AdamW(l.parameters(), 0.02).lr).toBe(0.02);
    expect(new optim.SGD(l.parameters(), 0.1).lr).toBe(0.1);
    expect(new optim.Adam(l).groups[0]!.params).toEqual(l.parameters());
    expect(() => new optim.Adam([])).toThrow(ConfigError);
    expect(() => new optim.Adam([])).toThrow(/empty parameter list/);
    expect(() => new optim.SGD([], 0.1)).toThrow(/empty parameter list/);
    expect(() => new optim.Adam(l.weight as never)).toThrow(/wrap it as \[tensor\]/);
    expect(() => new optim.Adam([l.weight, 3] as never)).toThrow(/got number at index 1/);
    expect(() => new optim.Adam(l.parameters(), 'fast' as never)).toThrow(/lr \(a number\) or a config object/);
    expect(() => new optim.SGD(l.parameters(), { lr: 0.1, nesterov: true })).toThrow(/Nesterov momentum requires momentum > 0/);
  });

  it('PyTorch keywords in optimiser configs are refused with the camelCase name', () => {
    const l = new nn.Linear(4, 3, { backend });
    expect(() => new optim.SGD(l.parameters(), { lr: 0.1, weight_decay: 0.01 } as never)).toThrow(/SGD: unknown config key 'weight_decay'; did you mean 'weightDecay'\?/);
    expect(() => new optim.Adam(l.parameters(), { amsgrad: true } as never)).toThrow(/unknown config key 'amsgrad' \(known: lr, betas, eps, weightDecay\)/);
    expect(() => new optim.AdamW([{ params: l.parameters(), weight_decay: 0 }] as never)).toThrow(/parameter group 0 key 'weight_decay'; did you mean 'weightDecay'/);
    expect(() => optim.cosineWithWarmup({ learning_rate: 1e-3, minLr: 0, warmupIters: 1, lrDecayIters: 10 } as never)).toThrow(/did you mean 'learningRate'/);
  });

  it('stepping over disposed parameters throws DisposedError', () => {
    const l = new nn.Linear(4, 3, { backend });
    const adam = new optim.Adam(l.parameters(), 0.01);
    const sgd = new optim.SGD(l.parameters(), { lr: 0.1, momentum: 0.9 });
    l.dispose();
    expect(() => adam.step()).toThrow(DisposedError);
    expect(() => sgd.step()).toThrow(DisposedError);
  });

  it('SGD without momentum is p -= lr * (g + wd * p)', () => {
    const p = tensor([1, -2], [2], { backend, requiresGrad: true });
    p.grad = tensor([0.5, 0.5], [2], { backend });
    new optim.SGD([p], { lr: 0.1, weightDecay: 0.1 }).step();
    expect(Array.from(p.data())).toEqual([1 - 0.1 * (0.5 + 0.1), -2 - 0.1 * (0.5 - 0.2)]);
  });

  it('models without a config say what is missing', () => {
    expect(() => new (nn.Transformer as unknown as new () => unknown)()).toThrow(ConfigError);
    expect(() => new (nn.Transformer as unknown as new () => unknown)()).toThrow(/needs a config object with srcVocab, tgtVocab/);
    expect(() => new nn.DecoderLM({ vocab: 10, dModel: 8 } as never)).toThrow(/config is missing nHeads, dFF, numLayers/);
  });
});
