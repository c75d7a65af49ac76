#!/bin/sh
# gen_cli_options.sh PPL [--check] — the engines' option tables as docs/cli.md
# shows them: replaces the text between the "BEGIN generated" and "END
# generated" markers of docs/cli.md with `PPL help options --markdown`.
# With --check nothing is written: prints TAP (one test) and fails when the
# file differs from what the tables generate (the meson test `cli-docs`).
ppl=$1
mode=$2
doc=$(dirname "$0")/../docs/cli.md
gen=$(mktemp)
new=$(mktemp)
trap 'rm -f "$gen" "$new"' EXIT
"$ppl" help options --markdown >"$gen" || exit 1
awk -v gen="$gen" '
  /^<!-- BEGIN generated/ { print; while ((getline line < gen) > 0) print line; skip = 1; next }
  /^<!-- END generated/ { skip = 0 }
  !skip { print }
' "$doc" >"$new"
if [ "$mode" = "--check" ]; then
  echo "1..1"
  if grep -q '^<!-- BEGIN generated' "$doc" && cmp -s "$doc" "$new"; then
    echo "ok 1 - docs/cli.md lists the options as the engines' tables generate them"
  else
    echo "not ok 1 - docs/cli.md differs from 'ppl help options --markdown' (run tools/gen_cli_options.sh)"
    diff "$doc" "$new" | sed 's/^/#   /' | head -40
    exit 1
  fi
else
  cp "$new" "$doc"
fi
