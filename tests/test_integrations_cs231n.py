"""fastconv.integrations.cs231n: CS231n's fast-layer API against naive loop versions of
CS231n's definitions (written here), centered differences, every backend, and bad
conv_param / pool_param / cache; plus the import rules of fastconv.integrations."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastconv as fc
from fastconv.integrations import cs231n
from fastconv.testing import assert_close, assert_matches_reference, check_grad

from _support import BACKENDS, naive_conv2d, randn

DTYPES = [np.float32, np.float64]

# (N, C, H, W), (F, HH, WW), stride, pad
CONV_CASES = [
    ((1, 1, 5, 5), (2, 3, 3), 1, 0),     # N=1, C=1
    ((2, 3, 7, 7), (4, 3, 3), 1, 1),     # CS231n's usual 3x3 pad 1
    ((2, 3, 9, 8), (3, 3, 2), 2, 1),     # stride 2, windows that do not tile, HH != WW
    ((3, 2, 6, 6), (5, 1, 1), 1, 0),     # 1x1 filters
    ((2, 4, 11, 11), (3, 5, 5), 3, 2),   # CS231n's conv_forward_naive test geometry
]

# (N, C, H, W), pool_height, pool_width, stride
POOL_CASES = [
    ((1, 1, 4, 4), 2, 2, 2),     # windows tile (CS231n's reshape path)
    ((2, 3, 7, 9), 2, 2, 2),     # odd H and W: the last row / column is dropped
    ((2, 3, 8, 8), 3, 3, 1),     # overlapping windows
    ((2, 2, 9, 7), 3, 2, 2),     # non-square window
]

CONV_PARAM = {"stride": 1, "pad": 1}
POOL_PARAM = {"pool_height": 2, "pool_width": 2, "stride": 2}



# --------------------------------------------------------------------------- naive CS231n

def conv_forward_naive(x, w, b, conv_param):
    """CS231n's definition: out[n, f, i, j] = sum(x_pad[n, :, window] * w[f]) + b[f]."""
    return naive_conv2d(x, w, b, conv_param["stride"], conv_param["pad"])


def conv_backward_naive(dout, x, w, conv_param):
    """The loops of the forward run backwards: every output cell's gradient spread over
    its window."""
    s, p = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for n in range(N):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    sl = (slice(i * s, i * s + HH), slice(j * s, j * s + WW))
                    dw[f] += dout[n, f, i, j] * xp[n, :, sl[0], sl[1]]
                    dxp[n, :, sl[0], sl[1]] += dout[n, f, i, j] * w[f]
    return dxp[:, :, p:p + H, p:p + W], dw, dout.sum(axis=(0, 2, 3))


