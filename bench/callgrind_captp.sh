#!/bin/sh
# Instruction counts of the CapTP engine per echo round trip, next to the
# raw Syrup codec on the same wire messages, with valgrind's callgrind.
# Unlike wall-clock times these are stable from run to run.
#
# Usage: bench/callgrind_captp.sh [BUILD_DIR] [N]
#   BUILD_DIR  a build with bench/bench_captp (default: build-rel)
#   N          round trips (and chains) per measurement (default: 5000)
#
# Each figure comes from its own valgrind run of `bench_captp --callgrind
# WHAT N`, counting only the instructions executed inside one measuring
# function (--toggle-collect), so set-up and warm-up are excluded.
set -eu
cd "$(dirname "$0")/.."
build=${1:-build-rel}
n=${2:-5000}
exe="$build/bench/bench_captp"
if [ ! -x "$exe" ]; then
	echo "error: $exe not found (build it first: ninja -C $build)" >&2
	exit 2
fi
if ! command -v valgrind >/dev/null 2>&1; then
	echo "error: valgrind is not installed (scripts/deps.sh bench)" >&2
	exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# count WHAT FUNCTION: instructions inside FUNCTION for `--callgrind WHAT`
count() {
	valgrind --tool=callgrind --callgrind-out-file="$tmp/$1.out" \
	    --toggle-collect="$2" "$exe" --callgrind "$1" "$n" \
	    >/dev/null 2>"$tmp/$1.log" || {
		cat "$tmp/$1.log" >&2
		exit 1
	}
	sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$tmp/$1.out"
}

engine=$(count engine measure_engine)
codec=$(count codec measure_codec)
codec_all=$(count codec-all measure_codec)
pipeline=$(count pipeline measure_pipeline)

awk -v n="$n" -v e="$engine" -v c="$codec" -v a="$codec_all" \
    -v p="$pipeline" 'BEGIN {
	printf "callgrind instruction counts (%d round trips each)\n", n
	printf "  %-40s %10.0f\n", "echo round trip (engine, both sides)", e / n
	printf "  %-40s %10.0f\n", "codec: deliver + fulfil", c / n
	printf "  %-40s %10.0f\n", "codec: every message of the trip", a / n
	printf "  %-40s %10.2fx\n", "engine / codec (deliver + fulfil)", e / c
	printf "  %-40s %10.2fx\n", "engine / codec (every message)", e / a
	printf "  %-40s %10.0f\n", "depth-3 pipelined chain", p / n
	printf "  %-40s %10.2fx\n", "pipelined chain / echo round trip", p / e
}'
