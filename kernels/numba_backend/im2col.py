"""im2col / col2im in Numba.

Layout (the book's): ``col[(n*OH + oy)*OW + ox, (c*KH + ky)*KW + kx] =
x[n, c, oy*SH + ky - PH, ox*SW + kx - PW]`` (zero outside the input).

im2col builds one output row's OW rows of col at a time, as the Cython kernel does: one
window row segment (c, ky) across all of them, bounds checks only on the border columns
and, for 3-wide windows, one 4-value move per segment (``_simd.move4``). It builds them
in the thread's buffer and streams them to a caller's ``out=`` (``_simd.stream_copy``,
non-temporal stores) or copies them to a fresh col (docs/tuning.md, "im2col: window
segments, 4-value moves, streaming").

The border columns are visited alone and the loops over columns kept scalar
(``keep_scalar``): the buffer cannot alias the input, and LLVM then turned a loop over
every column that skipped the inner ones into masked vector code whose setup cost more
than the loop, and at AVX-512 the others into gathers and scatters (same section).
"""
import numba
import numpy as np
from numba import prange

from ._jit import pjit
from ._simd import keep_scalar, move4, store_fence, stream_copy


@pjit
def _im2col_into(x, col, kh, kw, sh, sw, ph, pw, OH, OW, stream, nt):
    n_img, C, H, W = x.shape
    K = C * kh * kw
    block = OW * K
    T = n_img * OH
    xf = x.reshape(-1)
    cf = col.reshape(-1)
    # Output columns [lo, hi) have their windows inside the input row; up to hi4 one
    # more value of the row follows the window (for move4).
    lo = min(OW, (pw + sw - 1) // sw)
    hi = max(lo, min(OW, (W - kw + pw) // sw + 1)) if W >= kw else lo
    hi4 = max(lo, min(hi, (W - kw - 1 + pw) // sw + 1)) if W > kw else lo
    for k in prange(nt):
        rows = np.empty(block, dtype=col.dtype)
        for t in range(k * T // nt, (k + 1) * T // nt):
            n = t // OH
            oy = t - n * OH
            for c in range(C):
                for ky in range(kh):
                    s = c * kh + ky
                    y = oy * sh + ky - ph
                    if y < 0 or y >= H:
                        for ox in range(OW):
                            keep_scalar()
                            for kx in range(kw):
                                rows[ox * K + s * kw + kx] = 0
                        continue
                    src = ((n * C + c) * H + y) * W - pw
                    for b in range(lo + OW - hi):
                        ox = b if b < lo else hi + b - lo
                        for kx in range(kw):
                            keep_scalar()
                            xx = ox * sw + kx
                            rows[ox * K + s * kw + kx] = xf[src + xx] if pw <= xx < W + pw else 0
                    if kw == 3 and s < C * kh - 1:
                        # The 4th value is the next segment's first, written after it.
                        for ox in range(lo, hi4):
                            move4(rows, ox * K + s * 3, xf, src + ox * sw)
                        for ox in range(hi4, hi):
                            keep_scalar()
                            for kx in range(3):
                                rows[ox * K + s * 3 + kx] = xf[src + ox * sw + kx]
                    else:
                        for ox in range(lo, hi):
                            keep_scalar()
                            for kx in range(kw):
                                rows[ox * K + s * kw + kx] = xf[src + ox * sw + kx]
            if stream:
                stream_copy(cf, t * block, rows, 0, block)
            else:
                for i in range(block):
                    cf[t * block + i] = rows[i]
        if stream:
            store_fence()


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
    stream = out is not None
    if out is None:
        out = np.empty((x.shape[0] * OH * OW, x.shape[1] * kh * kw), dtype=x.dtype)
    _im2col_into(x, out, *g, stream, numba.get_num_threads())
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
