#!/bin/sh
# Build libocapn and run its demo (installs missing Debian packages first):
# a car factory served by one process and driven by another over CapTP.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh build
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null
exec build/examples/car-demo
