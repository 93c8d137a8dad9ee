"""Max and average pooling in Numba.

Window ``(oy, ox)`` covers rows ``oy*SH - PH .. + KH-1`` and columns ``ox*SW - PW ..
+ KW-1`` of its (image, channel) plane; cells outside the input are padding. ``argmax``
(int32) holds the winner's position ``ky*KW + kx`` inside the window.

Max: a cell wins when it is greater than the best so far, or when it is the first NaN
(so NaN propagates and ties go to the first); the best starts at -inf on the first
in-bounds cell, so padding never wins. Every parallel loop runs over whole (image,
channel) planes, so the backward scatter-adds never race.
"""
import numpy as np
from numba import prange

from ._jit import jit, pjit


@jit
def _span(o, s, p, k, n):
    """Window ``o`` along one axis: its first cell ``o*s - p`` (negative inside the
    padding) and the in-bounds range ``[lo, hi)`` it covers."""
    a = o * s - p
    return a, max(a, 0), min(a + k, n)


@pjit
def _max_pool_into(x, out, arg, kh, kw, sh, sw, ph, pw, neg_inf):
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        for oy in range(OH):
            y0, ys, ye = _span(oy, sh, ph, kh, H)
            for ox in range(OW):
                x0, xs, xe = _span(ox, sw, pw, kw, W)
                best = neg_inf
                bi = (ys - y0) * kw + xs - x0
                for y in range(ys, ye):
                    for xx in range(xs, xe):
                        v = x[n, c, y, xx]
                        # Bitwise and selects, no branches: a branch mispredicts on random
                        # input (docs/tuning.md, "Branch-free max pooling").
                        w = (v > best) | ((v != v) & (best == best))
                        best = v if w else best
                        bi = (y - y0) * kw + xx - x0 if w else bi
                out[n, c, oy, ox] = best
                arg[n, c, oy, ox] = bi


@pjit
def _max_pool_2x2_into(x, out, arg):
    # 2x2 windows, stride 2, no padding: the window is unrolled (docs/tuning.md,
    # "Branch-free max pooling").
    N, C = x.shape[0], x.shape[1]
    OH, OW = out.shape[2], out.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        for oy in range(OH):
            y = 2 * oy
            for ox in range(OW):
                xx = 2 * ox
                best = x[n, c, y, xx]
                bi = 0
                v = x[n, c, y, xx + 1]
                if v > best or (v != v and best == best):
                    best = v
                    bi = 1
                v = x[n, c, y + 1, xx]
                if v > best or (v != v and best == best):
                    best = v
                    bi = 2
                v = x[n, c, y + 1, xx + 1]
                if v > best or (v != v and best == best):
                    best = v
                    bi = 3
                out[n, c, oy, ox] = best
                arg[n, c, oy, ox] = bi


@pjit
def _max_pool_backward_into(dout, arg, dx, kh, kw, sh, sw, ph, pw):
    N, C, H, W = dx.shape
    OH, OW = dout.shape[2], dout.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        for y in range(H):
            for xx in range(W):
                dx[n, c, y, xx] = 0
        for oy in range(OH):
            for ox in range(OW):
                a = arg[n, c, oy, ox]
                ky = a // kw
                y = oy * sh - ph + ky
                xx = ox * sw - pw + a - ky * kw
                # An argmax naming a padded cell (max_pool2d never makes one) adds nothing.
                if y >= 0 and y < H and xx >= 0 and xx < W:
                    dx[n, c, y, xx] += dout[n, c, oy, ox]


@pjit
def _max_pool_2x2_backward_into(dout, arg, dx):
    # 2x2 windows, stride 2, no padding: each window's four cells are zeroed and the
    # winner, found by index arithmetic, gets dout, so dx needs no zeroing pass and
    # nothing branches on the (random) winner (docs/tuning.md, "Branch-free max pooling").
    N, C, H, W = dx.shape
    OH, OW = dout.shape[2], dout.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        for oy in range(OH):
            y = 2 * oy
            for ox in range(OW):
                xx = 2 * ox
                a = arg[n, c, oy, ox]
                dx[n, c, y, xx] = 0
                dx[n, c, y, xx + 1] = 0
                dx[n, c, y + 1, xx] = 0
                dx[n, c, y + 1, xx + 1] = 0
                dx[n, c, y + (a >> 1), xx + (a & 1)] = dout[n, c, oy, ox]
        # Odd H or W: the last row / column lies in no window.
        for y in range(2 * OH, H):
            for xx in range(W):
                dx[n, c, y, xx] = 0
        for y in range(2 * OH):
            for xx in range(2 * OW, W):
                dx[n, c, y, xx] = 0


@pjit
def _avg_pool_into(x, out, kh, kw, sh, sw, ph, pw, zero, area):
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        for oy in range(OH):
            y0, ys, ye = _span(oy, sh, ph, kh, H)
            for ox in range(OW):
                x0, xs, xe = _span(ox, sw, pw, kw, W)
                s = zero
                for y in range(ys, ye):
                    for xx in range(xs, xe):
                        s += x[n, c, y, xx]
                out[n, c, oy, ox] = s / area


@pjit
def _avg_pool_backward_into(dout, dx, kh, kw, sh, sw, ph, pw, area):
    N, C, H, W = dx.shape
    OH, OW = dout.shape[2], dout.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        for y in range(H):
            for xx in range(W):
                dx[n, c, y, xx] = 0
        for oy in range(OH):
            y0, ys, ye = _span(oy, sh, ph, kh, H)
            for ox in range(OW):
                x0, xs, xe = _span(ox, sw, pw, kw, W)
                g = dout[n, c, oy, ox] / area
                for y in range(ys, ye):
                    for xx in range(xs, xe):
                        dx[n, c, y, xx] += g


