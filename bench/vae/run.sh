#!/bin/sh
# run.sh PPL [STEPS] — VAE training throughput (examples/s) of ppl beside
# PyTorch on the same architecture, data, batch and optimiser, one thread
# each: examples/vae/vae.ppl under `ppl run --engine svi` (ppl's own time of
# the optimisation, fit_seconds in its CSV, which leaves out start-up and
# the draws) and bench/vae/torch_vae.py (the steps alone) in float64, as ppl
# computes, and float32.  Each is run twice, interleaved, and the faster run
# counts (the build machine is shared).  PyTorch is skipped with a message
# where Debian's python3-torch is not installed.  Not a test.
#
#   sh bench/vae/run.sh build/ppl 2000     (run with nice)
set -eu
ppl=$1
steps=${2:-2000}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
perl "$here/../../examples/vae/data/split.pl" "$tmp"
py=/usr/bin/python3
torch=yes
"$py" -c "import torch" 2>/dev/null || torch=
[ -n "$torch" ] || echo "PyTorch: not installed (apt-get install python3-torch); ppl only"
best_ppl=0 best64=0 best32=0
for round in 1 2; do
  "$ppl" run "$here/../../examples/vae/vae.ppl" --data "$tmp/train.json" --engine svi --chains 1 \
    --threads 1 --iter "$steps" --lr 0.01 --draws 1 --elbo-samples 1 --include z --quiet \
    --no-progress --output "$tmp/ppl.csv" 2>/dev/null
  r=$(perl -ne 'print 100 * '"$steps"' / $1 if /^# fit_seconds = (\S+)/' "$tmp/ppl.csv")
  echo "ppl (svi, float64): $steps steps of 100: $r examples/s"
  best_ppl=$(perl -e 'print $ARGV[0] > $ARGV[1] ? $ARGV[0] : $ARGV[1]' "$r" "$best_ppl")
  [ -n "$torch" ] || continue
  for dt in float64 float32; do
    line=$(OMP_NUM_THREADS=1 "$py" "$here/torch_vae.py" "$tmp/train.json" "$steps" 100 0.01 "$dt")
    echo "$line"
    r=$(echo "$line" | perl -ne 'print $1 if /([0-9.]+) examples\/s/')
    if [ "$dt" = float64 ]; then
      best64=$(perl -e 'print $ARGV[0] > $ARGV[1] ? $ARGV[0] : $ARGV[1]' "$r" "$best64")
    else
      best32=$(perl -e 'print $ARGV[0] > $ARGV[1] ? $ARGV[0] : $ARGV[1]' "$r" "$best32")
    fi
  done
done
echo "best: ppl $best_ppl examples/s"
[ -z "$torch" ] || perl -e 'printf "best: torch float64 %.0f (ppl at %.2fx of it), float32 %.0f (ppl at %.2fx)\n",
  $ARGV[1], $ARGV[0] / $ARGV[1], $ARGV[2], $ARGV[0] / $ARGV[2]' "$best_ppl" "$best64" "$best32"
