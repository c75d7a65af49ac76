#!/bin/sh
# smc_mpi_callgrind.sh BUILD [PARTICLES] [T] [RANKS...] — the instructions each
# rank executes inside one smc run (smcc_run_pool) when a chain's particles
# are split over mpirun's ranks (inference/smc_mpi.c), under callgrind: the
# whole run, the part spent inside the MPI calls (inference/mpi_run.c:
# waiting for the other ranks, which polls and so depends on the load), and
# the rest, the rank's own work, which does not depend on the load.  The
# model is bench/smc_mpi_bench.sh's stochastic volatility (default 20000
# particles x 100 events, ranks 1 2 4), one particle thread per rank.
# Prints one line per rank and, per R, rank 0's work ratio 1 -> R.
set -eu
build=$(cd "${1:-build}" && pwd)
N=${2:-20000}
T=${3:-100}
shift $(($# < 3 ? $# : 3))
ranks=${*:-1 2 4}
here=$(cd "$(dirname "$0")" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
# the model and its data, as smc_mpi_bench.sh writes them
sed -n '/^cat >sv.ppl/,/>sv.json$/p' "$here/smc_mpi_bench.sh" >gen.sh
T=$T sh gen.sh
for R in $ranks; do
  mpirun --oversubscribe -n "$R" valgrind --tool=callgrind --toggle-collect=smcc_run_pool \
    --callgrind-out-file="cg.$R.%q{OMPI_COMM_WORLD_RANK}" "$build/ppl" run sv.ppl --data sv.json \
    --engine smc --chains 1 --particles "$N" --draws "$N" --seed 1 --quiet --threads 1 \
    --include h_last --output "o$R.csv" >/dev/null 2>"err$R"
  for q in $(seq 0 $((R - 1))); do
    callgrind_annotate --inclusive=yes --threshold=100 "cg.$R.$q" 2>/dev/null | awk -v R="$R" -v q="$q" '
      /PROGRAM TOTALS/ { gsub(",", "", $1); t = $1 }
      !/=>/ && /mpi_run\.c:mpi_/ { gsub(",", "", $1); m += $1 }
      END { printf "ranks %d rank %d: run %.4g instructions, in MPI calls %.4g, own work %.4g\n", R, q, t, m, t - m }'
  done
done | tee lines
awk '$3 == "rank" && $4 == "0:" { w[$2] = $14 } END { for (R in w) if (R != 1 && (1 in w)) printf "rank 0 own work 1 -> %d ranks: %.2fx fewer\n", R, w[1] / w[R] }' lines
