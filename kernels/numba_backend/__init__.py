"""Numba kernels. Compiled on first use and cached on disk (see ``_jit``)."""
