"""conv2d forward and backward in Numba: direct convolution and im2col + GEMM.

The algorithm is picked per shape by ``kernels._conv_plan`` (its docstring has the rule
and the measurements behind it). The GEMMs are ``np.dot`` on 2-D contiguous arrays,
which Numba lowers to SciPy's BLAS; they run inside ``prange`` loops (one call per
thread), so SciPy's BLAS is held to one thread around the kernel call.

col layout here is transposed relative to the book: ``col[(c*KH + ky)*KW + kx,
j*OH*OW + oy*OW + ox] = x[n0 + j, c, oy*SH + ky - PH, ox*SW + kx - PW]`` for the
``j``-th image of a group, so ``W(FN, K) @ col`` is already in NCHW order.
"""
import numba
import numpy as np
from numba import prange

from .._blas import single_threaded_blas
from .._conv_plan import choose, group_size
from ._jit import jit, pjit


@jit
def _valid_range(k, s, p, n_out, n_in):
    """Output indices ``o`` with ``0 <= o*s + k - p < n_in``, as ``[lo, hi)``."""
    lo = 0
    if p - k > 0:
        lo = (p - k + s - 1) // s
    hi = (n_in - 1 + p - k) // s + 1 if n_in - 1 + p - k >= 0 else 0
    if hi > n_out:
        hi = n_out
    if hi < lo:
        hi = lo
    return lo, hi


