#!/usr/bin/env python3
"""libocapn from Python through ctypes (standard library only).

A small, honest binding of the C API: it declares the prototypes it uses,
mirrors the two public structs a binding needs (ocapn_value, 16 bytes, and
ocapn_buffer), and turns C callbacks into Python calls.  docs/ffi.md gives
the rules every binding follows; this file is the worked example.

usage:
  ocapn_ctypes.py [--lib PATH] version
  ocapn_ctypes.py [--lib PATH] syrup FILE
      decode a stream of Syrup values through the library, print one
      notation line per value, and re-encode each with the writer built
      from the accessors (checks it is byte-identical)
  ocapn_ctypes.py [--lib PATH] cars URI
      URI: the car-factory-builder sturdyref of `ocapn serve-testsuite`
      (tcp-testing-only).  Pipelines builder <- (), factory <- (['red
      'zoomracer]), car <- () and prints the car's answer.
  ocapn_ctypes.py [--lib PATH] cars-polled URI
      the same, with the runtime's loop driven from Python's select()
      instead of ocapn_runtime_run()
  ocapn_ctypes.py [--lib PATH] greet URI
      URI: the greeter sturdyref.  Passes a Python object to the remote
      greeter, which calls it back with "Hello".

PATH defaults to $OCAPN_LIB, then "libocapn.so.0".  Exit status 0 on
success, 1 on failure (with a message on stderr).
"""
import ctypes as C
import os
import select
import sys

# ---- the ABI ----------------------------------------------------------

# ocapn_kind (syrup.h)
BOOL, INT, FLOAT64, FLOAT32, BYTES, STRING, SYMBOL, LIST, DICT, SET, \
    RECORD, REF = range(1, 13)
OK, E_INCOMPLETE = 0, 3
WRITE_FLOAT32 = 0x01  # OCAPN_SYRUP_WRITE_FLOAT32: keep `F` floats `F`


class Value(C.Structure):
    """struct ocapn_value: kind, flags, reserved, len, 8-byte union.
    Read it through the accessor functions; build it with the setters."""
    _fields_ = [("kind", C.c_uint8), ("flags", C.c_uint8),
                ("reserved_", C.c_uint16), ("len", C.c_uint32),
                ("u", C.c_uint64)]


class Buffer(C.Structure):
    """struct ocapn_buffer: data, len, cap (freed by the library)."""
    _fields_ = [("data", C.POINTER(C.c_uint8)), ("len", C.c_size_t),
                ("cap", C.c_size_t)]


assert C.sizeof(Value) == 16 and C.sizeof(Buffer) == 3 * C.sizeof(C.c_void_p)

VP = C.c_void_p
PV = C.POINTER(Value)
SETTLED_FN = C.CFUNCTYPE(None, VP, C.c_bool, PV, VP)
METHOD_FN = C.CFUNCTYPE(C.c_int, VP, VP, PV, VP, VP)
DONE_FN = C.CFUNCTYPE(None, VP)

