#!/bin/sh
# Build libocapn and run its demo (installs missing Debian packages first).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh build
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null
exec build/examples/syrup-demo
