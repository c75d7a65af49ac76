#!/bin/sh
# run_examples.sh PPL EXAMPLES_DIR — every example model (examples/*.ppl and
# examples/posteriordb/*.ppl) runs end to end under its default engine (short
# chains) and prints a summary, and every example folder with a run.sh
# (examples/vae) runs its script with a short budget (its first argument)
# into a temporary folder and must draw its picture there; TAP output.
ppl=$1
dir=$2
n=0
failed=0
out=$(mktemp)
for model in "$dir"/*.ppl "$dir"/posteriordb/*.ppl; do
  n=$((n + 1))
  base=${model%.ppl}
  data=
  [ -f "$base.data.json" ] && data="--data $base.data.json"
  # shellcheck disable=SC2086
  if "$ppl" run "$model" $data --chains 2 --warmup 200 --draws 200 --seed 7 >"$out" 2>&1 &&
     grep -q "lp__" "$out"; then
    echo "ok $n - $(basename "$model")"
  else
    failed=$((failed + 1))
    echo "not ok $n - $(basename "$model")"
    sed 's/^/#   /' "$out" | head -20
  fi
done
for script in "$dir"/*/run.sh; do
  [ -f "$script" ] || continue
  n=$((n + 1))
  name=$(basename "$(dirname "$script")")
  tmp=$(mktemp -d)
  if PPL=$ppl sh "$script" 20 "$tmp" >"$out" 2>&1 &&
     ls "$tmp"/*.svg "$tmp"/*.png 2>/dev/null | grep -q .; then
    echo "ok $n - $name/run.sh"
  else
    failed=$((failed + 1))
    echo "not ok $n - $name/run.sh"
    sed 's/^/#   /' "$out" | head -20
  fi
  rm -rf "$tmp"
done
rm -f "$out"
echo "1..$n"
[ "$failed" -eq 0 ]
