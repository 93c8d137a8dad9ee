"""max_pool2d / avg_pool2d, global_avg_pool2d / adaptive_avg_pool2d and their backward
passes: every backend against fastconv.reference (and PyTorch's adaptive pooling where it
is installed), gradients by centered differences, edge cases and every bad input
(tests/test_properties.py draws layouts and dtypes for them)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv import reference as ref
from fastconv.testing import assert_close, assert_matches_reference

from _support import BACKENDS, COMPILED, numeric_grad, randn

DTYPES = [np.float32, np.float64]

# (N, C, H, W), (pool_h, pool_w), stride, pad
CASES = [
    ((1, 1, 4, 4), (2, 2), None, 0),          # N=1, C=1, windows tile
    ((2, 3, 7, 9), (2, 2), None, 0),          # 2x2 fast path, odd H and W
    ((2, 3, 8, 8), (3, 3), 1, 0),             # overlap: stride < window
    ((2, 3, 7, 6), (3, 2), (2, 1), (1, 1)),   # stride and pad pairs, overlap along W
    ((2, 2, 9, 7), (3, 3), 2, 1),             # windows that do not tile, padding
    ((1, 2, 5, 5), (5, 5), None, 0),          # one window covers the input
    ((2, 2, 6, 5), (2, 3), (1, 2), (1, 0)),   # pad along H only
    ((3, 2, 10, 10), (4, 4), 3, 2),           # pad = half the window
    ((2, 1, 6, 6), (2, 2), 2, 1),             # 2x2 stride 2 but padded: general path
    ((100, 16, 28, 28), (2, 2), None, 0),     # DeepConvNet's first pooling
]



def _each_case(test):
    """Parametrize a comparison with the reference over COMPILED x DTYPES x CASES."""
    test = pytest.mark.parametrize("shape,pool,stride,pad", CASES)(test)
    test = pytest.mark.parametrize("dtype", DTYPES)(test)
    return pytest.mark.parametrize("backend", COMPILED)(test)


def _in_bounds(arg, x_shape, pool, stride, pad):
    """Whether every argmax names a cell inside the input (not padding)."""
    kh, kw = pool
    sh, sw = (kh, kw) if stride is None else ((stride, stride) if np.isscalar(stride) else stride)
    ph, pw = (pad, pad) if np.isscalar(pad) else pad
    OH, OW = arg.shape[2:]
    y = np.arange(OH)[:, None] * sh - ph + arg // kw
    x = np.arange(OW)[None, :] * sw - pw + arg % kw
    return bool(np.all((y >= 0) & (y < x_shape[2]) & (x >= 0) & (x < x_shape[3])))


# --------------------------------------------------------------------------- max forward


@_each_case
def test_max_pool_matches_reference(backend, dtype, shape, pool, stride, pad):
    x = randn(shape, dtype)
    exp_out, exp_arg = ref.max_pool2d(x, *pool, stride, pad)
    out, arg = fc.max_pool2d(x, *pool, stride=stride, pad=pad, backend=backend)
    assert out.dtype == dtype and arg.dtype == np.int32
    assert out.shape == arg.shape == exp_out.shape
    np.testing.assert_array_equal(out, exp_out)
    np.testing.assert_array_equal(arg, exp_arg)
    assert _in_bounds(arg, shape, pool, stride, pad)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reference_max_pool_is_the_books_without_padding(backend):
    # Unpadded, the book's Pooling.forward: im2col, rows of pool_h*pool_w, max.
    x = randn((2, 3, 6, 8), np.float64, seed=3)
    col = ref.im2col(x, 2, 2, 2, 0).reshape(-1, 4)
    book = np.max(col, axis=1).reshape(2, 3, 4, 3).transpose(0, 3, 1, 2)
    out, _ = fc.max_pool2d(x, 2, 2, backend=backend)
    np.testing.assert_array_equal(out, book)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_ties_go_to_the_first(backend):
    x = np.array([[[[1., 1., 0., 2.],
                    [1., 1., 2., 1.],
                    [5., 3., -1., -1.],
                    [5., 5., -1., -1.]]]], dtype=np.float32)
    out, arg = fc.max_pool2d(x, 2, 2, backend=backend)
    np.testing.assert_array_equal(out[0, 0], [[1, 2], [5, -1]])
    np.testing.assert_array_equal(arg[0, 0], [[0, 1], [0, 0]])
    # Overlapping 3x3 windows over constant input: every winner is the window's corner.
    out, arg = fc.max_pool2d(np.full((1, 2, 5, 5), 7.0), 3, 3, stride=1, backend=backend)
    assert np.all(out == 7.0) and np.all(arg == 0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pool,stride,pad", [((2, 2), None, 0), ((3, 3), 1, 1), ((3, 2), (2, 1), (1, 1))])
def test_max_pool_nan_propagates_to_the_first_nan(backend, dtype, pool, stride, pad):
    x = randn((2, 2, 6, 6), dtype, seed=1)
    x[0, 0, 0, 1] = np.nan
    x[0, 0, 1, 0] = np.nan     # second NaN in the same 2x2 window
    x[1, 1, 3, 3] = np.nan
    x[1, 1, 2, 2] = 100.0      # a large value before the NaN in the window
    exp_out, exp_arg = ref.max_pool2d(x, *pool, stride, pad)
    out, arg = fc.max_pool2d(x, *pool, stride=stride, pad=pad, backend=backend)
    np.testing.assert_array_equal(out, exp_out)      # NaN == NaN for array_equal
    np.testing.assert_array_equal(arg, exp_arg)
    assert np.isnan(out).sum() >= 2
    if pool == (2, 2):
        assert np.isnan(out[0, 0, 0, 0]) and arg[0, 0, 0, 0] == 1
        assert np.isnan(out[1, 1, 1, 1]) and arg[1, 1, 1, 1] == 3


def test_reference_argmax_points_at_first_nan():
    # np.argmax returns the first NaN: the behaviour the kernels copy.
    x = np.array([[[[3.0, np.nan], [np.nan, 9.0]]]])
    out, arg = ref.max_pool2d(x, 2, 2)
    assert np.isnan(out[0, 0, 0, 0]) and arg[0, 0, 0, 0] == 1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fill", [-1.0, -np.inf])
def test_max_pool_padding_never_wins(backend, dtype, fill):
    shape = (2, 3, 5, 6)
    x = np.full(shape, fill, dtype=dtype)
    if fill == -1.0:
        x -= np.random.default_rng(2).random(shape).astype(dtype)   # all negative
    for pool, stride, pad in [((3, 3), 1, 1), ((2, 2), 2, 1), ((4, 2), (1, 2), (2, 1))]:
        out, arg = fc.max_pool2d(x, *pool, stride=stride, pad=pad, backend=backend)
        assert np.all(out < 0), "a zero from the padding won"
        assert _in_bounds(arg, shape, pool, stride, pad)
        exp_out, exp_arg = ref.max_pool2d(x, *pool, stride, pad)
        np.testing.assert_array_equal(out, exp_out)
        np.testing.assert_array_equal(arg, exp_arg)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_float16_computes_in_float32(backend):
    x = randn((2, 3, 6, 6), np.float16)
    out, arg = fc.max_pool2d(x, 3, 3, stride=1, pad=1, backend=backend)
    exp_out, exp_arg = ref.max_pool2d(x.astype(np.float32), 3, 3, 1, 1)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, exp_out.astype(np.float16))
    np.testing.assert_array_equal(arg, exp_arg)
    d = randn(out.shape, np.float16, seed=1)
    dx = fc.max_pool2d_backward(d, arg, x.shape, 3, 3, stride=1, pad=1, backend=backend)
    assert dx.dtype == np.float16
    assert_close(dx.astype(np.float32),
                 ref.max_pool2d_backward(d.astype(np.float32), arg, x.shape, 3, 3, 1, 1),
                 dtype=np.float16)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_non_contiguous_input(backend):
    base = randn((3, 4, 10, 12), np.float64)
    for x in (base[:, ::2, ::-1, 1::2], np.asfortranarray(base), base.transpose(0, 1, 3, 2)):
        assert not x.flags.c_contiguous
        exp_out, exp_arg = ref.max_pool2d(np.ascontiguousarray(x), 2, 2, None, 0)
        out, arg = fc.max_pool2d(x, 2, 2, backend=backend)
        np.testing.assert_array_equal(out, exp_out)
        np.testing.assert_array_equal(arg, exp_arg)


# --------------------------------------------------------------------------- max backward


@_each_case
def test_max_pool_backward_matches_reference(backend, dtype, shape, pool, stride, pad):
    x = randn(shape, dtype)
    _, arg = ref.max_pool2d(x, *pool, stride, pad)
    d = randn(arg.shape, dtype, seed=1)
    expected = ref.max_pool2d_backward(d, arg, shape, *pool, stride, pad)
    dx = fc.max_pool2d_backward(d, arg, shape, *pool, stride=stride, pad=pad, backend=backend)
    assert dx.dtype == dtype and dx.shape == shape
    assert_close(dx, expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape,pool,stride,pad", CASES[:-1])
def test_max_pool_backward_any_argmax_in_range(backend, shape, pool, stride, pad):
    # Arbitrary in-range argmax, padded cells included (they add nothing), and the
    # integer dtypes a user may hold it in.
    x = randn(shape, np.float64)
    out, _ = ref.max_pool2d(x, *pool, stride, pad)
    rng = np.random.default_rng(4)
    arg = rng.integers(0, pool[0] * pool[1], size=out.shape)
    d = randn(out.shape, np.float64, seed=5)
    expected = ref.max_pool2d_backward(d, arg, shape, *pool, stride, pad)
    for a in (arg, arg.astype(np.uint8), arg.astype(np.int16)):
        dx = fc.max_pool2d_backward(d, a, shape, *pool, stride=stride, pad=pad, backend=backend)
        assert_close(dx, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_backward_overlap_sums(backend):
    # One maximum covered by all four 3x3 stride-1 windows of a 4x4 input.
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 2] = 5.0
    out, arg = fc.max_pool2d(x, 3, 3, stride=1, backend=backend)
    assert np.all(out == 5.0)
    d = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    dx = fc.max_pool2d_backward(d, arg, x.shape, 3, 3, stride=1, backend=backend)
    expected = np.zeros_like(x)
    expected[0, 0, 1, 2] = 10.0
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_backward_non_contiguous(backend):
    x = randn((2, 3, 8, 8), np.float64)
    out, arg = fc.max_pool2d(x, 3, 3, stride=1, pad=1, backend=backend)
    d = np.asfortranarray(randn(out.shape, np.float64, seed=1))
    arg_view = np.asfortranarray(arg.astype(np.int64))
    expected = ref.max_pool2d_backward(np.ascontiguousarray(d), arg, x.shape, 3, 3, 1, 1)
    dx = fc.max_pool2d_backward(d, arg_view, x.shape, 3, 3, stride=1, pad=1, backend=backend)
    assert_close(dx, expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pool,stride,pad", [((2, 2), None, 0), ((3, 3), 1, 1), ((3, 2), (2, 1), (1, 1))])
def test_max_pool_gradient_by_finite_differences(backend, pool, stride, pad):
    # Tie-free input, values at least 1 apart: a step of 1e-4 never changes a winner.
    shape = (2, 2, 5, 6)
    x = np.random.default_rng(6).permutation(np.prod(shape)).reshape(shape).astype(np.float64)
    out, arg = fc.max_pool2d(x, *pool, stride=stride, pad=pad, backend=backend)
    r = randn(out.shape, np.float64, seed=7)

    def loss():
        return float(np.sum(fc.max_pool2d(x, *pool, stride=stride, pad=pad, backend=backend)[0] * r))

    dx = fc.max_pool2d_backward(r, arg, shape, *pool, stride=stride, pad=pad, backend=backend)
    np.testing.assert_allclose(dx, numeric_grad(loss, x, 1e-4), rtol=1e-7, atol=1e-9)


# --------------------------------------------------------------------------- average


@_each_case
def test_avg_pool_matches_reference(backend, dtype, shape, pool, stride, pad):
    x = randn(shape, dtype)
    out = fc.avg_pool2d(x, *pool, stride=stride, pad=pad, backend=backend)
    assert out.dtype == dtype
    assert_close(out, ref.avg_pool2d(x, *pool, stride, pad))
    d = randn(out.shape, dtype, seed=1)
    dx = fc.avg_pool2d_backward(d, shape, *pool, stride=stride, pad=pad, backend=backend)
    assert dx.dtype == dtype and dx.shape == shape
    assert_close(dx, ref.avg_pool2d_backward(d, shape, *pool, stride, pad))


@pytest.mark.parametrize("backend", BACKENDS)
def test_avg_pool_counts_padding_as_zeros(backend):
    x = np.ones((1, 1, 3, 3))
    out = fc.avg_pool2d(x, 2, 2, stride=2, pad=1, backend=backend)
    # Corner windows hold one real cell, edge windows two: divided by 4 all the same.
    np.testing.assert_allclose(out[0, 0], [[0.25, 0.5], [0.5, 1.0]])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pool,stride,pad", [((2, 2), None, 0), ((3, 3), 1, 1), ((3, 2), (2, 1), (1, 1))])
def test_avg_pool_gradient_by_finite_differences(backend, pool, stride, pad):
    shape = (2, 2, 5, 6)
    x = randn(shape, np.float64, seed=8)
    r = randn(fc.avg_pool2d(x, *pool, stride=stride, pad=pad).shape, np.float64, seed=9)

    def loss():
        return float(np.sum(fc.avg_pool2d(x, *pool, stride=stride, pad=pad, backend=backend) * r))

    dx = fc.avg_pool2d_backward(r, shape, *pool, stride=stride, pad=pad, backend=backend)
    np.testing.assert_allclose(dx, numeric_grad(loss, x, 1e-5), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_avg_pool_float16_and_non_contiguous(backend):
    x = randn((2, 3, 8, 8), np.float16)[:, :, ::-1]
    out = fc.avg_pool2d(x, 3, 3, stride=2, pad=1, backend=backend)
    assert out.dtype == np.float16
    assert_close(out.astype(np.float32),
                 ref.avg_pool2d(np.ascontiguousarray(x, dtype=np.float32), 3, 3, 2, 1),
                 dtype=np.float16)


# --------------------------------------------------------------------------- properties


@st.composite
def _geometry(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    H = draw(st.integers(max(1, kh - 2 * ph), 9))
    W = draw(st.integers(max(1, kw - 2 * pw), 9))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (N, C, H, W), (kh, kw), stride, (ph, pw)


@settings(max_examples=25, deadline=None)
@given(geom=_geometry(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_pool_property_every_backend_matches_reference(geom, dtype, seed):
    shape, pool, stride, pad = geom
    # Few distinct values: ties are common.
    x = np.random.default_rng(seed).integers(-3, 3, size=shape).astype(dtype)
    exp_out, exp_arg = ref.max_pool2d(x, *pool, stride, pad)
    d = randn(exp_out.shape, dtype, seed=seed)
    exp_dx = ref.max_pool2d_backward(d, exp_arg, shape, *pool, stride, pad)
    exp_avg = ref.avg_pool2d(x, *pool, stride, pad)
    exp_davg = ref.avg_pool2d_backward(d, shape, *pool, stride, pad)
    for backend in BACKENDS:
        out, arg = fc.max_pool2d(x, *pool, stride=stride, pad=pad, backend=backend)
        np.testing.assert_array_equal(out, exp_out)
        np.testing.assert_array_equal(arg, exp_arg)
        dx = fc.max_pool2d_backward(d, arg, shape, *pool, stride=stride, pad=pad, backend=backend)
        assert_close(dx, exp_dx)
        assert_close(fc.avg_pool2d(x, *pool, stride=stride, pad=pad, backend=backend), exp_avg)
        assert_close(fc.avg_pool2d_backward(d, shape, *pool, stride=stride, pad=pad,
                                            backend=backend), exp_davg)


# --------------------------------------------------------------------------- validation

X = np.zeros((2, 3, 6, 6), dtype=np.float32)


@pytest.mark.parametrize("op", [fc.max_pool2d, fc.avg_pool2d])
@pytest.mark.parametrize("args,kwargs,err,match", [
    ((X, 0, 2), {}, ValueError, "pool_h must be positive"),
    ((X, 2, 0), {}, ValueError, "pool_w must be positive"),
    ((X, 2.0, 2), {}, TypeError, "pool_h must be an int"),
    ((X, 7, 2), {}, ValueError, "larger than the padded input"),
    ((X, 2, 9), dict(pad=1), ValueError, "larger than the padded input"),
    ((X, 2, 2), dict(pad=2), ValueError, "more than half"),
    ((X, 3, 4), dict(pad=(2, 1)), ValueError, "more than half"),
    ((X, 2, 2), dict(stride=0), ValueError, "stride must be positive"),
    ((X, 2, 2), dict(stride=(1, 2, 3)), ValueError, "stride must be an int or an"),
    ((X, 2, 2), dict(pad=-1), ValueError, "pad must be >= 0"),
    ((X[0], 2, 2), {}, ValueError, "needs 4 dimensions"),
    ((X.astype(np.int32), 2, 2), {}, TypeError, "dtype int32"),
    ((X.tolist(), 2, 2), {}, TypeError, "must be a NumPy ndarray"),
    ((X[:0], 2, 2), {}, ValueError, "no elements"),
])
def test_pool_forward_rejects(op, args, kwargs, err, match):
    with pytest.raises(err, match=match):
        op(*args, **kwargs)


def _max_backward_args():
    out, arg = fc.max_pool2d(X, 2, 2)
    return out, arg


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("change,err,match", [
    (dict(argmax=np.zeros((2, 3, 3, 2), np.int32)), ValueError, r"argmax has shape \(2, 3, 3, 2\)"),
    (dict(argmax=np.zeros((2, 3, 3, 3), np.float32)), TypeError, "argmax has dtype float32"),
    (dict(argmax=np.zeros((2, 3, 3, 3), bool)), TypeError, "argmax has dtype bool"),
    (dict(argmax=[[0]]), TypeError, "argmax must be a NumPy ndarray"),
    (dict(argmax=np.full((2, 3, 3, 3), 4, np.int64)), ValueError, r"values in \[4, 4\], expected them in \[0, 3\]"),
    (dict(argmax=np.full((2, 3, 3, 3), -1, np.int64)), ValueError, r"expected them in \[0, 3\]"),
    (dict(argmax=np.full((2, 3, 3, 3), 2**40, np.int64)), ValueError, "expected them in"),
    (dict(dout=np.zeros((2, 3, 3, 2), np.float32)), ValueError, r"dout has shape \(2, 3, 3, 2\), expected \(2, 3, 3, 3\)"),
    (dict(dout=np.zeros((2, 3, 9), np.float32)), ValueError, "needs 4 dimensions"),
    (dict(dout=np.zeros((2, 3, 3, 3), np.int64)), TypeError, "dtype int64"),
    (dict(x_shape=(2, 3, 6)), ValueError, "x_shape must be a tuple of 4 ints"),
    (dict(x_shape=(2, 3, 8, 6)), ValueError, r"dout has shape .* expected \(2, 3, 4, 3\)"),
    (dict(x_shape=(2, 3, 1, 6)), ValueError, "larger than the padded input"),
    (dict(pool_h=0), ValueError, "pool_h must be positive"),
    (dict(pad=2), ValueError, "more than half"),
])
def test_max_pool_backward_rejects(backend, change, err, match):
    out, arg = _max_backward_args()
    kwargs = dict(dout=out, argmax=arg, x_shape=X.shape, pool_h=2, pool_w=2, stride=None, pad=0)
    kwargs.update(change)
    with pytest.raises(err, match=match):
        fc.max_pool2d_backward(**kwargs, backend=backend)


@pytest.mark.parametrize("change,err,match", [
    (dict(dout=np.zeros((2, 3, 2, 3), np.float32)), ValueError, r"dout has shape \(2, 3, 2, 3\)"),
    (dict(dout=np.zeros((2, 3, 3, 3), np.int8)), TypeError, "dtype int8"),
    (dict(x_shape=(2, 3, 6, 0)), ValueError, "x_shape"),
    (dict(pool_w=7), ValueError, "larger than the padded input"),
    (dict(pad=(0, 2)), ValueError, "more than half"),
])
def test_avg_pool_backward_rejects(change, err, match):
    kwargs = dict(dout=np.zeros((2, 3, 3, 3), np.float32), x_shape=X.shape, pool_h=2, pool_w=2)
    kwargs.update(change)
    with pytest.raises(err, match=match):
        fc.avg_pool2d_backward(**kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("W", [4, 5, 34])
def test_max_pool_2x2_every_window_of_ties_and_nan(backend, dtype, W):
    """Every 2x2 window of values from {0, 1, NaN} (81 of them), laid side by side in
    rows of ``W`` columns (odd: a last column in no window; 34: long rows, the vectorized
    float32 pass), against the reference: the first maximum in row-major order wins,
    the first NaN beats everything."""
    import itertools

    cells = np.array(list(itertools.product([0.0, 1.0, np.nan], repeat=4)), dtype)
    per_row = W // 2
    rows = -(-len(cells) // per_row)
    x = np.full((1, 1, 2 * rows, W), -5.0, dtype)
    for k, (a, b, c, d) in enumerate(cells):
        oy, ox = divmod(k, per_row)
        x[0, 0, 2 * oy:2 * oy + 2, 2 * ox:2 * ox + 2] = [[a, b], [c, d]]
    out, arg = fc.max_pool2d(x, 2, 2, 2, backend=backend)
    want, want_arg = ref.max_pool2d(x, 2, 2, 2)
    np.testing.assert_array_equal(arg, want_arg)
    np.testing.assert_array_equal(out, want)


# --------------------------------------------------------------------------- global, adaptive

ADAPTIVE_DTYPES = [np.float16, np.float32, np.float64]

# (N, C, H, W), output_size
ADAPTIVE_CASES = [
    ((1, 1, 1, 1), 1),            # a 1x1 image, batch 1
    ((1, 3, 1, 1), (4, 3)),       # 1x1 image to a larger output: every bin is the cell
    ((2, 3, 7, 7), 7),            # output size equal to the input: the identity
    ((2, 3, 7, 5), (3, 2)),       # bins that do not tile and overlap
    ((2, 2, 5, 9), (9, 12)),      # output larger than the input along both axes
    ((3, 4, 8, 8), (4, 2)),       # bins that tile
    ((1, 2, 6, 11), (1, 5)),      # one row of bins
    ((4, 16, 14, 14), 1),         # global, as adaptive
]
GLOBAL_SHAPES = [(1, 1, 1, 1), (1, 3, 5, 1), (2, 3, 7, 9), (4, 16, 28, 28), (2, 2, 1, 13)]


@pytest.mark.parametrize("dtype", ADAPTIVE_DTYPES)
@pytest.mark.parametrize("shape,size", ADAPTIVE_CASES)
def test_adaptive_matches_reference(dtype, shape, size):
    x = randn(shape, dtype)
    out = fc.adaptive_avg_pool2d(x, size)
    assert out.dtype == dtype
    oh, ow = (size, size) if np.isscalar(size) else size
    assert out.shape == shape[:2] + (oh, ow)
    assert_matches_reference(fc.adaptive_avg_pool2d, x, size)
    d = randn(out.shape, dtype, seed=1)
    assert_matches_reference(fc.adaptive_avg_pool2d_backward, d, shape, size)


@pytest.mark.parametrize("dtype", ADAPTIVE_DTYPES)
@pytest.mark.parametrize("shape", GLOBAL_SHAPES)
def test_global_matches_reference(dtype, shape):
    x = randn(shape, dtype)
    out = fc.global_avg_pool2d(x)
    assert out.dtype == dtype and out.shape == shape[:2] + (1, 1)
    assert_matches_reference(fc.global_avg_pool2d, x)
    d = randn(out.shape, dtype, seed=1)
    assert_matches_reference(fc.global_avg_pool2d_backward, d, shape)


@pytest.mark.parametrize("backend", BACKENDS)
def test_global_is_the_plane_mean_and_adaptive_of_one(backend):
    x = randn((3, 4, 6, 5), np.float64, seed=2)
    out = fc.global_avg_pool2d(x, backend=backend)
    np.testing.assert_allclose(out[:, :, 0, 0], x.mean(axis=(2, 3)), rtol=1e-14)
    np.testing.assert_allclose(out, fc.adaptive_avg_pool2d(x, 1, backend=backend), rtol=1e-14)
    d = randn(out.shape, np.float64, seed=3)
    dx = fc.global_avg_pool2d_backward(d, x.shape, backend=backend)
    np.testing.assert_allclose(dx, np.broadcast_to(d / 30, x.shape), rtol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_adaptive_bins_are_pytorchs(backend):
    """Bin i spans [floor(i*H/OH), ceil((i+1)*H/OH)): for H = 5 and OH = 3 the rows
    [0, 2), [1, 4), [3, 5), overlapping; with OH = 2H each row makes two bins."""
    x = np.arange(5.0)[None, None, :, None] * np.ones((1, 1, 5, 2))
    out = fc.adaptive_avg_pool2d(x, (3, 1), backend=backend)
    np.testing.assert_allclose(out[0, 0, :, 0], [0.5, 2.0, 3.5])
    dx = fc.adaptive_avg_pool2d_backward(np.ones((1, 1, 3, 1)), x.shape, (3, 1),
                                         backend=backend)
    # row 1 lies in two bins of 2x2 and 3x2 cells, row 2 in the 3x2 one only
    np.testing.assert_allclose(dx[0, 0, :, 0], [1 / 4, 1 / 4 + 1 / 6, 1 / 6, 1 / 6 + 1 / 4, 1 / 4])
    up = fc.adaptive_avg_pool2d(x, (10, 2), backend=backend)
    np.testing.assert_array_equal(up[0, 0, :, 0], np.repeat(np.arange(5.0), 2))


@pytest.mark.parametrize("backend", BACKENDS)
def test_adaptive_to_the_input_size_is_the_identity(backend):
    x = randn((2, 3, 5, 7), np.float32)
    np.testing.assert_array_equal(fc.adaptive_avg_pool2d(x, (5, 7), backend=backend), x)
    np.testing.assert_array_equal(
        fc.adaptive_avg_pool2d_backward(x, x.shape, (5, 7), backend=backend), x)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape,size", [((2, 2, 5, 6), (3, 4)), ((1, 2, 3, 2), (5, 3)),
                                        ((2, 1, 4, 4), 2)])
def test_adaptive_gradient_by_finite_differences(backend, shape, size):
    x = randn(shape, np.float64, seed=4)
    r = randn(ref.adaptive_avg_pool2d(x, size).shape, np.float64, seed=5)

    def loss():
        return float(np.sum(fc.adaptive_avg_pool2d(x, size, backend=backend) * r))

    dx = fc.adaptive_avg_pool2d_backward(r, shape, size, backend=backend)
    np.testing.assert_allclose(dx, numeric_grad(loss, x, 1e-5), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_global_gradient_by_finite_differences(backend):
    x = randn((2, 3, 4, 5), np.float64, seed=6)
    r = randn((2, 3, 1, 1), np.float64, seed=7)

    def loss():
        return float(np.sum(fc.global_avg_pool2d(x, backend=backend) * r))

    dx = fc.global_avg_pool2d_backward(r, x.shape, backend=backend)
    np.testing.assert_allclose(dx, numeric_grad(loss, x, 1e-5), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_adaptive_non_contiguous_input(backend):
    base = randn((3, 4, 10, 12), np.float64)
    for x in (base[:, ::2, ::-1, 1::2], np.asfortranarray(base)):
        assert not x.flags.c_contiguous
        want = ref.adaptive_avg_pool2d(np.ascontiguousarray(x), (3, 4))
        assert_close(fc.adaptive_avg_pool2d(x, (3, 4), backend=backend), want, 12)
        d = np.asfortranarray(randn(want.shape, np.float64, seed=1))
        assert_close(fc.adaptive_avg_pool2d_backward(d, x.shape, (3, 4), backend=backend),
                     ref.adaptive_avg_pool2d_backward(np.ascontiguousarray(d), x.shape, (3, 4)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,size", ADAPTIVE_CASES)
def test_adaptive_against_pytorch(dtype, shape, size):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: "
                                "F.adaptive_avg_pool2d is the semantics compared with")
    x = randn(shape, dtype)
    xt = torch.from_numpy(x).requires_grad_(True)
    out_t = torch.nn.functional.adaptive_avg_pool2d(xt, size)
    d = randn(tuple(out_t.shape), dtype, seed=1)
    (dx_t,) = torch.autograd.grad(out_t, (xt,), torch.from_numpy(d))
    # upper bounds of the cells in a bin and of the bins over a cell
    area, bins = shape[2] * shape[3], d.shape[2] * d.shape[3]
    for backend in BACKENDS:
        assert_close(fc.adaptive_avg_pool2d(x, size, backend=backend),
                     out_t.detach().numpy(), area)
        assert_close(fc.adaptive_avg_pool2d_backward(d, shape, size, backend=backend),
                     dx_t.numpy(), bins)
        if size == 1:
            assert_close(fc.global_avg_pool2d(x, backend=backend), out_t.detach().numpy(),
                         area)


@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_global_avg_pool(backend):
    x = randn((4, 8, 5, 5), np.float32)
    d = randn((4, 8, 1, 1), np.float32, seed=1)
    layer = fc.layers.GlobalAvgPool()
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(d)
    with fc.use_backend(backend):
        out = layer.forward(x)
        dx = layer.backward(d)
    assert out.dtype == dx.dtype == np.float32
    assert_close(out, ref.global_avg_pool2d(x), 25)
    assert_close(dx, ref.global_avg_pool2d_backward(d, x.shape))
    assert repr(layer) == "GlobalAvgPool()"


@pytest.mark.parametrize("call,err,match", [
    (lambda: fc.adaptive_avg_pool2d(X, 0), ValueError, "output_size must be positive, got 0"),
    (lambda: fc.adaptive_avg_pool2d(X, (2, 0)), ValueError, r"output_size\[1\] must be positive"),
    (lambda: fc.adaptive_avg_pool2d(X, (2, 2, 2)), ValueError, r"an int or an \(h, w\) pair"),
    (lambda: fc.adaptive_avg_pool2d(X, None), TypeError, "output_size must be an int"),
    (lambda: fc.adaptive_avg_pool2d(X, 2.0), TypeError, "output_size must be an int"),
    (lambda: fc.adaptive_avg_pool2d(X[0], 2), ValueError, "needs 4 dimensions"),
    (lambda: fc.global_avg_pool2d(X.astype(np.int32)), TypeError, "dtype int32"),
    (lambda: fc.global_avg_pool2d(X[:0]), ValueError, "no elements"),
    (lambda: fc.global_avg_pool2d_backward(X, X.shape), ValueError,
     r"dout has shape \(2, 3, 6, 6\), expected \(2, 3, 1, 1\)"),
    (lambda: fc.adaptive_avg_pool2d_backward(X[:, :, :3, :3], X.shape, (3, 2)), ValueError,
     r"dout has shape \(2, 3, 3, 3\), expected \(2, 3, 3, 2\).*output_size \(3, 2\)"),
    (lambda: fc.adaptive_avg_pool2d_backward(X[:, :, :3, :2], (2, 3, 6), (3, 2)), ValueError,
     "x_shape must be a tuple of 4 ints"),
])
def test_global_and_adaptive_reject(call, err, match):
    with pytest.raises(err, match=match):
        call()
