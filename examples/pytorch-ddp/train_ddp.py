"""Continues a ferroformer seq2seq run in PyTorch under DistributedDataParallel.

    torchrun --nproc_per_node 2 examples/pytorch-ddp/train_ddp.py <out> [--fresh-optimizer]

<out> is what export.mjs wrote. The model is a subclass of nn.Transformer with ferroformer's
names for the rest (src_embed, tgt_embed, generator), so ferroformer's model.safetensors
loads with load_state_dict(strict=True); Adam's moments and steps come from
optimizer.safetensors, so the run continues where it stopped instead of restarting them
(--fresh-optimizer restarts them, to compare). Each step takes the next `batch` rows of
batches.safetensors, each rank its share; gradients are averaged by DDP (gloo, CPU). The
recipe is the run's: Noam learning rate at the run's step, gradient clipping, label
smoothing, padding id 0 masked and ignored by the loss.

Rank 0 writes <out>/model.after.safetensors and <out>/optimizer.after.safetensors in the
same layout (import.mjs reads them back into ferroformer) and <out>/pytorch.json (the losses).
"""
import argparse
import json
import math
import os

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP


def sinusoidal(max_len, d):
    """pe[pos, 2i] = sin(pos / 10000^(2i/d)), pe[pos, 2i+1] = cos(...), as ferroformer's table."""
    pe = torch.zeros(max_len, d)
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]
    i = torch.arange(0, d, 2, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos / 10000 ** (i / d)).float()
    pe[:, 1::2] = torch.cos(pos / 10000 ** (i / d)).float()
    return pe


class Seq2Seq(nn.Transformer):
    """ferroformer's Transformer: nn.Transformer plus src_embed, tgt_embed and generator."""

    def __init__(self, c):
        super().__init__(d_model=c['dModel'], nhead=c['nHeads'], num_encoder_layers=c['numEncoderLayers'],
                         num_decoder_layers=c['numDecoderLayers'], dim_feedforward=c['dFF'], dropout=c['dropout'],
                         activation=c['activation'], layer_norm_eps=c['layerNormEps'], batch_first=True,
                         norm_first=c['normFirst'])
        if not c['finalNorm']:
            self.encoder.norm = None
            self.decoder.norm = None
        # ferroformer applies no dropout to the attention probabilities (its fused kernel has none).
        for layer in [*self.encoder.layers, *self.decoder.layers]:
            layer.self_attn.dropout = 0.0
            if hasattr(layer, 'multihead_attn'):
                layer.multihead_attn.dropout = 0.0
        d = c['dModel']
        self.src_embed = nn.Embedding(c['srcVocab'], d)
        self.tgt_embed = nn.Embedding(c['tgtVocab'], d)
        self.generator = nn.Linear(d, c['tgtVocab'])
        if c['tieWeights']:
            self.generator.weight = self.tgt_embed.weight
        assert c['positions'] == 'sinusoidal', 'learned positions would be src_pos / tgt_pos Embeddings'
        self.register_buffer('pe', sinusoidal(c['maxLen'], d), persistent=False)
        self.embed_dropout = nn.Dropout(c['dropout'])  # ferroformer's src_dropout / tgt_dropout
        self.scale = math.sqrt(d) if c['scaleEmbedding'] else 1.0
        self.pad = c['padId']

    def embed(self, table, ids):
        return self.embed_dropout(table(ids) * self.scale + self.pe[: ids.shape[1]])

    def forward(self, src, tgt_in):
        causal = torch.triu(torch.ones(tgt_in.shape[1], tgt_in.shape[1], dtype=torch.bool), 1)
        h = super().forward(self.embed(self.src_embed, src), self.embed(self.tgt_embed, tgt_in), tgt_mask=causal,
                            src_key_padding_mask=src == self.pad, tgt_key_padding_mask=tgt_in == self.pad,
                            memory_key_padding_mask=src == self.pad, tgt_is_causal=True)
        return self.generator(h)


def noam(step, d_model, warmup, factor):
    s = max(step, 1)
    return factor * d_model ** -0.5 * min(s ** -0.5, s * warmup ** -1.5)


