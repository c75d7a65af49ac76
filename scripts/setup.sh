#!/bin/sh
# setup.sh — installs what is missing on Debian 12 (as root) and builds ppl
# into ./build.  Sourced by quickstart.sh and test.sh; safe to run again.
set -eu
cd "$(dirname "$0")/.."

# Open MPI (libopenmpi-dev, openmpi-bin): -Dmpi=auto builds with it and the
# mpi suite runs mpirun (docs/scaling.md)
PKGS="gcc g++ flex bison meson ninja-build pkg-config libgc-dev llvm-19-dev libjansson-dev libopenblas-dev perl libopenmpi-dev openmpi-bin"
missing=
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  SUDO=
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

BUILD=${BUILD:-build}
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" --native-file native/llvm19.ini ${MESON_ARGS:-} >/dev/null
fi
ninja -C "$BUILD" >/dev/null
echo "built $BUILD/ppl"
