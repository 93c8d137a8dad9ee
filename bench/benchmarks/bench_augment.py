"""shift_flip: per-image mirror and shift of a training batch (data augmentation).

PyTorch has no single op for it, so the torch backend is skipped here."""
import numpy as np

from fastconv.functional import shift_flip

from .common import (AUGMENT_SHAPES, DTYPES, PEAKMEM_DTYPES, SEED, TRACK_DTYPES, max_abs_error,
                     randn, require, speedup, Timed, Tracked)


class _ShiftFlip:
    def __init__(self, backend, shape, dtype):
        if backend == "torch":
            raise NotImplementedError("torch has no shift_flip equivalent")
        require(backend)
        N = AUGMENT_SHAPES[shape][0]
        x = randn(AUGMENT_SHAPES[shape], dtype, seed=1)
        rng = np.random.default_rng(SEED)
        dy, dx = rng.integers(-2, 3, N), rng.integers(-2, 3, N)
        flip = rng.integers(0, 2, N).astype(bool)
        self.fwd = lambda: shift_flip(x, dy, dx, flip, backend=backend)


class ShiftFlip(Timed):
    params = (["numpy", "numba", "cython"], list(AUGMENT_SHAPES), DTYPES)
    param_names = ("backend", "shape", "dtype")

    def setup(self, backend, shape, dtype):
        self.k = _ShiftFlip(backend, shape, dtype)
        self.k.fwd()

    def time_shift_flip(self, backend, shape, dtype):
        self.k.fwd()


class ShiftFlipMemory(Timed):
    params = (["numpy", "numba", "cython"], list(AUGMENT_SHAPES), PEAKMEM_DTYPES)
    param_names = ("backend", "shape", "dtype")
    setup = ShiftFlip.setup

    def peakmem_shift_flip(self, backend, shape, dtype):
        self.k.fwd()


class ShiftFlipVsReference(Tracked):
    """Speedup over the NumPy reference (measured alternately in one process) and the
    largest absolute error against it."""

    params = (["numba", "cython"], list(AUGMENT_SHAPES), TRACK_DTYPES)
    param_names = ("backend", "shape", "dtype")

    def setup(self, backend, shape, dtype):
        self.k = _ShiftFlip(backend, shape, dtype)
        self.ref = _ShiftFlip("numpy", shape, dtype)
        self.k.fwd()
        self.ref.fwd()

    def track_speedup_shift_flip(self, backend, shape, dtype):
        return speedup(self.ref.fwd, self.k.fwd)

    def track_error_shift_flip(self, backend, shape, dtype):
        return max_abs_error(self.k.fwd(), self.ref.fwd())

    track_speedup_shift_flip.unit = "x"
    track_error_shift_flip.unit = "max abs error"
