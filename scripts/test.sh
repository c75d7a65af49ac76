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
  # detect_odr_violation=0: libppl_jit.so carries its own copy of the
  # library's objects and the host's copy interposes it (ir/meson.build), so
  # ASan sees each global registered twice at one address (docs/testing.md)
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:detect_odr_violation=0
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
# R's rstan and posterior read ppl's CmdStan CSV in the csv-readers test
# (tests/inference/csv_readers.sh skips without them); PPL_NO_R=1 leaves
# them out.  About 70 MB from Debian, once.
if [ -z "${PPL_NO_R:-}" ]; then
  rmissing=
  for p in r-cran-rstan r-cran-posterior r-cran-jsonlite; do
    dpkg -s "$p" >/dev/null 2>&1 || rmissing="$rmissing $p"
  done
  if [ -n "$rmissing" ]; then
    echo "installing:$rmissing"
    SUDO=
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    { $SUDO apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        $rmissing >/dev/null; } || echo "could not install$rmissing: csv-readers will be skipped"
  fi
fi
# llama.cpp's libllama (npm's @node-llama-cpp/linux-x64, pinned) for the
# llama: language-model backend's tests (lm-llama, steer-exact's llama
# cases skip without it); PPL_NO_LLAMA=1 leaves it out.
if [ -z "${PPL_NO_LLAMA:-}" ]; then
  sh scripts/install-llama.sh || echo "install-llama.sh failed: the llama tests will be skipped"
fi
status=0
meson test -C "$BUILD" --print-errorlogs --num-processes "${NPROC:-2}" ${MESON_TEST_ARGS:-} || status=$?
perl scripts/tally.pl "$BUILD/meson-logs/testlog.json"
exit $status
