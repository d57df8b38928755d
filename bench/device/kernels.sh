#!/bin/bash
# Thread scaling of the kernels at 1-16 threads beside PyTorch (MKL) and numpy (OpenBLAS) at the
# same thread counts, interleaved per count: sgemm at the W1 / W4 / W6 shapes (ours on the
# machine's best instruction set and on AVX2), small products, the fused linear layers and
# packed attention at the training shapes. Output in $OUT/kernels.log (or ./kernels.log).
#   bash bench/device/kernels.sh [BINDIR]   (BINDIR from build.sh, default bench/device/bin/current)
cd "$(dirname "$0")/../.."
D=${1:-bench/device/bin/current}
exec > >(tee "${OUT:-.}/kernels.log") 2>&1
date -u; nproc; lscpu; free -g; uptime
python3 -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__); print(torch.__config__.parallel_info())" 2>&1 | head -30
echo "== fma peak (1 core)"; $D/fma_peak
for t in 1 2 4 8 16; do
  echo "===== threads $t $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "-- sgemm ours best-isa"; timeout 60 $D/sgemm_shapes best $t
  echo "-- sgemm ours avx2"; timeout 60 $D/sgemm_shapes avx2 $t
  echo "-- sgemm torch"; OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t timeout 90 python3 bench/sgemm_shapes.py torch $t
  echo "-- sgemm numpy"; OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t timeout 90 python3 bench/sgemm_shapes.py numpy $t "W1"
  echo "-- small products ours"; for s in 128x128x128 256x128x128 128x512x128 512x128x512 768x128x384; do timeout 20 $D/sgemm_shapes best $t $s; done
  echo "-- linear ours"; timeout 60 $D/linear_bench $t
  echo "-- attention ours"; for s in 12x4x64x32 16x4x64x32 8x6x256x64; do timeout 30 $D/attention_bench --no-dropout --threads=$t --shape=$s; done
done
date -u
