#!/usr/bin/env python3
"""Cross-process tests of `ocapn serve-testsuite` and `ocapn call` over
tcp-testing-only and testuds: the CLI contract (output lines, exit
statuses 0/1/2, graceful exit on SIGINT/SIGTERM).

usage: cli_net_test.py PATH-TO-ocapn
Prints one line per check and ends with "N passed, N failed".
"""
import os
import signal
import subprocess
import sys
import tempfile

OCAPN = sys.argv[1]
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok     {name}")
    else:
        failed += 1
        print(f"FAIL   {name} {detail}")


def serve(args):
    p = subprocess.Popen([OCAPN, "serve-testsuite"] + args,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    lines = {}
    loc = p.stdout.readline().split()
    assert loc[0] == "LOCATOR", loc
    lines["LOCATOR"] = loc[1]
    for _ in range(5):
        parts = p.stdout.readline().split()
        assert parts[0] == "SREF", parts
        lines[parts[1]] = parts[2]
    return p, lines


def call(args, timeout=20):
    r = subprocess.run([OCAPN, "call", "--timeout", "10"] + args,
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


def stop(p, sig):
    p.send_signal(sig)
    try:
        rc = p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    return rc


def scenarios(tag, sref, extra):
    rc, out, err = call(extra + [sref["echo-gc"], '"hello"', "42", "'sym",
                                 "{\"k\": [1 2]}", ":cafe"])
    check(f"{tag}: echo", rc == 0 and
          out == "[\"hello\" 42 'sym {\"k\": [1 2]} :cafe]", f"{rc} {out} {err}")
    rc, out, err = call(extra + [sref["car-factory-builder"]])
    check(f"{tag}: builder returns an object", rc == 0 and
          out == "<ref 'remote>", f"{rc} {out} {err}")
    rc, out, err = call(extra + [sref["promise-resolver"]])
    check(f"{tag}: promise-resolver", rc == 0 and
          out == "[<ref 'promise> <ref 'remote>]", f"{rc} {out} {err}")
    bad = sref["echo-gc"].replace("/s/", "/s/AAAA", 1)
    rc, out, err = call(extra + [bad])
    check(f"{tag}: unknown swiss is broken (exit 1)", rc == 1 and
          out.startswith("broken: "), f"{rc} {out} {err}")
    rc, out, err = call(extra + [sref["echo-gc"], "[1 2"])
    check(f"{tag}: bad argument notation exits 2", rc == 2 and out == "" and
          "argument 1" in err, f"{rc} {out} {err}")


def main():
    # tcp-testing-only
    p, sref = serve(["--netlayer", "tcp-testing-only", "--port", "0"])
    check("tcp: LOCATOR is a tcp-testing-only URI",
          ".tcp-testing-only?host=127.0.0.1&port=" in sref["LOCATOR"])
    scenarios("tcp", sref, [])
    rc, out, err = call(["ocapn://x.tcp-testing-only/s/%%%?host=1"])
    check("invalid URI exits 2", rc == 2 and "invalid sturdyref URI" in err,
          f"{rc} {err}")
    rc = stop(p, signal.SIGTERM)
    check("tcp: SIGTERM exits 0", rc == 0, str(rc))
    # nobody listening any more: a transport failure, exit 2
    rc, out, err = call([sref["echo-gc"]])
    check("refused connection exits 2", rc == 2 and out == "" and
          "cannot connect" in err, f"{rc} {out} {err}")

    # testuds
    with tempfile.TemporaryDirectory() as d:
        p, sref = serve(["--netlayer", "testuds", "--dir", d,
                         "--name", "suitepeer"])
        check("testuds: LOCATOR", sref["LOCATOR"] ==
              "ocapn://suitepeer.testuds")
        check("testuds: socket file", os.path.exists(
            os.path.join(d, "suitepeer.sock")))
        scenarios("testuds", sref, ["--testuds-dir", d])
        rc, out, err = call([sref["echo-gc"]])
        check("testuds without --testuds-dir exits 2", rc == 2 and
              "--testuds-dir" in err, f"{rc} {err}")
        rc = stop(p, signal.SIGINT)
        check("testuds: SIGINT exits 0", rc == 0, str(rc))
        check("testuds: socket file removed", not os.path.exists(
            os.path.join(d, "suitepeer.sock")))

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
