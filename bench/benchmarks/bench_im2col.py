"""im2col / col2im: the book's unfold of sliding windows into rows, and its adjoint."""
import numpy as np

import fastconv as fc
from fastconv._validation import out_size

from .common import (BACKENDS, COMPARED, DTYPES, IM2COL_SHAPES, PEAKMEM_DTYPES, TRACK_DTYPES,
                     max_abs_error, randn, require, speedup, Timed, Tracked)


class _Im2col:
    """Callables of one backend on one preset: ``im2col()`` and ``col2im()``."""

    def __init__(self, backend, shape, dtype):
        torch = require(backend)
        (N, C, H, W), k, s, p = IM2COL_SHAPES[shape]
        OH, OW = out_size(H, k, s, p), out_size(W, k, s, p)
        x = randn((N, C, H, W), dtype, seed=1)
        col = randn((N * OH * OW, C * k * k), dtype, seed=2)
        if torch is None:
            self.im2col = lambda: fc.im2col(x, k, k, s, p, backend=backend)
            self.col2im = lambda: fc.col2im(col, (N, C, H, W), k, k, s, p, backend=backend)
            return
        F = torch.nn.functional
        xt = torch.from_numpy(x)
        # torch's unfold layout is (N, C*k*k, OH*OW); the book's is (N*OH*OW, C*k*k)
        colt = torch.from_numpy(np.ascontiguousarray(
            col.reshape(N, OH * OW, C * k * k).transpose(0, 2, 1)))
        self.im2col = lambda: F.unfold(xt, k, padding=p, stride=s).transpose(1, 2).reshape(
            N * OH * OW, C * k * k)
        self.col2im = lambda: F.fold(colt, (H, W), k, padding=p, stride=s)


class Im2col(Timed):
    params = (BACKENDS, list(IM2COL_SHAPES), DTYPES)
    param_names = ("backend", "shape", "dtype")

    def setup(self, backend, shape, dtype):
        self.k = _Im2col(backend, shape, dtype)
        self.k.im2col()
        self.k.col2im()

    def time_im2col(self, backend, shape, dtype):
        self.k.im2col()

    def time_col2im(self, backend, shape, dtype):
        self.k.col2im()


class Im2colMemory(Timed):
    params = (BACKENDS, list(IM2COL_SHAPES), PEAKMEM_DTYPES)
    param_names = ("backend", "shape", "dtype")
    setup = Im2col.setup

    def peakmem_im2col(self, backend, shape, dtype):
        self.k.im2col()

    def peakmem_col2im(self, backend, shape, dtype):
        self.k.col2im()


class Im2colVsReference(Tracked):
    """Speedup over the NumPy reference (measured alternately in one process) and the
    largest absolute error against it."""

    params = (COMPARED, list(IM2COL_SHAPES), TRACK_DTYPES)
    param_names = ("backend", "shape", "dtype")

    def setup(self, backend, shape, dtype):
        self.k = _Im2col(backend, shape, dtype)
        self.ref = _Im2col("numpy", shape, dtype)
        for f in (self.k.im2col, self.k.col2im, self.ref.im2col, self.ref.col2im):
            f()

    def track_speedup_im2col(self, backend, shape, dtype):
        return speedup(self.ref.im2col, self.k.im2col)

    def track_speedup_col2im(self, backend, shape, dtype):
        return speedup(self.ref.col2im, self.k.col2im)

    def track_error_im2col(self, backend, shape, dtype):
        return max_abs_error(self.k.im2col(), self.ref.im2col())

    def track_error_col2im(self, backend, shape, dtype):
        return max_abs_error(self.k.col2im(), self.ref.col2im())

    track_speedup_im2col.unit = track_speedup_col2im.unit = "x"
    track_error_im2col.unit = track_error_col2im.unit = "max abs error"
