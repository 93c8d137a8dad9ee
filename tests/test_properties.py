"""Property tests: every public op on every backend against ``fastconv.reference``, over
shapes, strides, pads, window sizes, dtypes (float16/32/64, mixed as ``np.result_type``
combines them) and memory layouts (C and Fortran order, negative strides, strided views)
drawn by hypothesis; and the dtypes each op refuses.

The reference runs in float64 on the same values, its result cast to the dtype the op
returns: copies (im2col, max pooling, shift_flip) must match it exactly, sums within
:func:`fastconv.testing.assert_close` for their number of terms. How many examples run is set
by the hypothesis profile (``FASTCONV_HYPOTHESIS_PROFILE``, see _support.py); the
examples that passed, per op, are printed in pytest's terminal summary.
"""
import collections
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv import reference as ref
from fastconv.functional import shift_flip
from fastconv.reference.augment import shift_flip as shift_flip_ref
from fastconv.testing import assert_close

from _support import BACKENDS, HYPOTHESIS_PROFILE

FLOATS = (np.float16, np.float32, np.float64)
LAYOUTS = ("C", "F", "reversed", "strided")
#: Dtypes no op computes in; each must be refused with a TypeError.
REFUSED = (np.int8, np.int32, np.int64, np.uint8, np.bool_, np.complex64, np.complex128,
           np.object_, np.longdouble, np.datetime64)

#: Examples passed, per (op, backend).
EXAMPLES = collections.Counter()


class _ExampleReport:
    """A pytest plugin printing ``EXAMPLES`` per op in the terminal summary."""

    def pytest_terminal_summary(self, terminalreporter):
        per_op = collections.Counter()
        for (op, _), n in EXAMPLES.items():
            per_op[op] += n
        if per_op:
            terminalreporter.write_sep("-", "hypothesis examples passed per op")
            terminalreporter.write_line(
                f"profile {HYPOTHESIS_PROFILE!r}, summed over the backends "
                f"{', '.join(BACKENDS)}: "
                + ", ".join(f"{op} {n}" for op, n in sorted(per_op.items()))
                + f"; {sum(per_op.values())} in all"
            )


@pytest.fixture(scope="module", autouse=True)
def _report_examples(request):
    """Registers :class:`_ExampleReport` (a test module cannot define hooks itself)."""
    manager = request.config.pluginmanager
    if not manager.has_plugin("fastconv-hypothesis-examples"):
        manager.register(_ExampleReport(), "fastconv-hypothesis-examples")


def _count(op, backend):
    """Called at the end of a property test's body: one more example passed."""
    EXAMPLES[op, backend] += 1


# --------------------------------------------------------------------------- strategies


def in_layout(a, layout):
    """``a``'s values in the memory ``layout``: C order, Fortran order, negative strides
    on every axis, or every other element of a buffer twice the size on every axis."""
    if layout == "C":
        out = np.ascontiguousarray(a)
    elif layout == "F":
        out = np.asfortranarray(a)
    elif layout == "reversed":
        flip = (slice(None, None, -1),) * a.ndim
        out = np.ascontiguousarray(a[flip])[flip]
    else:
        every_other = (slice(None, None, 2),) * a.ndim
        out = np.zeros(tuple(2 * s for s in a.shape), dtype=a.dtype)[every_other]
        out[...] = a
    assert np.array_equal(out, a)
    return out


@st.composite
def arrays(draw, shape):
    """A float array of ``shape`` (standard normal values) in a drawn dtype and layout."""
    dtype = draw(st.sampled_from(FLOATS))
    seed = draw(st.integers(0, 2**32 - 1))
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return in_layout(a, draw(st.sampled_from(LAYOUTS)))


def _pair_arg(draw, h, w):
    """``(arg, (h, w))``: the argument as the op is given it (an int, ``min(h, w)`` for
    both, or a tuple or a list) and the pair it stands for."""
    form = draw(st.sampled_from(["int", "tuple", "list"]))
    if form == "int":
        return min(h, w), (min(h, w),) * 2
    return (tuple if form == "tuple" else list)((h, w)), (h, w)


