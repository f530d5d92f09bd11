#!/bin/sh
# run_fuzz.sh FUZZER WORK_DIR SEED_DIR [libFuzzer options...]
# Runs a libFuzzer target over SEED_DIR, writing new inputs and any crash
# artifact under WORK_DIR (created if missing), so the checked-in seeds
# are read but never modified.
set -eu
exe=$1
work=$2
seeds=$3
shift 3
mkdir -p "$work/corpus"
exec "$exe" -print_final_stats=1 -artifact_prefix="$work/" "$@" \
  "$work/corpus" "$seeds"
