# Batch augmentation in Cython with OpenMP: per-image horizontal flip, then shift with
# zero fill. out[n, c, i, j] = f[n, c, i - dy[n], j - dx[n]] inside the image, else 0,
# where f is image n mirrored left-right when flip[n] is nonzero.
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memset
import numpy as np


cdef void _image(const floating* src, floating* dst, Py_ssize_t C, Py_ssize_t H,
                 Py_ssize_t W, int64_t sy, int64_t sx, bint fl) noexcept nogil:
    cdef Py_ssize_t c, i, j, r, s
    cdef const floating* row
    cdef floating* drow
    for c in range(C):
        for i in range(H):
            drow = dst + (c * H + i) * W
            r = i - sy
            if r < 0 or r >= H:
                memset(drow, 0, W * sizeof(floating))
                continue
            row = src + (c * H + r) * W
            for j in range(W):
                s = j - sx
                if s < 0 or s >= W:
                    drow[j] = 0
                elif fl:
                    drow[j] = row[W - 1 - s]
                else:
                    drow[j] = row[s]


def _shift_flip_into(const floating[:, :, :, ::1] x, const int64_t[::1] dy,
                     const int64_t[::1] dx, const uint8_t[::1] flip,
                     floating[:, :, :, ::1] out):
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t plane = C * H * W, n
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef floating* op = &out[0, 0, 0, 0]
    # One image per iteration: each writes only its own out[n].
    for n in prange(x.shape[0], nogil=True, schedule="static"):
        _image(xp + n * plane, op + n * plane, C, H, W, dy[n], dx[n], flip[n] != 0)


def shift_flip(x, dy, dx, flip, out=None):
    """The flipped-then-shifted batch ``x`` (``dy``, ``dx`` int64, ``flip`` uint8), in ``out``."""
    if out is None:
        out = np.empty_like(x)
    _shift_flip_into(x, dy, dx, flip, out)
    return out


#: The family's entry points, the same in every backend (tests/test_kernel_interface.py).
__all__ = ["shift_flip"]
