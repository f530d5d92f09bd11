#!/usr/bin/env python3
"""Tests of the `ocapn` command-line tool.

usage: test_cli.py OCAPN_BINARY TEST_DATA_DIR

Checks `ocapn syrup decode` and `ocapn syrup encode` on the zoo and every
Goblins capture stream (byte-identical round trips), the exact notation of
the zoo, malformed inputs (exit status 1, the offset and the reason on
standard error, nothing on standard output), and --help / --version.
Prints one line per check and "N passed, N failed"; exits non-zero on any
failure.
"""
import glob
import os
import re
import subprocess
import sys

ocapn = sys.argv[1]
data = sys.argv[2]
passed = failed = 0


def run(args, stdin=b""):
    p = subprocess.run([ocapn] + args, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stdout, p.stderr


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + name)
    else:
        failed += 1
        print("FAIL " + name + (": " + detail if detail else ""))


ZOO_TEXT = (
    "<:7a6f6f \"The Grand Menagerie\" ["
    "{'age: 12, 'eats: #{:66697368 :6d696365 :6b6962626c65}, "
    "'name: \"Tabatha\", 'alive?: t, 'weight: 8.2, 'species: :636174} "
    "{'age: 6, 'eats: #{:62616e616e6173 :696e7365637473}, "
    "'name: \"George\", 'alive?: f, 'weight: 17.24, "
    "'species: :6d6f6e6b6579} "
    "{'age: -12, 'eats: #{}, 'name: \"Casper\", 'alive?: f, "
    "'weight: -34.5, 'species: :67686f7374}]>\n")


def test_help_version():
    rc, out, err = run(["--help"])
    check("--help", rc == 0 and out.startswith(b"usage: ocapn")
          and b"syrup decode" in out and err == b"")
    rc, out, err = run(["--version"])
    check("--version", rc == 0 and
          re.fullmatch(rb"ocapn \d+\.\d+\.\d+\n", out) is not None, repr(out))
    rc, out, err = run(["syrup", "--help"])
    check("syrup --help", rc == 0 and b"ocapn syrup encode" in out
          and b"offset" in out)
    rc, out, err = run(["syrup", "decode", "--help"])
    check("syrup decode --help", rc == 0 and b"ocapn syrup decode" in out)
    rc, out, err = run([])
    check("no arguments: usage on stderr, status 2",
          rc == 2 and out == b"" and b"usage" in err)
    rc, out, err = run(["syrup"])
    check("syrup without subcommand: status 2",
          rc == 2 and out == b"" and b"usage" in err)
    rc, out, err = run(["frobnicate"])
    check("unknown command: status 2",
          rc == 2 and out == b"" and b"frobnicate" in err)
    rc, out, err = run(["syrup", "frobnicate"])
    check("unknown subcommand: status 2", rc == 2 and out == b"")
    rc, out, err = run(["syrup", "decode", "a", "b"])
    check("too many arguments: status 2", rc == 2 and out == b"")


def test_zoo():
    path = os.path.join(data, "syrup", "zoo.bin")
    raw = open(path, "rb").read()
    rc, out, err = run(["syrup", "decode", path])
    check("decode zoo: readable notation",
          rc == 0 and out.decode() == ZOO_TEXT and err == b"", repr(out))
    rc, out2, err = run(["syrup", "decode", "-"], raw)
    check("decode zoo from stdin ('-')", rc == 0 and out2 == out)
    rc, out3, err = run(["syrup", "decode"], raw)
    check("decode zoo from stdin (no file)", rc == 0 and out3 == out)
    rc, back, err = run(["syrup", "encode"], out)
    check("encode(decode(zoo)) is byte-identical", rc == 0 and back == raw)


def test_captures():
    files = sorted(glob.glob(os.path.join(data, "goblins-captures", "*",
                                          "captp*.bin")))
    check("24 capture streams found", len(files) == 24, str(len(files)))
    total = 0
    for f in files:
        raw = open(f, "rb").read()
        name = os.path.relpath(f, data)
        rc, text, err = run(["syrup", "decode", f])
        ok = rc == 0 and err == b"" and text.endswith(b"\n")
        lines = text.count(b"\n")
        total += lines
        rc2, back, err2 = run(["syrup", "encode", "-"], text)
        check("round trip " + name + " (%d values)" % lines,
              ok and rc2 == 0 and back == raw,
              err.decode(errors="replace") + err2.decode(errors="replace"))
    check("more than 100 messages in the captures", total > 100, str(total))