def max_pool_forward_naive(x, pool_param):
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    out = np.zeros((N, C, 1 + (H - ph) // s, 1 + (W - pw) // s), x.dtype)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = x[:, :, i * s:i * s + ph, j * s:j * s + pw].max(axis=(2, 3))
    return out


def max_pool_backward_naive(dout, x, pool_param):
    """Each gradient to the first maximum of its window (CS231n's naive layer)."""
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    window = x[n, c, i * s:i * s + ph, j * s:j * s + pw]
                    k, m = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * s + k, j * s + m] += dout[n, c, i, j]
    return dx


def _conv_terms(w):
    return w[0].size + 1


# --------------------------------------------------------------------------- conv

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CONV_CASES)
def test_conv_forward_fast_matches_naive_loops(x_shape, w_shape, stride, pad, dtype):
    x = randn(x_shape, dtype, 0)
    w = randn((w_shape[0], x_shape[1]) + w_shape[1:], dtype, 1)
    b = randn(w_shape[:1], dtype, 2)
    conv_param = {"stride": stride, "pad": pad}
    # the naive reference returns the output alone; the op returns (out, cache)
    assert_matches_reference(cs231n.conv_forward_fast, x, w, b, conv_param,
                             reference=lambda *a: (conv_forward_naive(*a), None),
                             select=lambda r: r[0], terms=_conv_terms(w))
    out, cache = cs231n.conv_forward_fast(x, w, b, conv_param)
    assert out.dtype == dtype and out.flags.c_contiguous


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CONV_CASES)
def test_conv_backward_fast_matches_naive_loops(x_shape, w_shape, stride, pad, dtype, backend):
    x = randn(x_shape, dtype, 0)
    w = randn((w_shape[0], x_shape[1]) + w_shape[1:], dtype, 1)
    b = randn(w_shape[:1], dtype, 2)
    conv_param = {"stride": stride, "pad": pad}
    with fc.use_backend(backend):
        out, cache = cs231n.conv_forward_fast(x, w, b, conv_param)
        dout = randn(out.shape, dtype, 3)
        dx, dw, db = cs231n.conv_backward_fast(dout, cache)
    ex, ew, eb = conv_backward_naive(dout, x, w, conv_param)
    F, _, HH, WW = w.shape
    n_out = out.shape[0] * out.shape[2] * out.shape[3]
    assert_close(dx, ex, terms=F * HH * WW, what="dx")
    assert_close(dw, ew, terms=n_out, what="dw")
    assert_close(db, eb, terms=n_out, what="db")
    assert dx.dtype == dw.dtype == db.dtype == dtype


@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CONV_CASES)
def test_conv_backward_fast_matches_centered_differences(x_shape, w_shape, stride, pad):
    x = randn(x_shape, np.float64, 0)
    w = randn((w_shape[0], x_shape[1]) + w_shape[1:], np.float64, 1)
    b = randn(w_shape[:1], np.float64, 2)
    conv_param = {"stride": stride, "pad": pad}

    def backward(dout, x, w, b):
        return cs231n.conv_backward_fast(dout, cs231n.conv_forward_fast(x, w, b, conv_param)[1])

    check_grad(lambda x, w, b: cs231n.conv_forward_fast(x, w, b, conv_param), x, w, b,
               backward=backward)


