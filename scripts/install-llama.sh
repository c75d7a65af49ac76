#!/bin/sh
# install-llama.sh — installs llama.cpp's libllama for the llama: language-model
# backend (stdlib/lm_llama.c), pinned: llama.cpp v0.5.0 as built into the npm
# package @node-llama-cpp/linux-x64@3.22.1 (x86-64 Linux, glibc).  ppl builds
# and runs without it; the llama tests skip when it is missing.
#
#   sh scripts/install-llama.sh [DEST]     DEST defaults to .llama/ in the repository
#
# `npm pack` fetches the package's tarball into a cache folder
# (${XDG_CACHE_HOME:-~/.cache}/ppl/npm, kept between runs), whose
# bins/linux-x64/ (libllama.v0.5.0.so, libggml*.so, ggml's CPU backends) is
# copied into DEST.  Installs npm with apt-get when it is missing and we are
# root.  Exits 0 with a message, having installed nothing, where npm cannot be
# had or the package cannot be fetched (offline): the tests then skip.
set -eu
cd "$(dirname "$0")/.."
PKG="@node-llama-cpp/linux-x64@3.22.1"
TGZ="node-llama-cpp-linux-x64-3.22.1.tgz"
DEST=${1:-.llama}
CACHE="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/ppl/npm"

if [ -f "$DEST/libllama.v0.5.0.so" ] && [ -f "$DEST/.installed-3.22.1" ]; then
  echo "install-llama: $DEST has libllama v0.5.0"
  exit 0
fi
case "$(uname -m)-$(uname -s)" in
  x86_64-Linux) ;;
  *) echo "install-llama: $PKG is for x86-64 Linux only; skipped"; exit 0 ;;
esac
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-llama: installing npm"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null; } ||
      { echo "install-llama: could not install npm; skipped"; exit 0; }
  else
    echo "install-llama: npm not found; skipped (the llama tests will skip)"
    exit 0
  fi
fi
mkdir -p "$CACHE"
if [ ! -f "$CACHE/$TGZ" ]; then
  (cd "$CACHE" && npm pack --silent "$PKG" >/dev/null 2>&1) ||
    { echo "install-llama: npm pack $PKG failed; skipped"; exit 0; }
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$CACHE/$TGZ" -C "$tmp"
mkdir -p "$DEST"
cp "$tmp"/package/bins/linux-x64/*.so "$DEST"/
cp "$tmp"/package/LICENSE "$DEST"/LICENSE.node-llama-cpp
touch "$DEST/.installed-3.22.1"
echo "install-llama: installed libllama v0.5.0 ($PKG) in $DEST"
