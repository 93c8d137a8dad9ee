"""shift_flip (the --augment kernel): every backend against the NumPy reference."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastconv.functional.augment import erase, shift_flip
from fastconv.reference.augment import shift_flip as shift_flip_ref

from _support import BACKENDS, COMPILED


def test_reference_by_hand():
    x = np.arange(2 * 1 * 3 * 4, dtype=np.float64).reshape(2, 1, 3, 4)
    out = shift_flip_ref(x, np.array([1, 0]), np.array([0, -1]), np.array([0, 1]))
    # image 0: moved down one row; image 1: mirrored, then moved left one column
    expected = np.array([
        [[[0, 0, 0, 0], [0, 1, 2, 3], [4, 5, 6, 7]]],
        [[[14, 13, 12, 0], [18, 17, 16, 0], [22, 21, 20, 0]]],
    ], dtype=np.float64)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (5, 1, 28, 28), (3, 3, 5, 7), (4, 2, 7, 4)])
def test_matches_reference(backend, dtype, shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(dtype)
    n, _, h, w = shape
    dy = rng.integers(-h - 1, h + 2, size=n)
    dx = rng.integers(-w - 1, w + 2, size=n)
    flip = rng.integers(0, 2, size=n).astype(bool)
    out = shift_flip(x, dy, dx, flip, backend=backend)
    assert out.dtype == x.dtype and out.shape == x.shape
    np.testing.assert_array_equal(out, shift_flip_ref(x, dy, dx, flip))


@pytest.mark.parametrize("backend", BACKENDS)
def test_identity_and_noncontiguous(backend):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((6, 2, 9, 8))
    x = base[::2, :, :, ::-1]  # strided and negative-stride view
    zeros = np.zeros(3, dtype=np.int32)
    np.testing.assert_array_equal(shift_flip(x, zeros, zeros, zeros, backend=backend), x)
    np.testing.assert_array_equal(
        shift_flip(x, zeros, zeros, np.ones(3, dtype=np.uint8), backend=backend),
        base[::2],
    )


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 4), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_shapes(n, c, h, w, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    dy = rng.integers(-3, 4, size=n)
    dx = rng.integers(-3, 4, size=n)
    flip = rng.integers(0, 2, size=n)
    expected = shift_flip_ref(x, dy, dx, flip)
    for backend in BACKENDS:
        np.testing.assert_array_equal(shift_flip(x, dy, dx, flip, backend=backend), expected)


def test_flag_values_other_than_one_flip():
    x = np.arange(4.0).reshape(1, 1, 1, 4)
    out = shift_flip(x, np.zeros(1, np.int64), np.zeros(1, np.int64), np.array([256]))
    np.testing.assert_array_equal(out.ravel(), [3, 2, 1, 0])


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(x=np.zeros((2, 1, 4, 4), dtype=np.int64)), TypeError, "dtype int64"),
        (dict(x=[[[[0.0]]]]), TypeError, "must be a NumPy ndarray"),
        (dict(x=np.zeros((2, 4, 4))), ValueError, "needs 4 dimensions"),
        (dict(dy=[0, 0]), TypeError, "dy must be a NumPy integer array"),
        (dict(dx=np.zeros(2)), TypeError, "dx has dtype float64"),
        (dict(dy=np.zeros(3, dtype=np.int64)), ValueError, r"dy has shape \(3,\), expected \(2,\)"),
        (dict(flip=np.zeros((2, 1), dtype=bool)), ValueError, "flip has shape"),
        (dict(dy=np.array([0, -2**63], np.int64)), ValueError, r"dy holds shifts in \[-9223"),
        (dict(dx=np.array([2**64 - 1, 0], np.uint64)), ValueError, "clip it"),
        (dict(dx=np.array([0, 2**24 + 1], np.int32)), ValueError, "at most 16777216 pixels"),
    ],
)
def test_validation(kwargs, err, match):
    args = dict(x=np.zeros((2, 1, 4, 4)), dy=np.zeros(2, np.int64), dx=np.zeros(2, np.int64),
                flip=np.zeros(2, bool))
    args.update(kwargs)
    with pytest.raises(err, match=match):
        shift_flip(args["x"], args["dy"], args["dx"], args["flip"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_largest_allowed_shift_gives_zeros(backend):
    x = np.ones((2, 1, 3, 4), np.float32)
    big = np.array([2**24, -2**24], np.int64)
    out = shift_flip(x, big, big[::-1].copy(), np.zeros(2, bool), backend=backend)
    assert out.shape == x.shape and not out.any()


def _erase_by_loops(x, top, left, height, width):
    out = x.copy()
    for n in range(x.shape[0]):
        for i in range(x.shape[2]):
            for j in range(x.shape[3]):
                if top[n] <= i < top[n] + height[n] and left[n] <= j < left[n] + width[n]:
                    out[n, :, i, j] = 0
    return out


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_erase_matches_loops(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 2, 7, 5)).astype(dtype)
    x[0, 0, 1, 1] = np.nan
    top = np.array([0, 1, 5, -2, 3, 0])
    left = np.array([0, 2, 3, -1, 9, 0])
    height = np.array([2, 3, 9, 4, 1, 0])
    width = np.array([2, 1, 9, 3, 2, 5])
    got = erase(x, top, left, height, width)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_array_equal(got, _erase_by_loops(x, top, left, height, width))


def test_erase_refuses_bad_rectangles():
    x = np.zeros((2, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="height and width must be >= 0"):
        erase(x, np.zeros(2, int), np.zeros(2, int), np.array([1, -1]), np.ones(2, int))
    with pytest.raises(TypeError, match="top has dtype float64"):
        erase(x, np.zeros(2), np.zeros(2, int), np.ones(2, int), np.ones(2, int))
    with pytest.raises(ValueError, match="top has shape"):
        erase(x, np.zeros(3, int), np.zeros(2, int), np.ones(2, int), np.ones(2, int))