PROTOS = {
    "ocapn_version": (C.c_char_p, []),
    "ocapn_strerror": (C.c_char_p, [C.c_int]),
    "ocapn_err_name": (C.c_char_p, [C.c_int]),
    "ocapn_buffer_init": (None, [C.POINTER(Buffer)]),
    "ocapn_buffer_release": (None, [C.POINTER(Buffer), VP]),
    "ocapn_arena_new": (VP, [VP]),
    "ocapn_arena_free": (None, [VP]),
    "ocapn_arena_reset": (None, [VP]),
    "ocapn_syrup_decoder_new": (VP, [C.c_uint, VP]),
    "ocapn_syrup_decoder_free": (None, [VP]),
    "ocapn_syrup_decode": (C.c_int, [VP, VP, VP, C.c_size_t,
                                     C.POINTER(PV), C.POINTER(C.c_size_t)]),
    "ocapn_syrup_decoder_error": (C.c_char_p,
                                  [VP, C.POINTER(C.c_size_t)]),
    "ocapn_syrup_writer_new": (VP, [C.c_uint, VP]),
    "ocapn_syrup_writer_free": (None, [VP]),
    "ocapn_syrup_writer_reset": (None, [VP]),
    "ocapn_syrup_write_value": (C.c_int, [VP, PV]),
    "ocapn_syrup_writer_finish": (C.c_int, [VP, C.POINTER(VP),
                                            C.POINTER(C.c_size_t)]),
    "ocapn_notation_print": (C.c_int, [PV, C.c_uint, C.POINTER(Buffer),
                                       VP]),
    "ocapn_value_kind": (C.c_int, [PV]),
    "ocapn_value_count": (C.c_size_t, [PV]),
    "ocapn_value_item": (PV, [PV, C.c_size_t]),
    "ocapn_record_label": (PV, [PV]),
    "ocapn_dict_key": (PV, [PV, C.c_size_t]),
    "ocapn_dict_val": (PV, [PV, C.c_size_t]),
    "ocapn_value_get_bool": (C.c_int, [PV, C.POINTER(C.c_bool)]),
    "ocapn_value_get_int64": (C.c_int, [PV, C.POINTER(C.c_int64)]),
    "ocapn_value_get_int_text": (C.c_int, [PV, C.c_char_p, C.c_size_t,
                                           C.POINTER(C.c_size_t)]),
    "ocapn_value_get_float64": (C.c_int, [PV, C.POINTER(C.c_double)]),
    "ocapn_value_get_float32": (C.c_int, [PV, C.POINTER(C.c_float)]),
    "ocapn_value_get_data": (C.c_int, [PV, C.POINTER(C.c_void_p),
                                       C.POINTER(C.c_size_t)]),
    "ocapn_value_set_bool": (None, [PV, C.c_bool]),
    "ocapn_value_set_int": (None, [PV, C.c_int64]),
    "ocapn_value_set_int_text": (C.c_int, [PV, VP, C.c_char_p,
                                           C.c_size_t]),
    "ocapn_value_set_float64": (None, [PV, C.c_double]),
    "ocapn_value_set_float32": (None, [PV, C.c_float]),
    "ocapn_value_set_bytes": (None, [PV, C.c_char_p, C.c_size_t]),
    "ocapn_value_set_string": (None, [PV, C.c_char_p, C.c_size_t]),
    "ocapn_value_set_symbol": (None, [PV, C.c_char_p, C.c_size_t]),
    "ocapn_value_set_list": (None, [PV, PV, C.c_size_t]),
    "ocapn_value_set_set": (None, [PV, PV, C.c_size_t]),
    "ocapn_value_set_dict": (None, [PV, PV, C.c_size_t]),
    "ocapn_value_set_record": (None, [PV, PV, C.c_size_t]),
    "ocapn_value_set_ref": (None, [PV, VP]),
    "ocapn_runtime_new": (C.c_int, [VP, VP, VP, C.POINTER(VP)]),
    "ocapn_runtime_free": (None, [VP]),
    "ocapn_runtime_loop": (VP, [VP]),
    "ocapn_runtime_vat": (VP, [VP]),
    "ocapn_runtime_add_netlayer": (C.c_int, [VP, VP]),
    "ocapn_runtime_run": (C.c_int, [VP]),
    "ocapn_runtime_close": (None, [VP, DONE_FN, VP]),
    "ocapn_runtime_enliven_uri": (C.c_int, [VP, C.c_char_p, C.c_size_t,
                                            C.POINTER(VP)]),
    "ocapn_tcp_netlayer_new": (C.c_int, [VP, C.c_char_p, C.c_uint,
                                         C.c_char_p, VP, C.POINTER(VP)]),
    "ocapn_vat_spawn": (C.c_int, [VP, METHOD_FN, VP, VP, C.POINTER(VP)]),
    "ocapn_ref_release": (None, [VP]),
    "ocapn_send": (C.c_int, [VP, PV, C.POINTER(VP)]),
    "ocapn_when": (C.c_int, [VP, SETTLED_FN, VP]),
    "ocapn_resolve": (C.c_int, [VP, PV]),
}


def load(path=None):
    path = path or os.environ.get("OCAPN_LIB") or "libocapn.so.0"
    lib = C.CDLL(path)
    for name, (res, args) in PROTOS.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    return lib


class OcapnError(Exception):
    pass


def check(lib, rc, what):
    if rc != OK:
        raise OcapnError(f"{what}: {lib.ocapn_strerror(rc).decode()} "
                         f"({lib.ocapn_err_name(rc).decode()})")


