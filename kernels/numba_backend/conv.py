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
from .._conv_plan import (dw_channels, filter_block, finite, flipped_filters,
                          pack_filters, plan)
from ._jit import jit, pjit
from ._simd import (DW3_C, DW_C, DW_F, FV_F, FV_P, LEVEL, ONE_V, VBYTES, WIDE_F, WIDE_V,
                    bias_relu_vector, copy_vector, dw3_add_sums, dw3_step, dw3_zeros,
                    dw_add_sums, dw_step, dw_zeros, fv_add, fv_index, fv_step, fv_store,
                    fv_zeros, keep_scalar, next_chunk, one_store, one_tap, one_zeros, row_sum,
                    transpose_block, unpack_block, wide_store, wide_tap, wide_zeros)


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

# Stride 1, KH-1 >= PH, KW-1 >= PW: the register-blocked kernels of ``_simd`` on "wide"
# planes, the same algorithm as the Cython backend's (see kernels/cython_backend/
# conv_simd.h and conv.pyx). A chunk of images is packed channel by channel into padded
# planes laid end to end, neighbours sharing their zero padding (a plane is
# (H + PH) x (W + PW)), so every window tap is one shifted contiguous read; outputs are
# computed W + PW wide and compacted afterwards. Each thread packs its own chunks.
# The passes the plan gives to filters in vectors (``Plan.pos``, ``pos_dx``) run ``_fv``
# and ``_dwv`` on the same planes, at the outputs only.


