#!/bin/sh
# glm_bench.sh BUILD [N] [K] [ROUNDS] — the fused GLM statement (docs/jit.md,
# "Fused GLM statements") against the unfused code in one build:
# bench/mpi_bench's logistic regression as one block of N rows (the whole
# gradient in one compiled log density, N x K matrix X), with the fusion on
# and off (PPL_JIT_NO_GLM=1), interleaved ROUNDS times (default 3).  Prints
# each run's CPU time per gradient, the least of each, and their ratio.  One
# BLAS thread (ppl's default).  Not a test.
set -eu
build=${1:-build}
N=${2:-200000}
K=${3:-100}
rounds=${4:-3}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq "$rounds"); do
  for off in 1 0; do
    line=$(PPL_JIT_NO_GLM=$off "$build/bench/mpi_bench" "$N" "$K" 10 1)
    cpu=$(printf '%s\n' "$line" | sed -n 's/.*blocks-cpu\/rank \([0-9.]*\) ms.*/\1/p')
    load=$(printf '%s\n' "$line" | sed -n 's/.* load \([0-9.]*\).*/\1/p')
    echo "fused $((1 - off))  N $N  K $K  CPU per gradient $cpu ms  load $load" | tee -a "$out"
  done
done
awk '{ f = $2; c = $10; if (!(f in m) || c < m[f]) m[f] = c }
  END { printf "least CPU per gradient: unfused %.2f ms, fused %.2f ms: fused %.2fx faster\n", m[0], m[1], m[0] / m[1] }' "$out"
