"""The BLAS thread guard shared by every kernel family that calls BLAS (conv, linear).

fastconv's kernels run their own parallel loops (OpenMP in Cython, Numba's omp layer)
and call BLAS from inside them, one call per thread, so BLAS must run single-threaded
there. Small GEMMs outside parallel loops are held to one thread too: right after an
OpenMP region, libgomp's workers are still spinning on the cores that a multi-threaded
OpenBLAS call needs (see docs/tuning.md, "BLAS threads inside and after the kernels").
"""
import contextlib
import os
import threading

#: GEMMs of at most this many multiply-adds run with single-threaded BLAS (a fraction of
#: a millisecond on one core); larger ones use the thread count of set_num_threads.
SMALL_GEMM_MACS = 1 << 25


_lock = threading.Lock()
_depth = 0  # single_threaded_blas blocks open now, in every thread together
_target = None  # the count set_num_threads last gave the BLAS pools; None: never called
_found = []  # the counts the first block to enter found, restored when _target is None
_controllers = None


def _blas_controllers():
    """threadpoolctl controllers of the BLAS that SciPy's ``cython_blas`` calls.

    NumPy's wheel bundles its own OpenBLAS (in ``numpy.libs``) which compiled kernels
    never call; every other BLAS pool is limited. Looked up once, after which switching
    a pool's thread count is one cheap ctypes call.
    """
    global _controllers
    if _controllers is None:
        import scipy.linalg.cython_blas  # noqa: F401  (loads SciPy's BLAS)
        from threadpoolctl import ThreadpoolController

        libs = ThreadpoolController().select(user_api="blas").lib_controllers
        own_numpy = [c for c in libs if f"numpy.libs{os.sep}" in c.filepath]
        _controllers = [c for c in libs if c not in own_numpy] or libs
    return _controllers


def _set(controller, n):
    """``controller.set_num_threads(n)``, from whichever thread calls it.

    threadpoolctl 3.8 lets only the first thread that set a pthreads OpenBLAS pool set it
    again and silently ignores the others (measured: ``set_num_threads(3)`` from a second
    Python thread left both pools at 2), which would leave a kernel called from any other
    thread with a multi-threaded BLAS. This module serializes its own changes under
    ``_lock``, so it hands that control back around each one (a no-op before 3.8).
    """
    release = getattr(controller, "clear_controlling_thread", None)
    if release is not None:
        release(force=True)
    controller.set_num_threads(n)
    if release is not None:
        release(force=True)


def set_num_threads(n):
    """Every BLAS pool to ``n`` threads: the BLAS part of ``fastconv.set_num_threads``.

    Made under the guard's lock, so it is never undone by a kernel: while a
    :class:`single_threaded_blas` block is open anywhere, the pools it holds stay at one
    thread (kernels in flight call them from their parallel loops) and the last block
    to leave sets ``n``, not the count it found on entering.
    """
    global _target
    from threadpoolctl import ThreadpoolController

    held = {c.filepath for c in _blas_controllers()}
    with _lock:
        for c in ThreadpoolController().select(user_api="blas").lib_controllers:
            if not (_depth and c.filepath in held):
                _set(c, n)
        _target = n


class single_threaded_blas:
    """Context manager: SciPy's BLAS runs single-threaded inside the block.

    The kernels call BLAS from inside their own parallel loops (one call per thread);
    a multi-threaded BLAS there would start threads on cores that are already busy.
    There is no per-thread setting to use instead: the calls come from OpenMP's and
    Numba's worker threads, and SciPy's OpenBLAS (0.3.30, pthreads) has one count for
    the process; its ``openblas_set_num_threads_local(1)``, called in a worker thread,
    set the main thread's count to 1 too.
    Nested and concurrent uses are counted: the first to enter lowers the pools to one
    thread, the last to leave sets the count of the latest :func:`set_num_threads`
    (or, if it was never called, the counts the first found). A BLAS call of SciPy's
    from other code while a block is open runs on one thread.
    """

    def __enter__(self):
        global _depth
        with _lock:
            if _depth == 0:
                ctl = _blas_controllers()
                if _target is None:
                    _found[:] = [c.num_threads for c in ctl]
                for c in ctl:
                    _set(c, 1)
            _depth += 1
        return self

    def __exit__(self, *exc):
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0:
                ctl = _blas_controllers()
                for c, n in zip(ctl, _found if _target is None else [_target] * len(ctl)):
                    _set(c, n)
        return False


def guard_for(macs):
    """``single_threaded_blas()`` for a GEMM of ``macs`` multiply-adds up to
    ``SMALL_GEMM_MACS``, else a no-op context (BLAS keeps its threads)."""
    return single_threaded_blas() if macs <= SMALL_GEMM_MACS else contextlib.nullcontext()
