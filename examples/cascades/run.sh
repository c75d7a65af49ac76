#!/bin/sh
# run.sh [RUNS] [OUT_DIR] — the cascades examples on the n-gram models of this
# folder (offline): the lipogram, the scratchpad, and inference-time scaling:
# particle filtering, best-of-N and majority voting at the same budget of
# particles x tokens on five sums a+b, each method RUNS times per sum (default 40),
# with each one's accuracy in a table and OUT_DIR/scaling.svg.
# PPL names the ppl command (default: build/ppl).
set -e
here=$(cd "$(dirname "$0")" && pwd)
ppl=${PPL:-build/ppl}
runs=${1:-40}
out=${2:-.}
mkdir -p "$out"
lm="--lm ngram:$here/english.txt"

echo "== lipogram: a sentence without 'e'"
"$ppl" run "$here/lipogram.ppl" $lm --particles 32 --draws 32 --chains 1 --seed 1 \
  --output "$out/lipogram.csv" >"$out/lipogram.txt"
grep -E "log evidence|steer:" "$out/lipogram.txt" | head -3
# the texts are the tokens in the choices file; none may have an e
if grep -q '"tok[^"]*":"[^"]*[eE]' "$out/lipogram_choices.jsonl"; then
  echo "lipogram: a token with an e" >&2
  exit 1
fi

echo "== scratchpad: a thought, then an answer the verifier accepts"
"$ppl" run "$here/scratchpad.ppl" --data "$here/scratchpad.data.json" $lm --particles 128 \
  --draws 128 --chains 1 --seed 1 --output "$out/scratchpad.csv" >"$out/scratchpad.txt"
grep -E "log evidence|steer:" "$out/scratchpad.txt" | head -3

echo "== inference-time scaling: equal budgets (16 particles x 3 tokens)"
sums="--lm ngram:$here/sums.txt,order=3 --lm judge=ngram:$here/judge.txt,order=6"
printf '%-22s %s\n' method accuracy >"$out/scaling.tsv.txt"
for method in pf bon vote; do
  case $method in
    pf) opts="--select best" ;;               # steered by the reward, then the best
    bon) opts="--resample never --select best" ;;
    vote) opts="--resample never --select vote" ;;
  esac
  right=0
  total=0
  for ab in "7 5" "8 6" "9 4" "6 7" "3 9"; do
    set -- $ab
    echo "{\"a\": $1, \"b\": $2}" >"$out/sum.json"
    "$ppl" run "$here/scaling.ppl" --data "$out/sum.json" $sums --particles 16 --budget 48 \
      $opts --draws "$runs" --chains 1 --seed 7 --output "$out/scaling_$method.csv" >/dev/null
    # the column `correct` of each run's draw
    col=$(grep -v '^#' "$out/scaling_$method.csv" | head -1 | tr ',' '\n' | grep -n '^correct$' | cut -d: -f1)
    r=$(grep -v '^#' "$out/scaling_$method.csv" | tail -n +2 | cut -d, -f"$col" | awk '{s += $1} END {print s + 0}')
    right=$((right + r))
    total=$((total + runs))
  done
  acc=$(awk -v r="$right" -v t="$total" 'BEGIN {printf "%.3f", r / t}')
  printf '%-22s %s\n' "$method" "$acc" >>"$out/scaling.tsv.txt"
done
cat "$out/scaling.tsv.txt"
# the bar chart
awk 'NR > 1 {name[NR - 1] = $1; acc[NR - 1] = $2; n = NR - 1}
  END {
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"360\" height=\"200\">\n"
    printf "<text x=\"10\" y=\"20\" font-family=\"sans-serif\" font-size=\"13\">accuracy at equal budget (16 particles x 3 tokens)</text>\n"
    for (i = 1; i <= n; i++) {
      h = 140 * acc[i]; x = 40 + (i - 1) * 100
      printf "<rect x=\"%d\" y=\"%.1f\" width=\"60\" height=\"%.1f\" fill=\"#4a7ab5\"/>\n", x, 180 - h, h
      printf "<text x=\"%d\" y=\"195\" font-family=\"sans-serif\" font-size=\"12\">%s %.2f</text>\n", x, name[i], acc[i]
    }
    printf "</svg>\n"
  }' "$out/scaling.tsv.txt" >"$out/scaling.svg"
echo "wrote $out/scaling.svg"
