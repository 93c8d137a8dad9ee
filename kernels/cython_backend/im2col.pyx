# im2col / col2im in Cython with OpenMP.
# Layout (the book's): col[(n*OH + oy)*OW + ox, (c*KH + ky)*KW + kx] =
# x[n, c, oy*SH + ky - PH, ox*SW + kx - PW] (zero outside the input).
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.string cimport memcpy, memset
import numpy as np

from ._runtime import get_num_threads

cdef extern from "stream.h" nogil:
    void fc_stream_copy(void* dst, const void* src, size_t n)
    void fc_stream_fence()


cdef void _im2col_rows(const floating* x, floating* base, Py_ssize_t t,
                       Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                       Py_ssize_t OH, Py_ssize_t OW,
                       int kh, int kw, int sh, int sw, int ph, int pw) noexcept nogil:
    """The OW rows of col of output row ``t`` (image t // OH, row t % OH) into ``base``,
    one window row segment (c, ky) at a time across all of them: the bounds checks are
    per segment and per border column, not per value."""
    cdef Py_ssize_t n = t // OH, oy = t % OH, K = C * kh * kw
    cdef Py_ssize_t ox, c, ky, kx, y, xx, x0, seg, lo, hi, hi4, edge
    cdef floating* dst
    cdef const floating* src
    # Columns whose window lies inside the row: [lo, hi); hi4: also one more value.
    lo = min(OW, (pw + sw - 1) // sw)
    hi = max(lo, min(OW, (W - kw + pw) // sw + 1)) if W >= kw else lo
    hi4 = max(lo, min(hi, (W - kw - 1 + pw) // sw + 1)) if W > kw else lo
    for c in range(C):
        for ky in range(kh):
            seg = c * kh + ky
            y = oy * sh + ky - ph
            if y < 0 or y >= H:
                for ox in range(OW):
                    memset(base + ox * K + seg * kw, 0, kw * sizeof(floating))
                continue
            src = x + ((n * C + c) * H + y) * W
            for edge in range(lo + OW - hi):
                ox = edge if edge < lo else hi + edge - lo
                dst = base + ox * K + seg * kw
                x0 = ox * sw - pw
                for kx in range(kw):
                    xx = x0 + kx
                    dst[kx] = src[xx] if 0 <= xx < W else 0
            if kw == 3 and seg < C * kh - 1:
                # One 4-value move per window segment, its 4th value overwritten by the
                # next segment, written later (docs/tuning.md, "im2col: window segments").
                for ox in range(lo, hi4):
                    memcpy(base + ox * K + seg * 3, src + ox * sw - pw, 4 * sizeof(floating))
                for ox in range(hi4, hi):
                    dst = base + ox * K + seg * 3
                    x0 = ox * sw - pw
                    dst[0] = src[x0]
                    dst[1] = src[x0 + 1]
                    dst[2] = src[x0 + 2]
            else:
                for ox in range(lo, hi):
                    dst = base + ox * K + seg * kw
                    x0 = ox * sw - pw
                    for kx in range(kw):
                        dst[kx] = src[x0 + kx]


cdef void _col2im_plane(const floating* col, floating* out, Py_ssize_t t,
                        Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                        Py_ssize_t OH, Py_ssize_t OW,
                        int kh, int kw, int sh, int sw, int ph, int pw) noexcept nogil:
    cdef Py_ssize_t n = t // C, c = t % C, K = C * kh * kw
    cdef Py_ssize_t oy, ox, ky, kx, y, xx, x0
    cdef floating* plane = out + t * H * W
    cdef floating* dst
    cdef const floating* src
    memset(plane, 0, H * W * sizeof(floating))
    for oy in range(OH):
        for ky in range(kh):
            y = oy * sh + ky - ph
            if y < 0 or y >= H:
                continue
            dst = plane + y * W
            for ox in range(OW):
                src = col + ((n * OH + oy) * OW + ox) * K + (c * kh + ky) * kw
                x0 = ox * sw - pw
                for kx in range(kw):
                    xx = x0 + kx
                    if 0 <= xx < W:
                        dst[xx] += src[kx]


def _im2col_into(const floating[:, :, :, ::1] x, floating[:, ::1] col,
                 floating[:, ::1] scratch, bint stream, int kh, int kw, int sh, int sw,
                 int ph, int pw, Py_ssize_t OH, Py_ssize_t OW):
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t t
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef floating* cp = &col[0, 0]
    cdef Py_ssize_t block = OW * C * kh * kw
    cdef floating* sp = &scratch[0, 0]
    cdef floating* mine
    # One (image, output row) per iteration, writing its own OW rows of col. Into a
    # caller's out= (stream) it builds them in the thread's scratch (cache-resident) and
    # streams them out (stream.h); into a fresh array it writes in place, as the first
    # touch of each page costs more than the stores. _im2col_rows visits the border
    # columns alone; each thread fences its stores once, after its last row (measurements:
    # docs/tuning.md, "im2col: window segments, 4-value moves, streaming"). Numba's im2col
    # streams into out= the same way (numba_backend/im2col.py).
    with nogil, parallel():
        for t in prange(x.shape[0] * OH, schedule="static"):
            if stream:
                mine = sp + threadid() * block
                _im2col_rows(xp, mine, t, C, H, W, OH, OW, kh, kw, sh, sw, ph, pw)
                fc_stream_copy(cp + t * block, mine, block * sizeof(floating))
            else:
                _im2col_rows(xp, cp + t * block, t, C, H, W, OH, OW, kh, kw, sh, sw, ph, pw)
        if stream:
            fc_stream_fence()


def _col2im_into(const floating[:, ::1] col, floating[:, :, :, ::1] out,
                 int kh, int kw, int sh, int sw, int ph, int pw, Py_ssize_t OH, Py_ssize_t OW):
    cdef Py_ssize_t C = out.shape[1], H = out.shape[2], W = out.shape[3]
    cdef Py_ssize_t t
    cdef const floating* cp = &col[0, 0]
    cdef floating* op = &out[0, 0, 0, 0]
    # Scatter-add: each iteration owns one (image, channel) plane of out.
    for t in prange(out.shape[0] * C, nogil=True, schedule="static"):
        _col2im_plane(cp, op, t, C, H, W, OH, OW, kh, kw, sh, sw, ph, pw)


def im2col(x, g, out=None):
    """``x`` (N, C, H, W) C-contiguous float and its checked window geometry ``g``
    (kh, kw, sh, sw, ph, pw, oh, ow) -> col (N*OH*OW, C*KH*KW), into ``out`` if given."""
    kh, kw, sh, sw, ph, pw, OH, OW = g
    stream = out is not None
    if out is None:
        out = np.empty((x.shape[0] * OH * OW, x.shape[1] * kh * kw), dtype=x.dtype)
    scratch = np.empty((get_num_threads() if stream else 1, OW * x.shape[1] * kh * kw),
                       dtype=x.dtype)
    _im2col_into(x, out, scratch, stream, kh, kw, sh, sw, ph, pw, OH, OW)
    return out


def col2im(col, x_shape, g, out=None):
    """col (N*OH*OW, C*KH*KW) -> ``x_shape`` (N, C, H, W), overlapping windows summed,
    into ``out`` if given; ``g`` as in :func:`im2col`."""
    kh, kw, sh, sw, ph, pw, OH, OW = g
    if out is None:
        out = np.empty(x_shape, dtype=col.dtype)
    _col2im_into(col, out, kh, kw, sh, sw, ph, pw, OH, OW)
    return out


#: The family's entry points, the same in every backend (tests/test_kernel_interface.py).
__all__ = ["im2col", "col2im"]
