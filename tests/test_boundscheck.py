"""In the bounds-checked build (FASTCONV_BOUNDSCHECK, run by .ci/run), the checks are on."""
import os

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    os.environ.get("FASTCONV_BOUNDSCHECK", "0").strip() in ("", "0"),
    reason="runs in the bounds-checked pass only (FASTCONV_BOUNDSCHECK=1 or asan)")


def test_numba_checks_are_on():
    from fastconv._kernels.numba_backend import _jit

    assert _jit.BOUNDSCHECK and _jit.FLAGS["boundscheck"] and not _jit.FLAGS["cache"]


def test_a_numba_kernel_reading_past_its_array_raises():
    from fastconv._kernels.numba_backend._jit import jit

    @jit
    def past_the_end(a):
        return a[a.shape[0]]

    with pytest.raises(IndexError):
        past_the_end(np.zeros(4))


def test_a_cython_memoryview_index_past_its_array_raises():
    from fastconv._kernels.cython_backend import augment

    x = np.zeros((1, 1, 2, 2), np.float32)
    with pytest.raises(IndexError):  # dy/dx/flip of length 0 for one image
        augment._shift_flip_into(x, np.zeros(0, np.int64), np.zeros(0, np.int64),
                                 np.zeros(0, np.uint8), np.empty_like(x))
