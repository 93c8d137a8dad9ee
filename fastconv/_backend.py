"""Backend selection, kernel dispatch and the one thread-count knob.

Backends: ``'numpy'`` (the pure-NumPy reference), ``'numba'`` and ``'cython'``.
``'auto'`` resolves to ``'cython'`` when its extension imports (no JIT cost, first call
is instant), else ``'numba'``, else ``'numpy'``.

The selection is process-wide (``set_backend``, ``FASTCONV_BACKEND``) and can be
overridden in a scope with ``use_backend``, which uses a :class:`contextvars.ContextVar`
so concurrent threads and asyncio tasks each see their own scope.
"""
import contextlib
import contextvars
import functools
import importlib
import os
import threading
from collections.abc import Iterator
from typing import NamedTuple

BACKENDS = ("numpy", "numba", "cython")


class Family(NamedTuple):
    """A kernel family: one module with the same entry points in every backend
    (``kernels/<backend>_backend/<name>``, ``fastconv.reference.kernels.<name>``)."""

    #: its public ops, in ``fastconv.functional`` and ``fastconv.reference``
    ops: tuple = ()
    #: whether those ops are also ``fc.<op>``
    top_level: bool = True
    #: ``module.Class`` in ``fastconv._kernels`` that runs the compiled backends' raw
    #: kernels (one driver for both); empty: their module is the entry points
    driver: str = ""