def notation(lib, v):
    b = Buffer()
    lib.ocapn_buffer_init(C.byref(b))
    try:
        check(lib, lib.ocapn_notation_print(v, 0, C.byref(b), None),
              "notation")
        return C.string_at(b.data, b.len).decode("utf-8")
    finally:
        lib.ocapn_buffer_release(C.byref(b), None)


# ---- Syrup: a value tree in Python and back -----------------------------

def to_python(lib, v):
    """A decoded value as Python data: every kind, read with accessors."""
    k = lib.ocapn_value_kind(v)
    if k == BOOL:
        b = C.c_bool()
        check(lib, lib.ocapn_value_get_bool(v, C.byref(b)), "bool")
        return ("bool", b.value)
    if k == INT:
        i = C.c_int64()
        if lib.ocapn_value_get_int64(v, C.byref(i)) == OK:
            return ("int", i.value)
        n = C.c_size_t()
        buf = C.create_string_buffer(v.contents.len + 2)
        check(lib, lib.ocapn_value_get_int_text(v, buf, len(buf),
                                                C.byref(n)), "int text")
        return ("int", int(buf.value.decode()))
    if k == FLOAT64:
        d = C.c_double()
        check(lib, lib.ocapn_value_get_float64(v, C.byref(d)), "float64")
        return ("float64", d.value)
    if k == FLOAT32:
        f = C.c_float()
        check(lib, lib.ocapn_value_get_float32(v, C.byref(f)), "float32")
        return ("float32", f.value)
    if k in (BYTES, STRING, SYMBOL):
        p, n = C.c_void_p(), C.c_size_t()
        check(lib, lib.ocapn_value_get_data(v, C.byref(p), C.byref(n)),
              "data")
        data = C.string_at(p, n.value) if n.value else b""
        name = {BYTES: "bytes", STRING: "string", SYMBOL: "symbol"}[k]
        return (name, data if k == BYTES else data.decode("utf-8"))
    if k in (LIST, SET):
        n = lib.ocapn_value_count(v)
        items = [to_python(lib, lib.ocapn_value_item(v, i))
                 for i in range(n)]
        return ("list" if k == LIST else "set", items)
    if k == DICT:
        n = lib.ocapn_value_count(v)
        return ("dict", [(to_python(lib, lib.ocapn_dict_key(v, i)),
                          to_python(lib, lib.ocapn_dict_val(v, i)))
                         for i in range(n)])
    if k == RECORD:
        n = lib.ocapn_value_count(v)
        return ("record", to_python(lib, lib.ocapn_record_label(v)),
                [to_python(lib, lib.ocapn_value_item(v, i))
                 for i in range(n)])
    raise OcapnError(f"unexpected kind {k}")


class Builder:
    """Builds C values from Python data; keeps every buffer alive for as
    long as the builder lives (the setters store pointers, no copy)."""

    def __init__(self, lib, arena):
        self.lib, self.arena, self.keep = lib, arena, []

    def build(self, t, out):
        lib, kind = self.lib, t[0]
        if kind == "bool":
            lib.ocapn_value_set_bool(out, t[1])
        elif kind == "int":
            if -2**63 <= t[1] < 2**63:
                lib.ocapn_value_set_int(out, t[1])
            else:
                s = str(t[1]).encode()
                check(lib, lib.ocapn_value_set_int_text(out, self.arena, s,
                                                        len(s)), "int")
        elif kind == "float64":
            lib.ocapn_value_set_float64(out, t[1])
        elif kind == "float32":
            lib.ocapn_value_set_float32(out, t[1])
        elif kind in ("bytes", "string", "symbol"):
            data = t[1] if kind == "bytes" else t[1].encode("utf-8")
            self.keep.append(data)
            setter = {"bytes": lib.ocapn_value_set_bytes,
                      "string": lib.ocapn_value_set_string,
                      "symbol": lib.ocapn_value_set_symbol}[kind]
            setter(out, data, len(data))
        elif kind in ("list", "set"):
            arr = self.array(t[1])
            (lib.ocapn_value_set_list if kind == "list"
             else lib.ocapn_value_set_set)(out, arr, len(t[1]))
        elif kind == "dict":
            flat = [x for pair in t[1] for x in pair]
            lib.ocapn_value_set_dict(out, self.array(flat), len(t[1]))
        elif kind == "record":
            arr = self.array([t[1]] + t[2])
            lib.ocapn_value_set_record(out, arr, 1 + len(t[2]))
        elif kind == "ref":
            lib.ocapn_value_set_ref(out, t[1])
        else:
            raise OcapnError(f"cannot build {kind}")

    def array(self, items):
        arr = (Value * max(len(items), 1))()
        self.keep.append(arr)
        for i, t in enumerate(items):
            self.build(t, C.pointer(arr[i]))
        return arr

    def value(self, t):
        v = Value()
        self.keep.append(v)
        self.build(t, C.pointer(v))
        return C.pointer(v)


