"""A battery of malformed calls to every public op on every backend: wrong types, wrong
ndim, shape mismatches, non-positive, huge and non-int strides, pads and window sizes,
windows larger than the input, integer/bool/complex/object/datetime dtypes, non-array
inputs, argmax arrays of the wrong size, dtype or range, bad ``out=`` workspaces.

Every call must raise TypeError or ValueError with a message (the class DESIGN.md gives
where it is clear: TypeError for a bad type or dtype, ValueError for a bad shape, stride,
pad or window), never another exception and never return. Each backend's battery runs in
a child process (``python tests/test_malformed.py BACKEND``), so that a crash is a
nonzero exit naming the call that was running, not the death of pytest. The calls tried
per op and backend are printed in pytest's terminal summary.
"""
import collections
import functools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

EITHER = (TypeError, ValueError)
#: Dtypes no op computes in.
BAD_DTYPES = ("int8", "int32", "int64", "uint8", "bool", "complex64", "complex128", "object",
              "longdouble", "U1", "datetime64[s]")


def _array_cases(name, a, required=True):
    """Malformed values of the float array argument ``name`` (valid value ``a``)."""
    if required:
        yield f"{name}=None", TypeError, None
    yield f"{name}=list", TypeError, a.tolist()
    yield f"{name}=float", TypeError, 1.5
    yield f"{name}=str", TypeError, "x"
    yield f"{name}=memoryview", TypeError, memoryview(np.ascontiguousarray(a))
    for dt in BAD_DTYPES:
        bad = np.zeros(a.shape, dtype=dt) if dt in ("U1", "datetime64[s]") else a.astype(dt)
        yield f"{name} dtype {dt}", TypeError, bad
    yield f"{name} 0-d", ValueError, np.array(1.0, a.dtype)
    if a.ndim > 1:
        yield f"{name} ndim-1", ValueError, a[0]
    yield f"{name} ndim+1", ValueError, a[None]
    yield f"{name} empty", ValueError, a[:0]


def _int_cases(name, allow_none=False, low=1):
    """Malformed values of the int argument ``name`` (a window size, stride or pad)."""
    yield f"{name}={low - 1}", ValueError, low - 1
    yield f"{name}=-3", ValueError, -3
    yield f"{name}=2**40", ValueError, 2**40
    yield f"{name}=2**63", ValueError, 2**63
    yield f"{name}=np.int64(-1)", ValueError, np.int64(-1)
    yield f"{name}=1.5", TypeError, 1.5
    yield f"{name}=np.float64(2)", TypeError, np.float64(2)
    yield f"{name}='2'", TypeError, "2"
    yield f"{name}=True", TypeError, True
    yield f"{name}=1+0j", TypeError, 1 + 0j
    if not allow_none:
        yield f"{name}=None", TypeError, None


def _pair_cases(name, allow_none=False, low=1):
    """Malformed values of a stride or pad, an int or an (h, w) pair."""
    yield from _int_cases(name, allow_none, low)
    yield f"{name}=(1,)", ValueError, (1,)
    yield f"{name}=(1, 1, 1)", ValueError, (1, 1, 1)
    yield f"{name}=()", ValueError, ()
    yield f"{name}=(1, {low - 1})", ValueError, (1, low - 1)
    yield f"{name}=({low - 1}, 1)", ValueError, (low - 1, 1)
    yield f"{name}=(1, 2**40)", ValueError, (1, 2**40)
    yield f"{name}=(1, 1.5)", TypeError, (1, 1.5)
    yield f"{name}=['1', '1']", TypeError, ["1", "1"]
    yield f"{name}=(None, 1)", TypeError, (None, 1)
    yield f"{name}=np.array([1, 1])", EITHER, np.array([1, 1])
    yield f"{name}={{1}}", EITHER, {1}


def _shape_cases(name, shape):
    """Malformed values of a 4-int shape argument (``input_shape``, ``x_shape``)."""
    yield f"{name}=None", EITHER, None
    yield f"{name}=ndarray", EITHER, np.array(shape)
    yield f"{name} of 3", ValueError, shape[:3]
    yield f"{name} of 5", ValueError, shape + (1,)
    yield f"{name} with 0", ValueError, shape[:3] + (0,)
    yield f"{name} negative", ValueError, shape[:3] + (-shape[3],)
    yield f"{name} with 2**40", ValueError, shape[:2] + (2**40, shape[3])
    yield f"{name} with a float", TypeError, shape[:3] + (float(shape[3]),)
    yield f"{name} with a str", TypeError, shape[:3] + (str(shape[3]),)
    yield f"{name} other size", ValueError, shape[:2] + (shape[2] + 4, shape[3])