# --------------------------------------------------------------------------- pooling

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, ph, pw, stride", POOL_CASES)
def test_max_pool_fast_matches_naive_loops(x_shape, ph, pw, stride, dtype, backend):
    x = randn(x_shape, dtype, 0)
    pool_param = {"pool_height": ph, "pool_width": pw, "stride": stride}
    with fc.use_backend(backend):
        out, cache = cs231n.max_pool_forward_fast(x, pool_param)
        dout = randn(out.shape, dtype, 1)
        dx = cs231n.max_pool_backward_fast(dout, cache)
    assert_close(out, max_pool_forward_naive(x, pool_param), what="out")
    # overlapping windows add up to ceil(window / stride) per axis gradients in a cell
    overlaps = -(-ph // stride) * -(-pw // stride)
    assert_close(dx, max_pool_backward_naive(dout, x, pool_param), terms=overlaps, what="dx")


def test_max_pool_backward_sends_a_tie_to_the_first_maximum():
    x = np.zeros((1, 1, 2, 2))
    out, cache = cs231n.max_pool_forward_fast(x, POOL_PARAM)
    dx = cs231n.max_pool_backward_fast(np.ones_like(out), cache)
    np.testing.assert_array_equal(dx, [[[[1.0, 0.0], [0.0, 0.0]]]])


@pytest.mark.parametrize("x_shape, ph, pw, stride", POOL_CASES)
def test_max_pool_backward_matches_centered_differences(x_shape, ph, pw, stride):
    x = randn(x_shape, np.float64, 0)
    pool_param = {"pool_height": ph, "pool_width": pw, "stride": stride}
    check_grad(lambda x: cs231n.max_pool_forward_fast(x, pool_param), x,
               backward=lambda dout, x: cs231n.max_pool_backward_fast(
                   dout, cs231n.max_pool_forward_fast(x, pool_param)[1]))


# --------------------------------------------------------------------------- sandwiches

def _sandwich_data(dtype):
    x = randn((2, 3, 8, 8), dtype, 0)
    w = randn((4, 3, 3, 3), dtype, 1)
    b = randn((4,), dtype, 2)
    return x, w, b


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_relu_matches_naive_composition(dtype, backend):
    x, w, b = _sandwich_data(dtype)
    with fc.use_backend(backend):
        out, cache = cs231n.conv_relu_forward(x, w, b, CONV_PARAM)
        dout = randn(out.shape, dtype, 3)
        dx, dw, db = cs231n.conv_relu_backward(dout, cache)
    a = conv_forward_naive(x, w, b, CONV_PARAM)
    assert_close(out, np.maximum(a, 0), terms=_conv_terms(w), what="out")
    ex, ew, eb = conv_backward_naive(np.where(a > 0, dout, 0), x, w, CONV_PARAM)
    n_out = out.shape[0] * out.shape[2] * out.shape[3]
    assert_close(dx, ex, terms=4 * 9, what="dx")
    assert_close(dw, ew, terms=n_out, what="dw")
    assert_close(db, eb, terms=n_out, what="db")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_relu_pool_matches_naive_composition(dtype, backend):
    x, w, b = _sandwich_data(dtype)
    with fc.use_backend(backend):
        out, cache = cs231n.conv_relu_pool_forward(x, w, b, CONV_PARAM, POOL_PARAM)
        dout = randn(out.shape, dtype, 3)
        dx, dw, db = cs231n.conv_relu_pool_backward(dout, cache)
    a = conv_forward_naive(x, w, b, CONV_PARAM)
    r = np.maximum(a, 0)
    assert_close(out, max_pool_forward_naive(r, POOL_PARAM), terms=_conv_terms(w), what="out")
    dr = max_pool_backward_naive(dout, r, POOL_PARAM)
    ex, ew, eb = conv_backward_naive(np.where(a > 0, dr, 0), x, w, CONV_PARAM)
    n_out = a.shape[0] * a.shape[2] * a.shape[3]
    assert_close(dx, ex, terms=4 * 9, what="dx")
    assert_close(dw, ew, terms=n_out, what="dw")
    assert_close(db, eb, terms=n_out, what="db")


def test_sandwiches_match_centered_differences():
    x, w, b = _sandwich_data(np.float64)

    def relu_backward(dout, x, w, b):
        return cs231n.conv_relu_backward(dout, cs231n.conv_relu_forward(x, w, b, CONV_PARAM)[1])

    check_grad(lambda x, w, b: cs231n.conv_relu_forward(x, w, b, CONV_PARAM), x, w, b,
               backward=relu_backward)

    def pool_backward(dout, x, w, b):
        cache = cs231n.conv_relu_pool_forward(x, w, b, CONV_PARAM, POOL_PARAM)[1]
        return cs231n.conv_relu_pool_backward(dout, cache)

    check_grad(lambda x, w, b: cs231n.conv_relu_pool_forward(x, w, b, CONV_PARAM, POOL_PARAM),
               x, w, b, backward=pool_backward)


# --------------------------------------------------------------------------- bad input

X, W, B = _sandwich_data(np.float32)


@pytest.mark.parametrize("conv_param, error, words", [
    ([1, 1], TypeError, "conv_param must be a dict"),
    ({"stride": 1}, ValueError, "conv_param lacks 'pad'"),
    ({"pad": 1}, ValueError, "conv_param lacks 'stride'"),
    ({"stride": 1, "pad": 1, "dilation": 2}, ValueError, "unknown key(s) 'dilation'"),
    ({"stride": 1.0, "pad": 1}, TypeError, "conv_param['stride'] must be an int, got float"),
    ({"stride": 1, "pad": "1"}, TypeError, "conv_param['pad'] must be an int, got str"),
    ({"stride": 0, "pad": 1}, ValueError, "conv_param['stride'] must be positive, got 0"),
    ({"stride": 1, "pad": -1}, ValueError, "conv_param['pad'] must be >= 0, got -1"),
])
@pytest.mark.parametrize("fn", ["conv_forward_fast", "conv_relu_forward",
                                "conv_relu_pool_forward"])
def test_bad_conv_param_is_refused(fn, conv_param, error, words):
    args = (X, W, B, conv_param) + ((POOL_PARAM,) if fn == "conv_relu_pool_forward" else ())
    with pytest.raises(error) as info:
        getattr(cs231n, fn)(*args)
    assert str(info.value).startswith(f"{fn}: ") and words in str(info.value)


@pytest.mark.parametrize("pool_param, error, words", [
    (None, TypeError, "pool_param must be a dict"),
    ({"pool_height": 2, "pool_width": 2}, ValueError, "pool_param lacks 'stride'"),
    ({"pool_height": 2, "stride": 2}, ValueError, "pool_param lacks 'pool_width'"),
    ({"pool_height": 2, "pool_width": 2, "stride": 2, "pad": 0}, ValueError,
     "unknown key(s) 'pad'"),
    ({"pool_height": (2, 2), "pool_width": 2, "stride": 2}, TypeError,
     "pool_param['pool_height'] must be an int, got tuple"),
    ({"pool_height": 2, "pool_width": 2.5, "stride": 2}, TypeError,
     "pool_param['pool_width'] must be an int, got float"),
    ({"pool_height": 0, "pool_width": 2, "stride": 2}, ValueError,
     "pool_param['pool_height'] must be positive, got 0"),
])
@pytest.mark.parametrize("fn", ["max_pool_forward_fast", "conv_relu_pool_forward"])
def test_bad_pool_param_is_refused(fn, pool_param, error, words):
    args = (X, pool_param) if fn == "max_pool_forward_fast" else (X, W, B, CONV_PARAM, pool_param)
    with pytest.raises(error) as info:
        getattr(cs231n, fn)(*args)
    assert str(info.value).startswith(f"{fn}: ") and words in str(info.value)


def test_a_window_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match="the 11x11 filter is larger than the padded input 10x10"):
        cs231n.conv_forward_fast(X, randn((4, 3, 11, 11), np.float32, 0), B, CONV_PARAM)
    with pytest.raises(ValueError, match="the 9x2 window is larger than the padded input 8x8"):
        cs231n.max_pool_forward_fast(X, {"pool_height": 9, "pool_width": 2, "stride": 2})