def _is_2x2(kh, kw, sh, sw, ph, pw, OH, OW):
    return kh == kw == sh == sw == 2 and ph == pw == 0


def max_pool2d(x, g):
    """``x`` (N, C, H, W) C-contiguous float and its checked window geometry ``g``
    (kh, kw, sh, sw, ph, pw, oh, ow) -> (out (N, C, OH, OW), argmax int32)."""
    kh, kw, sh, sw, ph, pw, OH, OW = g
    out = np.empty((x.shape[0], x.shape[1], OH, OW), dtype=x.dtype)
    arg = np.empty((x.shape[0], x.shape[1], OH, OW), dtype=np.int32)
    if _is_2x2(*g):
        _max_pool_2x2_into(x, out, arg)
    else:
        _max_pool_into(x, out, arg, kh, kw, sh, sw, ph, pw, x.dtype.type(-np.inf))
    return out, arg


def max_pool2d_backward(dout, arg, x_shape, g):
    """``dout`` (N, C, OH, OW) float and ``arg`` int32 in [0, KH*KW), both C-contiguous,
    -> dx of ``x_shape``; ``g`` as in :func:`max_pool2d`."""
    kh, kw, sh, sw, ph, pw, OH, OW = g
    dx = np.empty(x_shape, dtype=dout.dtype)
    if _is_2x2(*g):
        _max_pool_2x2_backward_into(dout, arg, dx)
    else:
        _max_pool_backward_into(dout, arg, dx, kh, kw, sh, sw, ph, pw)
    return dx


def avg_pool2d(x, g):
    """``x`` (N, C, H, W) C-contiguous float -> (N, C, OH, OW), sum / (KH*KW); ``g`` as
    in :func:`max_pool2d`."""
    kh, kw, sh, sw, ph, pw, OH, OW = g
    out = np.empty((x.shape[0], x.shape[1], OH, OW), dtype=x.dtype)
    _avg_pool_into(x, out, kh, kw, sh, sw, ph, pw, x.dtype.type(0), x.dtype.type(kh * kw))
    return out


def avg_pool2d_backward(dout, x_shape, g):
    """``dout`` (N, C, OH, OW) C-contiguous float -> dx of ``x_shape``; ``g`` as in
    :func:`max_pool2d`."""
    kh, kw, sh, sw, ph, pw, OH, OW = g
    dx = np.empty(x_shape, dtype=dout.dtype)
    _avg_pool_backward_into(dout, dx, kh, kw, sh, sw, ph, pw, dout.dtype.type(kh * kw))
    return dx


@jit
def _bin(i, size, out):
    """PyTorch's adaptive bin ``i`` of ``out`` along an axis of ``size`` cells:
    ``[floor(i*size/out), ceil((i+1)*size/out))``."""
    return i * size // out, ((i + 1) * size + out - 1) // out


@pjit
def _adaptive_avg_into(x, out, zero):
    # Each bin sums its cells row by row, left to right, in x's dtype (zero), then
    # divides once by its area.
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        for oy in range(OH):
            ys, ye = _bin(oy, H, OH)
            for ox in range(OW):
                xs, xe = _bin(ox, W, OW)
                s = zero
                for y in range(ys, ye):
                    for xx in range(xs, xe):
                        s += x[n, c, y, xx]
                out[n, c, oy, ox] = s / ((ye - ys) * (xe - xs))


@pjit
def _adaptive_avg_backward_into(dout, dx):
    N, C, H, W = dx.shape
    OH, OW = dout.shape[2], dout.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        for y in range(H):
            for xx in range(W):
                dx[n, c, y, xx] = 0
        for oy in range(OH):
            ys, ye = _bin(oy, H, OH)
            for ox in range(OW):
                xs, xe = _bin(ox, W, OW)
                g = dout[n, c, oy, ox] / ((ye - ys) * (xe - xs))
                for y in range(ys, ye):
                    for xx in range(xs, xe):
                        dx[n, c, y, xx] += g


def global_avg_pool2d(x):
    """``x`` (N, C, H, W) C-contiguous float -> (N, C, 1, 1), each plane's mean (one
    adaptive bin)."""
    return adaptive_avg_pool2d(x, (1, 1))


def global_avg_pool2d_backward(dout, x_shape):
    """``dout`` (N, C, 1, 1) C-contiguous float -> dx of ``x_shape``, ``dout / (H*W)``
    on every cell of its plane."""
    return adaptive_avg_pool2d_backward(dout, x_shape, (1, 1))


def adaptive_avg_pool2d(x, output_size):
    """``x`` (N, C, H, W) C-contiguous float and the checked ``(OH, OW)`` -> (N, C, OH, OW),
    the mean of each of PyTorch's adaptive bins."""
    out = np.empty((x.shape[0], x.shape[1]) + tuple(output_size), dtype=x.dtype)
    _adaptive_avg_into(x, out, x.dtype.type(0))
    return out


def adaptive_avg_pool2d_backward(dout, x_shape, output_size):
    """``dout`` (N, C, OH, OW) C-contiguous float -> dx of ``x_shape``; ``output_size``
    as in :func:`adaptive_avg_pool2d` (``dout``'s last two dimensions)."""
    dx = np.empty(x_shape, dtype=dout.dtype)
    _adaptive_avg_backward_into(dout, dx)
    return dx


#: The family's entry points, the same in every backend (tests/test_kernel_interface.py).
__all__ = ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
           "global_avg_pool2d", "global_avg_pool2d_backward", "adaptive_avg_pool2d",
           "adaptive_avg_pool2d_backward"]
