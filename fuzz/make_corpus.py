#!/usr/bin/env python3
"""Regenerate the fuzz seed corpora under fuzz/corpus/ from tests/data.

usage: fuzz/make_corpus.py BUILD_DIR/tools/ocapn

  syrup_decode/  the zoo, every distinct message of the Goblins captures
                 (split with `ocapn syrup decode` + `ocapn syrup encode`),
                 and hand-written edge cases, valid and invalid
  notation/      the notation of the zoo and of every distinct message,
                 and hand-written samples of each notation form
  syrup_scan/    two control bytes (limits/chunking, seed) followed by a
                 whole capture stream, or by a hand-written stream

File names are a hash of the contents, so re-running is idempotent.
"""
import glob
import hashlib
import os
import struct
import subprocess
import sys

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
data = os.path.join(top, "tests", "data")
out = os.path.join(top, "fuzz", "corpus")


def put(target, blob):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(blob).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)


def run(ocapn, args, stdin):
    return subprocess.run([ocapn] + args, input=stdin, check=True,
                          stdout=subprocess.PIPE).stdout


def D(x):
    return b"D" + struct.pack(">d", x)


def F(x):
    return b"F" + struct.pack(">f", x)


SYRUP_EDGES = [
    b"t", b"f", b"0+", b"1-", b"9223372036854775807+",
    b"9223372036854775808-", b"9223372036854775808+",
    b"9223372036854775809-", b"18446744073709551615+",
    b"18446744073709551616+", b"18446744073709551616-",
    b"1" + b"0" * 80 + b"+", b"1" + b"0" * 80 + b"-",
    D(0.0), D(-0.0), D(float("inf")), D(float("-inf")), D(1.5),
    b"D\x7f\xf8\x00\x00\x00\x00\x00\x00",
    b"D\x7f\xf8\x00\x00\x00\x00\x00\x01",
    b"D\xff\xf8\x00\x00\x00\x00\x00\x00",
    F(1.5), F(-0.0), F(float("inf")), b"F\x7f\xc0\x00\x00",
    b"F\x7f\x80\x00\x01",
    b"0:", b'0"', b"0'", b"3:cat", b'6"bj\xc3\xb6rn', b"5'fetch",
    b'4"\xf0\x9f\x98\x80', b"[]", b"{}", b"#$", b"<0'>", b"<5'label1+t>",
    b"[[[[[[[[]]]]]]]]", b"{1'a1+1'b2+}", b"{0:f1:\x00t}",
    b"#1+2+3+$", b"#D" + struct.pack(">d", 1.0) + F(1.0) + b"$",
    b"{{}0+{1'a1+}1+}", b"#[]#$<0'>$",
    b" [ 1+ 2+ ] ", b"{ 1'a 1+ 1'b 2+ }", b"{[ 1+ ]f[2+]t}",
    b"\n\t\r t",
    # each rejection class
    b"01+", b"0-", b"00:", b"01:x", b"{1'b1+1'a1+}", b"{1'a1+1'a1+}",
    b"#2+1+$", b"#1+1+$", b'2"\xc3\x28', b'2"\xc0\x80', b'3"\xed\xa0\x80',
    b"3'\xed\xbf\xbf", b'4"\xf4\x90\x80\x80', b"99999999999999999999:",
    b"x", b"[}", b"<>", b"{1'a}", b"1+1+", b"]", b"1 +", b"1a",
    b"#D\x7f\xf8\x00\x00\x00\x00\x00\x00D\x7f\xf8\x00\x00\x00\x00\x00\x01$",
    b"{D\x7f\xf8\x00\x00\x00\x00\x00\x01t1+f}",
    b"[" * 65 + b"]" * 65, b"[" * 64 + b"]" * 64,
]

NOTATION_SAMPLES = [
    "t", "f", "0", "-1", "+3", "9223372036854775807",
    "-9223372036854775808", "18446744073709551616",
    "-18446744073709551617", "1" + "0" * 60,
    "1.5", "-0.0", "0.0", "1.0e300", "1e-300", "5e-324", "100.0",
    "123456789.125", "inf", "-inf", "+inf", "nan", "1.5f", "inff",
    "-inff", "nanf", "1.0e38f", "1.", ".5", "-.5",
    '"text \\" \\\\ \\n \\r \\t \\u{1F600} \\u{0}"', '"bj\u00f6rn"',
    '""', "'name", "'|any text|", "'|a\\|b|", "'t", "'f", "'inf",
    "'nan", "'op:deliver", "'alive?", ":cafe", ":", ":B0B5", "[a]",
    "[1 2 3]", "[]", "{}", "#{}", "{a: 1, b: 2}", '{"k": v}',
    "{'a: 10, 'b: 2}", "{a: 1,}", "{t: f}", "{[1]: 2, {}: 3}",
    "#{1 2 3}", "#{3 2 1}", "#{1 1}", "{a: 1, a: 2}", "<foo 1 2 3>",
    "<'foo 1 2 3>", '<"foo" 1 2 3>', "<t>", "<'t>", "<[1] 2>",
    "<op:deliver <desc:export 0> ['fetch] 0 f>", "[" * 40 + "]" * 40,
    "01", "1.5ff", ":abc", '"\\q"', '"\\u{D800}"', "'", "<>", "{a 1}",
    "#(", "bare", "[1 2", "'|open", "1e", "-", "1 2 3 'x \"y\"",
]

SCAN_STREAMS = [
    b"t", b"1+2+3+", b" [1+] {} #$ <1'a> ", b"3:abc4:defg", b"[[[[]]]]",
    b"[" * 5 + b"]" * 5, b"13:abc", b"x", b"[}", b"1+ ", b"12345678901234:",
    b"D\x00\x00\x00\x00\x00\x00\x00\x00F\x00\x00\x00\x00",
]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    ocapn = sys.argv[1]
    streams = [open(os.path.join(data, "syrup", "zoo.bin"), "rb").read()]
    streams += [open(p, "rb").read() for p in sorted(glob.glob(
        os.path.join(data, "goblins-captures", "*", "captp*.bin")))]
    for s in streams:
        text = run(ocapn, ["syrup", "decode"], s).decode()
        for line in text.splitlines():
            put("notation", line.encode())
            put("syrup_decode", run(ocapn, ["syrup", "encode"],
                                    line.encode()))
    for blob in SYRUP_EDGES:
        put("syrup_decode", blob)
    for text in NOTATION_SAMPLES:
        put("notation", text.encode())
    for i, s in enumerate(streams[1:]):
        put("syrup_scan", bytes([(i % 4) << 1, i]) + s)
    for i, s in enumerate(SCAN_STREAMS):
        for ctl in (0, 1, 2, 5, 6):
            put("syrup_scan", bytes([ctl, i]) + s)


main()