@st.composite
def windows(draw, pool=False):
    """A window geometry whose window fits the padded input.

    Returns ``dict(k=(kh, kw), stride=(arg, (sh, sw)), pad=(arg, (ph, pw)), hw=(H, W))``;
    pooling pads at most half the window and may leave the stride as None.
    """
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    if pool:
        ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    else:
        ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    pad = _pair_arg(draw, ph, pw)
    (ph, pw) = pad[1]
    if pool and draw(st.booleans()):
        stride = (None, (kh, kw))
    else:
        stride = _pair_arg(draw, draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    H = draw(st.integers(max(1, kh - 2 * ph), max(1, kh - 2 * ph) + 6))
    W = draw(st.integers(max(1, kw - 2 * pw), max(1, kw - 2 * pw) + 6))
    return dict(k=(kh, kw), stride=stride, pad=pad, hw=(H, W))


def out_hw(g):
    (kh, kw), (sh, sw), (ph, pw), (H, W) = g["k"], g["stride"][1], g["pad"][1], g["hw"]
    return (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1


def overlap(g):
    """Most windows covering one input cell: the terms of a scatter-add (col2im, pool
    backward, conv's dx per filter)."""
    (kh, kw), (sh, sw) = g["k"], g["stride"][1]
    return math.ceil(kh / sh) * math.ceil(kw / sw)


def f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def assert_exact(got, expected):
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


batch = st.integers(1, 3)
channels = st.integers(1, 4)


# --------------------------------------------------------------------------- im2col / col2im


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data(), g=windows(), N=batch, C=channels, use_out=st.booleans())
def test_im2col(backend, data, g, N, C, use_out):
    x = data.draw(arrays((N, C) + g["hw"]))
    kh, kw = g["k"]
    dt = np.result_type(x)
    expected = ref.im2col(f64(x), kh, kw, g["stride"][1], g["pad"][1])
    compute = np.float32 if dt == np.float16 else dt
    out = np.empty(expected.shape, compute) if use_out else None
    got = fc.im2col(x, kh, kw, g["stride"][0], g["pad"][0], out=out, backend=backend)
    if use_out:
        assert got is out
    assert_exact(got, expected.astype(compute if use_out else dt))
    _count("im2col", backend)


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data(), g=windows(), N=batch, C=channels, use_out=st.booleans(),
       shape_type=st.sampled_from([tuple, list]))
def test_col2im(backend, data, g, N, C, use_out, shape_type):
    (kh, kw), (OH, OW) = g["k"], out_hw(g)
    col = data.draw(arrays((N * OH * OW, C * kh * kw)))
    shape = (N, C) + g["hw"]
    dt = np.result_type(col)
    expected = ref.col2im(f64(col), shape, kh, kw, g["stride"][1], g["pad"][1])
    compute = np.float32 if dt == np.float16 else dt
    out = np.empty(shape, compute) if use_out else None
    got = fc.col2im(col, shape_type(shape), kh, kw, g["stride"][0], g["pad"][0], out=out,
                    backend=backend)
    if use_out:
        assert got is out
    assert got.dtype == (compute if use_out else dt)
    assert_close(got, expected.astype(got.dtype), overlap(g))
    _count("col2im", backend)


# --------------------------------------------------------------------------- conv2d


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data(), g=windows(), N=batch, C=channels, FN=st.integers(1, 4),
       has_b=st.booleans(), relu=st.booleans())
