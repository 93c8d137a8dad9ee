"""Untrusted files: the restricted parameter loader (``fastconv.params_io``) and the IDX
reader (``fastconv.datasets``) against crafted files, and a fuzz test over mutated copies
of the real files in ``../shared/data``.

Every crafted file must be refused with a ValueError naming it (UnsafePickleError, a
ValueError, for a pickle that names a global it has no use for) or, where it is valid,
loaded: nothing it names runs (each payload would create a marker file), nothing crashes,
and no allocation is larger than the file could justify (measured with tracemalloc, which
sees NumPy's buffers too). The loads run in child processes (``python
tests/test_untrusted.py ...``), so that a crash or a hang is a failed test naming the file,
not the death of pytest.
"""
import gzip
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
#: Peak allocation allowed for loading a crafted file of s bytes: ``ALLOWANCE[loader] * s +
#: SLACK[loader]``. A pickle builds at most one Python object (under 128 bytes) per byte
#: of opcodes; an IDX file or an .npz is read into a few copies of itself, by chunks of
#: 1 MiB; detect_kind reads at most the size of the test images, 7,840,016 bytes.
ALLOWANCE = {"params": 128, "idx": 4, "mnist": 4, "detect": 4}
SLACK = {"params": 3 * 2**20, "idx": 3 * 2**20, "mnist": 3 * 2**20, "detect": 4 * 7840016}


# --------------------------------------------------------------------------- the children