#: The registry of kernel families, by name; the export lists of ``fastconv``,
#: ``fastconv.functional`` and ``fastconv.reference`` and the kernel-interface test
#: derive from it (CONTRIBUTING.md: adding a family).
FAMILIES = {
    "im2col": Family(("im2col", "col2im")),
    "pool": Family(("max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
                    "global_avg_pool2d", "global_avg_pool2d_backward",
                    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward")),
    "linear": Family(("linear", "linear_backward")),
    "conv": Family(("conv2d", "conv2d_backward"), driver="_conv_driver.ConvDriver"),
    "augment": Family(("shift_flip",), top_level=False),
    "elementwise": Family(),  # the layers' passes (fastconv.functional.elementwise)
    "optim": Family(),  # the optimizers' update rules (fastconv.optim)
}

_CHOICES = ("auto",) + BACKENDS

_REBUILD_HINT = (
    "The Cython extensions of fastconv are not built or failed to import ({err}). "
    "Rebuild them from the project root with `pip install -e .` (needs a C compiler, "
    "Cython>=3 and NumPy), or use backend='numba'."
)


class BackendUnavailableError(ImportError):
    """A backend was asked for by name but cannot be imported on this machine."""


_lock = threading.Lock()
_global_backend = "auto"
_scoped_backend = contextvars.ContextVar("fastconv_backend", default=None)
_import_errors = {}
_num_threads = None


def _check_name(name):
    """``name`` in lower case (``'Numba'`` is ``'numba'``); ValueError if it is no backend."""
    if not isinstance(name, str) or name.lower() not in _CHOICES:
        raise ValueError(
            f"backend must be one of {_CHOICES}, got {name!r}; "
            f"available here: {available_backends()}"
        )
    return name.lower()


def _probe(name):
    """Import the backend's package once; remember why it failed."""
    if name == "numpy" or name in _import_errors:
        return _import_errors.get(name) is None
    try:
        if name == "numba":
            import numba  # noqa: F401
        else:
            for module in ("_runtime", *FAMILIES):
                importlib.import_module(f"fastconv._kernels.cython_backend.{module}")
        _import_errors[name] = None
    except ImportError as err:
        _import_errors[name] = err
        return False
    if _THREAD_POOL_ENV in _env_errors:  # a bad value: every op refuses, nothing to share
        return True
    from ._kernels import _pool

    _pool.share_blas()  # NumPy's and SciPy's BLAS onto OpenMP's team, before any kernel
    return True


def available_backends() -> tuple[str, ...]:
    """Names of the backends that import here, reference first, e.g. ``('numpy', 'numba', 'cython')``."""
    return tuple(b for b in BACKENDS if _probe(b))


def _require(name):
    if not _probe(name):
        err = _import_errors[name]
        if name == "cython":
            raise BackendUnavailableError(_REBUILD_HINT.format(err=err))
        raise BackendUnavailableError(
            f"backend {name!r} is not available ({err}); install it with "
            f"`pip install numba` or choose one of {available_backends()}"
        )
    return name


def set_backend(name: str) -> None:
    """Set the process-wide default backend: ``'auto'``, ``'numba'``, ``'cython'`` or ``'numpy'``.

    Examples
    --------
    >>> import fastconv as fc
    >>> previous = fc.get_backend()
    >>> fc.set_backend("numpy")              # every op from now on, in every thread
    >>> fc.get_backend()
    'numpy'
    >>> fc.set_backend(previous)
    """
    global _global_backend
    name = _check_name(name)
    if name != "auto":
        _require(name)
    with _lock:
        _global_backend = name
        _env_errors.pop("FASTCONV_BACKEND", None)  # the code's choice replaces the variable's


def get_backend(resolved: bool = False) -> str:
    """The backend in effect here: the innermost ``use_backend`` scope, else the default.

    Parameters
    ----------
    resolved : bool
        False (default): the name chosen, which may be ``'auto'``. True: the backend that
        runs the ops here, what ``'auto'`` resolves to (``'cython'``, ``'numba'`` or
        ``'numpy'``); this imports the compiled backends to find out.

    Raises
    ------
    ValueError
        ``FASTCONV_BACKEND`` names no backend (and ``set_backend`` was not called since);
        with ``resolved=True``, any invalid ``FASTCONV_*`` variable.
    """
    scoped = _scoped_backend.get()
    if scoped is not None:
        name = scoped
    else:
        _raise_env_errors("FASTCONV_BACKEND")
        name = _global_backend
    return resolve(name) if resolved else name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[str]:
    """Scope a backend choice to a ``with`` block (per thread / per context).

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv as fc
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> with fc.use_backend("numpy"):       # the reference, in this block only
    ...     out, argmax = fc.max_pool2d(x, 2, 2)
    >>> np.array_equal(out, fc.max_pool2d(x, 2, 2)[0])
    True
    """
    name = _check_name(name)
    if name != "auto":
        _require(name)
    token = _scoped_backend.set(name)
    try:
        yield name
    finally:
        _scoped_backend.reset(token)


def resolve(backend=None):
    """Concrete backend name for an op's ``backend=`` argument (None: current backend)."""
    if _env_errors:
        _raise_env_errors()
    name = get_backend() if backend is None else _check_name(backend)
    if name == "auto":
        for candidate in ("cython", "numba"):
            if _probe(candidate):
                _apply_threads_to(candidate)
                return candidate
        return "numpy"
    _require(name)
    _apply_threads_to(name)
    return name


def family_ops(package, top_level_only=False):
    """``{op: function}`` for the ops of the registry's families, in its order, each taken
    from ``<package>.<family>`` (``'fastconv.functional'`` or ``'fastconv.reference'``)."""
    return {op: getattr(importlib.import_module(f"{package}.{name}"), op)
            for name, family in FAMILIES.items() if family.top_level or not top_level_only
            for op in family.ops}


def kernels(backend, family):
    """The kernels of ``family`` (a key of :data:`FAMILIES`) for a resolved backend: the
    compiled backends' module, or for ``'numpy'`` the reference's adapters with the same
    entry points and arguments (:mod:`fastconv.reference.kernels`), else the reference's
    module of the family itself, whose functions then take the kernels' arguments."""
    if backend == "numpy":
        from .reference import kernels as adapters

        return (getattr(adapters, family, None)
                or importlib.import_module(f"fastconv.reference.{family}"))
    if FAMILIES[family].driver:
        return _driver(backend, family)
    return importlib.import_module(f"fastconv._kernels.{backend}_backend.{family}")


@functools.lru_cache(maxsize=None)
def _driver(backend, family):
    """The family's driver over ``backend``'s raw kernels (built once per process)."""
    module, cls = FAMILIES[family].driver.split(".")
    raw = importlib.import_module(f"fastconv._kernels.{backend}_backend.{family}")
    return getattr(importlib.import_module(f"fastconv._kernels.{module}"), cls)(raw)


# --------------------------------------------------------------------------- threads

# OpenMP's and Numba's thread counts are per calling thread. Numba's is pushed once per
# thread and per set_num_threads call (its generation). OpenMP's is pushed before every
# Cython call (one C call): Numba's omp threading layer shares libgomp and resets that
# thread's OpenMP count when it runs a parallel region.
_generation = 0
_applied = threading.local()


def _apply_threads_to(backend):
    """Push the thread count to a backend's runtime for the calling thread."""
    if _num_threads is None:
        return
    if backend == "cython":
        from fastconv._kernels.cython_backend import _runtime

        _runtime.set_num_threads(_num_threads)
    elif backend == "numba":
        done = _applied.__dict__.setdefault("generation", {})
        if done.get(backend) != _generation:
            import numba

            numba.set_num_threads(min(_num_threads, numba.config.NUMBA_NUM_THREADS))
            done[backend] = _generation


def set_num_threads(n: int) -> None:
    """Set the number of threads of every pool fastconv uses: Numba's, OpenMP's (the
    Cython kernels) and the BLAS pools of NumPy and SciPy (through threadpoolctl).

    Parameters
    ----------
    n : int
        From 1 to four times the CPU count. Numba cannot start more threads than it
        launched with (``NUMBA_NUM_THREADS``, by default the core count); larger values
        are clipped for Numba only. The count applies to calls from every thread.
    """
    global _num_threads, _generation
    n = check_thread_count(n)
    from ._kernels import _blas

    with _lock:
        # Under the lock: two concurrent calls leave the BLAS pools and the count agreeing.
        # _blas sets SciPy's pool too (what Numba's np.dot and the Cython GEMMs call), in
        # step with the kernels' single-threaded BLAS blocks, so none undoes this call.
        _blas.set_num_threads(n)
        _num_threads = n
        _generation += 1
        _env_errors.pop("FASTCONV_NUM_THREADS", None)  # the code's count replaces the variable's
    for backend in ("numba", "cython"):
        if backend in _import_errors and _import_errors[backend] is None:
            _apply_threads_to(backend)


def check_thread_count(n: int) -> int:
    """``n`` as an int when :func:`set_num_threads` takes it, else TypeError/ValueError
    saying why (the CLI's ``--threads`` is checked with it before anything runs)."""
    if isinstance(n, bool) or not isinstance(n, (int,)) and not hasattr(n, "__index__"):
        raise TypeError(f"set_num_threads needs an int, got {type(n).__name__}")
    n = int(n)
    limit = 4 * (os.cpu_count() or 1)
    if not 1 <= n <= limit:
        raise ValueError(
            f"set_num_threads needs 1 <= n <= {limit} (four times the {os.cpu_count()} "
            f"CPUs), got {n}"
        )
    return n


def get_num_threads() -> int:
    """The thread count set by ``set_num_threads`` / ``FASTCONV_NUM_THREADS``, else the
    number of CPUs this process may run on."""
    if _num_threads is not None:
        return _num_threads
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# ----------------------------------------------------------------- environment variables

_THREAD_POOL_ENV = "FASTCONV_THREAD_POOL"
#: What is wrong with each FASTCONV_* variable, found at import: not raised there, so that
#: ``import fastconv`` and ``fastconv info`` (which lists them) work, but by every op
#: until fixed, or until the code makes the variable's setting (set_backend,
#: set_num_threads).
_env_errors = {}


def environment_errors():
    """``{variable: message}`` for each invalid ``FASTCONV_*`` variable still in effect."""
    return dict(_env_errors)


def _raise_env_errors(*names):
    """Raise the recorded errors of ``names`` (default: every variable), if any."""
    found = [msg for var, msg in _env_errors.items() if not names or var in names]
    if found:
        raise ValueError("; ".join(found))


def _env_backend(value):
    global _global_backend
    name = value.strip().lower()
    if name not in _CHOICES:
        raise ValueError(f"FASTCONV_BACKEND={value!r} is not a backend; set it to one of "
                         f"{', '.join(_CHOICES)} (any case) or unset it")
    _global_backend = name


def _env_threads(value):
    fix = f"set it to a whole number from 1 to {4 * (os.cpu_count() or 1)} or unset it"
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"FASTCONV_NUM_THREADS={value!r} is not a whole number; {fix}") from None
    try:
        set_num_threads(n)
    except ValueError as err:
        raise ValueError(f"FASTCONV_NUM_THREADS={value!r}: {err}; {fix}") from None


def _env_isa(value):
    from ._kernels import _isa

    _isa.level()  # a level that is not one, or that this CPU lacks; the message names it


def _env_thread_pool(value):
    from ._kernels import _pool

    _pool.mode()


def _init_from_env():
    """Apply the FASTCONV_* variables that are set; record those that are invalid."""
    for var, apply in (("FASTCONV_ISA", _env_isa), (_THREAD_POOL_ENV, _env_thread_pool),
                       ("FASTCONV_BACKEND", _env_backend),
                       ("FASTCONV_NUM_THREADS", _env_threads)):
        value = os.environ.get(var)
        if value:
            try:
                apply(value)
            except ValueError as err:
                _env_errors[var] = str(err)
