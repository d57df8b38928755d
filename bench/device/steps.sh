#!/bin/bash
# Whole W5 / W6 training steps (kernels only: crates/kernels/examples/step_bench) of one or more
# builds beside PyTorch eager's step (bench/device/torch_step.py) at 1-16 threads, interleaved
# per thread count and repeated twice, then small products per build. Output in $OUT/steps.log.
#   bash bench/device/steps.sh BINDIR [BINDIR...]   (e.g. bench/device/bin/old bench/device/bin/new)
cd "$(dirname "$0")/../.."
dirs=("$@"); [ ${#dirs[@]} -eq 0 ] && dirs=(bench/device/bin/current)
exec > >(tee "${OUT:-.}/steps.log") 2>&1
date -u; lscpu | grep -E "Model name|^CPU\(s\)|L2|L3"; uptime
for t in 1 2 4 8 16; do
  echo "===== threads $t $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  for w in W5 W6; do
    s=30; [ $w = W6 ] && { s=5; [ $t -ge 4 ] && s=10; }
    for rep in 1 2; do
      for d in "${dirs[@]}"; do echo -n "$d "; timeout 90 $d/step_bench --workload=$w --threads=$t --steps=$s | tail -1; done
      OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t timeout 90 python3 bench/device/torch_step.py $w $t $([ $w = W5 ] && echo 20 || echo $s)
    done
  done
  echo "-- small products"
  for p in 128x128x128 256x128x128 128x512x128 768x128x128; do
    for d in "${dirs[@]}"; do echo -n "$d "; timeout 20 $d/sgemm_shapes best $t $p; done
  done
done
d=${dirs[-1]}
echo "== W6 x16 per kernel ($d), and AVX2"
timeout 60 $d/step_bench --workload=W6 --threads=16 --steps=10 --by-kernel | tail -30
FERROFORMER_ISA=avx2 timeout 60 $d/step_bench --workload=W6 --threads=16 --steps=10 | tail -1
FERROFORMER_ISA=avx2 timeout 60 $d/step_bench --workload=W6 --threads=1 --steps=5 | tail -1
date -u
