#!/bin/sh
# Instructions per operation on one shape of bench_syrup (default (a),
# the 86-byte op:deliver), for libocapn, the minimal codec and msgpack-c,
# counted by callgrind: a measure that does not depend on the machine's
# noise.
# usage: bench/callgrind.sh [BUILD_DIR [a|b|c]]     (default: build a)
set -eu
build=${1:-build}
shape=${2:-a}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
  "$build/bench/bench_syrup" --callgrind "$shape" >"$tmp/ops" 2>"$tmp/log"
iters=$(awk -F': ' 'NR == 1 { split($2, a, " "); print a[1] }' "$tmp/ops")
echo "instructions per operation, shape ($shape), $iters iterations each:"
callgrind_annotate --inclusive=yes "$tmp/cg.out" 2>/dev/null |
  awk -v n="$iters" '
    /[:](decode|encode)_(ocapn|minimal|msgpack_next|msgpack_zone|msgpack)[ ]/ {
      count = $1; gsub(",", "", count)
      name = $0; sub(/.*:/, "", name); sub(/ .*/, "", name)
      printf "  %-22s %8.0f\n", name, count / n
    }' | sort -u