@pytest.mark.parametrize("call", [
    lambda x, w, b: cs231n.conv_forward_fast(x, w, b, CONV_PARAM),
    lambda x, w, b: cs231n.conv_relu_forward(x, w, b, CONV_PARAM),
    lambda x, w, b: cs231n.conv_relu_pool_forward(x, w, b, CONV_PARAM, POOL_PARAM),
])
@pytest.mark.parametrize("x, w, b", [
    (X.astype(np.int32), W, B),                  # integer images
    (X.tolist(), W, B),                          # a list
    (X[0], W, B),                                # one image, 3-D
    (X, W[:, :2], B),                            # channels disagree
    (X, W, B[:3]),                               # one bias too few
])
def test_bad_arrays_raise_what_fastconv_raises(call, x, w, b):
    with pytest.raises((TypeError, ValueError)) as expected:
        fc.conv2d(x, w, b, 1, 1)
    with pytest.raises(type(expected.value)) as info:
        call(x, w, b)
    assert str(info.value) == str(expected.value)


def test_bad_dout_and_cache_are_refused():
    out, cache = cs231n.conv_forward_fast(X, W, B, CONV_PARAM)
    with pytest.raises(ValueError, match=r"conv2d_backward: dout has shape \(2, 4, 8, 7\), "
                                         r"expected \(2, 4, 8, 8\)"):
        cs231n.conv_backward_fast(out[..., :7], cache)
    with pytest.raises(TypeError, match="cache must be the cache returned by conv_forward_fast "
                                        r"\(a tuple of 4\), got tuple of 2"):
        cs231n.conv_backward_fast(out, cache[:2])
    pooled, pool_cache = cs231n.max_pool_forward_fast(X, POOL_PARAM)
    with pytest.raises(TypeError, match="cache must be the cache returned by "
                                        "max_pool_forward_fast"):
        cs231n.max_pool_backward_fast(pooled, cache)
    with pytest.raises(TypeError, match="cache must be the cache returned by conv_relu_forward"):
        cs231n.conv_relu_backward(out, None)


