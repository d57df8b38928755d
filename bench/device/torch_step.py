"""nanoGPT's training iteration in PyTorch eager (bench/lib/nanogpt_model.py, as bench/lib/pytorch_bench.py
runs it, with nanoGPT's own init and random ids): ms per step at `threads`.
argv: W5|W6 threads steps"""
import sys, time, statistics
sys.path.insert(0, "bench/lib")
import torch
from nanogpt_model import GPT, GPTConfig

CONFIGS = {"W5": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch=12, bias=True),
           "W6": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch=8, bias=False)}
w, threads, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
c = CONFIGS[w]
model = GPT(GPTConfig(block_size=c["block_size"], vocab_size=65, n_layer=c["n_layer"], n_head=c["n_head"],
                      n_embd=c["n_embd"], dropout=0.0, bias=c["bias"]))
opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99), "cpu")
ids = torch.randint(0, 65, (c["batch"], c["block_size"] + 1))
x, y = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()
def step():
    _, loss = model(x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()
step(); step()
times = []
for _ in range(steps):
    t0 = time.perf_counter(); step(); times.append((time.perf_counter() - t0) * 1000)
tok = c["batch"] * c["block_size"]
med = statistics.median(times)
print(f"torch {w} x{threads}: median {med:.2f} ms, best {min(times):.2f} ms, {tok / med * 1000:.0f} tokens/s")
