#!/bin/sh
# quickstart.sh — install what is missing, build, and run the eight schools model.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
./build/ppl run examples/eight_schools.ppl --data examples/eight_schools.data.json \
  --output eight_schools.csv --summary eight_schools.summary.json
