#!/bin/bash
# Static benchmark binaries for a machine with no Node and no Rust (the workplace's 16-core
# device machine): bench/device/bin/LABEL/{sgemm_shapes,linear_bench,attention_bench,step_bench,fma_peak}.
#   bash bench/device/build.sh [LABEL]      (LABEL defaults to "current")
set -euo pipefail
cd "$(dirname "$0")/../.."
label=${1:-current}
out=bench/device/bin/$label
target=${CARGO_TARGET_DIR:-target}/static
mkdir -p "$out"
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$target" cargo build --release -p ferroformer-kernels \
  --example sgemm_shapes --example linear_bench --example attention_bench --example step_bench \
  --target x86_64-unknown-linux-gnu
for b in sgemm_shapes linear_bench attention_bench step_bench; do
  cp "$target/x86_64-unknown-linux-gnu/release/examples/$b" "$out/"
done
rustc -O -C target-feature=+crt-static --edition 2021 bench/lib/fma_peak.rs -o "$out/fma_peak"
strip "$out"/*
ls -la "$out"
