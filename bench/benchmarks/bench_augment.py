"""shift_flip: per-image mirror and shift of a training batch (data augmentation).

PyTorch has no single op for it, so the torch backend is skipped here."""
import numpy as np

from fastconv.functional import shift_flip

from .common import AUGMENT_SHAPES, SEED, kernel_benchmarks, randn, require


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


ShiftFlip, ShiftFlipMemory, ShiftFlipVsReference = kernel_benchmarks(
    "ShiftFlip", _ShiftFlip, AUGMENT_SHAPES, {"shift_flip": "fwd"},
    backends=["numpy", "numba", "cython"], compared=["numba", "cython"])
