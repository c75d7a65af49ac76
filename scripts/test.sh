#!/bin/sh
# test.sh — install what is missing, build, run the whole test suite.
#   scripts/test.sh             normal build (Boehm GC)
#   scripts/test.sh --sanitize  ASan + UBSan build with the GC off, in build-asan
# Ends with the line "N passed, N failed" counting every TAP subtest.
set -eu
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--sanitize" ]; then
  export BUILD=build-asan
  export MESON_ARGS="-Db_sanitize=address,undefined -Db_lundef=false -Dgc=false -Dbuildtype=debug"
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # nothing is collected with the GC off and every run is slower: statistical
  # tests draw fewer samples (their tolerances widen with the standard errors)
  export PPL_TEST_SCALE=${PPL_TEST_SCALE:-0.1}
  # ... and one test at a time: without a collector the statistical tests
  # hold ~14 GB each at their peak
  NPROC=1
fi
BUILD=${BUILD:-build}
sh scripts/setup.sh
status=0
meson test -C "$BUILD" --print-errorlogs --num-processes "${NPROC:-2}" ${MESON_TEST_ARGS:-} || status=$?
perl scripts/tally.pl "$BUILD/meson-logs/testlog.json"
exit $status