def test_conv2d(backend, data, g, N, C, FN, has_b, relu):
    (kh, kw) = g["k"]
    x = data.draw(arrays((N, C) + g["hw"]))
    W = data.draw(arrays((FN, C, kh, kw)))
    b = data.draw(arrays((FN,))) if has_b else None
    dt = np.result_type(x, W) if b is None else np.result_type(x, W, b)
    expected = ref.conv2d(f64(x), f64(W), f64(b), g["stride"][1], g["pad"][1], relu)
    got = fc.conv2d(x, W, b, g["stride"][0], g["pad"][0], relu=relu, backend=backend)
    assert got.dtype == dt
    assert_close(got, expected.astype(dt), C * kh * kw + has_b)
    _count("conv2d", backend)


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data(), g=windows(), N=batch, C=channels, FN=st.integers(1, 4),
       need_dx=st.booleans(), relu=st.booleans())
def test_conv2d_backward(backend, data, g, N, C, FN, need_dx, relu):
    (kh, kw), (OH, OW) = g["k"], out_hw(g)
    x = data.draw(arrays((N, C) + g["hw"]))
    W = data.draw(arrays((FN, C, kh, kw)))
    dout = data.draw(arrays((N, FN, OH, OW)))
    # The output of a relu=True forward: zero where the ReLU cut, positive elsewhere.
    relu_out = np.maximum(data.draw(arrays((N, FN, OH, OW))), 0) if relu else None
    dt = np.result_type(dout, x, W)
    edx, edW, edb = ref.conv2d_backward(f64(dout), f64(x), f64(W), g["stride"][1],
                                        g["pad"][1], need_dx, relu_out=f64(relu_out))
    dx, dW, db = fc.conv2d_backward(dout, x, W, g["stride"][0], g["pad"][0],
                                    need_dx=need_dx, relu_out=relu_out, backend=backend)
    assert dW.dtype == db.dtype == dt
    assert_close(dW, edW.astype(dt), N * OH * OW)
    assert_close(db, edb.astype(dt), N * OH * OW)
    if need_dx:
        assert dx.dtype == dt
        assert_close(dx, edx.astype(dt), FN * overlap(g))
    else:
        assert dx is None
    _count("conv2d_backward", backend)


# --------------------------------------------------------------------------- pooling


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data(), g=windows(pool=True), N=batch, C=channels)
def test_max_pool2d(backend, data, g, N, C):
    x = data.draw(arrays((N, C) + g["hw"]))
    (kh, kw) = g["k"]
    eout, earg = ref.max_pool2d(f64(x), kh, kw, g["stride"][1], g["pad"][1])
    out, arg = fc.max_pool2d(x, kh, kw, g["stride"][0], g["pad"][0], backend=backend)
    assert_exact(out, eout.astype(x.dtype))
    assert_exact(arg, earg.astype(np.int32))
    _count("max_pool2d", backend)


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data(), g=windows(pool=True), N=batch, C=channels,
       from_forward=st.booleans(),
       arg_dtype=st.sampled_from([np.int32, np.int64, np.int16, np.uint8]),
       shape_type=st.sampled_from([tuple, list]))