@jit
def _pack(src, mask, use_mask, n0, m, top, left, Wp, S, dst, ds, tail):
    """Images ``src[n0:n0+m]`` (N, C, H, W) -> flat ``dst[c*ds + j*S + (top+y)*Wp +
    left + x]``, zero elsewhere in each plane and in the ``tail`` values after the last
    one; with ``use_mask`` a value is kept only where ``mask`` (like src) is > 0."""
    C, H, W = src.shape[1], src.shape[2], src.shape[3]
    zero = np.zeros(1, dst.dtype)[0]
    # Rows go as whole vectors as in the Cython kernel (fc_pack: where the source plane
    # has the values they read past the row; what they write past it is written again
    # after), the rest element by element.
    L = _lanes_of(dst)
    Wv = -(-W // L) * L
    over = Wv - W
    sf, mf = src.reshape(src.size), mask.reshape(mask.size)
    # Image by image, so the source is read in one sequential stream.
    for j in range(m):
        for c in range(C):
            base = c * ds + j * S
            dst[base:base + top * Wp] = 0
            for y in range(H):
                r = base + (top + y) * Wp
                for i in range(left):
                    dst[r + i] = zero
                d0 = r + left
                s0 = ((n0 + j) * C + c) * H * W + y * W
                # Element loops into dst itself: through a row slice the masked loop
                # measured 1.5x slower (16x28x28 planes, one thread); slice assignments
                # for the copy and the zeros cost the six convs' forward + backward 3-7%
                # (18.6-18.7 against 17.4-17.8 ms, AVX-512; 29.5-30.3 against 28.7-29.5
                # ms at AVX2, Zen 5). keep_scalar: without it the drivers loaded
                # from Numba's cache carry a copy of this function whose element loops
                # LLVM vectorized a second time (4-6x the vector moves), and the six convs
                # ran 17.0-17.4 ms against 15.5-16.3 when compiled in the process
                # (AVX-512); with it, 15.7-15.8 from the cache.
                if (H - 1 - y) * W >= over:
                    for i in range(0, Wv, L):
                        copy_vector(dst, d0 + i, sf, s0 + i, mf, s0 + i, use_mask)
                elif use_mask:
                    for i in range(W):
                        keep_scalar()
                        dst[d0 + i] = sf[s0 + i] if mf[s0 + i] > 0 else zero
                else:
                    for i in range(W):
                        keep_scalar()
                        dst[d0 + i] = sf[s0 + i]
                for i in range(left + W, Wp):
                    dst[r + i] = zero
            dst[base + (top + H) * Wp:base + S] = 0
    for c in range(C):
        dst[c * ds + m * S:c * ds + m * S + tail] = 0


def _blocked_forward(zeros, tap, store, F, V, name):
    """The forward kernel in blocks of F filters x V vectors (``_simd._wide_block``'s
    intrinsics), compiled as ``name``: ``out[f*ldo + q]`` = sum over channels c < C and
    taps of ``w[...] * x[c*xs + q + off[t]]`` for every filter block, q < Q rounded up to
    a block (``w`` from ``_conv_plan.pack_filters`` with F filters per block)."""

    def kernel(x, xs, C, off, w, nfb, out, ldo, Q):
        ntap = off.shape[0]
        step = V * (VBYTES // x.itemsize)
        for fb in range(nfb):
            wb = fb * C * ntap * F
            for q0 in range(0, Q, step):
                acc = zeros(x)
                wc = wb
                for c in range(C):
                    xc = c * xs + q0
                    for t in range(ntap):
                        acc = tap(acc, x, xc + off[t], w, wc)
                        wc += F
                store(acc, out, fb * F * ldo + q0, ldo)

    # its own name, so that the two kernels never share a cache entry
    kernel.__name__ = kernel.__qualname__ = name
    return jit(kernel)


_wide = _blocked_forward(wide_zeros, wide_tap, wide_store, WIDE_F, WIDE_V, "_wide")
_wide1 = _blocked_forward(one_zeros, one_tap, one_store, 1, ONE_V, "_wide1")


@jit
def _fv(x, xs, C, off, w, nfb, out, ldo, pos, taps, npos):
    """``out[i*ldo + f]`` = sum over channels c < C and taps of
    ``w[...] * x[c*xs + pos[i] + off[t]]`` for every filter block and i < npos (a
    multiple of FV_P): the forward with filters in vectors (``_simd.fv_step``; ``w`` from
    ``_conv_plan.pack_filters`` with FV_F vectors of filters per block), into rows of
    filters per output (``_unpack_t`` transposes them). Block b sums the taps
    ``taps[2b] <= t < taps[2b + 1]`` only (``_conv_plan.tap_ranges``)."""
    ntap = off.shape[0]
    F = FV_F * (VBYTES // x.itemsize)
    for fb in range(nfb):
        wb = fb * C * ntap * F
        for i0 in range(0, npos, FV_P):
            pp = fv_index(pos, i0)
            t0, t1 = taps[i0 // FV_P * 2], taps[i0 // FV_P * 2 + 1]
            # Indexed from 0, so LLVM drops the negative-index wraparound from the loop.
            offs = off[t0:t1]
            acc = fv_zeros(x)
            for c in range(C):
                wc = wb + (c * ntap + t0) * F
                for k in range(offs.shape[0]):
                    acc = fv_step(acc, x, c * xs + offs[k], pp, w, wc)
                    wc += F
            fv_store(acc, out, i0 * ldo + fb * F, ldo)


@jit
def _forward_pass(x, xs, C, off, w, wide, nrows, F, pos, taps, fv, m, Wp, S, b, relu, dst,
                  n0):
    """The forward kernel over m packed images in blocks of F filters
    (``_conv_plan.filter_block``), nrows filter rows in all, then its compaction into
    ``dst[n0:n0+m]`` with bias b and ReLU: with filters in vectors over the outputs
    listed in pos (fv; each block's taps: ``_conv_plan.tap_ranges``) into rows of nrows
    filters per output, else over whole planes into
    nrows rows of ``wide``'s length / nrows (a packed row's length, which exceeds the rows
    the filters kernel writes, the outputs rounded up to whole blocks)."""
    ldo = wide.shape[0] // nrows
    OH, OW = dst.shape[2], dst.shape[3]
    if fv:
        _fv(x, xs, C, off, w, nrows // F, wide, nrows, pos, taps,
            -(-(m * OH * OW) // FV_P) * FV_P)
        _unpack_t(wide, nrows, m, b, relu, dst, n0)
        return
    if F == 1:
        _wide1(x, xs, C, off, w, nrows, wide, ldo, m * S)
    else:
        _wide(x, xs, C, off, w, nrows // F, wide, ldo, m * S)
    _unwide(wide, ldo, m, OH, OW, Wp, S, b, relu, dst, n0)


@jit
def _unwide(wide, ldo, m, OH, OW, Wp, S, b, relu, dst, n0):
    """Rows of the wide output -> ``dst[n0:n0+m]`` (N, F, OH, OW), plus ``b`` and ReLU;
    rows as whole vectors as in the Cython kernel (fc_unwide) where ``over`` values of
    this chunk's dst follow them."""
    zero = np.zeros(1, dst.dtype)[0]
    F = dst.shape[1]
    L = _lanes_of(dst)
    Wv = -(-OW // L) * L
    over, rows = Wv - OW, m * F * OH
    df = dst.reshape(dst.size)
    for j in range(m):
        for f in range(F):
            bf = b[f]
            for oy in range(OH):
                s0 = f * ldo + j * S + oy * Wp
                r = (j * F + f) * OH + oy
                if (rows - 1 - r) * OW >= over:
                    d0 = (n0 * F * OH + r) * OW
                    for i in range(0, Wv, L):
                        bias_relu_vector(df, d0 + i, wide, s0 + i, bf, relu)
                    continue
                src = wide[s0:s0 + OW]
                d = dst[n0 + j, f, oy]
                if relu:
                    for ox in range(OW):
                        v = src[ox] + bf
                        d[ox] = zero if v < 0 else v  # NaN propagates, as np.maximum(v, 0)
                else:
                    for ox in range(OW):
                        d[ox] = src[ox] + bf


@jit
def _dw(g, g0, gs, nfb, x, xs, Cp, off, dw, Q):
    """``dw[(f*Cp + c)*T + t]`` += sum over q < Q of ``g[g0 + f*gs + q] * x[c*xs + q +
    off[t]]``; Q is a multiple of the lanes. Taps go three at a time
    (``_simd.dw3_step``: one load of g serves three taps), the rest one at a time."""
    ntap = off.shape[0]
    ntap3 = ntap - ntap % 3
    L = VBYTES // x.itemsize
    for fb in range(nfb):
        gb = g0 + fb * DW_F * gs
        db = fb * DW_F * Cp * ntap
        for c0 in range(0, Cp, DW3_C):
            for t in range(0, ntap3, 3):
                acc3 = dw3_zeros(x)
                offs = (off[t], off[t + 1], off[t + 2])
                for q in range(0, Q, L):
                    acc3 = dw3_step(acc3, g, gb + q, gs, x, c0 * xs + q, xs, offs)
                dw3_add_sums(acc3, dw, db + c0 * ntap + t, Cp * ntap, ntap)
        for c0 in range(0, Cp, DW_C):
            for t in range(ntap3, ntap):
                acc = dw_zeros(x)
                xb = c0 * xs + off[t]
                for q in range(0, Q, L):
                    acc = dw_step(acc, g, gb + q, gs, x, xb + q, xs)
                dw_add_sums(acc, dw, db + c0 * ntap + t, Cp * ntap, ntap)


@jit
def _dwv(g, ldg, nfb, x, xo, pos, npos, dwt, ldw):
    """``dwt[k*ldw + f]`` += sum over i < npos of ``x[xo[k] + pos[i]] * g[i*ldg + f]`` for
    every k (a channel and tap; xo from ``_conv_plan.dw_offsets``) and filter block: the
    weight gradient with filters in vectors, over real outputs only."""
    F = FV_F * (VBYTES // x.itemsize)
    for k0 in range(0, xo.shape[0], FV_P):
        pp = fv_index(xo, k0)
        for fb in range(nfb):
            acc = fv_zeros(x)
            for i in range(npos):
                acc = fv_step(acc, x, pos[i], pp, g, i * ldg + fb * F)
            fv_add(acc, dwt, k0 * ldw + fb * F, ldw)


@jit
def _pack_t(src, mask, use_mask, n0, m, dst, ldg):
    """Images ``src[n0:n0+m]`` (N, F, OH, OW) -> ``dst[(j*OH*OW + p)*ldg + f]``, filters
    last, zero in columns F..ldg; with ``use_mask`` a value is kept only where ``mask``
    (like src) is > 0. The g of ``_dwv``. Square blocks of lanes x lanes go through
    ``_simd.transpose_block``, the edges element by element."""
    F, P = src.shape[1], src.shape[2] * src.shape[3]
    zero = np.zeros(1, dst.dtype)[0]
    L = _lanes_of(dst)
    Fb, Pb = F - F % L, P - P % L
    sf, mf = src.reshape(src.size), mask.reshape(mask.size)
    for j in range(m):
        s0 = (n0 + j) * F * P
        d0 = j * P * ldg
        for f0 in range(0, Fb, L):
            for p0 in range(0, Pb, L):
                transpose_block(dst, d0 + p0 * ldg + f0, ldg, sf, s0 + f0 * P + p0, P, mf,
                                use_mask)
        for f in range(F):
            for p in range(Pb if f < Fb else 0, P):
                v = sf[s0 + f * P + p]
                dst[d0 + p * ldg + f] = zero if use_mask and not mf[s0 + f * P + p] > 0 else v
        for p in range(P):
            dst[d0 + p * ldg + F:d0 + p * ldg + ldg] = 0


@jit
def _unpack_t(src, ldt, m, b, relu, dst, n0):
    """Rows of filters per output (``src[(j*P + p)*ldt + f]``, ``_fv``'s out) ->
    ``dst[n0:n0+m]`` (N, F, OH, OW), plus ``b`` and ReLU: the compaction of the forward with
    filters in vectors. Square blocks of lanes x lanes go through ``_simd.unpack_block``,
    the edges element by element."""
    F, P = dst.shape[1], dst.shape[2] * dst.shape[3]
    zero = np.zeros(1, dst.dtype)[0]
    L = _lanes_of(dst)
    Fb, Pb = F - F % L, P - P % L
    df = dst.reshape(dst.size)
    for j in range(m):
        s0 = j * P * ldt
        d0 = (n0 + j) * F * P
        for f0 in range(0, Fb, L):
            for p0 in range(0, Pb, L):
                unpack_block(df, d0 + f0 * P + p0, P, src, s0 + p0 * ldt + f0, ldt, b, f0,
                             relu)
        for f in range(F):
            for p in range(Pb if f < Fb else 0, P):
                v = src[s0 + p * ldt + f] + b[f]
                df[d0 + f * P + p] = zero if relu and v < 0 else v


@jit
def _share_start(t, nt, N):
    """First image of part t when N images are cut into nt parts as evenly as possible,
    as in the Cython backend: a thread's share of the batch (im2col + GEMM) or a chunk of
    the direct kernels (``_conv_plan.batch_chunks``)."""
    return t * N // nt


@jit
def _lanes_of(x):
    """Lanes of the vectors the kernels of this module were compiled for, as they are
    cached: the drivers size buffers with it, so a cache compiled where ``_simd.VBYTES``
    differed cannot disagree with them."""
    return VBYTES // x.itemsize


@jit
def _check_width(width, G, S, Wp, top, off, L):
    """Refuse a packed buffer too short for the compiled kernels (the kernels run
    without bounds checks)."""
    if width < G * S + (top + 1) * Wp + L + max(WIDE_V, ONE_V) * L + off[-1] + 1:
        raise ValueError("fastconv: packed buffer too short for the compiled conv kernels; "
                         "clear Numba's cache for fastconv and retry")


@pjit
def _forward_simd(x, wpk, b, out, xbuf, wide, nrows, F, off, pos, taps, fv, ph, pw, relu, G,
                  nch, nt):
    N, C, H, Wd = x.shape
    Wp = Wd + pw
    S = (H + ph) * Wp
    xs = xbuf.shape[1] // C
    _check_width(min(xs, wide.shape[1] // nrows), G, S, Wp, ph, off, VBYTES // x.itemsize)
    counter = np.zeros(1, np.intp)
    for t in prange(nt):
        xb, wb = xbuf[t], wide[t]
        k = next_chunk(counter)
        while k < nch:
            n0 = _share_start(k, nch, N)
            m = _share_start(k + 1, nch, N) - n0
            _pack(x, x, False, n0, m, ph, pw, Wp, S, xb, xs, (ph + 1) * Wp)
            _forward_pass(xb, xs, C, off, wpk, wb, nrows, F, pos, taps, fv, m, Wp, S, b, relu,
                          out, n0)
            k = next_chunk(counter)


@pjit
def _backward_simd(dout, rout, has_relu, x, wdx, zeros_c, dx, need_dx, dW_part, db_part,
                   xbuf, dbuf, gbuf, wide, nrows_dx, F_dx, off, pos, pos_dx, taps_dx, xo, fv_dw,
                   fv_dx, kh, kw, ph, pw, G, nch, nt):
    """As the Cython backend's: dout (masked by the fused ReLU) is packed once with the
    padding of dx's convolution; the same buffer read (KH-1-PH)*Wp + KW-1-PW values on is
    the weight-gradient kernel's g. With ``fv_dw`` dW comes instead from dout packed
    filters last (``gbuf``) into dW_part's (channel x tap, ldg) rows; with ``fv_dx`` dx
    from the forward with filters in vectors. dW and db are summed per chunk (threads
    take chunks as they finish; the chunks are added in their order afterwards)."""
    N, C, H, Wd = x.shape
    FN, OH, OW = dout.shape[1], dout.shape[2], dout.shape[3]
    Wp = Wd + pw
    S = (H + ph) * Wp
    top, left = kh - 1 - ph, kw - 1 - pw
    shift = top * Wp + left
    L = VBYTES // x.itemsize
    Cp, FNp = xbuf.shape[1], dbuf.shape[1]
    ldg = -(-FN // (FV_F * L)) * FV_F * L
    xs, ds = xbuf.shape[2], dbuf.shape[2]
    _check_width(min(xs, ds), G, S, Wp, max(ph, top), off, L)
    if need_dx:
        _check_width(wide.shape[1] // nrows_dx, G, S, Wp, max(ph, top), off, L)
    counter = np.zeros(1, np.intp)
    for t in prange(nt):
        xb = xbuf[t].reshape(Cp * xs)
        db_ = dbuf[t].reshape(FNp * ds)
        wb = wide[t]
        k = next_chunk(counter)
        while k < nch:
            n0 = _share_start(k, nch, N)
            m = _share_start(k + 1, nch, N) - n0
            dw = dW_part[k]
            dw[:] = 0
            db_part[k] = 0
            _pack(x, x, False, n0, m, ph, pw, Wp, S, xb, xs, (ph + 1) * Wp)
            _pack(dout, rout, has_relu, n0, m, top, left, Wp, S, db_, ds, (top + 1) * Wp + L)
            Q = -(-(m * S) // L) * L
            for f in range(FN):
                db_part[k, f] += row_sum(db_, f * ds + shift, Q)
            if fv_dw:
                _pack_t(dout, rout, has_relu, n0, m, gbuf[t], ldg)
                _dwv(gbuf[t], ldg, ldg // (FV_F * L), xb, xo, pos, m * OH * OW, dw, ldg)
            else:
                _dw(db_, shift, ds, FNp // DW_F, xb, xs, Cp, off, dw, Q)
            if need_dx:
                _forward_pass(db_, ds, FN, off, wdx, wb, nrows_dx, F_dx, pos_dx, taps_dx, fv_dx,
                              m, Wp, S, zeros_c, False, dx, n0)
            k = next_chunk(counter)


def _filter_block(filters, channels, x):
    """Filters per block of the forward kernel computing ``channels`` output channels,
    with filters in vectors or not."""
    return filter_block(filters, channels, LEVEL, _lanes_of(x))


def _backward_direct(dout, relu_out, x, W, g, need_dx, p):
    FN, C, kh, kw = W.shape
    ph, pw, OH, OW = g[4], g[5], g[6], g[7]
    ntap = kh * kw
    fv_dw, fv_dx = p.pos is not None, need_dx and p.pos_dx is not None
    Cp, FNp = dw_channels(C, ntap, DW_C, DW3_C), -(-FN // DW_F) * DW_F
    xbuf = np.zeros((p.nt, Cp, p.width), dtype=x.dtype)
    dbuf = np.zeros((p.nt, FNp, p.width), dtype=x.dtype)
    if fv_dw:
        ldg = -(-FN // (FV_F * _lanes_of(x))) * FV_F * _lanes_of(x)
        gbuf = np.empty((p.nt, p.G * OH * OW * ldg), dtype=x.dtype)
        xo = p.xo
        dW_part = np.empty((p.chunks, xo.shape[0] * ldg), dtype=x.dtype)
    else:
        gbuf = np.empty((p.nt, 1), dtype=x.dtype)
        xo = p.off
        dW_part = np.empty((p.chunks, FNp * Cp * ntap), dtype=x.dtype)
    db_part = np.empty((p.chunks, FN), dtype=x.dtype)
    F = _filter_block(fv_dx, C, x)
    nrows_dx = -(-C // F) * F
    if need_dx:
        dx = np.empty_like(x)
        wdx = pack_filters(flipped_filters(W), F)
        wide = np.empty((p.nt, nrows_dx * p.width), dtype=x.dtype)
    else:
        dx = np.empty((1, 1, 1, 1), x.dtype)
        wdx = np.empty(1, x.dtype)
        wide = np.empty((p.nt, nrows_dx), x.dtype)
    _backward_simd(dout, dout if relu_out is None else relu_out, relu_out is not None, x,
                   wdx, np.zeros(C, x.dtype), dx, need_dx, dW_part, db_part, xbuf,
                   dbuf, gbuf, wide, nrows_dx, F, p.off, p.pos if fv_dw else p.off,
                   p.pos_dx if fv_dx else p.off, p.taps_dx if fv_dx else p.off, xo, fv_dw,
                   fv_dx, kh, kw, ph, pw, p.G, p.chunks, p.nt)
    dW = dW_part.sum(axis=0)
    if fv_dw:
        dW = dW.reshape(-1, ldg)[:C * ntap, :FN].T
    else:
        dW = dW.reshape(FNp, Cp, ntap)[:FN, :C]
    return (dx if need_dx else None), dW.reshape(FN, C, kh, kw), db_part.sum(axis=0)


def _plan(x, W, g, algorithm, backward):
    return plan(x.shape, W.shape, g, x.itemsize, numba.get_num_threads(), LEVEL,
                algorithm, backward, finite(W))


# ------------------------------------------------------------------ entry points


def conv2d(x, W, b, g, relu=False, algorithm=None):
    """``x`` (N, C, H, W), ``W`` (FN, C, KH, KW), ``b`` (FN,), all C-contiguous of one
    float dtype, and the checked window geometry ``g`` (kh, kw, sh, sw, ph, pw, oh, ow)
    -> (N, FN, OH, OW). ``algorithm`` (one of ``_conv_plan.ALGORITHMS``) overrides the rule of
    ``kernels._conv_plan``, whose ``plan`` this executes."""
    N, C = x.shape[0], x.shape[1]
    FN = W.shape[0]
    kh, kw, sh, sw, ph, pw, OH, OW = g
    out = np.empty((N, FN, OH, OW), dtype=x.dtype)
    p = _plan(x, W, g, algorithm, False)
    if p.algorithm != "gemm":
        fv = p.pos is not None
        F = _filter_block(fv, FN, x)
        nrows = -(-FN // F) * F
        xbuf = np.zeros((p.nt, C * p.width), dtype=x.dtype)
        wide = np.empty((p.nt, nrows * p.width), dtype=x.dtype)
        _forward_simd(x, pack_filters(W.reshape(FN, C, kh * kw), F), b, out, xbuf, wide,
                      nrows, F, p.off, p.pos if fv else p.off, p.taps if fv else p.off, fv, ph,
                      pw, bool(relu), p.G, p.chunks, p.nt)
        return out
    with single_threaded_blas():
        _forward_gemm(x, W.reshape(FN, C * kh * kw), b, out.reshape(N, FN, OH * OW),
                      kh, kw, sh, sw, ph, pw, OH, OW, bool(relu), p.G, p.nt)
    return out


def conv2d_backward(dout, x, W, g, need_dx=True, algorithm=None, relu_out=None):
    """Gradients ``(dx or None, dW, db)`` of :func:`conv2d`; ``dout`` is (N, FN, OH, OW)
    C-contiguous, same dtype as ``x`` and ``W``; ``g`` and ``algorithm`` as in
    :func:`conv2d`. ``relu_out``: the output of a ``relu=True`` forward (same shape as
    ``dout``), whose ReLU backward is fused into the pass that gathers ``dout``; None: no
    ReLU."""
    p = _plan(x, W, g, algorithm, True)
    if p.algorithm != "gemm":
        grads = _backward_direct(dout, relu_out, x, W, g, bool(need_dx), p)
        if finite(grads[1], grads[2]) or algorithm is not None:  # see _conv_plan.finite
            return grads
        p = _plan(x, W, g, "gemm", True)
    N, C = x.shape[0], x.shape[1]
    FN = W.shape[0]
    kh, kw, sh, sw, ph, pw, OH, OW = g
    K, P = C * kh * kw, OH * OW
    dx = np.empty_like(x) if need_dx else None
    Wm = W.reshape(FN, K)
    dW_part = np.empty((p.nt, FN, K), dtype=x.dtype)
    db_part = np.empty((p.nt, FN), dtype=x.dtype)
    with single_threaded_blas():
        _backward_gemm(dout.reshape(N, FN, P),
                       (dout if relu_out is None else relu_out).reshape(N, FN, P),
                       x, Wm, np.ascontiguousarray(Wm.T),
                       dx if need_dx else np.empty((1, 1, 1, 1), x.dtype), dW_part, db_part,
                       kh, kw, sh, sw, ph, pw, OH, OW, bool(need_dx), relu_out is not None, p.G)
    dW = dW_part.sum(axis=0).reshape(FN, C, kh, kw)
    return dx, dW, db_part.sum(axis=0)


#: The family's entry points, the same in every backend (tests/test_kernel_interface.py).
__all__ = ["conv2d", "conv2d_backward"]
