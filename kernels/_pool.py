"""What fastconv does to the process's threads: one pool, which goes quiet when idle.

Three runtimes start threads in a NumPy net that calls fastconv: GNU OpenMP (libgomp:
the Cython kernels, and Numba's ``omp`` threading layer), NumPy's OpenBLAS and SciPy's
OpenBLAS (the GEMMs inside fastconv's kernels). Left alone, each one's idle workers spin
after a call returns (libgomp 300,000 spins, OpenBLAS 2^28 cycles), on the cores the
next library's threads need, slowing the pair of calls (see docs/tuning.md, "Threads:
one pool, short spinning"). So, unless turned off with ``FASTCONV_THREAD_POOL=separate``:

* **One pool**: each OpenBLAS that offers ``openblas_set_threads_callback_function``
  (0.3.27 and later: NumPy's and SciPy's wheels) runs its parallel jobs on OpenMP's
  team, through a C callback of the Cython extension. Thread counts still come from
  each library's own setting (``fastconv.set_num_threads`` sets them all). In a child
  made by ``os.fork`` the BLAS libraries get their own threads back: libgomp's pool does
  not survive a fork.
* **Short spinning**: before libgomp loads, ``GOMP_SPINCOUNT`` is set to
  :data:`SPIN_COUNT` unless the user set ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``
  (theirs wins); idle workers then sleep after a fraction of a millisecond.

``status()`` says what was done (``fastconv info`` prints it); docs/tuning.md has the
measurements behind the spin count.
"""
import ctypes
import os
import threading

ENV = "FASTCONV_THREAD_POOL"
MODES = ("shared", "separate")
#: libgomp's spins (``pause`` loops) before an idle worker sleeps: see docs/tuning.md.
SPIN_COUNT = 10000

_SETTERS = ("openblas_set_threads_callback_function",
            "scipy_openblas_set_threads_callback_function64_",
            "scipy_openblas_set_threads_callback_function")
_lock = threading.Lock()
_shared = {}  # OpenBLAS file path -> its setter (ctypes function), callback installed
_spin = None  # what configure_openmp found or did, for status()


def mode():
    """``'shared'`` (the default) or ``'separate'``, from ``FASTCONV_THREAD_POOL``."""
    value = os.environ.get(ENV, "shared").strip().lower() or "shared"
    if value not in MODES:
        raise ValueError(f"{ENV}={os.environ[ENV]!r} is not one of {MODES}; unset it or set "
                         f"it to 'separate' to leave the BLAS pools and libgomp as they are")
    return value


def _libgomp_loaded():
    try:
        with open("/proc/self/maps") as maps:
            return "libgomp" in maps.read()
    except OSError:
        return False


def configure_openmp():
    """Set libgomp's spin count for this process if it is still ours to set (called at
    ``import fastconv``, before any kernel loads libgomp)."""
    global _spin
    if _spin is not None:
        return
    user = [v for v in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if os.environ.get(v)]
    if user:
        _spin = "set by the user: " + ", ".join(f"{v}={os.environ[v]}" for v in user)
    elif mode() == "separate":
        _spin = f"libgomp's default ({ENV}=separate)"
    elif _libgomp_loaded():
        _spin = "libgomp's default (libgomp was loaded before fastconv)"
    else:
        os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
        _spin = f"GOMP_SPINCOUNT={SPIN_COUNT} (set by fastconv)"


def share_blas():
    """Install the OpenMP callback in every loaded OpenBLAS that takes one (idempotent,
    cheap after the first call: called whenever a compiled backend is first used)."""
    if mode() != "shared":
        return
    try:
        from .cython_backend import _runtime
    except ImportError:  # Numba alone: no C callback to give OpenBLAS
        return
    address = _runtime.blas_threads_callback()
    if not address:
        return
    import scipy.linalg.cython_blas  # noqa: F401  (the BLAS the kernels call, loaded now)
    from threadpoolctl import ThreadpoolController

    with _lock:
        for lib in ThreadpoolController().select(internal_api="openblas").lib_controllers:
            if lib.filepath in _shared:
                continue
            dll = ctypes.CDLL(lib.filepath)
            setter = next((getattr(dll, s) for s in _SETTERS if hasattr(dll, s)), None)
            if setter is None:
                continue
            setter.argtypes = [ctypes.c_void_p]
            setter.restype = None
            setter(address)
            _shared[lib.filepath] = setter


def _unshare_in_child():
    for setter in _shared.values():
        setter(None)
    _shared.clear()


os.register_at_fork(after_in_child=_unshare_in_child)  # a no-op while nothing is shared


def status():
    """Lines for ``fastconv info``: the spin setting and which BLAS pools share OpenMP's."""
    lines = [f"idle OpenMP workers: {_spin or 'not configured'}"]
    if mode() == "separate":
        lines.append(f"BLAS threads: each library's own pool ({ENV}=separate)")
    elif _shared:
        lines.append("BLAS threads: run on OpenMP's team (" +
                     ", ".join(os.path.basename(p) for p in sorted(_shared)) + ")")
    else:
        lines.append("BLAS threads: each library's own pool (no OpenBLAS with a threads "
                     "callback loaded, or the Cython extension is not built with OpenMP)")
    return lines