def syrup(lib, data):
    """Decode every value of `data`, print it, rebuild it from Python data
    and check the canonical encoding equals the input bytes."""
    dec = lib.ocapn_syrup_decoder_new(0, None)
    arena = lib.ocapn_arena_new(None)
    w = lib.ocapn_syrup_writer_new(WRITE_FLOAT32, None)
    if not dec or not arena or not w:
        raise OcapnError("out of memory")
    buf = C.create_string_buffer(data, len(data))
    try:
        off, count = 0, 0
        while off < len(data):
            out, used = PV(), C.c_size_t()
            rc = lib.ocapn_syrup_decode(dec, arena, C.addressof(buf) + off,
                                        len(data) - off, C.byref(out),
                                        C.byref(used))
            if rc == E_INCOMPLETE and not data[off:].strip():
                break
            if rc != OK:
                at = C.c_size_t()
                why = lib.ocapn_syrup_decoder_error(dec, C.byref(at))
                raise OcapnError(f"offset {off + at.value}: "
                                 f"{why.decode()}")
            tree = to_python(lib, out)
            print(notation(lib, out))
            lib.ocapn_syrup_writer_reset(w)
            builder = Builder(lib, arena)
            lib.ocapn_syrup_write_value(w, builder.value(tree))
            p, n = VP(), C.c_size_t()
            check(lib, lib.ocapn_syrup_writer_finish(w, C.byref(p),
                                                     C.byref(n)), "write")
            again = C.string_at(p, n.value)
            start = off + (len(data[off:]) - len(data[off:].lstrip()))
            if again != data[start:off + used.value]:
                raise OcapnError(f"value {count} does not re-encode "
                                 "byte-identically")
            off += used.value
            count += 1
            lib.ocapn_arena_reset(arena)
        return count
    finally:
        lib.ocapn_syrup_writer_free(w)
        lib.ocapn_arena_free(arena)
        lib.ocapn_syrup_decoder_free(dec)


# ---- CapTP: a runtime on its own loop -----------------------------------

class Runtime:
    """A runtime with its own libuv loop, a tcp-testing-only netlayer and
    its vat.  Callbacks run on the thread that calls run()."""

    def __init__(self, lib):
        self.lib = lib
        self.rt = VP()
        check(lib, lib.ocapn_runtime_new(None, None, None,
                                         C.byref(self.rt)), "runtime")
        nl = VP()
        check(lib, lib.ocapn_tcp_netlayer_new(
            lib.ocapn_runtime_loop(self.rt), b"127.0.0.1", 0, None, None,
            C.byref(nl)), "netlayer")
        check(lib, lib.ocapn_runtime_add_netlayer(self.rt, nl), "netlayer")
        self.vat = lib.ocapn_runtime_vat(self.rt)
        self.refs = []       # released in free()
        self.callbacks = []  # ctypes thunks must outlive their use
        self.closing = False

    def enliven(self, uri):
        r = VP()
        u = uri.encode()
        check(self.lib, self.lib.ocapn_runtime_enliven_uri(
            self.rt, u, len(u), C.byref(r)), "enliven")
        self.refs.append(r)
        return r

    def send(self, target, args_tree, builder):
        res = VP()
        check(self.lib, self.lib.ocapn_send(
            target, builder.value(("list", args_tree)), C.byref(res)),
            "send")
        self.refs.append(res)
        return res

    def when(self, ref, fn):
        """fn(fulfilled, value pointer) in a later turn."""
        thunk = SETTLED_FN(lambda vat, ok, v, user: fn(ok, v))
        self.callbacks.append(thunk)
        check(self.lib, self.lib.ocapn_when(ref, thunk, None), "when")

    def spawn(self, fn):
        """A local object; fn(args pointer, resolver) -> int."""
        thunk = METHOD_FN(lambda vat, me, args, res, user: fn(args, res))
        self.callbacks.append(thunk)
        r = VP()
        check(self.lib, self.lib.ocapn_vat_spawn(self.vat, thunk, None,
                                                  None, C.byref(r)),
              "spawn")
        self.refs.append(r)
        return r

    def close(self):
        if not self.closing:
            self.closing = True
            self.lib.ocapn_runtime_close(self.rt, DONE_FN(0), None)

    def run(self):
        return self.lib.ocapn_runtime_run(self.rt)

    def run_polled(self):
        """Drive the runtime's libuv loop from a host event loop (here
        select()): wait on the loop's backend descriptor for as long as
        libuv asks, then run one non-blocking iteration, until the loop
        has nothing left to do.  This is how a runtime lives inside
        another language's event loop."""
        uv = C.CDLL("libuv.so.1")
        uv.uv_backend_fd.restype = C.c_int
        uv.uv_backend_fd.argtypes = [VP]
        uv.uv_backend_timeout.restype = C.c_int
        uv.uv_backend_timeout.argtypes = [VP]
        uv.uv_run.restype = C.c_int
        uv.uv_run.argtypes = [VP, C.c_int]
        loop = self.lib.ocapn_runtime_loop(self.rt)
        fd = uv.uv_backend_fd(loop)
        UV_RUN_NOWAIT = 2
        while uv.uv_run(loop, UV_RUN_NOWAIT):
            ms = uv.uv_backend_timeout(loop)
            select.select([fd], [], [], None if ms < 0 else ms / 1000)
            self.iterations = getattr(self, "iterations", 0) + 1

    def free(self):
        for r in self.refs:
            self.lib.ocapn_ref_release(r)
        self.refs = []
        self.lib.ocapn_runtime_free(self.rt)