def make_optimizer(model, path, fresh):
    """torch.optim.Adam/AdamW over the groups named in optimizer.safetensors, its state mapped
    from parameter names onto PyTorch's indices (the order of the groups' params)."""
    tensors = load_file(path)
    with safe_open(path, 'pt') as f:
        meta = f.metadata()
    by_name = model.state_dict(keep_vars=True)  # every name, tied aliases included
    groups = json.loads(meta['param_groups'])
    kind = {'Adam': torch.optim.Adam, 'AdamW': torch.optim.AdamW}[meta['optimizer']]
    optimizer = kind([{'params': [by_name[n] for n in g['params']], 'lr': g['lr'], 'betas': tuple(g['betas']),
                       'eps': g['eps'], 'weight_decay': g['weight_decay']} for g in groups])
    names = [n for g in groups for n in g['params']]
    if not fresh:
        steps = json.loads(meta['step'])
        state = optimizer.state_dict()
        state['state'] = {i: {'step': torch.tensor(float(steps[n])), 'exp_avg': tensors[f'{n}.exp_avg'].clone(),
                              'exp_avg_sq': tensors[f'{n}.exp_avg_sq'].clone()}
                          for i, n in enumerate(names) if n in steps}
        optimizer.load_state_dict(state)
    return optimizer, names, meta['optimizer']


def save_optimizer(optimizer, names, kind, path):
    state = optimizer.state_dict()
    tensors, steps = {}, {}
    for i, n in enumerate(names):
        s = state['state'].get(i)
        if s is None:
            continue
        tensors[f'{n}.exp_avg'] = s['exp_avg'].contiguous()
        tensors[f'{n}.exp_avg_sq'] = s['exp_avg_sq'].contiguous()
        steps[n] = int(s['step'])
    groups, start = [], 0
    for g in state['param_groups']:
        groups.append({'params': names[start:start + len(g['params'])], 'lr': g['lr'], 'betas': list(g['betas']),
                       'eps': g['eps'], 'weight_decay': g['weight_decay']})
        start += len(g['params'])
    save_file(tensors, path, metadata={'format': 'ferroformer-optimizer', 'optimizer': kind,
                                       'step': json.dumps(steps), 'param_groups': json.dumps(groups)})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('out')
    parser.add_argument('--fresh-optimizer', action='store_true', help='restart Adam (to see the difference)')
    args = parser.parse_args()
    dist.init_process_group('gloo')
    # The eval-mode fast path computes padded positions differently (nested tensors); the
    # plain path is ferroformer's computation.
    torch.backends.mha.set_fastpath_enabled(False)
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(1234 + rank)

    with open(os.path.join(args.out, 'run.json')) as f:
        run = json.load(f)
    c, t = run['model'], run['train']
    model = Seq2Seq(c)
    load_model(model, os.path.join(args.out, 'model.safetensors'))  # strict; understands tied weights
    optimizer, names, kind = make_optimizer(model, os.path.join(args.out, 'optimizer.safetensors'), args.fresh_optimizer)
    ddp = DDP(model)
    data = load_file(os.path.join(args.out, 'batches.safetensors'))
    src, tgt = data['src'].long(), data['tgt'].long()
    batch, pad = t['batchSize'], c['padId']

    def held_out_loss():
        model.eval()
        with torch.no_grad():
            es, et = data['eval_src'].long(), data['eval_tgt'].long()
            logits = model(es, et[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), et[:, 1:].reshape(-1), ignore_index=pad)
        model.train()
        return loss.item()

    start = run['step']
    losses = []
    before = held_out_loss()
    if rank == 0:
        print(f'held-out loss at step {start}: {before:.4f} here, {run["ferroformer"]["heldOutLoss"]:.4f} in ferroformer', flush=True)
    for i in range(run['steps']):
        rows = slice(i * batch + rank, (i + 1) * batch, world)  # this rank's share of the step's batch
        s, y = src[rows], tgt[rows]
        logits = ddp(s, y[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[:, 1:].reshape(-1), ignore_index=pad,
                               label_smoothing=t['labelSmoothing'])
        optimizer.zero_grad()
        loss.backward()  # DDP averages the gradients over the ranks
        torch.nn.utils.clip_grad_norm_(model.parameters(), t['clipNorm'])
        for g in optimizer.param_groups:
            g['lr'] = noam(start + i + 1, c['dModel'], t['warmup'], t['lrFactor'])
        optimizer.step()
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        losses.append(mean.item() / world)
        if rank == 0 and (i < 10 or (i + 1) % 20 == 0):
            print(f'step {start + i + 1} loss {losses[-1]:.4f}', flush=True)
    if rank == 0:
        after = held_out_loss()
        print(f'held-out loss {before:.4f} -> {after:.4f} over {run["steps"]} DDP steps on {world} ranks', flush=True)
        save_model(model, os.path.join(args.out, 'model.after.safetensors'))
        save_optimizer(optimizer, names, kind, os.path.join(args.out, 'optimizer.after.safetensors'))
        with open(os.path.join(args.out, 'pytorch.json'), 'w') as f:
            json.dump({'startStep': start, 'step': start + run['steps'], 'losses': losses, 'heldOutLoss': [before, after],
                       'freshOptimizer': args.fresh_optimizer, 'world': world}, f, indent=1)
    dist.destroy_process_group()


if __name__ == '__main__':
    main()