def test_max_pool2d_backward(backend, data, g, N, C, from_forward, arg_dtype, shape_type):
    """argmax from a forward pass, or any values in [0, kh*kw) (cells of padding
    included: they are legal and must be dropped, not written)."""
    (kh, kw), (OH, OW) = g["k"], out_hw(g)
    shape = (N, C) + g["hw"]
    dout = data.draw(arrays((N, C, OH, OW)))
    if from_forward:
        x = data.draw(arrays(shape))
        argmax = ref.max_pool2d(f64(x), kh, kw, g["stride"][1], g["pad"][1])[1]
    else:
        seed = data.draw(st.integers(0, 2**32 - 1))
        argmax = np.random.default_rng(seed).integers(0, kh * kw, (N, C, OH, OW))
    argmax = in_layout(argmax.astype(arg_dtype), data.draw(st.sampled_from(LAYOUTS)))
    expected = ref.max_pool2d_backward(f64(dout), argmax.astype(np.int32), shape, kh, kw,
                                       g["stride"][1], g["pad"][1])
    got = fc.max_pool2d_backward(dout, argmax, shape_type(shape), kh, kw, g["stride"][0],
                                 g["pad"][0], backend=backend)
    assert got.dtype == dout.dtype
    assert_close(got, expected.astype(dout.dtype), overlap(g))
    _count("max_pool2d_backward", backend)


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data(), g=windows(pool=True), N=batch, C=channels)
def test_avg_pool2d(backend, data, g, N, C):
    x = data.draw(arrays((N, C) + g["hw"]))
    (kh, kw) = g["k"]
    expected = ref.avg_pool2d(f64(x), kh, kw, g["stride"][1], g["pad"][1])
    got = fc.avg_pool2d(x, kh, kw, g["stride"][0], g["pad"][0], backend=backend)
    assert got.dtype == x.dtype
    assert_close(got, expected.astype(x.dtype), kh * kw)
    _count("avg_pool2d", backend)


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data(), g=windows(pool=True), N=batch, C=channels)
def test_avg_pool2d_backward(backend, data, g, N, C):
    (kh, kw), (OH, OW) = g["k"], out_hw(g)
    shape = (N, C) + g["hw"]
    dout = data.draw(arrays((N, C, OH, OW)))
    expected = ref.avg_pool2d_backward(f64(dout), shape, kh, kw, g["stride"][1], g["pad"][1])
    got = fc.avg_pool2d_backward(dout, shape, kh, kw, g["stride"][0], g["pad"][0],
                                 backend=backend)
    assert got.dtype == dout.dtype
    assert_close(got, expected.astype(dout.dtype), overlap(g))
    _count("avg_pool2d_backward", backend)


@st.composite
def adaptive(draw):
    """``dict(hw=(H, W), size=(arg, (OH, OW)))``: an input size and an output size
    smaller than, equal to or larger than it, as an int or a pair."""
    H, W = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    return dict(hw=(H, W), size=_pair_arg(draw, draw(st.integers(1, 12)),
                                          draw(st.integers(1, 12))))


def bin_cells(g):
    """Most cells in one adaptive bin, and most bins over one cell (upper bounds)."""
    (H, W), (OH, OW) = g["hw"], g["size"][1]
    return ((H // OH + 2) * (W // OW + 2)), ((OH // H + 2) * (OW // W + 2))


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data(), g=adaptive(), N=batch, C=channels)
def test_adaptive_avg_pool2d(backend, data, g, N, C):
    x = data.draw(arrays((N, C) + g["hw"]))
    expected = ref.adaptive_avg_pool2d(f64(x), g["size"][1])
    got = fc.adaptive_avg_pool2d(x, g["size"][0], backend=backend)
    assert got.dtype == x.dtype
    assert_close(got, expected.astype(x.dtype), bin_cells(g)[0])
    _count("adaptive_avg_pool2d", backend)


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data(), g=adaptive(), N=batch, C=channels)
def test_adaptive_avg_pool2d_backward(backend, data, g, N, C):
    shape = (N, C) + g["hw"]
    dout = data.draw(arrays((N, C) + g["size"][1]))
    expected = ref.adaptive_avg_pool2d_backward(f64(dout), shape, g["size"][1])
    got = fc.adaptive_avg_pool2d_backward(dout, shape, g["size"][0], backend=backend)
    assert got.dtype == dout.dtype
    assert_close(got, expected.astype(dout.dtype), bin_cells(g)[1])
    _count("adaptive_avg_pool2d_backward", backend)


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data(), g=adaptive(), N=batch, C=channels)
def test_global_avg_pool2d(backend, data, g, N, C):
    shape = (N, C) + g["hw"]
    x, dout = data.draw(arrays(shape)), data.draw(arrays((N, C, 1, 1)))
    got = fc.global_avg_pool2d(x, backend=backend)
    assert got.dtype == x.dtype
    assert_close(got, ref.global_avg_pool2d(f64(x)).astype(x.dtype), math.prod(g["hw"]))
    got = fc.global_avg_pool2d_backward(dout, shape, backend=backend)
    assert got.dtype == dout.dtype
    assert_close(got, ref.global_avg_pool2d_backward(f64(dout), shape).astype(dout.dtype))
    _count("global_avg_pool2d", backend)
    _count("global_avg_pool2d_backward", backend)


