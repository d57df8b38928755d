"""W1 sgemm with numpy (OpenBLAS), timed in-process. Called by bench/runners/numpy.mjs with
OPENBLAS_NUM_THREADS set; reads A and B (float32, row-major) written by the runner, writes C
back for the runner's oracle check, prints one JSON line of timings per shape."""
import json
import sys
import time

import numpy as np


def main() -> None:
    directory, budget = sys.argv[1], float(sys.argv[2])
    for spec in sys.argv[3:]:
        m, k, n = (int(x) for x in spec.split("x"))
        a = np.fromfile(f"{directory}/{spec}.a.f32", dtype=np.float32).reshape(m, k)
        b = np.fromfile(f"{directory}/{spec}.b.f32", dtype=np.float32).reshape(k, n)
        c = np.empty((m, n), dtype=np.float32)
        for _ in range(2):  # warm-up
            np.matmul(a, b, out=c)
        c.tofile(f"{directory}/{spec}.c.f32")
        samples = []
        started = time.perf_counter()
        while len(samples) < 5 or time.perf_counter() - started < budget:
            t0 = time.perf_counter()
            np.matmul(a, b, out=c)
            samples.append((time.perf_counter() - t0) * 1000)
        samples.sort()
        print(json.dumps({
            "shape": spec, "medianMs": float(np.median(samples)), "minMs": samples[0], "maxMs": samples[-1],
            "samples": len(samples), "numpy": np.__version__,
        }), flush=True)


if __name__ == "__main__":
    main()
