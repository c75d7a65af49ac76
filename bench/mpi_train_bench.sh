#!/bin/sh
# mpi_train_bench.sh BUILD [STEPS] [ROUNDS] [BLOCKS] [WHAT] — data-parallel
# training (docs/scaling.md "Training across ranks"), WHAT = vae (default)
# or npe.
#
# vae: svi's gradient in fixed blocks (inference/svi.c): `ppl train` of the
# VAE example (examples/vae: 1,437 digit images, minibatches of 100, two
# networks of about 8,800 weights each) for STEPS steps (default 300).
# npe: `ppl train --amortize` (inference/npe.c) of a regression over 50 rows
# (a, b, s; the rows' x fixed, y simulated), 20,000 simulations, batches of
# 128, for STEPS epochs (default 10).
#
# Each runs in one process without blocks, in one process with --grad-blocks
# BLOCKS (default 8), and under mpirun with 1, 2 and 4 ranks (the same
# blocks), interleaved ROUNDS times (default 3).  Each configuration runs
# twice, STEPS and a short run (vae 10 steps, npe 1 epoch): the difference
# of the busiest rank's CPU time (/usr/bin/time around each rank) is the CPU
# of the steps (epochs) between, without start-up, data, compile and the
# final ELBO (vae) or the simulations (npe; the short run's CPU, start-up and
# one epoch included, is printed beside).  Prints each run's line, then the
# least of the rounds per step (epoch) and the ratios, and whether every
# blocked run wrote the same params file (cmp).  One BLAS thread per rank.
# Open MPI polls while a rank waits for the other (that counts as CPU;
# yield_when_idle makes it give the core away between polls), so on a loaded
# machine the CPU of 2 and more ranks includes waiting for the others to get
# a core: there, count instructions instead (docs/scaling.md gives the
# callgrind commands).
set -eu
build=$(cd "${1:-build}" && pwd)
what=${5:-vae}
case $what in
vae) steps=${2:-300} short=10 unit=step ;;
npe) steps=${2:-10} short=1 unit=epoch ;;
*) echo "mpi_train_bench.sh: WHAT is vae or npe, not '$what'" >&2; exit 64 ;;
esac
rounds=${3:-3}
G=${4:-8}
here=$(cd "$(dirname "$0")/.." && pwd)
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_mpi_yield_when_idle=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
if [ "$what" = vae ]; then
  perl "$here/examples/vae/data/split.pl" "$dir" >/dev/null
  set -- "$here/examples/vae/vae.ppl" --data train.json --lr 0.01 --elbo-samples 1 --iter
else
  cat >reg.ppl <<'PPL'
data { int N; vector[N] x; vector[N] y; }
model {
  real a ~ normal(0, 2);
  real b ~ normal(0, 2);
  real<lower=0> s ~ lognormal(0, 0.5);
  plate (i in 1:N) { y[i] ~ normal(a + b * x[i], s); }
}
PPL
  awk 'BEGIN { printf "{\"N\": 50, \"x\": ["; for (i = 1; i <= 50; i++) printf "%s%.4f", (i > 1 ? "," : ""), 2 * sin(0.7 * i); print "]}" }' >shape.json
  set -- reg.ppl --data shape.json --amortize --simulations 20000 --batch 128 --epochs
fi
args="$*" # the program's arguments, ending with the option that counts the steps
once() { # NAME ITER LAUNCHER...: the busiest rank's CPU seconds
  name=$1 iter=$2
  shift 2
  rm -f "cpu.$name"
  "$@" /usr/bin/time -f "cpu %U %S" -a -o "cpu.$name" "$build/ppl" train $args "$iter" \
    --save "$name.params" --seed 1 --no-progress $extra >"out.$name" 2>"err.$name" ||
    { cat "err.$name" >&2; exit 1; }
  awk '$1 == "cpu" { t = $2 + $3; if (t > m) m = t } END { print m }' "cpu.$name"
}
train() { # NAME LAUNCHER...: STEPS and 10 steps, the line and the record
  name=$1
  shift
  c0=$(once "$name.short" "$short" "$@")
  c=$(once "$name" "$steps" "$@")
  w=$(sed -n 's/.* in \([0-9.]*\) s;.*/\1/p' "out.$name")
  load=$(cut -d' ' -f1 /proc/loadavg)
  per=$(echo "$c $c0 $steps $short" | awk '{ printf "%.3f", 1000 * ($1 - $2) / ($3 - $4) }')
  echo "$name round $r: busiest rank CPU $c s ($steps ${unit}s), $c0 s ($short): $per ms per $unit; training wall $w s; load $load"
  echo "$name $w $per $load $c0" >>runs
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
awk -v G="$G" -v same="$same" -v unit="$unit" -v short="$short" '
  { n = $1; if (!(n in w) || $2 < w[n]) w[n] = $2; if (!(n in c) || $3 < c[n]) c[n] = $3; load = load " " $4
    if (!(n in s) || $5 < s[n]) s[n] = $5 }
  END {
    printf "least of the rounds, busiest rank CPU per %s: one process %.2f ms, %d blocks %.2f ms, ranks 1: %.2f ms, 2: %.2f ms, 4: %.2f ms\n",
           unit, c["plain"], G, c["blocks"], c["r1"], c["r2"], c["r4"]
    printf "least of the short runs (%s %s(s) with start-up%s), busiest rank CPU: one process %.2f s, %d blocks %.2f s, ranks 1: %.2f s, 2: %.2f s, 4: %.2f s\n",
           short, unit, unit == "epoch" ? " and the simulations" : "", s["plain"], G, s["blocks"], s["r1"], s["r2"], s["r4"]
    printf "least training wall: one process %.2f s, %d blocks %.2f s, ranks 1: %.2f s, 2: %.2f s, 4: %.2f s\n",
           w["plain"], G, w["blocks"], w["r1"], w["r2"], w["r4"]
    printf "ratios: blocks / unblocked CPU %.2fx; 1 -> 2 ranks CPU %.2fx, wall %.2fx; 1 -> 4 ranks CPU %.2fx, wall %.2fx\n",
           c["blocks"] / c["plain"], c["r1"] / c["r2"], w["r1"] / w["r2"], c["r1"] / c["r4"], w["r1"] / w["r4"]
    printf "params files of the blocked runs (one process, 1, 2, 4 ranks) identical: %s\n", same
    printf "load averages:%s\n", load }' runs
