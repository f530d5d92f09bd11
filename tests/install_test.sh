#!/bin/sh
# The library as its users get it: `meson install` into a scratch root,
# then a program built only from the installed headers, pkg-config file
# and shared library, the way a downstream project builds.
#   1. examples/greeter.c (C11, -Wall -Wextra -pedantic -Werror) compiled
#      with `pkg-config --cflags --libs libocapn`, run, answer checked;
#   2. the public headers in C++ (if g++ is installed);
#   3. the installed `ocapn --version`.
# usage: install_test.sh BUILD_DIR SOURCE_DIR
# Prints one line per check and ends with "N passed, N failed".
set -u
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok     $1"; }
bad() { fail=$((fail + 1)); echo "FAIL   $1"; cat "$tmp/log"; }

if meson install -C "$build" --no-rebuild --destdir "$tmp/root" \
    >"$tmp/log" 2>&1; then
  ok "meson install"
else
  bad "meson install"
  echo "$pass passed, $fail failed"
  exit 1
fi

pc=$(find "$tmp/root" -name libocapn.pc | head -n 1)
export PKG_CONFIG_PATH="$(dirname "$pc")"
export PKG_CONFIG_SYSROOT_DIR="$tmp/root"
# pkgconf applies the sysroot to variables too; pkg-config does not
libdir=$(pkg-config --variable=libdir libocapn)
case $libdir in "$tmp/root"/*) ;; *) libdir="$tmp/root$libdir" ;; esac
bindir=$(dirname "$(find "$tmp/root" -name ocapn -type f | head -n 1)")

: >"$tmp/log"
# shellcheck disable=SC2046
if cc -std=c11 -Wall -Wextra -pedantic -Werror \
    $(pkg-config --cflags libocapn) "$src/examples/greeter.c" \
    $(pkg-config --libs libocapn) -o "$tmp/greeter" >"$tmp/log" 2>&1; then
  ok "greeter.c builds from the installed headers and pkg-config"
else
  bad "greeter.c builds from the installed headers and pkg-config"
fi
: >"$tmp/log"
if [ -x "$tmp/greeter" ] &&
    LD_LIBRARY_PATH="$libdir" timeout 30 "$tmp/greeter" >"$tmp/log" 2>&1 &&
    grep -q '^answer: Hello, world!$' "$tmp/log"; then
  ok "greeter runs against the installed library"
else
  bad "greeter runs against the installed library"
fi
: >"$tmp/log"
if [ -x "$tmp/greeter" ] && LD_LIBRARY_PATH="$libdir" ldd "$tmp/greeter" |
    grep -q "$libdir/libocapn.so.0"; then
  ok "greeter uses the installed libocapn.so.0"
else
  bad "greeter uses the installed libocapn.so.0"
fi

if command -v c++ >/dev/null 2>&1; then
  printf '#include <ocapn/ocapn.h>\nint main() { return ocapn_version()[0] == 0; }\n' \
    >"$tmp/t.cc"
  # shellcheck disable=SC2046
  if c++ -std=c++11 -Wall -Wextra -pedantic -Werror \
      $(pkg-config --cflags libocapn) "$tmp/t.cc" \
      $(pkg-config --libs libocapn) -o "$tmp/cxx" >"$tmp/log" 2>&1 &&
      LD_LIBRARY_PATH="$libdir" "$tmp/cxx"; then
    ok "the headers compile and link as C++"
  else
    bad "the headers compile and link as C++"
  fi
else
  echo "skip   C++ check: no C++ compiler installed"
fi

: >"$tmp/log"
if LD_LIBRARY_PATH="$libdir" "$bindir/ocapn" --version >"$tmp/log" 2>&1 &&
    grep -q "$(pkg-config --modversion libocapn)" "$tmp/log"; then
  ok "installed ocapn --version matches the pkg-config version"
else
  bad "installed ocapn --version matches the pkg-config version"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
