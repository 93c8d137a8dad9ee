# Max and average pooling in Cython with OpenMP.
# Window (oy, ox) covers rows oy*SH - PH .. + KH-1 and columns ox*SW - PW .. + KW-1 of its
# (image, channel) plane; cells outside the input are padding. argmax (int32) holds the
# winner's position ky*KW + kx inside the window.
# Max: a cell wins when it is greater than the best so far, or when it is the first NaN
# (NaN propagates, ties go to the first); the best starts at -inf on the first in-bounds
# cell, so padding never wins. Every parallel loop runs over whole (image, channel)
# planes, so the backward scatter-adds never race.
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY
from libc.stdlib cimport free, malloc
from libc.string cimport memset
from libc.stdint cimport int32_t
import numpy as np


cdef inline bint _wins(floating v, floating best) noexcept nogil:
    # Bitwise, not short-circuit: gcc then emits compares and selects instead of
    # branches that mispredict on random data.
    return (v > best) | ((v != v) & (best == best))


cdef inline (Py_ssize_t, Py_ssize_t, Py_ssize_t) _span(
        Py_ssize_t o, int s, int p, int k, Py_ssize_t n) noexcept nogil:
    # Window o along one axis: its first cell o*s - p (negative inside the padding) and
    # the in-bounds range [lo, hi) it covers.
    cdef Py_ssize_t a = o * s - p
    return a, (a if a > 0 else 0), (a + k if a + k < n else n)


cdef void _max_plane(const floating* x, floating* out, int32_t* arg,
                     Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                     int kh, int kw, int sh, int sw, int ph, int pw) noexcept nogil:
    cdef Py_ssize_t oy, ox, y, xx, y0, x0, ys, ye, xs, xe
    cdef floating best, v
    cdef int32_t bi, m
    for oy in range(OH):
        y0, ys, ye = _span(oy, sh, ph, kh, H)
        for ox in range(OW):
            x0, xs, xe = _span(ox, sw, pw, kw, W)
            best = -INFINITY
            bi = <int32_t>((ys - y0) * kw + xs - x0)
            for y in range(ys, ye):
                for xx in range(xs, xe):
                    v = x[y * W + xx]
                    # The compare as a mask: branching on it mispredicts on random data.
                    m = -<int32_t>_wins(v, best)
                    bi = bi ^ ((bi ^ <int32_t>((y - y0) * kw + xx - x0)) & m)
                    best = v if m else best
            out[oy * OW + ox] = best
            arg[oy * OW + ox] = bi