# --------------------------------------------------------------------------- imports

@pytest.mark.slow
def test_import_rules_of_the_integrations():
    """``import fastconv`` (and its integrations package, cs231n, testing) imports no host
    library, and an integration whose host is missing names the extra to install."""
    script = textwrap.dedent("""
        import sys
        import fastconv, fastconv.integrations, fastconv.integrations.cs231n, fastconv.testing
        assert not {"autograd", "mygrad"} & set(sys.modules), sorted(sys.modules)
        for host in ("autograd", "mygrad"):
            sys.modules[host] = None  # as if not installed
            try:
                __import__(f"fastconv.integrations.{host}")
            except ImportError as err:
                assert f"pip install fastconv[{host}]" in str(err), err
            else:
                raise AssertionError(f"fastconv.integrations.{host} imported without {host}")
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


# --------------------------------------------------------------------------- affine


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_affine_layers_match_cs231n_definitions(dtype, backend):
    """CS231n's layers.affine_forward/backward (and layer_utils.affine_relu_*) written
    out in NumPy: out = x.reshape(N, -1) @ w + b, dx = dout @ w.T, dw = x2.T @ dout."""
    x = randn((5, 3, 4, 2), dtype, 1)
    w, b = randn((24, 7), dtype, 2), randn((7,), dtype, 3)
    dout = randn((5, 7), dtype, 4)
    x2 = x.reshape(5, -1).astype(np.float64)
    want = x2 @ w + b

    def like(a):  # the float64 definition, rounded to the result's dtype
        return np.asarray(a).astype(dtype)

    with fc.use_backend(backend):
        out, cache = cs231n.affine_forward(x, w, b)
        assert_close(out, like(want), terms=24, dtype=dtype)
        dx, dw, db = cs231n.affine_backward(dout, cache)
        assert dx.shape == x.shape
        dx_want = (dout.astype(np.float64) @ w.T).reshape(x.shape)
        assert_close(dx, like(dx_want), terms=7, dtype=dtype)
        assert_close(dw, like(x2.T @ dout), terms=5, dtype=dtype)
        assert_close(db, like(dout.sum(axis=0)), terms=5, dtype=dtype)
        out, cache = cs231n.affine_relu_forward(x, w, b)
        assert_close(out, like(np.maximum(want, 0)), terms=24, dtype=dtype)
        dx, dw, db = cs231n.affine_relu_backward(dout, cache)
        masked = np.where(want > 0, dout, 0)
        assert_close(dw, like(x2.T @ masked), terms=5, dtype=dtype)
        assert_close(db, like(masked.sum(axis=0)), terms=5, dtype=dtype)


def test_affine_layers_refuse_bad_input():
    x, w, b = np.zeros((2, 3)), np.zeros((3, 4)), np.zeros(4)
    with pytest.raises(ValueError, match="W has shape"):
        cs231n.affine_forward(x, np.zeros((5, 4)), b)
    with pytest.raises(TypeError, match="affine_backward: cache must be the cache returned by"):
        cs231n.affine_backward(np.zeros((2, 4)), (x, w))
    with pytest.raises(TypeError, match="affine_relu_backward: cache"):
        cs231n.affine_relu_backward(np.zeros((2, 4)), cs231n.affine_forward(x, w, b)[1])
