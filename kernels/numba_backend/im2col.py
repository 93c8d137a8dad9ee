"""im2col / col2im in Numba.

Layout (the book's): ``col[(n*OH + oy)*OW + ox, (c*KH + ky)*KW + kx] =
x[n, c, oy*SH + ky - PH, ox*SW + kx - PW]`` (zero outside the input).
Kernels index the arrays element by element: taking a row view of ``col`` per output
pixel (or indexing ``ravel()``-ed views) measured 2-4x slower under Numba 0.68.
"""
import numpy as np
from numba import prange

from ._jit import pjit


@pjit
def _im2col_into(x, col, kh, kw, sh, sw, ph, pw, OH, OW):
    n_img, C, H, W = x.shape
    # One (image, output row) per iteration: each writes its own OW rows of col.
    for t in prange(n_img * OH):
        n = t // OH
        oy = t - n * OH
        for ox in range(OW):
            r = t * OW + ox
            x0 = ox * sw - pw
            for c in range(C):
                for ky in range(kh):
                    y = oy * sh + ky - ph
                    base = (c * kh + ky) * kw
                    if y < 0 or y >= H:
                        for kx in range(kw):
                            col[r, base + kx] = 0
                    else:
                        for kx in range(kw):
                            xx = x0 + kx
                            if xx >= 0 and xx < W:
                                col[r, base + kx] = x[n, c, y, xx]
                            else:
                                col[r, base + kx] = 0


@pjit
def _col2im_into(col, out, kh, kw, sh, sw, ph, pw, OH, OW):
    n_img, C, H, W = out.shape
    # Scatter-add: each iteration owns one (image, channel) plane of out, so no two
    # threads ever write the same element.
    for t in prange(n_img * C):
        n = t // C
        c = t - n * C
        out[n, c] = 0
        for oy in range(OH):
            for ky in range(kh):
                y = oy * sh + ky - ph
                if y < 0 or y >= H:
                    continue
                base = (c * kh + ky) * kw
                for ox in range(OW):
                    r = (n * OH + oy) * OW + ox
                    x0 = ox * sw - pw
                    for kx in range(kw):
                        xx = x0 + kx
                        if xx >= 0 and xx < W:
                            out[n, c, y, xx] += col[r, base + kx]


def im2col(x, g, out=None):
    """``x`` (N, C, H, W) C-contiguous float and its checked window geometry ``g``
    (kh, kw, sh, sw, ph, pw, oh, ow) -> col (N*OH*OW, C*KH*KW), into ``out`` if given."""
    kh, kw, sh, sw, ph, pw, OH, OW = g
    if out is None:
        out = np.empty((x.shape[0] * OH * OW, x.shape[1] * kh * kw), dtype=x.dtype)
    _im2col_into(x, out, *g)
    return out


def col2im(col, x_shape, g, out=None):
    """col (N*OH*OW, C*KH*KW) -> ``x_shape`` (N, C, H, W), overlapping windows summed,
    into ``out`` if given; ``g`` as in :func:`im2col`."""
    if out is None:
        out = np.empty(x_shape, dtype=col.dtype)
    _col2im_into(col, out, *g)
    return out


#: The family's entry points, the same in every backend (tests/test_kernel_interface.py).
__all__ = ["im2col", "col2im"]
