#!/bin/sh
# tf_bench.sh BUILD [BASE_BUILD] — instructions per gradient (callgrind, so the
# load does not matter) of programs whose latents have structured types:
# bench/transforms/structured.ppl (every constrained type, no data) and
# examples/lkj_hier.ppl (simplex + cholesky_factor_corr + multi_normal_cholesky
# group effects, N = 120), compiled (JIT) and interpreted (--no-jit).  With
# BASE_BUILD (an earlier build of the tree, its own libppl_jit.so) both builds
# are measured side by side and the ratio printed.  Run from the source root:
#   sh bench/tf_bench.sh build /tmp/base-build
# Each figure is (I(N2) - I(N1)) / (N2 - N1) from two runs of mv_bench --count,
# so start-up and compilation cancel.
set -eu
N1=${N1:-100}
N2=${N2:-600}
per_grad() { # build model data [--no-jit]
  b=$1
  shift
  i1=$(PPL_JIT_MODULE="$b/ir/libppl_jit.so" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    "$b/bench/mv_bench" --count "$N1" "$@" 2>&1 | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p')
  i2=$(PPL_JIT_MODULE="$b/ir/libppl_jit.so" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    "$b/bench/mv_bench" --count "$N2" "$@" 2>&1 | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p')
  echo $(((i2 - i1) / (N2 - N1)))
}
build=$1
base=${2:-}
printf '%-40s %-12s %14s' program backend "instr/grad"
[ -n "$base" ] && printf ' %14s %8s' "base" "base/new"
printf '\n'
for m in bench/transforms/structured examples/lkj_hier; do
  for mode in jit int; do
    flag=
    [ $mode = int ] && flag=--no-jit
    # shellcheck disable=SC2086
    new=$(per_grad "$build" "$m.ppl" "$m.data.json" $flag)
    printf '%-40s %-12s %14d' "$m.ppl" "$mode" "$new"
    if [ -n "$base" ]; then
      # shellcheck disable=SC2086
      old=$(per_grad "$base" "$m.ppl" "$m.data.json" $flag)
      printf ' %14d %8.2f' "$old" "$(echo "$old $new" | awk '{print $1 / $2}')"
    fi
    printf '\n'
  done
done
