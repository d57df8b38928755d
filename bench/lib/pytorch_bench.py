"""The benchmark workloads in PyTorch, eager or torch.compile, timed in-process. Called by
bench/runners/pytorch.mjs, which writes the inputs (the exact bytes ferroformer uses) into
`directory` and reads each output back for the same float64 oracle check before the timings
count. Prints one JSON line per workload:
  {"workload", "shape", "medianMs", "minMs", "maxMs", "samples", "output"?, "firstLoss"?, ...}
or {"workload", "shape", "failure": reason} when the workload could not run (e.g. the
compiler is missing for torch.compile).

argv: directory budget_seconds mode(eager|compile) threads spec...
   or: serve directory mode threads spec (one W4-W6 spec kept ready, see `serve`)
  spec: W1:MxKxN | W2:B,H,T,D | W3:ROWS,DIM,EPS | W4:V,D,H,L,FF,T,B | W5 or W6:CONFIG.json
  (W5/W6: nanoGPT's GPT from nanogpt_model.py; CONFIG.json in `directory` holds the config,
  the parameter names and shapes, the initial weights `<W>.param.<name>.f32` and token ids
  `<W>.ids.i32` beside it, and the number of timed iterations.)
"""
import json
import math
import sys
import time
import traceback

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def timed(fn, budget, sync=lambda: None, warmup=2, min_calls=5):
    """At least `min_calls` calls and as many as fit in `budget` seconds, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    sync()
    samples = []
    started = time.perf_counter()
    while len(samples) < min_calls or time.perf_counter() - started < budget:
        t0 = time.perf_counter()
        fn()
        sync()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {"medianMs": float(np.median(samples)), "minMs": samples[0], "maxMs": samples[-1], "samples": len(samples)}


def load(directory, name, shape):
    return torch.from_numpy(np.fromfile(f"{directory}/{name}.f32", dtype=np.float32).reshape(shape))


def compiled(fn, mode):
    return torch.compile(fn) if mode == "compile" else fn


def w1(directory, budget, mode, spec):
    m, k, n = (int(x) for x in spec.split("x"))
    a, b = load(directory, f"W1-{spec}.a", (m, k)), load(directory, f"W1-{spec}.b", (k, n))
    c = torch.empty(m, n)
    # Eager writes into one preallocated C, as numpy's row does; compiled graphs return theirs.
    mm = (lambda: torch.matmul(a, b, out=c)) if mode == "eager" else torch.compile(lambda: torch.matmul(a, b))
    with torch.inference_mode():
        out = mm()
        out.numpy().tofile(f"{directory}/W1-{spec}.c.f32")
        return timed(mm, budget)


def w2(directory, budget, mode, spec):
    b, h, t, d = (int(x) for x in spec.split(","))
    q, k, v = (load(directory, f"W2.{x}", (b, h, t, d)) for x in "qkv")
    attend = compiled(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1 / math.sqrt(d)), mode)
    with torch.inference_mode():
        attend().numpy().tofile(f"{directory}/W2.out.f32")
        return timed(attend, budget)


def w3(directory, budget, mode, spec):
    rows, dim, eps = spec.split(",")
    rows, dim, eps = int(rows), int(dim), float(eps)
    x = load(directory, "W3.x", (rows, dim))
    gamma, beta = load(directory, "W3.gamma", (dim,)), load(directory, "W3.beta", (dim,))
    norm = compiled(lambda: F.layer_norm(x, (dim,), gamma, beta, eps), mode)
    with torch.inference_mode():
        norm().numpy().tofile(f"{directory}/W3.y.f32")
        return timed(norm, budget)


class DecoderLM(nn.Module):
    """ferroformer's nn.DecoderLM as bench/runners/ferroformer.mjs builds it for W4: token
    embedding scaled by sqrt(d_model) plus a sinusoidal table, pre-norm encoder layers under
    a causal mask (ReLU, dropout 0), a final layer norm, an untied generator with bias, and
    Xavier-uniform matrices. Parameter count 659,968 at the W4 sizes."""

    def __init__(self, vocab, d_model, heads, layers, d_ff, max_len):
        super().__init__()
        self.d_model = d_model
        self.embed = nn.Embedding(vocab, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, d_ff, dropout=0.0, activation="relu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
        self.generator = nn.Linear(d_model, vocab)
        position = torch.arange(max_len, dtype=torch.float64)[:, None]
        rate = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_len, d_model, dtype=torch.float64)
        table[:, 0::2] = torch.sin(position * rate)
        table[:, 1::2] = torch.cos(position * rate)
        self.register_buffer("pos", table.float(), persistent=False)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, ids):
        t = ids.shape[1]
        x = self.embed(ids) * math.sqrt(self.d_model) + self.pos[:t]
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        return self.generator(self.blocks(x, mask=mask, is_causal=True))


def w4_training(directory, mode, spec):
    """W4's model, optimizer and batch; returns (step, params), step() running one training
    step and returning its loss."""
    vocab, d_model, heads, layers, d_ff, seq, batch = (int(x) for x in spec.split(","))
    torch.manual_seed(1234)
    model = DecoderLM(vocab, d_model, heads, layers, d_ff, seq)
    params = sum(p.numel() for p in model.parameters())
    tokens = torch.from_numpy(np.fromfile(f"{directory}/W4.ids.i32", dtype=np.int32).astype(np.int64)).reshape(batch, seq + 1)
    inputs, targets = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    forward = compiled(model, mode)

    def step():
        optimizer.zero_grad(set_to_none=True)
        logits = forward(inputs)
        loss = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
        loss.backward()
        optimizer.step()
        return loss.item()

    return step, params


def w4(directory, budget, mode, spec):
    step, params = w4_training(directory, mode, spec)
    losses = [step()]
    timing = timed(lambda: losses.append(step()), budget)
    return {**timing, "firstLoss": losses[0], "lastLoss": losses[-1], "steps": len(losses), "params": params}


def resident_mib(field):
    """VmHWM (peak) or VmRSS (now) of this process from /proc/self/status, in MiB; None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def nanogpt_training(directory, mode, spec):
    """nanoGPT's GPT from the job's initial weights and batch; returns (step, params, job),
    step() running one iteration as its train.py does (forward with targets, backward,
    clip_grad_norm_, AdamW from configure_optimizers, zero_grad(set_to_none=True)) and
    returning its loss."""
    from nanogpt_model import GPT, GPTConfig

    with open(f"{directory}/{spec}") as f:
        job = json.load(f)
    c, w = job["config"], job["workload"]
    model = GPT(GPTConfig(block_size=c["block_size"], vocab_size=c["vocab_size"], n_layer=c["n_layer"],
                          n_head=c["n_head"], n_embd=c["n_embd"], dropout=0.0, bias=c["bias"]))
    names = [n for n, _ in model.named_parameters()]
    if names != [n for n, _ in job["parameters"]]:
        raise ValueError(f"parameter names differ from ferroformer's: {names[:4]}...")
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(load(directory, f"{w}.param.{name}", tuple(p.shape)))
    params = sum(p.numel() for p in model.parameters())
    optimizer = model.configure_optimizers(job["weightDecay"], job["learningRate"], tuple(job["betas"]), "cpu")
    b, t = c["batch_size"], c["block_size"]
    tokens = torch.from_numpy(np.fromfile(f"{directory}/{w}.ids.i32", dtype=np.int32).astype(np.int64)).reshape(b, t + 1)
    x, y = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
    forward = compiled(model, mode)

    def step():
        _, loss = forward(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), job["gradClip"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step, params, job


def nanogpt(directory, budget, mode, spec):
    """One training iteration of nanoGPT (see nanogpt_training), timed, with the peak resident
    memory of the process."""
    base_rss = resident_mib("VmRSS")
    step, params, job = nanogpt_training(directory, mode, spec)
    losses = [step(), step()]  # also the warm-up (torch.compile compiles in the first)
    if job["iterations"]:
        timing = timed(lambda: losses.append(step()), 0, warmup=0, min_calls=job["iterations"])
    else:
        timing = timed(lambda: losses.append(step()), budget, warmup=0)
    peak = resident_mib("VmHWM")
    method = "VmHWM from /proc/self/status"
    if peak is None:
        import resource
        peak, method = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "resource.getrusage ru_maxrss"
    return {**timing, "firstLoss": losses[0], "secondLoss": losses[1], "lastLoss": losses[-1], "steps": len(losses),
            "losses": losses[:8], "params": params, "peakRssMiB": peak, "baseRssMiB": base_rss, "memoryMethod": method}


def serve(directory, mode, spec):
    """One training workload (W4, W5 or W6) kept ready for bench/lib/duel.mjs: sets it up, runs
    two warm-up steps, prints {"ready", "losses", "params"}, then answers each stdin line
    `run K` with the K step times {"ms": [...]} and stops at `quit` or end of input."""
    workload, spec = spec.split(":", 1)
    if workload == "W4":
        step, params = w4_training(directory, mode, spec)
    else:
        step, params, _ = nanogpt_training(directory, mode, spec)
    losses = [step(), step()]
    print(json.dumps({"ready": True, "losses": losses, "params": params}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        ms = []
        for _ in range(int(words[1])):
            t0 = time.perf_counter()
            step()
            ms.append((time.perf_counter() - t0) * 1000)
        print(json.dumps({"ms": ms}), flush=True)


RUN = {"W1": w1, "W2": w2, "W3": w3, "W4": w4, "W5": nanogpt, "W6": nanogpt}


def main() -> None:
    if sys.argv[1] == "serve":
        directory, mode, threads, spec = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
        torch.set_num_threads(threads)
        serve(directory, mode, spec)
        return
    directory, budget, mode, threads = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    for item in sys.argv[5:]:
        workload, spec = item.split(":", 1)
        record = {"workload": workload, "spec": spec}
        try:
            record.update(RUN[workload](directory, budget, mode, spec))
        except Exception as error:  # a compile failure skips the row with its reason
            last = traceback.format_exception_only(type(error), error)[-1].strip()
            record["failure"] = f"{type(error).__name__}: {last[:400]}"
        record.update({"torch": torch.__version__, "capability": torch.backends.cpu.get_cpu_capability()})
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
