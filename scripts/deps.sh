#!/bin/sh
# Install the Debian packages libocapn needs, only those that are missing.
# Usage: scripts/deps.sh [build|test|bench]   (default: build)
# Idempotent: when everything is present it runs no apt-get at all.
set -eu

build_pkgs="gcc libc6-dev meson ninja-build pkg-config libuv1-dev libsodium-dev"
test_pkgs="libcmocka-dev clang libclang-rt-14-dev python3 locales"
bench_pkgs="libmsgpack-dev libcapnp-dev capnproto valgrind g++"

want="$build_pkgs"
case "${1:-build}" in
  build) ;;
  test) want="$want $test_pkgs" ;;
  bench) want="$want $test_pkgs $bench_pkgs" ;;
  *) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

echo "Installing missing Debian packages:$missing"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "error: need root or sudo to install:$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
