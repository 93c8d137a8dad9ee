"""The one place that sets Numba's compilation flags for every fastconv kernel.

``cache=True`` writes compiled machine code next to the module (or in
``NUMBA_CACHE_DIR``), so only the first process on a machine pays the compile time.
``fastmath`` stays off: kernels must agree with the NumPy reference to ~1e-12 in float64
and must propagate NaN (max pooling), which ``fastmath``'s ``nnan`` flag would break.
``error_model="numpy"`` drops Python's zero-division checks from the inner loops.
"""
from numba import njit

FLAGS = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")


def jit(fn=None, *, parallel=False):
    """``numba.njit`` with fastconv's flags; ``parallel=True`` for ``prange`` kernels."""

    def wrap(f):
        return njit(parallel=parallel, **FLAGS)(f)

    return wrap if fn is None else wrap(fn)


def pjit(fn):
    """Parallel (``prange``) kernel with fastconv's flags."""
    return jit(fn, parallel=True)
