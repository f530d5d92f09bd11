#!/bin/sh
# Run the whole libocapn test suite from a fresh clone:
#   1. install missing Debian packages (scripts/deps.sh test)
#   2. build and run every test (meson test)
#   3. rebuild with AddressSanitizer + UndefinedBehaviorSanitizer, run again
#   4. build the libFuzzer targets with clang and run each briefly
# The last line is "N passed, N failed" over all stages; the exit status is
# non-zero if anything failed.
set -u
cd "$(dirname "$0")/.."
top=$(pwd)

scripts/deps.sh test || exit 1

total_pass=0
total_fail=0
status=0

# count_log BUILD_DIR: add that build's meson test results to the totals
count_log() {
  set -- $(python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, sys
ok = bad = 0
try:
    for line in open(sys.argv[1]):
        r = json.loads(line)
        if r.get("result") in ("OK", "EXPECTEDFAIL"):
            ok += 1
        elif r.get("result") == "SKIP":
            pass
        else:
            bad += 1
except FileNotFoundError:
    pass
print(ok, bad)
PY
)
  total_pass=$((total_pass + $1))
  total_fail=$((total_fail + $2))
}

stage() { printf '\n==== %s ====\n' "$*"; }

run_meson() { # DIR [meson setup options...]
  dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null || { echo "meson setup $dir failed"; return 1; }
  fi
  # the build's output is kept; its warnings are shown
  if ! meson compile -C "$dir" >"$dir/compile.log" 2>&1; then
    cat "$dir/compile.log"; return 1
  fi
  grep -A4 'warning:' "$dir/compile.log" || true
  meson test -C "$dir" --print-errorlogs --num-processes 2
}

stage "build and test (build/)"
run_meson build || status=1
count_log build

stage "AddressSanitizer + UndefinedBehaviorSanitizer (build-san/)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_meson build-san -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=debug || status=1
count_log build-san

stage "libFuzzer smoke runs (build-fuzz/)"
if command -v clang >/dev/null 2>&1; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  CC=clang run_meson build-fuzz -Dfuzzing=true -Dtests=false \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=debugoptimized || status=1
  count_log build-fuzz
else
  echo "skipped: clang is not installed, so the fuzz targets cannot be built"
fi

echo
if [ "$status" -ne 0 ] || [ "$total_fail" -ne 0 ]; then
  echo "some stage failed; see the logs in build*/meson-logs/"
  status=1
fi
echo "$total_pass passed, $total_fail failed"
exit $status
