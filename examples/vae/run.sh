#!/bin/sh
# run.sh [ITER [OUT]] — the VAE example end to end: splits the digits into
# training and held-out images, trains vae.ppl on the training images with svi
# (ITER steps of 100 images, default 10000), encodes the held-out images with
# the trained encoder (no further optimisation), prints the held-out ELBO per
# image and how well a classifier on the 2-D latent means tells the digits
# apart, and draws OUT/vae.svg (OUT defaults to this folder; the intermediate
# files go to OUT/out/).  PPL names the ppl command (default: build/ppl of
# this checkout, else ppl on the PATH).  Needs perl (report.pl).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
iter=${1:-10000}
dest=${2:-$here}
ppl=${PPL:-$here/../../build/ppl}
[ -x "$ppl" ] || ppl=ppl
out=$dest/out
mkdir -p "$out"
seed=${SEED:-1}

perl "$here/data/split.pl" "$out"

# training: the draws of the training images' latents feed the classifier
"$ppl" run "$here/vae.ppl" --data "$out/train.json" --engine svi --chains 1 --seed "$seed" \
  --iter "$iter" --lr 0.01 --draws 50 --elbo-samples 10 --include z --quiet --no-progress \
  --save-params "$out/vae.safetensors" \
  --output "$out/train.csv" 2>"$out/train.log"

# the held-out images through the trained encoder (--load-params: no training)
"$ppl" run "$here/vae.ppl" --data "$out/test.json" --engine svi --chains 1 --seed "$seed" \
  --load-params "$out/vae.safetensors" --draws 100 --elbo-samples 100 --include z,xhat \
  --quiet --no-progress --output "$out/test.csv" \
  2>"$out/test.log"

perl "$here/report.pl" "$out" "$dest/vae.svg"
echo "picture: $dest/vae.svg"
