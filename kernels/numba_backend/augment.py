"""Batch augmentation in Numba: per-image horizontal flip, then shift with zero fill.

``out[n, c, i, j] = f[n, c, i - dy[n], j - dx[n]]`` inside the image, else 0, where ``f``
is image ``n`` mirrored left-right when ``flip[n]`` is nonzero.
"""
import numpy as np
from numba import prange

from ._jit import pjit


@pjit
def _shift_flip_into(x, dy, dx, flip, out):
    N, C, H, W = x.shape
    # One image per iteration: each writes only its own out[n].
    for n in prange(N):
        sy = dy[n]
        sx = dx[n]
        fl = flip[n] != 0
        for c in range(C):
            for i in range(H):
                r = i - sy
                if r < 0 or r >= H:
                    for j in range(W):
                        out[n, c, i, j] = 0
                    continue
                for j in range(W):
                    s = j - sx
                    if s < 0 or s >= W:
                        out[n, c, i, j] = 0
                    elif fl:
                        out[n, c, i, j] = x[n, c, r, W - 1 - s]
                    else:
                        out[n, c, i, j] = x[n, c, r, s]


def shift_flip(x, dy, dx, flip, out=None):
    """``x`` (N, C, H, W) C-contiguous float; ``dy``, ``dx`` int64 (N,); ``flip`` uint8 (N,).

    Returns the flipped-then-shifted batch, written into ``out`` if given.
    """
    if out is None:
        out = np.empty_like(x)
    _shift_flip_into(x, dy, dx, flip, out)
    return out


#: The family's entry points, the same in every backend (tests/test_kernel_interface.py).
__all__ = ["shift_flip"]