# --------------------------------------------------------------------------- linear

features = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data(), N=st.integers(1, 6), rest=features, M=st.integers(1, 9),
       has_b=st.booleans(), relu=st.booleans())
def test_linear(backend, data, N, rest, M, has_b, relu):
    D = math.prod(rest)
    x = data.draw(arrays((N,) + rest))
    W = data.draw(arrays((D, M)))
    b = data.draw(arrays((M,))) if has_b else None
    dt = np.result_type(x, W) if b is None else np.result_type(x, W, b)
    expected = ref.linear(f64(x), f64(W), f64(b), relu)
    got = fc.linear(x, W, b, relu=relu, backend=backend)
    assert got.dtype == dt
    assert_close(got, expected.astype(dt), D + has_b)
    _count("linear", backend)


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data(), N=st.integers(1, 6), rest=features, M=st.integers(1, 9),
       relu=st.booleans())
def test_linear_backward(backend, data, N, rest, M, relu):
    D = math.prod(rest)
    x = data.draw(arrays((N,) + rest))
    W = data.draw(arrays((D, M)))
    dout = data.draw(arrays((N, M)))
    relu_out = np.maximum(data.draw(arrays((N, M))), 0) if relu else None
    dt = np.result_type(dout, x, W)
    edx, edW, edb = ref.linear_backward(f64(dout), f64(x), f64(W), relu_out=f64(relu_out))
    dx, dW, db = fc.linear_backward(dout, x, W, relu_out=relu_out, backend=backend)
    assert dx.shape == x.shape and dx.dtype == dW.dtype == db.dtype == dt
    assert_close(dx, edx.astype(dt), M)
    assert_close(dW, edW.astype(dt), N)
    assert_close(db, edb.astype(dt), N)
    _count("linear_backward", backend)


# --------------------------------------------------------------------------- shift_flip


@st.composite
def per_image(draw, n, lo, hi, dtypes):
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    if dtype.kind == "u":
        lo = 0
    values = draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n))
    return in_layout(np.array(values, dtype=dtype), draw(st.sampled_from(LAYOUTS)))


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data(), N=batch, C=channels, H=st.integers(1, 9), W=st.integers(1, 9))
def test_shift_flip(backend, data, N, C, H, W):
    """Shifts of up to the image size and one more either way (all-zero images), flips
    given as bools or as any nonzero integer."""
    x = data.draw(arrays((N, C, H, W)))
    shifts = (np.int8, np.int16, np.int32, np.int64, np.uint16)
    dy = data.draw(per_image(N, -H - 1, H + 1, shifts))
    dx = data.draw(per_image(N, -W - 1, W + 1, shifts))
    flip = data.draw(per_image(N, -2, 2, (np.bool_, np.int8, np.int64)))
    expected = shift_flip_ref(f64(x), dy.astype(np.int64), dx.astype(np.int64), flip != 0)
    got = shift_flip(x, dy, dx, flip, backend=backend)
    assert_exact(got, expected.astype(x.dtype))
    _count("shift_flip", backend)


# --------------------------------------------------------------------------- refused dtypes


def _bad(a, dtype):
    if np.dtype(dtype).kind == "M":
        return np.zeros(a.shape, dtype="datetime64[s]")
    return a.astype(dtype)


