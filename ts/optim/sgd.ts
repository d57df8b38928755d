// Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight
// decay, torch.optim.SGD's update rule exactly:
//   g = grad + weightDecay * p
//   buf = g (first step), else buf = momentum * buf + (1 - dampening) * g
//   g = nesterov ? g + momentum * buf : buf
//   p -= lr * g
// Built on the backends' axpy/scale primitives: no kernel of its own.
import type { Storage } from '../backend/backend.js';
import { ConfigError } from '../tensor/errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { configOf, Optimizer, parameterGroups, requireNonNegative, type ParameterSource } from './params.js';

export interface SGDConfig {
  /** Default 1e-3 (torch.optim.SGD's). */
  lr?: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export interface SGDParamGroup extends SGDConfig {
  params: Tensor[];
}

const SGD_KEYS = ['lr', 'momentum', 'dampening', 'weightDecay', 'nesterov'] as const;

type ResolvedSGDGroup = Required<SGDConfig> & { params: Tensor[] };

function validate(op: string, g: ResolvedSGDGroup): void {
  requireNonNegative(op, 'lr', g.lr);
  requireNonNegative(op, 'momentum', g.momentum);
  requireNonNegative(op, 'dampening', g.dampening);
  requireNonNegative(op, 'weightDecay', g.weightDecay);
  if (typeof g.nesterov !== 'boolean') throw new ConfigError(op, `nesterov must be a boolean, got ${String(g.nesterov)}`);
  if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) {
    throw new ConfigError(op, `Nesterov momentum requires momentum > 0 and dampening 0, got momentum ${g.momentum}, dampening ${g.dampening}`);
  }
}

export class SGD extends Optimizer<ResolvedSGDGroup> {
  readonly name = 'SGD';
  readonly groups: ResolvedSGDGroup[];
  /** Momentum buffers, created on a parameter's first step (as PyTorch's). */
  private readonly buffers = new Map<Tensor, Storage>();

  /** `new SGD(params, 0.1)` sets lr, as torch.optim.SGD(params, 0.1); or pass a config. */
  constructor(params: Tensor[] | SGDParamGroup[] | ParameterSource, lrOrConfig: SGDConfig | number = {}) {
    super();
    const config = configOf<SGDConfig>('SGD', lrOrConfig, SGD_KEYS);
    this.groups = parameterGroups<SGDConfig>(this.name, params, SGD_KEYS).map((g) => {
      const resolved: ResolvedSGDGroup = {
        params: g.params,
        lr: g.lr ?? config.lr ?? 1e-3,
        momentum: g.momentum ?? config.momentum ?? 0,
        dampening: g.dampening ?? config.dampening ?? 0,
        weightDecay: g.weightDecay ?? config.weightDecay ?? 0,
        nesterov: g.nesterov ?? config.nesterov ?? false,
      };
      validate(this.name, resolved);
      return resolved;
    });
  }

  step(): void {
    this.eachWithGradient((p, g) => {
      const backend = p.backend;
      const param = p.storageFor(this.name);
      // d = grad (+ weightDecay * p) in a scratch buffer: the gradient itself stays as
      // backward left it, as in PyTorch.
      const d = backend.allocUninit('f32', p.size);
      backend.copy(d, p.grad.storageFor(this.name));
      if (g.weightDecay !== 0) backend.accumulate(d, param, g.weightDecay);
      if (g.momentum !== 0) {
        let buf = this.buffers.get(p);
        if (buf === undefined) {
          buf = backend.allocUninit('f32', p.size);
          backend.copy(buf, d);
          this.buffers.set(p, buf);
        } else {
          backend.scaleInplace(buf, g.momentum);
          backend.accumulate(buf, d, 1 - g.dampening);
        }
        if (g.nesterov) backend.accumulate(d, buf, g.momentum);
        else backend.copy(d, buf);
      }
      backend.accumulate(param, d, -g.lr);
      backend.free(d);
    });
  }

  dispose(): void {
    for (const [p, buf] of this.buffers) p.backend.free(buf);
    this.buffers.clear();
  }
}