def cars(lib, uri, polled=False):
    rt = Runtime(lib)
    b = Builder(lib, None)
    out = {}
    builder = rt.enliven(uri)
    factory = rt.send(builder, [], b)
    spec = ("list", [("symbol", "red"), ("symbol", "zoomracer")])
    car = rt.send(factory, [spec], b)
    vroom = rt.send(car, [], b)

    def settled(ok, v):
        out["ok"], out["text"] = ok, notation(lib, v)
        rt.close()
    rt.when(vroom, settled)
    if polled:
        rt.run_polled()
    else:
        rt.run()
    rt.free()
    if not out.get("ok"):
        raise OcapnError(f"broken: {out.get('text')}")
    print(out["text"])
    if polled:
        sys.stderr.write(f"{rt.iterations} host-loop iterations\n")


def greet(lib, uri):
    rt = Runtime(lib)
    b = Builder(lib, None)
    heard, answer = [], {}

    def friend(args, resolver):
        heard.append(notation(lib, args))
        if resolver:
            check(lib, lib.ocapn_resolve(
                resolver, Builder(lib, None).value(("string", "hi"))),
                "resolve")
        if answer:
            rt.close()
        return OK

    def answered(ok, v):
        answer["ok"], answer["text"] = ok, notation(lib, v)
        if heard or not ok:
            rt.close()
    me = rt.spawn(friend)
    greeter = rt.enliven(uri)
    rt.when(rt.send(greeter, [("ref", me)], b), answered)
    rt.run()
    rt.free()
    if not answer.get("ok"):
        raise OcapnError(f"broken: {answer.get('text')}")
    if not heard:
        raise OcapnError("the greeter never called back")
    print("called back with", heard[0])


def main(argv):
    lib_path = None
    if len(argv) > 2 and argv[1] == "--lib":
        lib_path, argv = argv[2], [argv[0]] + argv[3:]
    if len(argv) < 2 or argv[1] not in ("version", "syrup", "cars",
                                        "cars-polled", "greet") or \
            (argv[1] != "version" and len(argv) != 3):
        sys.stderr.write(__doc__)
        return 2
    lib = load(lib_path)
    try:
        if argv[1] == "version":
            print(lib.ocapn_version().decode())
        elif argv[1] == "syrup":
            with open(argv[2], "rb") as f:
                n = syrup(lib, f.read())
            sys.stderr.write(f"{n} values re-encoded byte-identically\n")
        elif argv[1] in ("cars", "cars-polled"):
            cars(lib, argv[2], argv[1] == "cars-polled")
        else:
            greet(lib, argv[2])
    except (OcapnError, OSError, UnicodeDecodeError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