def battery():
    """``[(op, label, expected exception classes, call(backend))]`` for every public op."""
    import fastconv as fc
    from fastconv.functional import shift_flip

    rng = np.random.default_rng(0)

    def f32(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    x, W, b = f32(2, 3, 8, 8), f32(4, 3, 3, 3), f32(4)
    dconv = f32(2, 4, 6, 6)
    out_pool, argmax = fc.max_pool2d(x, 2, 2, backend="numpy")
    dpool = f32(*out_pool.shape)
    dglobal, dadaptive = f32(2, 3, 1, 1), f32(2, 3, 3, 5)
    col = fc.im2col(x, 3, 3, backend="numpy")
    Wl, bl, dl = f32(192, 5), f32(5), f32(2, 5)
    shifts = np.zeros(2, np.int64)
    ops = {
        "im2col": lambda be, x=x, fh=3, fw=3, stride=1, pad=0, out=None:
            fc.im2col(x, fh, fw, stride, pad, out=out, backend=be),
        "col2im": lambda be, col=col, shape=x.shape, fh=3, fw=3, stride=1, pad=0, out=None:
            fc.col2im(col, shape, fh, fw, stride, pad, out=out, backend=be),
        "conv2d": lambda be, x=x, W=W, b=b, stride=1, pad=0, relu=False:
            fc.conv2d(x, W, b, stride, pad, relu=relu, backend=be),
        "conv2d_backward": lambda be, dout=dconv, x=x, W=W, stride=1, pad=0, need_dx=True,
                           relu_out=None:
            fc.conv2d_backward(dout, x, W, stride, pad, need_dx=need_dx, relu_out=relu_out,
                               backend=be),
        "max_pool2d": lambda be, x=x, ph=2, pw=2, stride=None, pad=0:
            fc.max_pool2d(x, ph, pw, stride, pad, backend=be),
        "max_pool2d_backward": lambda be, dout=dpool, argmax=argmax, shape=x.shape, ph=2, pw=2,
                               stride=None, pad=0:
            fc.max_pool2d_backward(dout, argmax, shape, ph, pw, stride, pad, backend=be),
        "avg_pool2d": lambda be, x=x, ph=2, pw=2, stride=None, pad=0:
            fc.avg_pool2d(x, ph, pw, stride, pad, backend=be),
        "avg_pool2d_backward": lambda be, dout=dpool, shape=x.shape, ph=2, pw=2, stride=None,
                               pad=0:
            fc.avg_pool2d_backward(dout, shape, ph, pw, stride, pad, backend=be),
        "global_avg_pool2d": lambda be, x=x: fc.global_avg_pool2d(x, backend=be),
        "global_avg_pool2d_backward": lambda be, dout=dglobal, shape=x.shape:
            fc.global_avg_pool2d_backward(dout, shape, backend=be),
        "adaptive_avg_pool2d": lambda be, x=x, size=(3, 5):
            fc.adaptive_avg_pool2d(x, size, backend=be),
        "adaptive_avg_pool2d_backward": lambda be, dout=dadaptive, shape=x.shape, size=(3, 5):
            fc.adaptive_avg_pool2d_backward(dout, shape, size, backend=be),
        "linear": lambda be, x=x, W=Wl, b=bl, relu=False:
            fc.linear(x, W, b, relu=relu, backend=be),
        "linear_backward": lambda be, dout=dl, x=x, W=Wl, relu_out=None:
            fc.linear_backward(dout, x, W, relu_out=relu_out, backend=be),
        "shift_flip": lambda be, x=x, dy=shifts, dx=shifts, flip=shifts:
            shift_flip(x, dy, dx, flip, backend=be),
    }
    cases = {op: [] for op in ops}

    def add(op, source, arg):
        cases[op] += [(label, exc, {arg: value}) for label, exc, value in source]

    for op in ops:
        add(op, [("backend='gpu'", ValueError, "gpu"), ("backend=3", EITHER, 3)], "be")
    # arrays
    for op, arrays in {
        "im2col": dict(x=x), "col2im": dict(col=col), "conv2d": dict(x=x, W=W),
        "conv2d_backward": dict(dout=dconv, x=x, W=W), "max_pool2d": dict(x=x),
        "max_pool2d_backward": dict(dout=dpool), "avg_pool2d": dict(x=x),
        "avg_pool2d_backward": dict(dout=dpool), "global_avg_pool2d": dict(x=x),
        "global_avg_pool2d_backward": dict(dout=dglobal), "adaptive_avg_pool2d": dict(x=x),
        "adaptive_avg_pool2d_backward": dict(dout=dadaptive), "linear": dict(x=x, W=Wl),
        "linear_backward": dict(dout=dl, x=x, W=Wl), "shift_flip": dict(x=x),
    }.items():
        for name, a in arrays.items():
            add(op, _array_cases(name, a), name)
    add("conv2d", _array_cases("b", b, required=False), "b")
    add("linear", _array_cases("b", bl, required=False), "b")
    add("conv2d_backward", _array_cases("relu_out", dconv, required=False), "relu_out")
    add("linear_backward", _array_cases("relu_out", dl, required=False), "relu_out")
    # geometry
    for op in ("im2col", "col2im", "conv2d", "conv2d_backward"):
        add(op, _pair_cases("stride"), "stride")
        add(op, _pair_cases("pad", low=0), "pad")
    for op in ("max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward"):
        add(op, _pair_cases("stride", allow_none=True), "stride")
        add(op, _pair_cases("pad", low=0), "pad")
        add(op, [("pad more than half the window", ValueError, 2)], "pad")
        for name in ("ph", "pw"):
            add(op, _int_cases(name), name)
            add(op, [(f"{name}=9: window larger than the input", ValueError, 9)], name)
    for op in ("adaptive_avg_pool2d", "adaptive_avg_pool2d_backward"):
        add(op, _pair_cases("size"), "size")
    for op in ("im2col", "col2im"):
        for name in ("fh", "fw"):
            add(op, _int_cases(name), name)
            add(op, [(f"{name}=11: window larger than the padded input", ValueError, 11)], name)
    for op in ("col2im", "max_pool2d_backward", "avg_pool2d_backward"):
        add(op, _shape_cases("shape", x.shape), "shape")
    for op in ("global_avg_pool2d_backward", "adaptive_avg_pool2d_backward"):
        # their dout's shape does not follow H and W: another valid size is no error
        add(op, [c for c in _shape_cases("shape", x.shape) if c[0] != "shape other size"],
            "shape")
        add(op, [("shape of other N", ValueError, (3,) + x.shape[1:]),
                 ("shape of other C", ValueError, (2, 4) + x.shape[2:])], "shape")
    # op-specific
    big_filter = f32(4, 3, 9, 9)
    add("conv2d", [
        ("W with other channels", ValueError, f32(4, 2, 3, 3)),
        ("W larger than the input", ValueError, big_filter),
    ], "W")
    add("conv2d", [("b of 5", ValueError, f32(5)), ("b 2-D", ValueError, f32(4, 1))], "b")
    for op in ("conv2d", "linear"):
        add(op, [("relu='yes'", TypeError, "yes"), ("relu=1", TypeError, 1),
                 ("relu=None", TypeError, None)], "relu")
    add("conv2d_backward", [
        ("dout of other OH, OW", ValueError, f32(2, 4, 5, 5)),
        ("dout of other FN", ValueError, f32(2, 3, 6, 6)),
        ("dout of other N", ValueError, f32(3, 4, 6, 6)),
    ], "dout")
    add("conv2d_backward", [("W larger than the input", ValueError, big_filter),
                            ("W with other channels", ValueError, f32(4, 2, 3, 3))], "W")
    add("conv2d_backward", [("relu_out of other shape", ValueError, f32(2, 4, 5, 5))],
        "relu_out")
    add("conv2d_backward", [("need_dx='no'", TypeError, "no"), ("need_dx=0", TypeError, 0),
                            ("need_dx=None", TypeError, None)], "need_dx")
    add("col2im", [("col of other rows", ValueError, col[:-1]),
                   ("col of other columns", ValueError, col[:, :-1])], "col")
    for op, (source, shape) in {"im2col": ("x", col.shape), "col2im": ("col", x.shape)}.items():
        read_only = np.zeros(shape, np.float32)
        read_only.flags.writeable = False
        add(op, [
            ("out=list", TypeError, np.zeros(shape).tolist()),
            ("out of other shape", ValueError, np.zeros(shape[::-1], np.float32)),
            ("out of other dtype", EITHER, np.zeros(shape, np.float64)),
            ("out Fortran-ordered", ValueError, np.zeros(shape, np.float32, order="F")),
            ("out broadcast", ValueError, np.broadcast_to(np.float32(0), shape)),
            ("out read-only", ValueError, read_only),
        ], "out")
        # out and the input as overlapping views of one buffer
        valid = {"x": x, "col": col}[source]
        shared = np.zeros(valid.size + math.prod(shape) - 1, np.float32)
        cases[op].append(("out overlapping the input", ValueError, {
            source: shared[:valid.size].reshape(valid.shape),
            "out": shared[-math.prod(shape):].reshape(shape)}))
    add("max_pool2d_backward", [
        ("argmax float32", TypeError, argmax.astype(np.float32)),
        ("argmax bool", TypeError, argmax.astype(bool)),
        ("argmax list", TypeError, argmax.tolist()),
        ("argmax None", TypeError, None),
        ("argmax of other shape", ValueError, argmax[:, :, :-1]),
        ("argmax of other size", ValueError, np.concatenate([argmax, argmax])),
        ("argmax 5-D", ValueError, argmax[None]),
        ("argmax with 4 (window of 4)", ValueError, np.full_like(argmax, 4)),
        ("argmax with -1", ValueError, np.full_like(argmax, -1)),
        ("argmax with 2**40", ValueError, np.full(argmax.shape, 2**40)),
        ("argmax uint64 2**63", ValueError, np.full(argmax.shape, 2**63, np.uint64)),
    ], "argmax")
    for op in ("max_pool2d_backward", "avg_pool2d_backward"):
        add(op, [("dout of other shape", ValueError, f32(2, 3, 4, 3)),
                 ("dout of other N", ValueError, f32(1, 3, 4, 4))], "dout")
    add("global_avg_pool2d_backward", [("dout of 2x2", ValueError, f32(2, 3, 2, 2)),
                                       ("dout of other C", ValueError, f32(2, 4, 1, 1))],
        "dout")
    add("adaptive_avg_pool2d_backward", [("dout of other size", ValueError, f32(2, 3, 5, 3)),
                                         ("dout of other N", ValueError, f32(1, 3, 3, 5))],
        "dout")
    add("linear", [("x 1-D", ValueError, f32(192))], "x")
    add("linear", [("W of other rows", ValueError, f32(191, 5)),
                   ("W 3-D", ValueError, f32(192, 5, 1))], "W")
    add("linear", [("b of 4", ValueError, f32(4)), ("b 2-D", ValueError, f32(5, 1))], "b")
    add("linear_backward", [("dout of other M", ValueError, f32(2, 4)),
                            ("dout of other N", ValueError, f32(3, 5))], "dout")
    add("linear_backward", [("W of other rows", ValueError, f32(191, 5))], "W")
    add("linear_backward", [("relu_out of other shape", ValueError, f32(2, 4))], "relu_out")
    for name in ("dy", "dx", "flip"):
        add("shift_flip", [
            (f"{name} float", TypeError, shifts.astype(np.float64)),
            (f"{name} complex", TypeError, shifts.astype(np.complex64)),
            (f"{name} list", TypeError, [0, 0]),
            (f"{name} None", TypeError, None),
            (f"{name} of 3", ValueError, np.zeros(3, np.int64)),
            (f"{name} 2-D", ValueError, np.zeros((2, 1), np.int64)),
        ], name)
    for name in ("dy", "dx"):
        add("shift_flip", [
            (f"{name}=2**30", ValueError, np.full(2, 2**30)),
            (f"{name}=-2**30", ValueError, np.full(2, -2**30)),
            (f"{name} uint64 2**63", ValueError, np.full(2, 2**63, np.uint64)),
        ], name)

    for op, entries in cases.items():
        labels = [label for label, _, _ in entries]
        assert len(set(labels)) == len(labels), f"{op}: a label used twice"
    return [(op, label, exc, functools.partial(_call, ops[op], kwargs))
            for op in ops for label, exc, kwargs in cases[op]]


def _call(fn, kwargs, backend):
    kwargs = dict(kwargs)
    return fn(kwargs.pop("be", backend), **kwargs)


def _run_child(backend):
    """Run the battery on ``backend``: a START line before each call (the last one names
    the call when the process dies), a DONE line with its outcome after."""
    for op, label, _, call in battery():
        print("START", json.dumps([op, label]), flush=True)
        try:
            call(backend)
        except Exception as exc:  # every outcome is reported to the parent
            outcome, message = type(exc).__name__, str(exc)
        else:
            outcome, message = "returned", ""
        print("DONE", json.dumps([op, label, outcome, message]), flush=True)


if __name__ == "__main__":
    _run_child(sys.argv[1])
    sys.exit(0)


# --------------------------------------------------------------------------- the tests

import pytest  # noqa: E402

from _support import BACKENDS  # noqa: E402

#: Calls tried, per (op, backend).
CALLS = collections.Counter()
#: The battery's expected classes, per (op, label).
EXPECTED = {(op, label): exc for op, label, exc, _ in battery()}
OPS = sorted({op for op, _ in EXPECTED}, key=list(dict.fromkeys(op for op, _ in EXPECTED)).index)


@functools.lru_cache(maxsize=None)
def child_results(backend):
    """``(results, crash)``: ``{(op, label): (outcome, message)}`` from the child run on
    ``backend``, and None or a description of how the child died."""
    return run_child([sys.executable, str(Path(__file__).resolve()), backend])


def run_child(argv):
    """Run a child printing START/DONE lines; ``(results, crash)`` as for
    :func:`child_results`."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).resolve().parents[1])
    results, running = {}, None
    for line in proc.stdout.splitlines():
        tag, _, payload = line.partition(" ")
        if tag == "START":
            running = tuple(json.loads(payload))
        elif tag == "DONE":
            op, label, outcome, message = json.loads(payload)
            results[op, label] = outcome, message
            running = None
    crash = None
    if proc.returncode != 0:
        crash = (f"the child {argv[2:]} exited with {proc.returncode} "
                 f"(negative: killed by that signal) while running {running}; stderr:\n"
                 f"{proc.stderr[-3000:]}")
    return results, crash


class _CallReport:
    """A pytest plugin printing ``CALLS`` per op and backend in the terminal summary."""

    def pytest_terminal_summary(self, terminalreporter):
        if not CALLS:
            return
        terminalreporter.write_sep("-", "malformed calls tried per op and backend")
        for op in OPS:
            per_backend = ", ".join(f"{be} {CALLS[op, be]}" for be in BACKENDS if CALLS[op, be])
            if per_backend:
                terminalreporter.write_line(f"{op}: {per_backend}")
        terminalreporter.write_line(f"{sum(CALLS.values())} in all")


@pytest.fixture(scope="module", autouse=True)
def _report_calls(request):
    """Registers :class:`_CallReport` (a test module cannot define hooks itself)."""
    manager = request.config.pluginmanager
    if not manager.has_plugin("fastconv-malformed-calls"):
        manager.register(_CallReport(), "fastconv-malformed-calls")


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", OPS)
def test_malformed_calls_raise_type_or_value_error(op, backend):
    results, crash = child_results(backend)
    assert crash is None, crash
    wrong = []
    labels = [label for o, label in EXPECTED if o == op]
    for label in labels:
        outcome, message = results[op, label]
        expected = EXPECTED[op, label]
        expected = expected if isinstance(expected, tuple) else (expected,)
        if outcome not in {e.__name__ for e in expected} or not message:
            wrong.append(f"{label}: {outcome} {message!r}, expected "
                         f"{' or '.join(e.__name__ for e in expected)} with a message")
    assert not wrong, f"{op} on {backend}:\n" + "\n".join(wrong)
    CALLS[op, backend] += len(labels)


def test_battery_covers_every_public_op():
    """The battery holds every public op (``fastconv.functional.__all__``), so a new op
    cannot be left out unnoticed."""
    from fastconv import functional

    assert set(OPS) == set(functional.__all__)


@pytest.mark.slow
def test_a_crash_in_the_child_is_reported():
    """Control: a child dying of a signal is reported, naming the call it was running."""
    code = ("import ctypes, json; print('START', json.dumps(['conv2d', 'the call']), "
            "flush=True); ctypes.string_at(0)")
    results, crash = run_child([sys.executable, "-c", code])
    assert results == {}
    assert crash is not None and "-11" in crash and "('conv2d', 'the call')" in crash

