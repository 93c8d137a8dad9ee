"""im2col / col2im: the book's unfold of sliding windows into rows, and its adjoint."""
import numpy as np

import fastconv as fc
from fastconv._validation import out_size

from .common import IM2COL_SHAPES, kernel_benchmarks, randn, require


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


Im2col, Im2colMemory, Im2colVsReference = kernel_benchmarks(
    "Im2col", _Im2col, IM2COL_SHAPES, {"im2col": "im2col", "col2im": "col2im"})
