#!/usr/bin/env python3
"""Cross-process tests of `ocapn serve-testsuite` and `ocapn call` over
tcp-testing-only, testuds, unix-domain-socket and shm: the CLI contract
(output lines, exit statuses 0/1/2, graceful exit on SIGINT/SIGTERM).

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


NOBJECTS = 6  # the suite's five objects and our relay


def serve(args, stderr=subprocess.PIPE):
    p = subprocess.Popen([OCAPN, "serve-testsuite"] + args,
                         stdout=subprocess.PIPE, stderr=stderr, text=True)
    lines = {}
    loc = p.stdout.readline().split()
    assert loc and loc[0] == "LOCATOR", loc
    lines["LOCATOR"] = loc[1]
    for _ in range(NOBJECTS):
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

    uds_scenarios()
    shm_scenarios()

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def uds_scenarios():
    """Third-party handoffs among ocapn processes over the
    unix-domain-socket netlayer: B (ocapn call) gives A's object to C."""
    with tempfile.TemporaryDirectory() as d:
        intro = os.path.join(d, "intro.sock")
        srv = subprocess.Popen([OCAPN, "intro-server", "--quiet", intro],
                               stdout=subprocess.PIPE, text=True)
        key = srv.stdout.readline().split()
        check("intro-server prints its key", key and key[0] == "KEY")
        procs, trace = {}, {}
        for name in ("a", "c", "d"):
            trace[name] = open(os.path.join(d, name + ".trace"), "w+")
            procs[name] = serve(["--netlayer", "unix-domain-socket",
                                 "--intro-server", intro, "--trace"],
                                stderr=trace[name])
        a, c, dd = procs["a"][1], procs["c"][1], procs["d"][1]
        check("uds: LOCATOR has the introduction server hint",
              ".unix-domain-socket?" in a["LOCATOR"] and
              a["LOCATOR"].endswith("=t"))
        via = ["--intro-server", intro]

        def text(name):
            trace[name].flush()
            with open(trace[name].name) as f:
                return f.read()

        # handoff: C's relay calls A's echo, given by B
        rc, out, err = call(via + [c["relay"], "@" + a["echo-gc"],
                                   '"via a handoff"'])
        check("uds: handoff B->C of A's echo, answered",
              rc == 0 and out == '["via a handoff"]', f"{rc} {out} {err}")
        ta, tc = text("a"), text("c")
        check("uds: the gifter deposited at the exporter",
              "['deposit-gift :" in ta)
        check("uds: the receiver got a signed give",
              "<desc:sig-envelope <desc:handoff-give " in tc)
        check("uds: the receiver withdrew from the exporter",
              "['withdraw-gift <desc:sig-envelope <desc:handoff-receive " in tc
              and "['withdraw-gift " in ta)
        check("uds: the call was pipelined on the withdrawal's answer",
              '<op:deliver <desc:answer ' in tc.split("withdraw-gift", 1)[1])

        # same-peer shortcut: A's relay given A's echo: no handoff
        before = text("a").count("deposit-gift")
        rc, out, err = call(via + [a["relay"], "@" + a["echo-gc"], "'home"])
        check("uds: same-peer shortcut answered",
              rc == 0 and out == "['home]", f"{rc} {out} {err}")
        check("uds: same-peer shortcut made no gift",
              text("a").count("deposit-gift") == before)

        # chain of two handoffs: B gives D's relay and A's echo to C; C
        # gives A's echo on to D; D calls it
        rc, out, err = call(via + [c["relay"], "@" + dd["relay"],
                                   "@" + a["echo-gc"], '"chained"'])
        check("uds: chain of two handoffs answered",
              rc == 0 and out == '["chained"]', f"{rc} {out} {err}")
        tdd = text("d")
        check("uds: the second receiver withdrew from the exporter",
              "['withdraw-gift " in tdd)

        for name, (p, _) in procs.items():
            check(f"uds: server {name} exits 0 on SIGTERM",
                  stop(p, signal.SIGTERM) == 0)
            trace[name].close()
        check("intro-server exits 0 on SIGTERM",
              stop(srv, signal.SIGTERM) == 0)


def shm_scenarios():
    """shm: the URI alone tells `ocapn call` how to connect; each call
    listens in its own private temporary directory and removes it."""
    with tempfile.TemporaryDirectory() as d, \
            tempfile.TemporaryDirectory() as calltmp:
        os.chmod(d, 0o755)
        p = subprocess.run([OCAPN, "serve-testsuite", "--netlayer", "shm",
                            "--dir", d], capture_output=True, text=True,
                           timeout=20)
        check("shm: a directory others can enter is refused (exit 2)",
              p.returncode == 2 and "0700" in p.stderr,
              f"{p.returncode} {p.stderr}")
        os.chmod(d, 0o700)
        p, sref = serve(["--netlayer", "shm", "--dir", d])
        loc = sref["LOCATOR"]
        check("shm: LOCATOR names a key and the socket path",
              loc.startswith("ocapn://") and ".shm?path=" in loc and
              len(loc.split("//", 1)[1].split(".", 1)[0]) == 52 and
              "%2F" in loc, loc)
        socks = [f for f in os.listdir(d) if f.endswith(".sock")]
        check("shm: rendezvous socket in DIR", len(socks) == 1, str(socks))
        old = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = calltmp
        try:
            scenarios("shm", sref, [])
            # a larger argument (40 KiB; one argv string is at most
            # 128 KiB)
            big = ":" + "ab" * (40 << 10)
            rc, out, err = call([sref["echo-gc"], big])
            check("shm: 40 KiB bytestring echoed",
                  rc == 0 and out == "[" + big + "]", f"{rc} {err}")
            # a third-party handoff between two shm servers: C's relay
            # is given A's echo by the caller and dials A itself
            with tempfile.TemporaryDirectory() as d2:
                os.chmod(d2, 0o700)
                pc, cref = serve(["--netlayer", "shm", "--dir", d2])
                rc, out, err = call([cref["relay"], "@" + sref["echo-gc"],
                                     '"via a handoff"'])
                check("shm: handoff between two shm servers answered",
                      rc == 0 and out == '["via a handoff"]',
                      f"{rc} {out} {err}")
                check("shm: second server exits 0 on SIGTERM",
                      stop(pc, signal.SIGTERM) == 0)
            check("shm: calls removed their private directories",
                  os.listdir(calltmp) == [], str(os.listdir(calltmp)))
        finally:
            if old is None:
                del os.environ["TMPDIR"]
            else:
                os.environ["TMPDIR"] = old
        rc = stop(p, signal.SIGTERM)
        check("shm: SIGTERM exits 0", rc == 0, str(rc))
        check("shm: socket file removed", os.listdir(d) == [],
              str(os.listdir(d)))
        rc, out, err = call([sref["echo-gc"]])
        check("shm: refused connection exits 2", rc == 2 and out == "" and
              "cannot connect" in err, f"{rc} {out} {err}")


if __name__ == "__main__":
    sys.exit(main())