cdef void _max_plane_2x2(const floating* x, floating* out, int32_t* arg,
                         Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    # 2x2 windows, stride 2, no padding. NaN-free windows take the select-only path
    # (gcc emits maxss/cmov); a window holding NaN (a rare, well-predicted branch) takes
    # the general rule (docs/tuning.md, "Branch-free max pooling").
    cdef Py_ssize_t oy, ox
    cdef const floating* r0
    cdef const floating* r1
    cdef floating a, b, c, d, best
    cdef int32_t bi, m
    for oy in range(OH):
        r0 = x + 2 * oy * W
        r1 = r0 + W
        for ox in range(OW):
            a = r0[2 * ox]
            b = r0[2 * ox + 1]
            c = r1[2 * ox]
            d = r1[2 * ox + 1]
            if (a != a) | (b != b) | (c != c) | (d != d):
                bi = 0 if a != a else (1 if b != b else (2 if c != c else 3))
                best = a + b + c + d
            else:
                # best: "v if v > best else best" compiles to maxss; bi: the compare as
                # 0/1 turned into a mask, so nothing branches.
                m = -<int32_t>(b > a)
                bi = m & 1
                best = b if b > a else a
                m = -<int32_t>(c > best)
                bi = bi ^ ((bi ^ 2) & m)
                best = c if c > best else best
                m = -<int32_t>(d > best)
                bi = bi ^ ((bi ^ 3) & m)
                best = d if d > best else best
            out[oy * OW + ox] = best
            arg[oy * OW + ox] = bi


cdef void _max_rows_2x2(const float* x, float* out, int32_t* arg,
                        Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                        float* colmax, int32_t* lower) noexcept nogil:
    # float32 2x2 windows, stride 2, no padding, in two branch-free passes per output
    # row: each column's larger cell (contiguous loads, which gcc vectorizes), then each
    # window's larger column, ties to the first cell in row-major order. A row holding
    # NaN is done again by the general rule. colmax, lower: 2*OW scratch values each.
    # Faster than _max_plane_2x2 for float32 only (docs/tuning.md, "Max pool 2x2").
    cdef Py_ssize_t oy, ox, i
    cdef const float* r0
    cdef const float* r1
    cdef float top, bot, a, b
    cdef int32_t la, lb, right
    cdef int nan
    for oy in range(OH):
        r0 = x + 2 * oy * W
        r1 = r0 + W
        nan = 0
        for i in range(2 * OW):
            top = r0[i]
            bot = r1[i]
            nan = nan | (top != top) | (bot != bot)
            lower[i] = bot > top
            colmax[i] = bot if bot > top else top
        for ox in range(OW):
            a = colmax[2 * ox]
            b = colmax[2 * ox + 1]
            la = lower[2 * ox]
            lb = lower[2 * ox + 1]
            # the right column wins when larger, or equal with its cell first (b above c)
            right = (b > a) | ((b == a) & la & (1 - lb))
            out[oy * OW + ox] = b if right else a
            arg[oy * OW + ox] = (1 + 2 * lb) if right else 2 * la
        if nan:
            _max_plane(r0, out + oy * OW, arg + oy * OW, 2, W, 1, OW, 2, 2, 2, 2, 0, 0)


cdef void _max_back_plane(const floating* dout, const int32_t* arg, floating* dx,
                          Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                          int kh, int kw, int sh, int sw, int ph, int pw) noexcept nogil:
    cdef Py_ssize_t oy, ox, y, xx, a, ky
    memset(dx, 0, H * W * sizeof(floating))
    for oy in range(OH):
        for ox in range(OW):
            a = arg[oy * OW + ox]
            ky = a // kw
            y = oy * sh - ph + ky
            xx = ox * sw - pw + a - ky * kw
            # An argmax naming a padded cell (max_pool2d never makes one) adds nothing.
            if 0 <= y < H and 0 <= xx < W:
                dx[y * W + xx] += dout[oy * OW + ox]


cdef void _max_back_plane_2x2(const floating* dout, const int32_t* arg, floating* dx,
                              Py_ssize_t H, Py_ssize_t W,
                              Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    # 2x2 windows, stride 2, no padding: each window's four cells are zeroed and the
    # winner, found by address arithmetic, gets dout, so dx needs no zeroing pass and
    # nothing branches on the (random) winner (docs/tuning.md, "Branch-free max pooling").
    # Only an odd last row / column lies in no window.
    cdef Py_ssize_t oy, ox
    cdef floating* r0
    cdef int32_t a
    for oy in range(OH):
        r0 = dx + 2 * oy * W
        for ox in range(OW):
            a = arg[oy * OW + ox]
            r0[2 * ox] = 0
            r0[2 * ox + 1] = 0
            r0[W + 2 * ox] = 0
            r0[W + 2 * ox + 1] = 0
            r0[(a >> 1) * W + 2 * ox + (a & 1)] = dout[oy * OW + ox]
        if W > 2 * OW:
            r0[W - 1] = 0
            r0[2 * W - 1] = 0
    if H > 2 * OH:
        memset(dx + (H - 1) * W, 0, W * sizeof(floating))


cdef void _avg_plane(const floating* x, floating* out,
                     Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                     int kh, int kw, int sh, int sw, int ph, int pw) noexcept nogil:
    cdef Py_ssize_t oy, ox, y, xx, y0, x0, ys, ye, xs, xe
    cdef floating s
    cdef floating area = kh * kw
    for oy in range(OH):
        y0, ys, ye = _span(oy, sh, ph, kh, H)
        for ox in range(OW):
            x0, xs, xe = _span(ox, sw, pw, kw, W)
            s = 0
            for y in range(ys, ye):
                for xx in range(xs, xe):
                    s = s + x[y * W + xx]
            out[oy * OW + ox] = s / area


cdef void _avg_back_plane(const floating* dout, floating* dx,
                          Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                          int kh, int kw, int sh, int sw, int ph, int pw) noexcept nogil:
    cdef Py_ssize_t oy, ox, y, xx, y0, x0, ys, ye, xs, xe
    cdef floating g
    cdef floating area = kh * kw
    memset(dx, 0, H * W * sizeof(floating))
    for oy in range(OH):
        y0, ys, ye = _span(oy, sh, ph, kh, H)
        for ox in range(OW):
            x0, xs, xe = _span(ox, sw, pw, kw, W)
            g = dout[oy * OW + ox] / area
            for y in range(ys, ye):
                for xx in range(xs, xe):
                    dx[y * W + xx] += g


cdef inline bint _is_2x2(int kh, int kw, int sh, int sw, int ph, int pw) noexcept nogil:
    return kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0


def _max_pool_into(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out,
                   int32_t[:, :, :, ::1] arg,
                   int kh, int kw, int sh, int sw, int ph, int pw):
    cdef Py_ssize_t H = x.shape[2], W = x.shape[3], OH = out.shape[2], OW = out.shape[3]
    cdef Py_ssize_t t
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef floating* op = &out[0, 0, 0, 0]
    cdef int32_t* ap = &arg[0, 0, 0, 0]
    cdef bint fast = _is_2x2(kh, kw, sh, sw, ph, pw)
    cdef float* colmax
    cdef int32_t* lower
    with nogil, parallel():
        colmax = NULL
        lower = NULL
        if floating is float and fast:
            colmax = <float*>malloc(2 * OW * sizeof(float) + 1)
            lower = <int32_t*>malloc(2 * OW * sizeof(int32_t) + 1)
        for t in prange(x.shape[0] * x.shape[1], schedule="static"):
            if floating is float and fast and colmax != NULL and lower != NULL:
                _max_rows_2x2(xp + t * H * W, op + t * OH * OW, ap + t * OH * OW, W, OH, OW,
                              colmax, lower)
            elif fast:
                _max_plane_2x2(xp + t * H * W, op + t * OH * OW, ap + t * OH * OW, W, OH, OW)
            else:
                _max_plane(xp + t * H * W, op + t * OH * OW, ap + t * OH * OW,
                           H, W, OH, OW, kh, kw, sh, sw, ph, pw)
        free(colmax)
        free(lower)


def _max_pool_backward_into(const floating[:, :, :, ::1] dout, const int32_t[:, :, :, ::1] arg,
                            floating[:, :, :, ::1] dx,
                            int kh, int kw, int sh, int sw, int ph, int pw):
    cdef Py_ssize_t H = dx.shape[2], W = dx.shape[3], OH = dout.shape[2], OW = dout.shape[3]
    cdef Py_ssize_t t
    cdef const floating* dp = &dout[0, 0, 0, 0]
    cdef const int32_t* ap = &arg[0, 0, 0, 0]
    cdef floating* xp = &dx[0, 0, 0, 0]
    cdef bint fast = _is_2x2(kh, kw, sh, sw, ph, pw)
    for t in prange(dx.shape[0] * dx.shape[1], nogil=True, schedule="static"):
        if fast:
            _max_back_plane_2x2(dp + t * OH * OW, ap + t * OH * OW, xp + t * H * W,
                                H, W, OH, OW)
        else:
            _max_back_plane(dp + t * OH * OW, ap + t * OH * OW, xp + t * H * W,
                            H, W, OH, OW, kh, kw, sh, sw, ph, pw)


def _avg_pool_into(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out,
                   int kh, int kw, int sh, int sw, int ph, int pw):
    cdef Py_ssize_t H = x.shape[2], W = x.shape[3], OH = out.shape[2], OW = out.shape[3]
    cdef Py_ssize_t t
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef floating* op = &out[0, 0, 0, 0]
    for t in prange(x.shape[0] * x.shape[1], nogil=True, schedule="static"):
        _avg_plane(xp + t * H * W, op + t * OH * OW, H, W, OH, OW, kh, kw, sh, sw, ph, pw)


def _avg_pool_backward_into(const floating[:, :, :, ::1] dout, floating[:, :, :, ::1] dx,
                            int kh, int kw, int sh, int sw, int ph, int pw):
    cdef Py_ssize_t H = dx.shape[2], W = dx.shape[3], OH = dout.shape[2], OW = dout.shape[3]
    cdef Py_ssize_t t
    cdef const floating* dp = &dout[0, 0, 0, 0]
    cdef floating* xp = &dx[0, 0, 0, 0]
    for t in prange(dx.shape[0] * dx.shape[1], nogil=True, schedule="static"):
        _avg_back_plane(dp + t * OH * OW, xp + t * H * W, H, W, OH, OW,
                        kh, kw, sh, sw, ph, pw)


def max_pool2d(x, g):
    """(out, argmax int32) of ``x`` (N, C, H, W) under the window geometry ``g``."""
    kh, kw, sh, sw, ph, pw, OH, OW = g
    out = np.empty((x.shape[0], x.shape[1], OH, OW), dtype=x.dtype)
    arg = np.empty(out.shape, dtype=np.int32)
    _max_pool_into(x, out, arg, kh, kw, sh, sw, ph, pw)
    return out, arg


def max_pool2d_backward(dout, arg, x_shape, g):
    """dx of ``x_shape`` from ``dout`` and the int32 ``arg`` of :func:`max_pool2d`."""
    dx = np.empty(x_shape, dtype=dout.dtype)
    _max_pool_backward_into(dout, arg, dx, *g[:6])
    return dx


def avg_pool2d(x, g):
    """Window sums / (KH*KW) of ``x`` (N, C, H, W) under the window geometry ``g``."""
    out = np.empty((x.shape[0], x.shape[1], g[6], g[7]), dtype=x.dtype)
    _avg_pool_into(x, out, *g[:6])
    return out


def avg_pool2d_backward(dout, x_shape, g):
    """dx of ``x_shape`` from the ``dout`` of :func:`avg_pool2d`."""
    dx = np.empty(x_shape, dtype=dout.dtype)
    _avg_pool_backward_into(dout, dx, *g[:6])
    return dx


cdef inline (Py_ssize_t, Py_ssize_t) _bin(Py_ssize_t i, Py_ssize_t size,
                                           Py_ssize_t out) noexcept nogil:
    # PyTorch's adaptive bin i of out along an axis of size cells:
    # [floor(i*size/out), ceil((i+1)*size/out)).
    return i * size // out, ((i + 1) * size + out - 1) // out


cdef void _adaptive_plane(const floating* x, floating* out, Py_ssize_t H, Py_ssize_t W,
                          Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    # Each bin sums its cells row by row, left to right, in x's type, then divides once
    # by its area.
    cdef Py_ssize_t oy, ox, y, xx, ys, ye, xs, xe
    cdef floating s
    for oy in range(OH):
        ys, ye = _bin(oy, H, OH)
        for ox in range(OW):
            xs, xe = _bin(ox, W, OW)
            s = 0
            for y in range(ys, ye):
                for xx in range(xs, xe):
                    s = s + x[y * W + xx]
            out[oy * OW + ox] = s / <floating>((ye - ys) * (xe - xs))


cdef void _adaptive_back_plane(const floating* dout, floating* dx, Py_ssize_t H,
                               Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    cdef Py_ssize_t oy, ox, y, xx, ys, ye, xs, xe
    cdef floating g
    memset(dx, 0, H * W * sizeof(floating))
    for oy in range(OH):
        ys, ye = _bin(oy, H, OH)
        for ox in range(OW):
            xs, xe = _bin(ox, W, OW)
            g = dout[oy * OW + ox] / <floating>((ye - ys) * (xe - xs))
            for y in range(ys, ye):
                for xx in range(xs, xe):
                    dx[y * W + xx] += g


def _adaptive_avg_into(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out):
    cdef Py_ssize_t H = x.shape[2], W = x.shape[3], OH = out.shape[2], OW = out.shape[3]
    cdef Py_ssize_t t
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef floating* op = &out[0, 0, 0, 0]
    for t in prange(x.shape[0] * x.shape[1], nogil=True, schedule="static"):
        _adaptive_plane(xp + t * H * W, op + t * OH * OW, H, W, OH, OW)


def _adaptive_avg_backward_into(const floating[:, :, :, ::1] dout, floating[:, :, :, ::1] dx):
    cdef Py_ssize_t H = dx.shape[2], W = dx.shape[3], OH = dout.shape[2], OW = dout.shape[3]
    cdef Py_ssize_t t
    cdef const floating* dp = &dout[0, 0, 0, 0]
    cdef floating* xp = &dx[0, 0, 0, 0]
    for t in prange(dx.shape[0] * dx.shape[1], nogil=True, schedule="static"):
        _adaptive_back_plane(dp + t * OH * OW, xp + t * H * W, H, W, OH, OW)


def global_avg_pool2d(x):
    """(N, C, 1, 1): the mean of each (image, channel) plane of ``x`` (one adaptive bin)."""
    return adaptive_avg_pool2d(x, (1, 1))


def global_avg_pool2d_backward(dout, x_shape):
    """dx of ``x_shape``: each ``dout`` (N, C, 1, 1) cell / (H*W) on its whole plane."""
    return adaptive_avg_pool2d_backward(dout, x_shape, (1, 1))


def adaptive_avg_pool2d(x, output_size):
    """(N, C, OH, OW): the mean of each of PyTorch's adaptive bins of ``x`` (N, C, H, W);
    ``output_size`` the checked (OH, OW)."""
    out = np.empty((x.shape[0], x.shape[1]) + tuple(output_size), dtype=x.dtype)
    _adaptive_avg_into(x, out)
    return out


def adaptive_avg_pool2d_backward(dout, x_shape, output_size):
    """dx of ``x_shape`` from the ``dout`` (N, C, OH, OW) of :func:`adaptive_avg_pool2d`."""
    dx = np.empty(x_shape, dtype=dout.dtype)
    _adaptive_avg_backward_into(dout, dx)
    return dx


#: The family's entry points, the same in every backend (tests/test_kernel_interface.py).
__all__ = ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
           "global_avg_pool2d", "global_avg_pool2d_backward", "adaptive_avg_pool2d",
           "adaptive_avg_pool2d_backward"]
