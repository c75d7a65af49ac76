#!/bin/sh
# vae_step_instr.sh — instructions of one VAE training step (callgrind),
# load-independent, for comparing builds: the 60-step run less the 20-step
# run, over 40, so start-up and output are left out.  With two ppl binaries
# it prints both and their ratio, side by side in one run.
#   sh bench/vae/vae_step_instr.sh build/ppl [other/build/ppl]
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
perl "$root/examples/vae/data/split.pl" "$tmp" >/dev/null
refs() { # ppl iters -> total instructions
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$1" run \
    "$root/examples/vae/vae.ppl" --data "$tmp/train.json" --engine svi --chains 1 \
    --threads 1 --iter "$2" --lr 0.01 --draws 1 --elbo-samples 1 --include z --quiet \
    --no-progress --output "$tmp/x.csv" 2>&1 | sed -n 's/.*refs: *//p' | tr -d ,
}
step() { echo $(( ($(refs "$1" 60) - $(refs "$1" 20)) / 40 )); }
a=$(step "$1")
echo "$1: $a instructions a step"
if [ -n "$2" ]; then
  b=$(step "$2")
  echo "$2: $b instructions a step"
  awk -v a="$a" -v b="$b" -v first="$1" -v second="$2" 'BEGIN { printf "ratio %s / %s: %.3f\n", first, second, a / b }'
fi
