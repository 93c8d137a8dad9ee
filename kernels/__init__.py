"""fastconv's compiled kernels, installed as the private package ``fastconv._kernels``.

One kernel family per module, with the same module and function names in each backend:
``numba_backend`` (Numba ``@njit(parallel=True)``) and ``cython_backend`` (Cython + OpenMP).
Kernels take clean, C-contiguous float32/float64 arrays and plain integer geometry, and
trust it: validation happens once, in ``fastconv``'s public wrappers.
"""
