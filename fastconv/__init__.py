"""fastconv: fast Numba and Cython kernels for NumPy convolutional networks.

>>> import numpy as np
>>> import fastconv as fc
>>> x = np.ones((2, 3, 8, 8), np.float32)          # N, C, H, W
>>> fc.im2col(x, 3, 3, stride=1, pad=1).shape       # (N*OH*OW, C*KH*KW), float32 kept
(128, 27)

The user guide and API reference: docs/ (``python -m sphinx -b html docs docs/_build/html``).
"""
import importlib as _importlib
import os as _os

from ._version import __version__

try:
    _importlib.import_module(f"{__name__}._kernels")  # kernels/, installed under this name
except ModuleNotFoundError as _err:
    if _err.name != f"{__name__}._kernels":
        raise
    _root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
    raise ImportError(
        f"fastconv was imported from {_os.path.dirname(_os.path.abspath(__file__))}, a "
        f"source tree that is not installed there: its kernels (fastconv._kernels, built "
        f"from kernels/) are missing. Run `python -m pip install -e .` in {_root}, or start "
        f"Python from another folder so that the installed fastconv is imported."
    ) from None
from ._kernels import _pool

try:
    _pool.configure_openmp()  # before any kernel loads libgomp
except ValueError:
    pass  # a bad FASTCONV_THREAD_POOL: _init_from_env records it for `info` and every op
from ._backend import (
    BackendUnavailableError,
    available_backends,
    get_backend,
    get_num_threads,
    set_backend,
    set_num_threads,
    use_backend,
)
from ._backend import _init_from_env, family_ops as _family_ops

_ops = _family_ops(f"{__name__}.functional", top_level_only=True)  # fc.conv2d, ...
globals().update(_ops)
from . import reference
from . import layers, optim
from . import datasets, models, params_io
# None of these imports an optional library (mpi4py, autograd, MyGrad) until it is used.
from . import distributed, integrations, testing

__all__ = [
    "BackendUnavailableError",
    "available_backends",
    "get_backend",
    "set_backend",
    "use_backend",
    "get_num_threads",
    "set_num_threads",
    *_ops,
    "reference",
    "layers",
    "optim",
    "datasets",
    "models",
    "params_io",
    "distributed",
    "integrations",
    "testing",
]

_init_from_env()
del _init_from_env, _family_ops, _ops
