"""The one place that sets Numba's compilation flags for every fastconv kernel.

``cache=True`` writes compiled machine code next to the module (or in
``NUMBA_CACHE_DIR``), so only the first process on a machine pays the compile time.
``fastmath`` stays off: kernels must agree with the NumPy reference to ~1e-12 in float64
and must propagate NaN (max pooling), which ``fastmath``'s ``nnan`` flag would break.
``error_model="numpy"`` drops Python's zero-division checks from the inner loops.

Bounds-checked mode (``FASTCONV_BOUNDSCHECK`` set to anything but 0, the switch that
also builds the checked Cython kernels, or Numba's own ``NUMBA_BOUNDSCHECK=1``): every
array index is checked (IndexError), ``prange`` loops run serially and nothing is
cached. Serially, because inside a parallel region Numba's check reports nothing: a
``prange`` loop reading 2 past a 3-element array returned garbage with
``parallel=True, boundscheck=True`` and raised IndexError with ``parallel=False``
(numba/numba#9380); the loops' index ranges (the work split included, which the
kernels size from ``numba.get_num_threads()``) are the same either way. Not cached,
because Numba's cache key holds the bytecode, signature and CPU but not the boundscheck
flag: with a normal run's cache present, a ``NUMBA_BOUNDSCHECK=1`` process loaded the
unchecked code and read past an array unreported (Numba 0.68), and a checked run's cache
would slow every later one.
"""
import os
import types

from numba import config, njit

BOUNDSCHECK = os.environ.get("FASTCONV_BOUNDSCHECK", "0").strip() not in ("", "0") or (
    config.BOUNDSCHECK == 1
)

FLAGS = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")
if BOUNDSCHECK:
    FLAGS.update(cache=False, boundscheck=True)


def jit(fn=None, *, parallel=False):
    """``numba.njit`` with fastconv's flags; ``parallel=True`` for ``prange`` kernels."""

    def wrap(f):
        return njit(parallel=parallel and not BOUNDSCHECK, **FLAGS)(f)

    return wrap if fn is None else wrap(fn)


def pjit(fn):
    """Parallel (``prange``) kernel with fastconv's flags."""
    return jit(fn, parallel=True)


#: Elements from which the elementwise and optim wrappers run a kernel's ``prange``
#: variant (see ``elementwise.py`` for the measurement).
PARALLEL_MIN = 32768


def pair(body):
    """Compile ``body`` twice: serial (``prange`` runs as ``range``) and parallel.

    The serial copy gets its own ``__qualname__`` so the two never share a cache entry
    (Numba's cache key does not include the ``parallel`` flag).
    """
    serial = types.FunctionType(body.__code__, body.__globals__, body.__name__ + "_serial")
    serial.__qualname__ = body.__qualname__ + "_serial"
    return jit(serial), pjit(body)


def pick(kernels, n):
    """The serial or parallel variant of a ``pair`` for ``n`` elements."""
    return kernels[1] if n >= PARALLEL_MIN else kernels[0]