def test_readme_examples():
    rc, out, err = run(["syrup", "decode"],
                       b"<10'op:deliver<11'desc:export1+>[5'drive]0+f>")
    check("README decode example",
          rc == 0 and out == b"<op:deliver <desc:export 1> ['drive] 0 f>\n")
    rc, out, err = run(["syrup", "encode"], b"{'b: 2, 'a: 1}\n")
    check("README encode example", rc == 0 and out == b"{1'a1+1'b2+}")


def test_streams_and_whitespace():
    rc, out, err = run(["syrup", "decode"], b" t\n1+ [] \n")
    check("decode: whitespace between values",
          rc == 0 and out == b"t\n1\n[]\n")
    rc, out, err = run(["syrup", "encode"], b"t 1\n[]\n  ")
    check("encode: a sequence of values", rc == 0 and out == b"t1+[]")
    rc, out, err = run(["syrup", "decode"], b"")
    check("decode: empty input", rc == 0 and out == b"" and err == b"")
    rc, out, err = run(["syrup", "encode"], b"\n")
    check("encode: blank input", rc == 0 and out == b"" and err == b"")
    rc, out, err = run(["syrup", "encode"], b"[1.5f nan 100.0]")
    check("encode: float32 stays F",
          rc == 0 and out == b"[F\x3f\xc0\x00\x00D\x7f\xf8\x00\x00\x00\x00"
          b"\x00\x00D\x40\x59\x00\x00\x00\x00\x00\x00]", repr(out))


# (input, offset, reason): offsets count from the start of the input,
# across the values before the bad one.
BAD_SYRUP = [
    (b"01+", 0, "integer with a leading zero"),
    (b"0-", 0, "negative zero"),
    (b"x", 0, "unknown type byte"),
    (b"1+2+x", 4, "unknown type byte"),
    (b"t f 0-", 4, "negative zero"),
    (b"[1+", 3, "input ends inside a value"),
    (b"3:ab", 4, "input ends inside a value"),
    (b"{1'b1+1'a1+}", 6, "dict keys not in canonical order"),
    (b"t{1'a1+1'a1+}", 7, "duplicate dict key"),
    (b"#2+1+$", 3, "set items not in canonical order"),
    (b"2\"\xc3\x28", 2, "invalid UTF-8 or surrogate in string"),
    (b"3'\xed\xa0\x80", 2, "invalid UTF-8 or surrogate in symbol"),
    (b"[}", 1, "closing byte does not match"),
    (b"<>", 1, "record without a label"),
    (b"{1'a}", 4, "dict key without a value"),
    (b"99999999999999999999999:", 0, "length exceeds the atom limit"),
    (b"[" * 65, 64, "nesting deeper than the depth limit"),
]

BAD_NOTATION = [
    (b"[1 2", 0, "unterminated container"),
    (b"t [1 2", 2, "unterminated container"),
    (b"{a: 1, a: 2}", 0, "duplicate dict key"),
    (b"'|x", 1, "unterminated quoted text"),
    (b"\"\\q\"", 1, "unknown escape"),
    (b"t bare", 2, "bare name"),
    (b"01", 0, "leading zero"),
    (b":abc", 0, "odd number of hex digits"),
    (b"\"\xff\"", 1, "invalid UTF-8"),
]


def test_malformed():
    for blob, off, why in BAD_SYRUP:
        rc, out, err = run(["syrup", "decode"], blob)
        e = err.decode(errors="replace")
        check("decode rejects %r at %d" % (blob[:24], off),
              rc == 1 and out == b"" and ("offset %d:" % off) in e
              and why in e and e.count("\n") == 1, repr(e))
    for blob, off, why in BAD_NOTATION:
        rc, out, err = run(["syrup", "encode"], blob)
        e = err.decode(errors="replace")
        check("encode rejects %r at %d" % (blob, off),
              rc == 1 and out == b"" and ("offset %d:" % off) in e
              and why in e and e.count("\n") == 1, repr(e))
    # Nothing partial: good values before the bad one are not printed.
    zoo = open(os.path.join(data, "syrup", "zoo.bin"), "rb").read()
    rc, out, err = run(["syrup", "decode"], zoo + b"x")
    check("decode: nothing on stdout after good values", rc == 1
          and out == b"" and ("offset %d:" % len(zoo)).encode() in err)
    rc, out, err = run(["syrup", "encode"], ZOO_TEXT.encode() + b" ?")
    check("encode: nothing on stdout after good values",
          rc == 1 and out == b"")
    rc, out, err = run(["syrup", "decode", "/nonexistent/file.bin"])
    check("missing file: status 1, named on stderr", rc == 1 and out == b""
          and b"/nonexistent/file.bin" in err)


test_help_version()
test_zoo()
test_captures()
test_readme_examples()
test_streams_and_whitespace()
test_malformed()
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
