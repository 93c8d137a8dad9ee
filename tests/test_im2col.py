"""im2col / col2im: every backend against fastconv.reference, and every bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv import reference as ref
from fastconv.testing import assert_close

from _support import BACKENDS, COMPILED, TOL, randn

DTYPES = [np.float32, np.float64]

# (N, C, H, W), (filter_h, filter_w), stride, pad
CASES = [
    ((1, 1, 5, 5), (3, 3), 1, 0),          # N=1, C=1
    ((2, 3, 7, 6), (3, 2), (2, 1), 1),     # non-square filter, stride pair
    ((3, 2, 8, 8), (1, 1), 1, 0),          # 1x1 filter
    ((2, 4, 9, 7), (3, 3), 2, 1),          # windows that do not tile (odd sizes, stride 2)
    ((1, 2, 10, 11), (4, 3), 3, 2),        # stride 3, pad 2
    ((2, 3, 5, 5), (5, 5), 1, 0),          # output of size 1x1
    ((2, 2, 4, 4), (3, 3), 1, (2, 0)),     # pad pair, pad bigger than needed
    ((100, 16, 28, 28), (3, 3), 1, 1),     # DeepConvNet's second conv
]



@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,filt,stride,pad", CASES)
def test_im2col_matches_reference(backend, dtype, shape, filt, stride, pad):
    x = randn(shape, dtype)
    expected = ref.im2col(x, *filt, stride, pad)
    col = fc.im2col(x, *filt, stride=stride, pad=pad, backend=backend)
    assert col.dtype == dtype and col.flags.c_contiguous
    assert_close(col, expected)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,filt,stride,pad", CASES)
@pytest.mark.parametrize("shift", [0, 1])
def test_im2col_into_out_matches_reference(backend, dtype, shape, filt, stride, pad, shift):
    """Into ``out=`` the kernels stream whole vectors where a block of col is aligned and
    copy the rest with plain stores; ``shift`` moves ``out`` off that alignment."""
    x = randn(shape, dtype)
    expected = ref.im2col(x, *filt, stride, pad)
    out = np.full(expected.size + shift, np.nan, dtype)[shift:].reshape(expected.shape)
    assert fc.im2col(x, *filt, stride=stride, pad=pad, out=out, backend=backend) is out
    assert_close(out, expected)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,filt,stride,pad", CASES)
def test_col2im_matches_reference(backend, dtype, shape, filt, stride, pad):
    expected_shape = ref.im2col(np.zeros(shape), *filt, stride, pad).shape
    col = randn(expected_shape, dtype, seed=1)
    expected = ref.col2im(col, shape, *filt, stride, pad)
    img = fc.col2im(col, shape, *filt, stride=stride, pad=pad, backend=backend)
    assert img.shape == shape and img.dtype == dtype
    assert_close(img, expected)


def test_reference_matches_definition():
    """The reference itself against the layout written out element by element."""
    x = randn((2, 3, 5, 4), np.float64)
    kh, kw, (sh, sw), (ph, pw) = 3, 2, (2, 1), (1, 2)
    col = ref.im2col(x, kh, kw, (sh, sw), (ph, pw))
    xp = np.pad(x, [(0, 0), (0, 0), (ph, ph), (pw, pw)])
    OH, OW = (5 + 2 * ph - kh) // sh + 1, (4 + 2 * pw - kw) // sw + 1
    for n in range(2):
        for oy in range(OH):
            for ox in range(OW):
                window = xp[n, :, oy * sh:oy * sh + kh, ox * sw:ox * sw + kw]
                np.testing.assert_array_equal(col[(n * OH + oy) * OW + ox], window.ravel())


@pytest.mark.parametrize("backend", BACKENDS)
def test_col2im_is_adjoint_of_im2col(backend):
    """<im2col(x), c> == <x, col2im(c)>: col2im sums overlapping windows."""
    x = randn((2, 3, 6, 5), np.float64)
    col = fc.im2col(x, 3, 3, stride=1, pad=1, backend=backend)
    c = randn(col.shape, np.float64, seed=3)
    lhs = np.vdot(col, c)
    rhs = np.vdot(x, fc.col2im(c, x.shape, 3, 3, stride=1, pad=1, backend=backend))
    assert lhs == pytest.approx(rhs, rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_layouts_are_copied_once(backend):
    base = randn((2, 3, 8, 10), np.float64)
    views = {
        "fortran": np.asfortranarray(base),
        "negative stride": base[:, :, ::-1, ::-1],
        "strided": base[:, :, ::2, ::2],
    }
    for name, view in views.items():
        expected = ref.im2col(np.ascontiguousarray(view), 3, 3, 1, 1)
        assert_close(fc.im2col(view, 3, 3, stride=1, pad=1, backend=backend), expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float16_computed_in_float32(backend):
    x = randn((2, 2, 6, 6), np.float16)
    col = fc.im2col(x, 3, 3, pad=1, backend=backend)
    assert col.dtype == np.float16
    np.testing.assert_array_equal(col, ref.im2col(x.astype(np.float32), 3, 3, 1, 1).astype(np.float16))
    img = fc.col2im(col, x.shape, 3, 3, pad=1, backend=backend)
    assert img.dtype == np.float16
    expected = ref.col2im(col.astype(np.float32), x.shape, 3, 3, 1, 1)
    assert_close(img.astype(np.float32), expected, dtype=np.float16)


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_workspace_is_filled_and_returned(backend):
    x = randn((2, 3, 6, 6), np.float32)
    out = np.full((2 * 36, 27), np.nan, dtype=np.float32)
    col = fc.im2col(x, 3, 3, pad=1, out=out, backend=backend)
    assert col is out
    assert_close(out, ref.im2col(x, 3, 3, 1, 1))
    img_out = np.full(x.shape, np.nan, dtype=np.float32)
    img = fc.col2im(out, x.shape, 3, 3, pad=1, out=img_out, backend=backend)
    assert img is img_out
    assert_close(img_out, ref.col2im(out, x.shape, 3, 3, 1, 1))


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 3), c=st.integers(1, 4), h=st.integers(1, 9), w=st.integers(1, 9),
    kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3),
    ph=st.integers(0, 2), pw=st.integers(0, 2), dtype=st.sampled_from(DTYPES),
)
def test_hypothesis_shapes(n, c, h, w, kh, kw, sh, sw, ph, pw, dtype):
    if kh > h + 2 * ph or kw > w + 2 * pw:
        with pytest.raises(ValueError, match="larger than the padded input"):
            fc.im2col(np.zeros((n, c, h, w), dtype), kh, kw, stride=(sh, sw), pad=(ph, pw))
        return
    x = randn((n, c, h, w), dtype)
    expected = ref.im2col(x, kh, kw, (sh, sw), (ph, pw))
    cols = np.ascontiguousarray(randn(expected.shape, dtype, seed=1))
    expected_img = ref.col2im(cols, x.shape, kh, kw, (sh, sw), (ph, pw))
    for backend in BACKENDS:
        got = fc.im2col(x, kh, kw, stride=(sh, sw), pad=(ph, pw), backend=backend)
        np.testing.assert_allclose(got, expected, **TOL[np.dtype(dtype)])
        img = fc.col2im(cols, x.shape, kh, kw, stride=(sh, sw), pad=(ph, pw), backend=backend)
        np.testing.assert_allclose(img, expected_img, **TOL[np.dtype(dtype)])


# ------------------------------------------------------------------ bad input

X = np.zeros((2, 3, 5, 5), np.float32)


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((2, 3, 5, 5), np.int64), "dtype int64"),
        (np.zeros((2, 3, 5, 5), bool), "dtype bool"),
        (np.zeros((2, 3, 5, 5), np.complex128), "dtype complex128"),
        (np.zeros((2, 3, 5, 5), object), "dtype object"),
        ([[[[1.0]]]], "must be a NumPy ndarray, got list"),
        (None, "must be a NumPy ndarray, got NoneType"),
    ],
)
def test_bad_types_raise_type_error(bad, match):
    with pytest.raises(TypeError, match=match):
        fc.im2col(bad, 3, 3)


def test_type_error_says_how_to_fix():
    with pytest.raises(TypeError, match=r"astype\(np.float32\)"):
        fc.im2col(np.zeros((1, 1, 3, 3), np.int32), 3, 3)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(input_data=np.zeros((3, 5, 5), np.float32)), "3-dimensional.*needs 4 dimensions"),
        (dict(input_data=np.zeros((0, 3, 5, 5), np.float32)), "no elements"),
        (dict(filter_h=0), "filter_h must be positive, got 0"),
        (dict(filter_w=-2), "filter_w must be positive"),
        (dict(stride=0), "stride must be positive"),
        (dict(stride=(1, 0)), r"stride\[1\] must be positive"),
        (dict(stride=(1, 2, 3)), "int or an \\(h, w\\) pair"),
        (dict(pad=-1), "pad must be >= 0"),
        (dict(stride=2**31 - 1, pad=2**30), "stride must be at most"),
        (dict(pad=(0, 2**40)), r"pad\[1\] must be at most"),
        (dict(filter_h=8), "larger than the padded input"),
        (dict(filter_w=6, pad=0), "larger than the padded input"),
    ],
)
def test_bad_values_raise_value_error(kwargs, match):
    args = dict(input_data=X, filter_h=3, filter_w=3, stride=1, pad=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fc.im2col(**args)


@pytest.mark.parametrize("bad", [1.5, "3", True, None])
def test_non_int_geometry_raises_type_error(bad):
    with pytest.raises(TypeError, match="must be an int"):
        fc.im2col(X, bad, 3)


def test_col_shape_mismatch():
    col = np.zeros((50, 27), np.float32)
    with pytest.raises(ValueError, match=r"col has shape \(50, 27\), expected \(18, 27\)"):
        fc.col2im(col, (2, 3, 5, 5), 3, 3)


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 5, 0), "2,3,5,5", (2, 3, 5, 5.0)])
def test_bad_input_shape(shape):
    with pytest.raises((ValueError, TypeError)):
        fc.col2im(np.zeros((18, 27), np.float32), shape, 3, 3)


@pytest.mark.parametrize(
    "out,exc",
    [
        (np.zeros((18, 27), np.float64), ValueError),   # wrong dtype
        (np.zeros((18, 28), np.float32), ValueError),   # wrong shape
        (np.zeros((27, 18), np.float32).T, ValueError),  # not C-contiguous
        ([0.0], TypeError),
    ],
)
def test_bad_out(out, exc):
    with pytest.raises(exc):
        fc.im2col(X, 3, 3, out=out)


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_overlapping_the_input_refused(backend):
    col = np.arange(1, 17, dtype=np.float32).reshape(16, 1)
    with pytest.raises(ValueError, match="overlaps the input"):
        fc.col2im(col, (1, 1, 4, 4), 1, 1, out=col.reshape(1, 1, 4, 4), backend=backend)
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="overlaps the input"):
        fc.im2col(x, 1, 1, out=x.reshape(16, 1), backend=backend)


def test_readonly_out_refused():
    out = np.zeros((18, 27), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        fc.im2col(X, 3, 3, out=out)
