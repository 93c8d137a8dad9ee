"""Numba kernels. Compiled on first use, for the instruction-set level in force
(``kernels/_isa.py``), and cached on disk (see ``_jit``)."""
from .. import _isa

_isa.configure_numba()
