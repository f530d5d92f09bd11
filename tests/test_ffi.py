#!/usr/bin/env python3
"""libocapn through a foreign-function interface: runs the ctypes example
(examples/python/ocapn_ctypes.py) against the shared library just built.

usage: test_ffi.py EXAMPLE LIBOCAPN OCAPN-CLI DATA-DIR
Prints one line per check and ends with "N passed, N failed".

Checks: the version; every Syrup test vector and Goblins capture stream
decoded, walked and rebuilt from Python data, byte-identical; bad input
reported with its offset; a pipelined call chain (run by the library, and
again driven from a Python select() loop) and a callback into a Python
object, against `ocapn serve-testsuite` in another process.
"""
import glob
import os
import subprocess
import sys

EXAMPLE, LIB, OCAPN, DATA = sys.argv[1:5]
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok     {name}")
    else:
        failed += 1
        print(f"FAIL   {name} {detail}")


def example(*args, timeout=30):
    r = subprocess.run([sys.executable, EXAMPLE, "--lib", LIB] +
                       list(args), capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


rc, out, err = example("version")
cli = subprocess.run([OCAPN, "--version"], capture_output=True, text=True)
check("version", rc == 0 and out.strip() != "" and
      out.strip() in cli.stdout, f"{out!r} {cli.stdout!r} {err}")

# ---- Syrup through the accessors and setters ---------------------------
streams = [os.path.join(DATA, "syrup", "zoo.bin")] + sorted(
    glob.glob(os.path.join(DATA, "goblins-captures", "*", "captp*.bin")))
check("found the vectors", len(streams) > 10, str(len(streams)))
for path in streams:
    rc, out, err = example("syrup", path)
    cli = subprocess.run([OCAPN, "syrup", "decode", path],
                         capture_output=True, text=True)
    name = os.path.relpath(path, DATA)
    check(f"syrup {name}", rc == 0 and "byte-identically" in err and
          out == cli.stdout, err.strip())

tmp = os.environ.get("TMPDIR", "/tmp")
cases = {
    "edges": (b"", 0),
    "bad type byte": (b"i1e07:abc", 1),
    "truncated": (b"5:abc", 1),
}
edges = subprocess.run(
    [OCAPN, "syrup", "encode"], capture_output=True,
    input=b'[1208925819614629174706176 -1208925819614629174706176 1.5f '
          b'nanf -0.0 inf "\\u{e9}" #{} {} <\'r> :00ff]')
cases["edges"] = (edges.stdout, 0)
for name, (data, want) in cases.items():
    path = os.path.join(tmp, f"ocapn-ffi-{os.getpid()}.bin")
    with open(path, "wb") as f:
        f.write(data)
    rc, out, err = example("syrup", path)
    os.unlink(path)
    ok = rc == want
    if want == 0:
        ok = ok and "1 values re-encoded" in err
    else:
        ok = ok and out == "" and "offset" in err
    check(f"syrup {name}", ok and edges.returncode == 0,
          f"rc={rc} {err.strip()}")

# ---- CapTP against another process -------------------------------------
srv = subprocess.Popen([OCAPN, "serve-testsuite", "--netlayer",
                        "tcp-testing-only", "--port", "0"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       text=True)
try:
    srefs = {}
    line = srv.stdout.readline()
    while line.startswith("LOCATOR") or line.startswith("SREF"):
        parts = line.split()
        if parts[0] == "SREF":
            srefs[parts[1]] = parts[2]
        if "relay" in srefs:
            break
        line = srv.stdout.readline()
    rc, out, err = example("cars", srefs["car-factory-builder"])
    check("pipelined car chain", rc == 0 and
          out.strip() == '"Vroom! I am a red zoomracer car!"', err)
    rc, out, err = example("cars-polled", srefs["car-factory-builder"])
    check("the same, the loop driven by select() in Python", rc == 0 and
          out.strip() == '"Vroom! I am a red zoomracer car!"' and
          "host-loop iterations" in err, err)
    rc, out, err = example("greet", srefs["greeter"])
    check("callback into a Python object", rc == 0 and
          out.strip() == 'called back with ["Hello"]', err)
    bad = srefs["greeter"].replace("/s/", "/s/AAAA")
    rc, out, err = example("greet", bad)
    check("unknown swiss number is an error", rc == 1 and "error" in err,
          f"rc={rc} {err}")
finally:
    srv.terminate()
    srv.wait(timeout=15)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
