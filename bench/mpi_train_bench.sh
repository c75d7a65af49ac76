#!/bin/sh
# mpi_train_bench.sh BUILD [STEPS] [ROUNDS] [BLOCKS] — data-parallel training
# (inference/svi.c's gradient in fixed blocks, docs/scaling.md "Training
# across ranks"): `ppl train` of the VAE example (examples/vae: 1,437 digit
# images, minibatches of 100, two networks of about 8,800 weights each) for
# STEPS steps (default 300), in one process without blocks, in one process
# with --grad-blocks BLOCKS (default 8), and under mpirun with 1, 2 and 4
# ranks (the same blocks), interleaved ROUNDS times (default 3).  Each
# configuration runs twice, STEPS steps and 10 steps: the difference of the
# busiest rank's CPU time (/usr/bin/time around each rank) is the CPU of
# STEPS - 10 training steps, without start-up, data, compile and the final
# ELBO (one sample).  Prints each run's line, then the least of the rounds
# per step and the ratios, and whether every blocked run wrote the same
# params file (cmp).  One BLAS thread per rank.  Open MPI polls while a rank
# waits for the other (that counts as CPU; yield_when_idle makes it give the
# core away between polls), so on a loaded machine the CPU of 2 and more
# ranks includes waiting for the others to get a core: there, count
# instructions instead (docs/scaling.md gives the callgrind command).
set -eu
build=$(cd "${1:-build}" && pwd)
steps=${2:-300}
rounds=${3:-3}
G=${4:-8}
here=$(cd "$(dirname "$0")/.." && pwd)
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_mpi_yield_when_idle=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
perl "$here/examples/vae/data/split.pl" "$dir" >/dev/null
once() { # NAME ITER LAUNCHER...: the busiest rank's CPU seconds
  name=$1 iter=$2
  shift 2
  rm -f "cpu.$name"
  "$@" /usr/bin/time -f "cpu %U %S" -a -o "cpu.$name" "$build/ppl" train "$here/examples/vae/vae.ppl" \
    --data train.json --save "$name.params" --seed 1 --iter "$iter" --lr 0.01 --elbo-samples 1 \
    --no-progress $extra >"out.$name" 2>"err.$name" || { cat "err.$name" >&2; exit 1; }
  awk '$1 == "cpu" { t = $2 + $3; if (t > m) m = t } END { print m }' "cpu.$name"
}
train() { # NAME LAUNCHER...: STEPS and 10 steps, the line and the record
  name=$1
  shift
  c0=$(once "$name.short" 10 "$@")
  c=$(once "$name" "$steps" "$@")
  w=$(sed -n 's/.* in \([0-9.]*\) s;.*/\1/p' "out.$name")
  load=$(cut -d' ' -f1 /proc/loadavg)
  per=$(echo "$c $c0 $steps" | awk '{ printf "%.3f", 1000 * ($1 - $2) / ($3 - 10) }')
  echo "$name round $r: busiest rank CPU $c s ($steps steps), $c0 s (10 steps): $per ms a step; training wall $w s; load $load"
  echo "$name $w $per $load" >>runs
}
for r in $(seq "$rounds"); do
  extra=""
  train plain env
  extra="--grad-blocks $G"
  train blocks env
  for R in 1 2 4; do
    train "r$R" mpirun --oversubscribe -n "$R"
  done
done
same=yes
for R in 1 2 4; do cmp -s blocks.params "r$R.params" || same=no; done
awk -v G="$G" -v same="$same" '
  { n = $1; if (!(n in w) || $2 < w[n]) w[n] = $2; if (!(n in c) || $3 < c[n]) c[n] = $3; load = load " " $4 }
  END {
    printf "least of the rounds, busiest rank CPU a step: one process %.2f ms, %d blocks %.2f ms, ranks 1: %.2f ms, 2: %.2f ms, 4: %.2f ms\n",
           c["plain"], G, c["blocks"], c["r1"], c["r2"], c["r4"]
    printf "least training wall: one process %.2f s, %d blocks %.2f s, ranks 1: %.2f s, 2: %.2f s, 4: %.2f s\n",
           w["plain"], G, w["blocks"], w["r1"], w["r2"], w["r4"]
    printf "ratios: blocks / unblocked CPU %.2fx; 1 -> 2 ranks CPU %.2fx, wall %.2fx; 1 -> 4 ranks CPU %.2fx, wall %.2fx\n",
           c["blocks"] / c["plain"], c["r1"] / c["r2"], w["r1"] / w["r2"], c["r1"] / c["r4"], w["r1"] / w["r4"]
    printf "params files of the blocked runs (one process, 1, 2, 4 ranks) identical: %s\n", same
    printf "load averages:%s\n", load }' runs
