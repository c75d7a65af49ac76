#!/bin/sh
# csv_readers.sh PPL — runs csv_readers.R (R's rstan and posterior reading the
# CmdStan CSV of `ppl run`) when R and those packages are installed
# (scripts/test.sh installs them on Debian); otherwise a TAP skip.
dir=$(dirname "$0")
if ! command -v Rscript >/dev/null 2>&1; then
  echo "1..0 # SKIP Rscript is not installed (apt-get install r-cran-rstan r-cran-posterior r-cran-jsonlite)"
  exit 0
fi
if ! Rscript -e 'quit(status = !all(sapply(c("rstan", "posterior", "jsonlite"), requireNamespace, quietly = TRUE)))' >/dev/null 2>&1; then
  echo "1..0 # SKIP R packages rstan, posterior and jsonlite are not all installed"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
Rscript "$dir/csv_readers.R" "$1" "$dir/csv_shapes.ppl" "$tmp" 2>"$tmp/stderr"
status=$?
[ $status -eq 0 ] || sed 's/^/# /' "$tmp/stderr"
exit $status