def _valid_calls(g, N=2, C=2, FN=3):
    """op -> (shape of each argument that must be a float array, a valid call taking those
    arrays and a backend), for a geometry of ``windows(pool=True)``, which fits every op."""
    (kh, kw), (OH, OW), hw = g["k"], out_hw(g), g["hw"]
    stride, pad = g["stride"][1], g["pad"][1]
    shape = (N, C) + hw
    arg = np.random.default_rng(0).integers(0, kh * kw, (N, C, OH, OW))
    shifts = np.zeros(N, np.int64)
    return {
        "im2col": (dict(x=shape), lambda a, be: fc.im2col(a["x"], kh, kw, stride, pad, backend=be)),
        "col2im": (dict(col=(N * OH * OW, C * kh * kw)),
                   lambda a, be: fc.col2im(a["col"], shape, kh, kw, stride, pad, backend=be)),
        "conv2d": (dict(x=shape, W=(FN, C, kh, kw), b=(FN,)),
                   lambda a, be: fc.conv2d(a["x"], a["W"], a["b"], stride, pad, backend=be)),
        "conv2d_backward": (dict(dout=(N, FN, OH, OW), x=shape, W=(FN, C, kh, kw)),
                            lambda a, be: fc.conv2d_backward(a["dout"], a["x"], a["W"], stride,
                                                             pad, backend=be)),
        "max_pool2d": (dict(x=shape), lambda a, be: fc.max_pool2d(a["x"], kh, kw, stride, pad,
                                                                  backend=be)),
        "max_pool2d_backward": (dict(dout=(N, C, OH, OW)),
                                lambda a, be: fc.max_pool2d_backward(a["dout"], arg, shape, kh, kw,
                                                                     stride, pad, backend=be)),
        "avg_pool2d": (dict(x=shape), lambda a, be: fc.avg_pool2d(a["x"], kh, kw, stride, pad,
                                                                  backend=be)),
        "avg_pool2d_backward": (dict(dout=(N, C, OH, OW)),
                                lambda a, be: fc.avg_pool2d_backward(a["dout"], shape, kh, kw,
                                                                     stride, pad, backend=be)),
        "global_avg_pool2d": (dict(x=shape),
                              lambda a, be: fc.global_avg_pool2d(a["x"], backend=be)),
        "global_avg_pool2d_backward": (dict(dout=(N, C, 1, 1)),
                                       lambda a, be: fc.global_avg_pool2d_backward(
                                           a["dout"], shape, backend=be)),
        "adaptive_avg_pool2d": (dict(x=shape), lambda a, be: fc.adaptive_avg_pool2d(
            a["x"], (OH, OW), backend=be)),
        "adaptive_avg_pool2d_backward": (dict(dout=(N, C, OH, OW)),
                                         lambda a, be: fc.adaptive_avg_pool2d_backward(
                                             a["dout"], shape, (OH, OW), backend=be)),
        "linear": (dict(x=shape, W=(math.prod(shape[1:]), FN), b=(FN,)),
                   lambda a, be: fc.linear(a["x"], a["W"], a["b"], backend=be)),
        "linear_backward": (dict(dout=(N, FN), x=shape, W=(math.prod(shape[1:]), FN)),
                            lambda a, be: fc.linear_backward(a["dout"], a["x"], a["W"],
                                                             backend=be)),
        "shift_flip": (dict(x=shape), lambda a, be: shift_flip(a["x"], shifts, shifts, shifts,
                                                               backend=be)),
    }


OPS = list(_valid_calls(dict(k=(1, 1), stride=(1, (1, 1)), pad=(0, (0, 0)), hw=(1, 1))))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", OPS)
@settings(max_examples=max(10, settings.default.max_examples // 4))
@given(data=st.data(), g=windows(pool=True), bad=st.sampled_from(REFUSED))
def test_refused_dtypes(op, backend, data, g, bad):
    """Each float argument in a dtype no op computes in (ints, bool, complex, object,
    long double, datetime) is refused with a TypeError naming the argument and dtype,
    the others being valid; a valid call with the same geometry succeeds (control)."""
    names, call = _valid_calls(g)[op]
    args = {name: data.draw(arrays(shape)) for name, shape in names.items()}
    call(args, backend)
    name = data.draw(st.sampled_from(sorted(names)))
    args[name] = _bad(args[name], bad)
    dtype = re.escape(str(args[name].dtype))
    with pytest.raises(TypeError, match=rf"{op}: \w+ has dtype {dtype}"):
        call(args, backend)
    _count(f"{op} (refused dtype)", backend)
