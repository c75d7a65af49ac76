#!/bin/sh
# mpi_bench.sh BUILD [N] [K] [ROUNDS] — bench/mpi_bench under mpirun with 1, 2
# and 4 ranks, interleaved ROUNDS times (default 3); prints each run's line,
# then the least wall and CPU time per gradient for each R and the ratios
# 1 -> R.  One BLAS thread per rank (OPENBLAS_NUM_THREADS=1), so a rank's
# CPU time is its share of the work.  docs/scaling.md has the figures.
set -eu
build=${1:-build}
N=${2:-1000000}
K=${3:-100}
rounds=${4:-3}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq "$rounds"); do
  for R in 1 2 4; do
    mpirun --oversubscribe -n "$R" "$build/bench/mpi_bench" "$N" "$K" 10 | tee -a "$out"
  done
done
awk '
  { R = $2; w = $15; c = $21; b = $24
    if (!(R in wmin) || w < wmin[R]) wmin[R] = w
    if (!(R in cmin) || c < cmin[R]) cmin[R] = c
    if (!(R in bmin) || b < bmin[R]) bmin[R] = b
    for (i = 1; i <= NF; i++) if ($i == "load") load = load " " $(i + 1) }
  END {
    printf "least of the rounds, per gradient: wall 1: %.1f ms, 2: %.1f ms, 4: %.1f ms; " \
           "CPU of the slowest rank 1: %.1f, 2: %.1f, 4: %.1f ms; of it in its blocks 1: %.1f, 2: %.1f, 4: %.1f ms\n",
           wmin[1], wmin[2], wmin[4], cmin[1], cmin[2], cmin[4], bmin[1], bmin[2], bmin[4]
    printf "ratios 1 -> 2 ranks: wall %.2fx, CPU %.2fx, blocks %.2fx; 1 -> 4 ranks: wall %.2fx, CPU %.2fx, blocks %.2fx\n",
           wmin[1] / wmin[2], cmin[1] / cmin[2], bmin[1] / bmin[2], wmin[1] / wmin[4], cmin[1] / cmin[4], bmin[1] / bmin[4]
    printf "load averages during the runs:%s\n", load }' "$out"