@jit
def _im2col_t(x, n, col, off, kh, kw, sh, sw, ph, pw, OH, OW):
    """Write image ``n``'s windows into columns ``off .. off + OH*OW`` of ``col``."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    for c in range(C):
        for ky in range(kh):
            ylo, yhi = _valid_range(ky, sh, ph, OH, H)
            for kx in range(kw):
                r = (c * kh + ky) * kw + kx
                xlo, xhi = _valid_range(kx, sw, pw, OW, W)
                for oy in range(OH):
                    q = off + oy * OW
                    if oy < ylo or oy >= yhi:
                        for ox in range(OW):
                            col[r, q + ox] = 0
                        continue
                    y = oy * sh + ky - ph
                    for ox in range(xlo):
                        col[r, q + ox] = 0
                    for ox in range(xlo, xhi):
                        col[r, q + ox] = x[n, c, y, ox * sw + kx - pw]
                    for ox in range(xhi, OW):
                        col[r, q + ox] = 0


@jit
def _col2im_t(col, off, dx, n, kh, kw, sh, sw, ph, pw, OH, OW):
    """Fold columns ``off .. off + OH*OW`` of ``col`` into image ``n`` of ``dx`` (summing)."""
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    dx[n] = 0
    for c in range(C):
        for ky in range(kh):
            ylo, yhi = _valid_range(ky, sh, ph, OH, H)
            for kx in range(kw):
                r = (c * kh + ky) * kw + kx
                xlo, xhi = _valid_range(kx, sw, pw, OW, W)
                for oy in range(ylo, yhi):
                    y = oy * sh + ky - ph
                    q = off + oy * OW
                    for ox in range(xlo, xhi):
                        dx[n, c, y, ox * sw + kx - pw] += col[r, q + ox]


# ------------------------------------------------------------------ im2col + GEMM


@pjit
def _forward_gemm(x, Wm, b, out3, kh, kw, sh, sw, ph, pw, OH, OW, relu, G, nt):
    N = x.shape[0]
    FN, K = Wm.shape
    P = OH * OW
    n_groups = (N + G - 1) // G
    for t in prange(nt):
        col_buf = np.empty(K * G * P, dtype=x.dtype)
        res_buf = np.empty(FN * G * P, dtype=x.dtype)
        for g in range(t * n_groups // nt, (t + 1) * n_groups // nt):
            n0 = g * G
            m = min(G, N - n0)
            col = col_buf[: K * m * P].reshape((K, m * P))
            res = res_buf[: FN * m * P].reshape((FN, m * P))
            for j in range(m):
                _im2col_t(x, n0 + j, col, j * P, kh, kw, sh, sw, ph, pw, OH, OW)
            np.dot(Wm, col, res)
            for j in range(m):
                for f in range(FN):
                    bf = b[f]
                    for p in range(P):
                        v = res[f, j * P + p] + bf
                        if relu and v < 0:
                            v = 0
                        out3[n0 + j, f, p] = v


@pjit
def _backward_gemm(dout3, rout3, x, Wm, WmT, dx, dW_part, db_part, kh, kw, sh, sw, ph, pw,
                   OH, OW, need_dx, has_relu, G):
    N = x.shape[0]
    FN, K = Wm.shape
    P = OH * OW
    n_groups = (N + G - 1) // G
    nt = dW_part.shape[0]
    for t in prange(nt):
        col_buf = np.empty(K * G * P, dtype=x.dtype)
        d_buf = np.empty(FN * G * P, dtype=x.dtype)
        dcol_buf = np.empty(K * G * P, dtype=x.dtype)
        tmp = np.empty((FN, K), dtype=x.dtype)
        dW_t = dW_part[t]
        dW_t[:] = 0
        db_part[t] = 0
        for g in range(t * n_groups // nt, (t + 1) * n_groups // nt):
            n0 = g * G
            m = min(G, N - n0)
            col = col_buf[: K * m * P].reshape((K, m * P))
            dg = d_buf[: FN * m * P].reshape((FN, m * P))
            for j in range(m):
                _im2col_t(x, n0 + j, col, j * P, kh, kw, sh, sw, ph, pw, OH, OW)
                for f in range(FN):
                    s = 0.0
                    for p in range(P):
                        v = dout3[n0 + j, f, p]
                        # The fused ReLU's backward (the book's mask out <= 0).
                        if has_relu and rout3[n0 + j, f, p] <= 0:
                            v = 0
                        dg[f, j * P + p] = v
                        s += v
                    db_part[t, f] += s
            np.dot(dg, col.T, tmp)
            for f in range(FN):
                for k in range(K):
                    dW_t[f, k] += tmp[f, k]
            if need_dx:
                dcol = dcol_buf[: K * m * P].reshape((K, m * P))
                np.dot(WmT, dg, dcol)
                for j in range(m):
                    _col2im_t(dcol, j * P, dx, n0 + j, kh, kw, sh, sw, ph, pw, OH, OW)


# ------------------------------------------------------------------ direct


@pjit
def _forward_direct(x, W, b, out, sh, sw, ph, pw, relu):
    N, C, H, Wd = x.shape
    FN, _, kh, kw = W.shape
    OH, OW = out.shape[2], out.shape[3]
    # One output plane per iteration; it stays in L1 while the C*KH*KW taps are added
    # row by row (the inner loop over ox vectorizes).
    for t in prange(N * FN):
        n = t // FN
        f = t - n * FN
        bf = b[f]
        for oy in range(OH):
            for ox in range(OW):
                out[n, f, oy, ox] = bf
        for c in range(C):
            for ky in range(kh):
                ylo, yhi = _valid_range(ky, sh, ph, OH, H)
                for kx in range(kw):
                    w = W[f, c, ky, kx]
                    xlo, xhi = _valid_range(kx, sw, pw, OW, Wd)
                    for oy in range(ylo, yhi):
                        y = oy * sh + ky - ph
                        for ox in range(xlo, xhi):
                            out[n, f, oy, ox] += w * x[n, c, y, ox * sw + kx - pw]
        if relu:
            for oy in range(OH):
                for ox in range(OW):
                    if out[n, f, oy, ox] < 0:
                        out[n, f, oy, ox] = 0


@pjit
def _backward_direct_dw(dout, x, acc, kh, kw, sh, sw, ph, pw):
    """Per-thread partial sums ``acc[t, f, c, ky, kx, ox]`` (summed over ox by the caller),
    so the inner loop is an element-wise multiply-add that vectorizes without
    reassociating a reduction (fastmath stays off)."""
    N, C, H, Wd = x.shape
    FN, OH, OW = dout.shape[1], dout.shape[2], dout.shape[3]
    nt = acc.shape[0]
    for t in prange(nt):
        acc[t] = 0
        for n in range(t * N // nt, (t + 1) * N // nt):
            for f in range(FN):
                for c in range(C):
                    for ky in range(kh):
                        ylo, yhi = _valid_range(ky, sh, ph, OH, H)
                        for kx in range(kw):
                            xlo, xhi = _valid_range(kx, sw, pw, OW, Wd)
                            for oy in range(ylo, yhi):
                                y = oy * sh + ky - ph
                                for ox in range(xlo, xhi):
                                    acc[t, f, c, ky, kx, ox] += (
                                        dout[n, f, oy, ox] * x[n, c, y, ox * sw + kx - pw])


@pjit
def _backward_direct_dx(dout, W, dx, sh, sw, ph, pw):
    N, C, H, Wd = dx.shape
    FN, _, kh, kw = W.shape
    OH, OW = dout.shape[2], dout.shape[3]
    # One input plane per iteration: scatter-adds never cross threads.
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        dx[n, c] = 0
        for f in range(FN):
            for ky in range(kh):
                ylo, yhi = _valid_range(ky, sh, ph, OH, H)
                for kx in range(kw):
                    w = W[f, c, ky, kx]
                    xlo, xhi = _valid_range(kx, sw, pw, OW, Wd)
                    for oy in range(ylo, yhi):
                        y = oy * sh + ky - ph
                        for ox in range(xlo, xhi):
                            dx[n, c, y, ox * sw + kx - pw] += w * dout[n, f, oy, ox]


# Stride 1: "flat" direct convolution. Each image is zero-padded into planes of width
# Wp = W + 2*PW stored flat, and the output is computed on the same width, so every
# tap (c, ky, kx) is one long multiply-add over OH*Wp contiguous elements
# (``acc[i] += w * xp[c, ky*Wp + kx + i]``) instead of OH short rows; the KW-1 extra
# columns per row are discarded. With OW=28 the per-row loops of the strided kernels
# above run mostly in the scalar remainder of a 16-lane AVX-512 loop. The hot loops
# index 1-D slices (``src = xp[c][base:base + L]``): with 2-D indexing
# ``xp[c, base + i]`` Numba 0.68 did not vectorize them (measured 2.8 vs 22.5 GFLOP/s,
# one thread). One parallel region per call, each thread with its own padded buffers,
# over its share of images.


@jit
def _embed_image(a, n, out, y0, x0, rs):
    """``out[c, (y + y0)*rs + x + x0] = a[n, c, y, x]``; the rest of ``out`` is untouched."""
    for c in range(a.shape[1]):
        for y in range(a.shape[2]):
            q = (y + y0) * rs + x0
            for xx in range(a.shape[3]):
                out[c, q + xx] = a[n, c, y, xx]


@pjit
def _forward_flat(x, W, b, out, ph, pw, relu, nt):
    N, C, H, Wd = x.shape
    FN, OH, OW = out.shape[1], out.shape[2], out.shape[3]
    kh, kw = W.shape[2], W.shape[3]
    Wp = Wd + 2 * pw
    L = OH * Wp
    for t in prange(nt):
        xp = np.zeros((C, (H + 2 * ph + 1) * Wp), dtype=x.dtype)
        acc = np.empty(L, dtype=x.dtype)
        for n in range(t * N // nt, (t + 1) * N // nt):
            _embed_image(x, n, xp, ph, pw, Wp)
            for f in range(FN):
                acc[:] = b[f]
                for c in range(C):
                    xr = xp[c]
                    for ky in range(kh):
                        for kx in range(kw):
                            w = W[f, c, ky, kx]
                            src = xr[ky * Wp + kx:ky * Wp + kx + L]
                            for i in range(L):
                                acc[i] += w * src[i]
                for oy in range(OH):
                    for ox in range(OW):
                        v = acc[oy * Wp + ox]
                        if relu and v < 0:
                            v = 0
                        out[n, f, oy, ox] = v


@pjit
def _backward_flat(dout, x, W, dx, acc, db_part, ph, pw, need_dx):
    """dW as per-thread sums over 16 lanes ``acc[t, f, c, ky, kx, l]``: the fixed
    16-lane inner loop vectorizes without reassociating a reduction (fastmath stays
    off). dx image by image from the same padded dout."""
    N, C, H, Wd = x.shape
    FN, OH, OW = dout.shape[1], dout.shape[2], dout.shape[3]
    kh, kw = W.shape[2], W.shape[3]
    nt = acc.shape[0]
    Wp = Wd + 2 * pw
    L = OH * Wp
    L16 = (L + 15) // 16 * 16
    for t in prange(nt):
        xp = np.zeros((C, (H + 2 * ph + 1) * Wp + L16 - L), dtype=x.dtype)
        dp = np.zeros((FN, L16), dtype=x.dtype)
        buf = np.empty((OH + kh) * Wp, dtype=x.dtype)
        lanes = np.empty(16, dtype=x.dtype)
        acc[t] = 0
        db_part[t] = 0
        for n in range(t * N // nt, (t + 1) * N // nt):
            _embed_image(x, n, xp, ph, pw, Wp)
            _embed_image(dout, n, dp, 0, 0, Wp)
            for f in range(FN):
                dr = dp[f]
                s = 0.0
                for i in range(L):
                    s += dr[i]
                db_part[t, f] += s
                for c in range(C):
                    xr = xp[c]
                    for ky in range(kh):
                        for kx in range(kw):
                            src = xr[ky * Wp + kx:ky * Wp + kx + L16]
                            lanes[:] = 0
                            for i0 in range(0, L16, 16):
                                for l in range(16):
                                    lanes[l] += dr[i0 + l] * src[i0 + l]
                            for l in range(16):
                                acc[t, f, c, ky, kx, l] += lanes[l]
            if need_dx:
                for c in range(C):
                    buf[:] = 0
                    for f in range(FN):
                        dr = dp[f]
                        for ky in range(kh):
                            for kx in range(kw):
                                w = W[f, c, ky, kx]
                                dst = buf[ky * Wp + kx:ky * Wp + kx + L]
                                for i in range(L):
                                    dst[i] += w * dr[i]
                    for y in range(H):
                        for xx in range(Wd):
                            dx[n, c, y, xx] = buf[(y + ph) * Wp + xx + pw]


@pjit
def _sum_db(dout, db):
    FN = dout.shape[1]
    for f in prange(FN):
        s = 0.0
        for n in range(dout.shape[0]):
            for oy in range(dout.shape[2]):
                for ox in range(dout.shape[3]):
                    s += dout[n, f, oy, ox]
        db[f] = s


# ------------------------------------------------------------------ entry points


def _out_hw(H, W, kh, kw, sh, sw, ph, pw):
    return (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1


def conv2d(x, W, b, sh, sw, ph, pw, relu=False, algorithm=None):
    """``x`` (N, C, H, W), ``W`` (FN, C, KH, KW), ``b`` (FN,), all C-contiguous of one
    float dtype -> (N, FN, OH, OW). ``algorithm`` ('direct' or 'gemm') overrides the
    per-shape rule of ``kernels._conv_plan``."""
    N, C, H, Wd = x.shape
    FN, _, kh, kw = W.shape
    OH, OW = _out_hw(H, Wd, kh, kw, sh, sw, ph, pw)
    out = np.empty((N, FN, OH, OW), dtype=x.dtype)
    if choose(algorithm, "numba", kh, kw, sh, sw, ph, pw) == "direct":
        if sh == 1 and sw == 1:
            _forward_flat(x, W, b, out, ph, pw, bool(relu), min(numba.get_num_threads(), N))
        else:
            _forward_direct(x, W, b, out, sh, sw, ph, pw, bool(relu))
        return out
    K, P = C * kh * kw, OH * OW
    nt = numba.get_num_threads()
    G = group_size(N, K, P, x.itemsize, nt)
    nt = min(nt, -(-N // G))
    with single_threaded_blas():
        _forward_gemm(x, W.reshape(FN, K), b, out.reshape(N, FN, P),
                      kh, kw, sh, sw, ph, pw, OH, OW, bool(relu), G, nt)
    return out


def conv2d_backward(dout, x, W, sh, sw, ph, pw, need_dx=True, algorithm=None,
                    relu_out=None):
    """Gradients ``(dx or None, dW, db)`` of :func:`conv2d`; ``dout`` is (N, FN, OH, OW)
    C-contiguous, same dtype as ``x`` and ``W``; ``algorithm`` as in :func:`conv2d`.
    ``relu_out``: the output of a ``relu=True`` forward (same shape as ``dout``), whose
    ReLU backward is fused into the pass that gathers ``dout``; None: no ReLU."""
    N, C, H, Wd = x.shape
    FN, _, kh, kw = W.shape
    OH, OW = dout.shape[2], dout.shape[3]
    nt = min(numba.get_num_threads(), N)
    dx = np.empty_like(x) if need_dx else None
    algorithm = choose(algorithm, "numba", kh, kw, sh, sw, ph, pw)
    if algorithm == "direct" and relu_out is not None:
        dout = np.where(relu_out <= 0, 0, dout).astype(dout.dtype, copy=False)
    if algorithm == "direct" and sh == 1 and sw == 1:
        acc = np.empty((nt, FN, C, kh, kw, 16), dtype=x.dtype)
        db_part = np.empty((nt, FN), dtype=x.dtype)
        _backward_flat(dout, x, W, dx if need_dx else np.empty((1, 1, 1, 1), x.dtype),
                       acc, db_part, ph, pw, bool(need_dx))
        return dx, acc.sum(axis=(0, 5)), db_part.sum(axis=0)
    if algorithm == "direct":
        acc = np.empty((nt, FN, C, kh, kw, OW), dtype=x.dtype)
        _backward_direct_dw(dout, x, acc, kh, kw, sh, sw, ph, pw)
        dW = acc.sum(axis=(0, 5))
        db = np.empty(FN, dtype=x.dtype)
        _sum_db(dout, db)
        if need_dx:
            _backward_direct_dx(dout, W, dx, sh, sw, ph, pw)
        return dx, dW, db
    K, P = C * kh * kw, OH * OW
    G = group_size(N, K, P, x.itemsize, nt)
    nt = min(nt, -(-N // G))
    Wm = W.reshape(FN, K)
    dW_part = np.empty((nt, FN, K), dtype=x.dtype)
    db_part = np.empty((nt, FN), dtype=x.dtype)
    with single_threaded_blas():
        _backward_gemm(dout.reshape(N, FN, P),
                       (dout if relu_out is None else relu_out).reshape(N, FN, P),
                       x, Wm, np.ascontiguousarray(Wm.T),
                       dx if need_dx else np.empty((1, 1, 1, 1), x.dtype), dW_part, db_part,
                       kh, kw, sh, sw, ph, pw, OH, OW, bool(need_dx), relu_out is not None, G)
    dW = dW_part.sum(axis=0).reshape(FN, C, kh, kw)
    return dx, dW, db_part.sum(axis=0)
