#!/bin/sh
# run.sh [STEPS [OUT]] — the VAE example end to end: splits the digits into
# training and held-out images, trains vae.ppl once on the training images
# (`ppl train`: svi, STEPS steps of 100 images, default 3000), encodes both
# sets with the trained encoder in one pass (`ppl run --engine amortized
# --load`: no further optimisation), prints the ELBO per image of each set
# and how well a classifier on the 2-D latent means tells the digits apart,
# and draws OUT/vae.svg (OUT defaults to this folder; the intermediate files
# go to OUT/out/).  PPL names the ppl command (default: build/ppl of this
# checkout, else ppl on the PATH); SEED the seed (1).  Needs perl.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
steps=${1:-3000}
dest=${2:-$here}
ppl=${PPL:-$here/../../build/ppl}
[ -x "$ppl" ] || ppl=ppl
out=$dest/out
mkdir -p "$out"
seed=${SEED:-1}

perl "$here/data/split.pl" "$out"

"$ppl" train "$here/vae.ppl" --data "$out/train.json" --save "$out/vae.params" --seed "$seed" \
  --iter "$steps" --lr 0.01 --elbo-samples 10 --no-progress >"$out/fit.log" 2>&1

# the trained encoder on both sets: the latents' draws (their means feed the
# classifier) and the reconstructions; the CSV's "elbo" line is the set's ELBO
for set in train test; do
  "$ppl" run "$here/vae.ppl" --engine amortized --load "$out/vae.params" --data "$out/$set.json" \
    --chains 1 --seed "$seed" --draws 50 --include z,xhat --quiet --no-progress \
    --output "$out/$set.csv" 2>"$out/$set.log"
done

perl "$here/report.pl" "$out" "$dest/vae.svg"
echo "picture: $dest/vae.svg"