def _summary(obj):
    """What a loader returned, for the parent: arrays as (dtype, shape), dicts by key."""
    if isinstance(obj, np.ndarray):
        return [obj.dtype.str, list(obj.shape), bool(obj.dtype.hasobject)]
    if isinstance(obj, dict):
        return {str(k): _summary(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return [_summary(v) for v in obj]
    return repr(obj)[:80]


def _loaders():
    from fastconv import datasets, params_io

    return {
        "params": params_io.load_params,
        "idx": datasets.read_idx,
        "mnist": lambda p: datasets.load_mnist(p, download=False),
        "detect": datasets.detect_kind,
    }


def _load_jobs(jobs_file):
    """Child: load each job's file, printing START before and DONE (outcome, message,
    peak bytes allocated, seconds, float64 dtype still plain) after."""
    import copyreg

    jobs = json.loads(Path(jobs_file).read_text())
    loaders = _loaders()
    tracemalloc.start()
    for job in jobs:
        print("START", json.dumps(job["id"]), flush=True)
        if job.get("ext"):
            copyreg.add_extension(*job["ext"])
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        try:
            value = loaders[job["loader"]](job["path"])
        except Exception as exc:  # every outcome is reported to the parent
            outcome = [c.__name__ for c in type(exc).__mro__]
            message, value = str(exc), None
        else:
            outcome, message = ["returned"], ""
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] - base
        result = dict(id=job["id"], outcome=outcome, message=message[:2000], peak=peak,
                      seconds=seconds, value=_summary(value),
                      float64_plain=not np.dtype(np.float64).hasobject)
        del value
        if job.get("ext"):
            copyreg.remove_extension(*job["ext"])
        print("DONE", json.dumps(result), flush=True)


def _mutations(data, rng, kind):
    """Yield ``(description, mutated bytes)`` of ``data`` (the file as stored) for ``kind``
    'gz' (a gzip IDX file) or 'pkl'."""
    raw = gzip.decompress(data) if kind == "gz" else None
    ops = []
    if kind == "pkl":
        import pickletools

        ops = [pos for _, _, pos in pickletools.genops(data)]
    while True:
        choice = rng.integers(6)
        out = bytearray(data)
        if choice == 0:
            k = int(rng.integers(1, 9))
            where = rng.integers(0, len(out), k)
            for i in where:
                out[i] ^= int(rng.integers(1, 256))
            yield f"flip {k} bytes at {sorted(int(i) for i in where)}", bytes(out)
        elif choice == 1:
            n = int(rng.integers(0, len(out)))
            yield f"truncate to {n}", bytes(out[:n])
        elif choice == 2:
            extra = rng.bytes(int(rng.integers(1, 64)))
            yield f"append {len(extra)} bytes", bytes(out) + extra
        elif choice == 3 and kind == "pkl":
            # an opcode or the bytes of its argument
            pos = int(ops[rng.integers(len(ops))]) + int(rng.integers(0, 4))
            value = int(rng.integers(256))
            out[min(pos, len(out) - 1)] = value
            yield f"opcode byte {pos} := {value}", bytes(out)
        elif choice in (3, 4, 5) and kind == "gz":
            # the IDX header inside the compressed stream (magic, type code, ndim, dims)
            # or the first pixels or labels after it
            edited = bytearray(raw)
            pos = int(rng.integers(0, 32))
            value = int(rng.choice([0, 1, 0x7F, 0x80, 0xFF, int(rng.integers(256))]))
            edited[pos] = value
            if choice == 5:
                yield f"raw IDX, header byte {pos} := {value}", bytes(edited)
            else:
                yield (f"header byte {pos} := {value}, recompressed",
                       gzip.compress(bytes(edited), compresslevel=1))
        elif kind == "pkl":
            n = int(rng.integers(0, len(out)))
            yield f"delete byte {n}", bytes(out[:n] + out[n + 1:])


def _fuzz(source, kind, loader, seed, count, workdir):
    """Child: load ``count`` mutations of ``source``, printing START/DONE lines."""
    data = Path(source).read_bytes()
    rng = np.random.default_rng(seed)
    load = _loaders()[loader]
    target = Path(workdir) / ("mutant.gz" if kind == "gz" else "mutant.pkl")
    mutations = _mutations(data, rng, kind)
    for i in range(count):
        description, mutated = next(mutations)
        target.write_bytes(mutated)
        print("START", json.dumps(f"{i}: {description}"), flush=True)
        try:
            load(target)
        except Exception as exc:  # every outcome is reported to the parent
            outcome, message = [c.__name__ for c in type(exc).__mro__], str(exc)
        else:
            outcome, message = ["returned"], ""
        print("DONE", json.dumps(dict(id=f"{i}: {description}", outcome=outcome,
                                      message=message[:500])), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "jobs":
        _load_jobs(sys.argv[2])
    else:
        _fuzz(*sys.argv[2:5], int(sys.argv[5]), int(sys.argv[6]), sys.argv[7])
    sys.exit(0)


# --------------------------------------------------------------------------- the parent

import pytest  # noqa: E402

from _support import shared_data_path  # noqa: E402


def run_child(args, timeout):
    """Run this file as a child; ``(results by id, crash or None, id being loaded when it
    ended)``."""
    try:
        proc = subprocess.run([sys.executable, str(HERE), *args], capture_output=True,
                              text=True, timeout=timeout, cwd=HERE.parents[1])
        stdout, code, stderr = proc.stdout, proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        code, stderr = f"a timeout after {timeout} s", ""
    results, running = {}, None
    for line in stdout.splitlines():
        tag, _, payload = line.partition(" ")
        if tag == "START":
            running = json.loads(payload)
        elif tag == "DONE":
            result = json.loads(payload)
            results[result["id"]] = result
            running = None
    crash = None
    if code != 0:
        crash = f"the child ended with {code} while loading {running!r}; stderr:\n{stderr[-3000:]}"
    return results, crash, running


def run_jobs(jobs, jobs_file, timeout=60):
    """Load ``jobs`` in a child, and again in a fresh one after each job that crashes or
    hangs it; ``(results by id, crash message by id)``."""
    results, crashes = {}, {}
    while jobs:
        jobs_file.write_text(json.dumps(jobs))
        got, crash, running = run_child(["jobs", str(jobs_file)], timeout)
        results.update(got)
        if crash is None:
            break
        crashes[running] = crash
        ids = [job["id"] for job in jobs]
        if running not in ids:  # died between two jobs: nothing left to attribute
            break
        jobs = jobs[ids.index(running) + 1:]
    return results, crashes


# --------------------------------------------------------------------------- crafted pickles


def G(module, name):
    """GLOBAL opcode (protocols 0-3)."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def U(text):
    """BINUNICODE."""
    return b"X" + struct.pack("<I", len(text.encode())) + text.encode()


def B(data):
    """BINBYTES."""
    return b"B" + struct.pack("<I", len(data)) + data


def SG(module, name):
    """STACK_GLOBAL (protocol 4)."""
    return U(module) + U(name) + b"\x93"


P3, P4 = b"\x80\x03", b"\x80\x04"
NDARRAY = G("numpy", "ndarray")
RECONSTRUCT = G("numpy.core.multiarray", "_reconstruct")


def dict_of(key, value_ops):
    """A protocol-3 pickle of ``{key: <value built by value_ops>}``."""
    return P3 + b"}" + U(key) + value_ops + b"s."


def dtype_ops(spec, state=b"(K\x03" + U("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t",
              copy=True):
    """NumPy's pickle of ``dtype(spec)``: REDUCE, then BUILD with ``state``."""
    return G("numpy", "dtype") + U(spec) + b"\x89" + (b"\x88" if copy else b"\x89") + b"\x87R" \
        + state + b"b"


def array_ops(shape_ops, dtype, data_ops):
    """NumPy's pickle of an array: ``_reconstruct(ndarray, (0,), b'b')``, BUILD
    ``(1, shape, dtype, False, data)``."""
    return (RECONSTRUCT + NDARRAY + b"K\x00\x85" + B(b"b") + b"\x87R"
            + b"(K\x01" + shape_ops + dtype + b"\x89" + data_ops + b"tb")


def _int_ops(n):
    return b"\x8a\x08" + n.to_bytes(8, "little", signed=True)  # LONG1


class _Reduce:
    """Pickles as ``fn(*args)``."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _hostile_objects(marker):
    """Objects whose unpickling creates ``marker``, each through another callable."""
    import builtins
    import subprocess as sp

    touch = f"touch {marker}"
    write = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": _Reduce(os.system, touch),
        "builtins.eval": _Reduce(builtins.eval, write),
        "builtins.exec": _Reduce(builtins.exec, write),
        "subprocess.call": _Reduce(sp.call, ["touch", str(marker)]),
        "builtins.__import__": _Reduce(builtins.__import__, "os"),
        "builtins.getattr": _Reduce(builtins.getattr, _Reduce(builtins.__import__, "os"),
                                    "system"),
        "in a dict of arrays": {"W1": np.ones(3), "b1": _Reduce(os.system, touch)},
        "nested deep in a list": {"W1": [[[[_Reduce(builtins.eval, write)]]]]},
    }


def crafted_pickles(directory, marker):
    """``{name: (bytes, expected exception name, regex the message must match)}``."""
    cases = {}
    for name, obj in _hostile_objects(marker).items():
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            cases[f"{name}, protocol {protocol}"] = (
                pickle.dumps(obj, protocol=protocol), "UnsafePickleError", "refused to load")
    touch = f"touch {marker}"
    unsafe = "UnsafePickleError"
    cases.update({
        "GLOBAL os system + REDUCE": (
            b"(" + G("os", "system") + b"S'" + touch.encode() + b"'\ntR.", unsafe, "os.system"),
        "INST os system": (b"(S'" + touch.encode() + b"'\nios\nsystem\n.", unsafe, "os.system"),
        "STACK_GLOBAL posix system": (
            P4 + SG("posix", "system") + U(touch) + b"\x85R.", unsafe, "posix.system"),
        "OBJ subprocess.Popen": (
            P3 + b"(" + G("subprocess", "Popen") + b"]" + U("touch") + b"a" + U(str(marker))
            + b"ao.", unsafe, "subprocess.Popen"),
        "NEWOBJ of a class from STACK_GLOBAL": (
            P4 + SG("builtins", "object") + b")\x81.", unsafe, "builtins.object"),
        "EXT1, code unregistered": (P3 + b"\x82\xf0" + U(touch) + b"\x85R.", unsafe, "extension"),
        "EXT1, os.system registered as 240": (
            P3 + b"\x82\xf0" + U(touch) + b"\x85R.", unsafe, "extension"),
        "persistent id": (P3 + U("ext") + b"Q.", unsafe, "persistent id"),
        # the allowed NumPy names, called as NumPy's pickles never do
        "ndarray((2**33,)) called": (
            dict_of("W", NDARRAY + b"(" + _int_ops(2**33) + b"\x85tR"), "ValueError",
            "calls numpy.ndarray"),
        "_reconstruct with shape (2**33,)": (
            dict_of("W", RECONSTRUCT + NDARRAY + _int_ops(2**33) + b"\x85" + B(b"b")
                    + b"\x87R"), "ValueError", "_reconstruct"),
        "object dtype with a short list": (
            dict_of("W", array_ops(b"M\xe8\x03\x85", dtype_ops("O"), b"(K\x01K\x02l")),
            "ValueError", "holds Python objects"),
        "array of shape (2**33,) with 8 bytes": (
            dict_of("W", array_ops(_int_ops(2**33) + b"\x85", dtype_ops("f8"), B(bytes(8)))),
            "ValueError", "needs 68719476736 bytes"),
        "dtype flagged as holding objects": (
            dict_of("W", array_ops(b"K\x04\x85", dtype_ops(
                "f8", b"(K\x03" + U("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x3ft"),
                B(b"\x41" * 32))), "returned", ""),
        "BUILD on the float64 singleton": (
            dict_of("W", dtype_ops("f8", b"(K\x03" + U("<")
                                   + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x3ft", copy=False)),
            "ValueError", "is a dtype, not a NumPy array"),
        "structured dtype": (
            dict_of("W", array_ops(b"K\x01\x85", dtype_ops("V8"), B(bytes(8)))),
            "ValueError", "plain numeric"),
        "dtype from a nested list": (
            dict_of("W", G("numpy", "dtype") + (b"]" + U("a")) * 2000 + U("f8")
                    + b"\x86a" * 2000 + b"\x85R"), "ValueError", "given as a list"),
        "_frombuffer of a list": (
            dict_of("W", G("numpy._core.numeric", "_frombuffer") + b"(]" + dtype_ops("f8")
                    + b"K\x00\x85" + U("C") + b"tR"), "ValueError", "not bytes"),
        "BUILD on the ndarray name": (
            dict_of("W", NDARRAY + b"}" + U("x") + b"K\x01sb"), "ValueError",
            "sets the state of a _NdarrayName"),
        "BUILD setting a stand-in's __defaults__": (
            dict_of("W", G("numpy", "dtype") + b"N}" + U("__defaults__") + b"K\x01K\x02\x86s"
                    + b"\x86b"), "ValueError", "sets the state of a function"),
        # the C unpickler grew its memo to twice this index (1.6 GB)
        "memo index 10**8": (P3 + b"}r" + struct.pack("<I", 10**8) + b".", "returned", ""),
        "BINBYTES8 claiming 2**40 bytes": (
            P4 + b"\x8e" + (2**40).to_bytes(8, "little") + b"abc.", "ValueError",
            "not a valid pickle"),
        "a list nested 10**6 deep": (
            dict_of("W", b"]" * 10**6 + b"a" * (10**6 - 1)), "ValueError", "is a list"),
        "a tuple key nested 10**5 deep": (
            P3 + b"}" + b")" + b"\x85" * 10**5 + b"K\x01s.", "ValueError", "is a tuple"),
        # a tuple's hash is not cached: 10 references per level, 50 levels
        "a key of 10**50 shared leaves": (
            P3 + b"})q\x000" + b"".join(b"(" + (b"h" + bytes([i])) * 10 + b"tq" + bytes([i + 1])
                                        + b"0" for i in range(50)) + b"h\x32K\x01s.",
            "ValueError", "a dict key or set item is a tuple"),
        "a frozenset of 10**50 shared leaves": (
            P4 + b"})q\x000" + b"".join(b"(" + (b"h" + bytes([i])) * 10 + b"tq" + bytes([i + 1])
                                        + b"0" for i in range(50)) + U("W") + b"(h\x32\x91s.",
            "ValueError", "a dict key or set item is a tuple"),
        "10**6 MARKs": (P3 + b"(" * 10**6 + b".", "ValueError", "not a valid"),
        "out-of-band buffer": (b"\x80\x05\x97.", "ValueError", "not a valid"),
    })
    return cases


# --------------------------------------------------------------------------- crafted IDX


def idx(dims, code=0x08, data=b""):
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + data


def gz_bomb(header, gib):
    """A gzip file: ``header`` then ``gib`` GiB of zeros, as 16 MiB members (~16 kB each)."""
    member = gzip.compress(bytes(1 << 24), compresslevel=9)
    return gzip.compress(header) + member * (64 * gib)


@lru_cache(maxsize=None)
def crafted_idx():
    """``{name: (bytes, file name, loader, expected outcome, regex)}``."""
    labels = idx((10000,), data=bytes(10000))
    gz = lambda b: gzip.compress(b, compresslevel=1)  # noqa: E731
    cases = {
        "empty file": (b"", "f.idx", "ValueError", "too short"),
        "truncated data": (idx((10000, 28, 28), data=bytes(100)), "f.idx", "ValueError",
                           "truncated"),
        "truncated data, gz": (gz(idx((10, 28, 28), data=bytes(100))), "f.gz", "ValueError",
                               "truncated"),
        "trailing bytes": (labels + b"junk", "f.idx", "ValueError", "trailing bytes"),
        "trailing bytes, gz": (gz(labels + b"junk"), "f.gz", "ValueError", "trailing bytes"),
        "truncated header": (idx((5, 5, 5))[:10], "f.idx", "ValueError", "truncated IDX header"),
        "dims of 2**32-1": (idx((2**32 - 1,) * 3, data=bytes(16)), "f.idx", "ValueError",
                            "size mismatch"),
        "dims of 2**32-1, gz": (gz(idx((2**32 - 1,) * 3, data=bytes(16))), "f.gz", "ValueError",
                                "more than a"),
        "float64 dims beyond int64": (idx((2**32 - 1,) * 8, code=0x0E), "f.idx", "ValueError",
                                      "size mismatch"),
        "255 dimensions of 1": (idx((1,) * 255, data=b"\x01"), "f.idx", "ValueError",
                                "cannot hold shape"),
        "nonzero first byte": (b"\x01" + idx((1,), data=b"\x00")[1:], "f.idx", "ValueError",
                               "magic"),
        "type code 0x0A": (idx((1,), code=0x0A, data=b"\x00"), "f.idx", "ValueError", "magic"),
        "type code 0xFF": (idx((1,), code=0xFF, data=b"\x00"), "f.idx", "ValueError", "magic"),
        "0 dimensions": (idx((), data=b"\x00"), "f.idx", "ValueError", "magic"),
        "a gzip file inside a gzip file": (gz(gz(labels)), "f.gz", "ValueError", "magic"),
        "gzip with a bad CRC": (gz(labels)[:-8] + b"\x00" * 4 + gz(labels)[-4:], "f.gz",
                                "ValueError", "not a valid gzip"),
        "gzip cut short": (gz(labels)[:20], "f.gz", "ValueError", "not a valid gzip"),
        "gzip: a second member corrupt": (gz(labels[:8]) + gz(labels[8:])[:-6] + b"\xff" * 6,
                                          "f.gz", "ValueError", "not a valid gzip"),
        "0 x 2**32-1 images": (idx((0, 2**32 - 1)), "f.idx", "returned", ""),
    }
    # gzip bombs: GiBs of zeros behind a header that declares little, or too much
    bomb = gz_bomb(idx((10000,)), 4)
    cases["gzip bomb, 4 GiB after a 10000-byte header"] = (
        bomb, "f.gz", "ValueError", "trailing bytes")
    cases["gzip bomb, sniffed without .gz"] = (bomb, "f.idx", "ValueError", "trailing bytes")
    cases["gzip bomb, 1 GiB, header declaring 2**32-1 bytes"] = (
        gz_bomb(idx((2**32 - 1,)), 1), "f.gz", "ValueError", "deflate expands at most")
    return {name: (data, file_name, "idx", outcome, regex)
            for name, (data, file_name, outcome, regex) in cases.items()}


# --------------------------------------------------------------------------- crafted npz


def _npy(shape, descr="<f8", data=b"", version=(1, 0)):
    buf = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    if version == (1, 0):
        np.lib.format.write_array_header_1_0(buf, header)
    else:
        np.lib.format.write_array_header_2_0(buf, header)
    return buf.getvalue() + data


def _zip(members, compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _patch_sizes(blob, file_size):
    """Rewrite the uncompressed size of every member in the central directory."""
    out = bytearray(blob)
    at = out.find(b"PK\x01\x02")
    while at != -1:
        out[at + 24:at + 28] = struct.pack("<I", file_size)
        at = out.find(b"PK\x01\x02", at + 4)
    return bytes(out)


@lru_cache(maxsize=None)
def crafted_npz():
    """``{name: (bytes, file name, loader, expected outcome, regex)}``."""
    deflated_lie = _zip({"W.npy": _npy((2**28,), data=bytes(64))}, zipfile.ZIP_DEFLATED)
    v3 = _npy((2,), data=bytes(16)).replace(b"\x93NUMPY\x01\x00", b"\x93NUMPY\x03\x00", 1)
    header_bomb = b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**30) + b"{" + b" " * 100
    cases = {
        "npy header declaring 2**32 float64": (
            _zip({"W.npy": _npy((2**32,), data=bytes(64))}), "ValueError", "declares shape"),
        "same, deflated": (
            _zip({"W.npy": _npy((2**32,), data=bytes(64))}, zipfile.ZIP_DEFLATED),
            "ValueError", "declares shape"),
        "directory claiming 2 GiB for a deflated member": (
            _patch_sizes(deflated_lie, 2**31 + 128), "ValueError", "declares shape"),
        "bzip2 member": (_zip({"W.npy": _npy((2,), data=bytes(16))}, zipfile.ZIP_BZIP2),
                         "ValueError", "compression method"),
        "a member that is not .npy": (_zip({"readme.txt": b"hello"}), "ValueError",
                                      "not a valid .npz"),
        ".npy format 3.0": (_zip({"W.npy": v3}), "ValueError", "format 3.0"),
        "npy header of 1 GiB": (_zip({"W.npy": header_bomb}), "ValueError", "not a valid .npz"),
        "object array": (_zip({"W.npy": _npy((1,), "|O", b"\x80\x04N.")}), "ValueError",
                         "not a valid .npz"),
        "structured dtype": (_zip({"W.npy": _npy((1,), [("a", "<f8")], bytes(8))}),
                             "ValueError", "plain numeric"),
    }
    return {f".npz: {name}": (data, "p.npz", "params", outcome, regex)
            for name, (data, outcome, regex) in cases.items()}


# --------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    """Write every crafted file, load them all in one child; ``{name: (case, result)}``."""
    directory = tmp_path_factory.mktemp("crafted")
    marker = directory / "PAYLOAD-RAN"
    cases = {}
    for name, (data, outcome, regex) in crafted_pickles(directory, marker).items():
        cases[name] = (data, "p.pkl", "params", outcome, regex)
    cases.update(crafted_idx())
    cases.update(crafted_npz())
    jobs = []
    for i, (name, (data, file_name, loader, _, _)) in enumerate(cases.items()):
        path = directory / f"{i:03d}" / file_name
        path.parent.mkdir()
        path.write_bytes(data)
        job = dict(id=name, loader=loader, path=str(path))
        if name == "EXT1, os.system registered as 240":
            job["ext"] = ["os", "system", 240]
        jobs.append(job)
    # the bomb again, through load_mnist and detect_kind
    bomb_dir = directory / "bomb-dataset"
    bomb_dir.mkdir()
    (bomb_dir / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx((1, 28, 28), data=bytes(784))))
    (bomb_dir / "t10k-labels-idx1-ubyte.gz").write_bytes(gz_bomb(idx((1,)), 4))
    jobs.append(dict(id="load_mnist with a gzip bomb for labels", loader="mnist",
                     path=str(bomb_dir)))
    cases[jobs[-1]["id"]] = (None, None, "mnist", "ValueError", "trailing bytes")
    (bomb_dir / "images-bomb.gz").write_bytes(gz_bomb(idx((10000, 28, 28)), 4))
    jobs.append(dict(id="detect_kind on a gzip bomb", loader="detect",
                     path=str(bomb_dir / "images-bomb.gz")))
    cases[jobs[-1]["id"]] = (None, None, "detect", "returned", "")
    results, crashes = run_jobs(jobs, directory / "jobs.json")
    sizes = {job["id"]: sum(f.stat().st_size for f in Path(job["path"]).parent.rglob("*")
                            if f.is_file() and f.name != "jobs.json")
             if job["loader"] == "mnist" else Path(job["path"]).stat().st_size
             for job in jobs}
    return dict(cases=cases, results=results, crashes=crashes, marker=marker, sizes=sizes)


CASE_NAMES = (list(crafted_pickles(Path("d"), Path("m"))) + list(crafted_idx())
              + list(crafted_npz()) + ["load_mnist with a gzip bomb for labels",
                                       "detect_kind on a gzip bomb"])
assert len(set(CASE_NAMES)) == len(CASE_NAMES), "two crafted files of one name"


@pytest.mark.slow
@pytest.mark.parametrize("name", CASE_NAMES)
def test_crafted_file(crafted, name):
    """Refused with the expected ValueError naming the file (or loaded, where the file is
    valid), nothing it names run, no crash, and a peak allocation the file justifies."""
    assert name not in crafted["crashes"], crafted["crashes"][name]
    assert name in crafted["results"], f"not loaded: {crafted['crashes']}"
    _, _, loader, outcome, regex = crafted["cases"][name]
    result = crafted["results"][name]
    if outcome == "returned":
        assert result["outcome"] == ["returned"], result["message"]
    else:
        assert outcome in result["outcome"] and "ValueError" in result["outcome"], (
            f"{result['outcome'][0]}: {result['message']}")
        assert regex.lower() in result["message"].lower(), result["message"]
        if loader != "mnist":
            assert "/" in result["message"], "the message names the file"
    assert not crafted["marker"].exists(), "a payload ran"
    assert result["float64_plain"], "the file changed NumPy's float64 dtype"
    size = crafted["sizes"][name]
    assert result["peak"] <= ALLOWANCE[loader] * size + SLACK[loader], (
        f"peak allocation {result['peak']} bytes for a file of {size}")


@pytest.mark.slow
def test_crafted_valid_loads_are_plain(crafted):
    """Where a crafted file loads, it gives plain arrays: the flags of a pickled dtype are
    not taken from the file; the empty IDX array has the declared shape."""
    flagged = crafted["results"]["dtype flagged as holding objects"]["value"]
    assert flagged == {"W": ["<f8", [4], False]}
    assert crafted["results"]["0 x 2**32-1 images"]["value"] == ["|u1", [0, 2**32 - 1], False]


@pytest.mark.slow
def test_gzip_bombs_are_refused_quickly(crafted):
    """A bomb is refused after decompressing about one chunk past its header, not its
    GiBs (decompressing 4 GiB takes seconds at any speed); detect_kind stops after the
    size of the test images."""
    for name in ("gzip bomb, 4 GiB after a 10000-byte header",
                 "gzip bomb, 1 GiB, header declaring 2**32-1 bytes",
                 "load_mnist with a gzip bomb for labels", "detect_kind on a gzip bomb"):
        assert crafted["results"][name]["seconds"] < 2.0, name
        assert crafted["results"][name]["peak"] < 32 * 2**20, name


# --------------------------------------------------------------------------- fuzz

#: (file under ../shared/data, mutation kind, loader, mutations): 200 in all.
FUZZ = [
    ("mnist/t10k-labels-idx1-ubyte.gz", "gz", "idx", 50),
    ("mnist/t10k-images-idx3-ubyte.gz", "gz", "idx", 40),
    ("fashion-mnist/t10k-labels-idx1-ubyte.gz", "gz", "idx", 30),
    ("pretrained/deep_convnet_params.pkl", "pkl", "params", 80),
]


@pytest.mark.slow
@pytest.mark.parametrize("source, kind, loader, count", FUZZ,
                         ids=[f[0].split("/")[-1] for f in FUZZ])
def test_fuzz_real_files(tmp_path, source, kind, loader, count):
    """Random byte flips, truncations, appended bytes, header and opcode edits of a real
    file (fixed seed): each mutant loads or raises a ValueError naming it; none crashes
    the child or hangs it (a 60 s bound for the lot, about 2 s used)."""
    path = shared_data_path(source)
    results, crash, _ = run_child(
        ["fuzz", str(path), kind, loader, "20240613", str(count), str(tmp_path)], timeout=60)
    assert crash is None, crash
    assert len(results) == count
    unclean = [f"{r['id']}: {r['outcome'][0]}: {r['message']}" for r in results.values()
               if r["outcome"] != ["returned"] and "ValueError" not in r["outcome"]]
    assert not unclean, "\n".join(unclean)
    unnamed = [r["id"] for r in results.values()
               if r["outcome"] != ["returned"] and "mutant" not in r["message"]]
    assert not unnamed, f"messages without the file's name: {unnamed}"
    # the mutations reach both outcomes: refused files and files that still load
    outcomes = {r["outcome"][0] for r in results.values()}
    assert "returned" in outcomes and len(outcomes) >= 2, outcomes
