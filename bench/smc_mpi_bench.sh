#!/bin/sh
# smc_mpi_bench.sh BUILD [PARTICLES] [T] [ROUNDS] — one smc chain's particles
# split over the ranks of mpirun (inference/smc_mpi.c): a stochastic-volatility
# model with T observations and PARTICLES particles (default 200000 x 200),
# run with 1, 2 and 4 ranks, interleaved ROUNDS times (default 3).  Prints
# each run's sampling wall time (the CSV's, rank 0: the whole SMC run, not
# MPI's start nor the compile) and the CPU time of the busiest rank
# (/usr/bin/time around each rank: its whole process), then the least of the
# rounds as particle-steps per second and the ratios 1 -> R.  The runs of
# every R write the same draws (tests/mpi/mpi_smc.pl checks the bits).  One
# particle thread per rank (--threads 1), so 1 -> 2 ranks is 1 -> 2 cores.
set -eu
build=$(cd "${1:-build}" && pwd)
N=${2:-200000}
T=${3:-200}
rounds=${4:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# a rank waiting at a collective gives its core away rather than polling
# (on a loaded machine polling is CPU time taken from the rank it waits for)
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_mpi_yield_when_idle=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
cat >sv.ppl <<'PPL'
data { int T; real y[T]; real mu; real phi; real<lower=0> s; }
model {
  real h_prev = mu;
  for (t in 1:T) {
    real h ~ normal(t == 1 ? mu : mu + phi * (h_prev - mu), t == 1 ? s / sqrt(1 - phi * phi) : s);
    y[t] ~ normal(0, exp(h / 2));
    h_prev = h;
  }
  real h_last = h_prev;
}
PPL
awk -v T="$T" 'BEGIN { srand(7); h = -0.5; printf "{\"T\": %d, \"mu\": -0.5, \"phi\": 0.9, \"s\": 0.4, \"y\": [", T
  for (t = 1; t <= T; t++) { h = -0.5 + 0.9 * (h + 0.5) + 0.4 * (rand() - 0.5) * 3.4
    printf "%s%.4f", (t > 1 ? ", " : ""), exp(h / 2) * (rand() - 0.5) * 3.4 }
  print "]}" }' >sv.json
for r in $(seq "$rounds"); do
  for R in 1 2 4; do
    mpirun --oversubscribe -n "$R" /usr/bin/time -f "cpu %U %S" -a -o "cpu$R.$r" "$build/ppl" run sv.ppl \
      --data sv.json --engine smc --chains 1 --particles "$N" --draws "$N" --seed 1 --quiet --threads 1 \
      --include h_last --output "o$R.csv" >/dev/null 2>"err$R"
    s=$(awk '/seconds \(Sampling\)/ { print $2 }' "o$R.csv")
    c=$(awk '$1 == "cpu" { t = $2 + $3; if (t > m) m = t } END { print m }' "cpu$R.$r")
    load=$(cut -d' ' -f1 /proc/loadavg)
    echo "ranks $R round $r: sampling wall $s s, busiest rank CPU $c s, load $load"
    echo "$R $s $c $load" >>runs
  done
done
awk -v N="$N" -v T="$T" '
  { R = $1; if (!(R in w) || $2 < w[R]) w[R] = $2; if (!(R in c) || $3 < c[R]) c[R] = $3; load = load " " $4 }
  END {
    steps = N * T
    printf "least of the rounds: particle-steps/s (sampling wall) 1 rank: %.3g, 2: %.3g, 4: %.3g; busiest rank CPU 1: %.2f s, 2: %.2f s, 4: %.2f s\n",
           steps / w[1], steps / w[2], steps / w[4], c[1], c[2], c[4]
    printf "ratios 1 -> 2 ranks: wall %.2fx, CPU %.2fx; 1 -> 4 ranks: wall %.2fx, CPU %.2fx\n",
           w[1] / w[2], c[1] / c[2], w[1] / w[4], c[1] / c[4]
    printf "load averages:%s\n", load }' runs
