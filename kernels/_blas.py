"""The BLAS thread guard shared by every kernel family that calls BLAS (conv, fma).

fastconv's kernels run their own parallel loops (OpenMP in Cython, Numba's omp layer)
and call BLAS from inside them, one call per thread, so BLAS must run single-threaded
there. Small GEMMs outside parallel loops are held to one thread too: right after an
OpenMP region, libgomp's workers are still spinning on the cores that a multi-threaded
OpenBLAS call needs. Measured on DeepConvNet's affine layer ((100, 1024) @ (1024, 50),
float32, 2 cores) called right after a conv2d: 5.1 ms forward with 2 BLAS threads,
0.27 ms with one (Cython; Numba 6.3 vs 0.39 ms).
"""
import contextlib
import os
import threading

#: GEMMs of at most this many multiply-adds run with single-threaded BLAS (about 0.4 ms
#: at one core's SGEMM rate); larger ones use the thread count of set_num_threads.
SMALL_GEMM_MACS = 1 << 25


_lock = threading.Lock()
_depth = 0
_saved = []
_controllers = None


def _blas_controllers():
    """threadpoolctl controllers of the BLAS that SciPy's ``cython_blas`` calls.

    NumPy's wheel bundles its own OpenBLAS (in ``numpy.libs``) which compiled kernels
    never call; every other BLAS pool is limited. Looked up once (about 1 ms), after
    which switching a pool's thread count is one ctypes call (about 1 us).
    """
    global _controllers
    if _controllers is None:
        import scipy.linalg.cython_blas  # noqa: F401  (loads SciPy's BLAS)
        from threadpoolctl import ThreadpoolController

        libs = ThreadpoolController().select(user_api="blas").lib_controllers
        own_numpy = [c for c in libs if f"numpy.libs{os.sep}" in c.filepath]
        _controllers = [c for c in libs if c not in own_numpy] or libs
    return _controllers


class single_threaded_blas:
    """Context manager: SciPy's BLAS runs single-threaded inside the block.

    The kernels call BLAS from inside their own parallel loops (one call per thread);
    a multi-threaded BLAS there would start threads on cores that are already busy.
    Nested and concurrent uses are counted: the first to enter saves and lowers the
    thread counts, the last to leave restores them.
    """

    def __enter__(self):
        global _depth
        with _lock:
            if _depth == 0:
                ctl = _blas_controllers()
                _saved[:] = [c.num_threads for c in ctl]
                for c in ctl:
                    c.set_num_threads(1)
            _depth += 1
        return self

    def __exit__(self, *exc):
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0:
                for c, n in zip(_blas_controllers(), _saved):
                    c.set_num_threads(n)
        return False


def guard_for(macs):
    """``single_threaded_blas()`` for a GEMM of ``macs`` multiply-adds up to
    ``SMALL_GEMM_MACS``, else a no-op context (BLAS keeps its threads)."""
    return single_threaded_blas() if macs <= SMALL_GEMM_MACS else contextlib.nullcontext()
