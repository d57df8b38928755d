"""The cases of `cargo run --release --example sgemm_shapes` (crates/kernels/examples) for numpy
(OpenBLAS) and torch.matmul (MKL), so the two can be run alternately and compared line by line:
`OPENBLAS_NUM_THREADS=1 python bench/sgemm_shapes.py numpy|torch [threads] [filter]`
(OPENBLAS_CORETYPE=Haswell forces OpenBLAS's AVX2 kernels). Best of 25 loops of 2e8 FLOP or one call;
GFLOP/s counts 2·m·k·n. One thread is timed by the thread's CPU clock (time given
to other processes does not count), more by the wall clock, as the Rust example does. Transposed operands are passed as transposed views, as a caller would."""
import sys
import time

import numpy as np


def linear_cases(tag, rows, i, o):
    return [
        (f"{tag} fwd {rows}x{i}->{o}", rows, i, o, False, True, False),
        (f"{tag} dX  {rows}x{i}->{o}", rows, o, i, False, False, True),
        (f"{tag} dW  {rows}x{i}->{o}", o, rows, i, True, False, True),
    ]


def cases():
    v = [(f"W1 {m}x{k}x{n}", m, k, n, False, False, False) for m, k, n in [
        (128, 128, 128), (256, 256, 256), (512, 512, 512), (1024, 1024, 1024),
        (512, 512, 2048), (512, 2048, 512), (4096, 512, 512)]]
    for i, o in [(128, 384), (128, 128), (128, 512), (512, 128), (128, 1024)]:
        v += linear_cases("W4", 1024, i, o)
    for i, o in [(384, 1152), (384, 384), (384, 1536), (1536, 384), (384, 65)]:
        v += linear_cases("W6", 2048, i, o)
    return v


def main():
    lib = sys.argv[1] if len(sys.argv) > 1 else "numpy"
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    flt = sys.argv[3] if len(sys.argv) > 3 else ""
    if lib == "torch":
        import torch
        torch.set_num_threads(threads)
    for name, m, k, n, ta, tb, acc in cases():
        if flt not in name:
            continue
        rng = np.random.default_rng(0)
        a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
        b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
        c = np.zeros((m, n), dtype=np.float32)
        if lib == "torch":
            a, b, c = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
            av, bv = (a.t() if ta else a), (b.t() if tb else b)
            if acc:
                run = lambda: c.addmm_(av, bv)
            else:
                run = lambda: torch.matmul(av, bv, out=c)
        else:
            av, bv = (a.T if ta else a), (b.T if tb else b)
            if acc:
                # numpy has no C += A·B; time the product alone (the add is not BLAS).
                t = np.empty_like(c)
                run = lambda: np.matmul(av, bv, out=t)
            else:
                run = lambda: np.matmul(av, bv, out=c)
        flops = 2.0 * m * k * n
        reps = int(min(max(2e8 / flops, 1), 5000))
        run()
        clock = time.perf_counter if threads > 1 else time.thread_time
        best = float("inf")
        for _ in range(25):
            t0 = clock()
            for _ in range(reps):
                run()
            best = min(best, (clock() - t0) / reps)
        print(f"{name:<28} {flops / best / 1e9:7.1f} GFLOP/s", flush=True)


def compare():
    """`python bench/sgemm_shapes.py compare ROUNDS ISA THREADS PEER [FILTER]`: runs ours (the
    example binary, ISA avx512 or avx2) and PEER (numpy or torch; with ISA avx2 numpy's OpenBLAS
    is forced to its Haswell kernels) alternately, ROUNDS times, and prints per case the median
    GFLOP/s of each, the median of the paired ratios, and the ratio of the best rounds (on a
    shared machine interference only ever slows a round down, so the best is the steadier)."""
    import os
    import statistics
    import subprocess
    rounds, isa, threads, peer = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    flt = sys.argv[6] if len(sys.argv) > 6 else ""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    if isa == "avx2":
        env["OPENBLAS_CORETYPE"] = "Haswell"
    here = os.path.dirname(os.path.abspath(__file__))
    ours_cmd = [os.path.join(here, "..", "target", "release", "examples", "sgemm_shapes"), isa, threads, flt]
    peer_cmd = [sys.executable, os.path.abspath(__file__), peer, threads, flt]

    def parse(out):
        return {line[:28].strip(): float(line[28:].split()[0]) for line in out.splitlines() if line.strip()}

    runs = {"ours": [], "peer": []}
    for _ in range(rounds):
        runs["ours"].append(parse(subprocess.run(ours_cmd, env=env, capture_output=True, text=True, check=True).stdout))
        runs["peer"].append(parse(subprocess.run(peer_cmd, env=env, capture_output=True, text=True, check=True).stdout))
    print(f"{'case':<28} {'ours':>7} {peer:>7} {'ratio':>6} {'best':>6}  (medians of {rounds} alternating rounds, {isa}, {threads} thread(s))")
    for name in runs["ours"][0]:
        ours = [r[name] for r in runs["ours"]]
        theirs = [r[name] for r in runs["peer"]]
        ratio = statistics.median(o / t for o, t in zip(ours, theirs))
        best = max(ours) / max(theirs)
        print(f"{name:<28} {statistics.median(ours):7.1f} {statistics.median(theirs):7.1f} {ratio:6.2f}x {best:5.2f}x")
    print("load:", open("/proc/loadavg").read().split()[:3])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "compare":
        compare()
    else:
        main()
