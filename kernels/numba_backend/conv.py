"""conv2d's raw kernels in Numba: direct convolution and im2col + GEMM.

``kernels/_conv_driver.py`` runs them as ``kernels._conv_plan`` plans (the rule and its
measurements are there). The GEMMs are ``np.dot`` on 2-D contiguous arrays, which Numba
lowers to SciPy's BLAS; they run inside ``prange`` loops (one call per thread), and the
driver holds SciPy's BLAS to one thread around them.

col layout here is transposed relative to the book: ``col[(c*KH + ky)*KW + kx,
j*OH*OW + oy*OW + ox] = x[n0 + j, c, oy*SH + ky - PH, ox*SW + kx - PW]`` for the
``j``-th image of a group, so ``W(FN, K) @ col`` is already in NCHW order.
"""
import numpy as np
from numba import get_num_threads, prange

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


@jit
def _thread_groups(t, threads, N, G):
    """Groups ``[first, last)`` of G images that thread t of ``threads`` takes."""
    n_groups = (N + G - 1) // G
    return t * n_groups // threads, (t + 1) * n_groups // threads


@jit
def _group_col(x, n0, m, col_buf, K, kh, kw, sh, sw, ph, pw, OH, OW):
    """The col (K, m*OH*OW) of images ``n0 .. n0+m``, written at the start of col_buf."""
    P = OH * OW
    col = col_buf[: K * m * P].reshape((K, m * P))
    for j in range(m):
        _im2col_t(x, n0 + j, col, j * P, kh, kw, sh, sw, ph, pw, OH, OW)
    return col


@pjit
def forward_gemm(x, Wm, b, out, col_ws, res_ws, kh, kw, sh, sw, ph, pw, relu, images,
                 threads):
    """im2col + GEMM forward: thread t takes its share of the batch's groups of
    ``images``, with its rows of the col and result workspaces."""
    N = x.shape[0]
    FN, K = Wm.shape
    OH, OW = out.shape[2], out.shape[3]
    P = OH * OW
    out3 = out.reshape((N, FN, P))
    for t in prange(threads):
        res_buf = res_ws[t]
        first, last = _thread_groups(t, threads, N, images)
        for group in range(first, last):
            n0 = group * images
            m = min(images, N - n0)
            col = _group_col(x, n0, m, col_ws[t], K, kh, kw, sh, sw, ph, pw, OH, OW)
            res = res_buf[: FN * m * P].reshape((FN, m * P))
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
def backward_gemm(dout, rout, has_relu, x, Wm, dx, need_dx, dW_part, db_part, col_ws, dg_ws,
                  dcol_ws, kh, kw, sh, sw, ph, pw, images, threads):
    """im2col + GEMM backward: thread t sums its share's dW and db into dW_part[t] and
    db_part[t] and folds its images' dx."""
    N = x.shape[0]
    FN, K = Wm.shape
    OH, OW = dout.shape[2], dout.shape[3]
    P = OH * OW
    dout3, rout3 = dout.reshape((N, FN, P)), rout.reshape((N, FN, P))
    WmT = np.ascontiguousarray(Wm.T)
    for t in prange(threads):
        d_buf, dcol_buf = dg_ws[t], dcol_ws[t]
        tmp = np.empty((FN, K), dtype=x.dtype)
        dW_t = dW_part[t]
        dW_t[:] = 0
        db_part[t] = 0
        first, last = _thread_groups(t, threads, N, images)
        for group in range(first, last):
            n0 = group * images
            m = min(images, N - n0)
            col = _group_col(x, n0, m, col_ws[t], K, kh, kw, sh, sw, ph, pw, OH, OW)
            dg = d_buf[: FN * m * P].reshape((FN, m * P))
            for j in range(m):
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
                # Element loops into dst itself, and keep_scalar so that a copy loaded
                # from Numba's cache is not vectorized twice: docs/tuning.md, "Numba
                # packing loops".
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
    cached (a cache compiled where ``_simd.VBYTES`` differed keeps its own lanes)."""
    return VBYTES // x.itemsize


@jit
def _check_width(width, G, S, Wp, top, off, L):
    """Refuse a packed buffer too short for the compiled kernels (the kernels run
    without bounds checks)."""
    if width < G * S + (top + 1) * Wp + L + max(WIDE_V, ONE_V) * L + off[-1] + 1:
        raise ValueError("fastconv: packed buffer too short for the compiled conv kernels; "
                         "clear Numba's cache for fastconv and retry")


def block_shapes():
    """The block shapes these kernels were compiled with, as ``kernels._isa.TABLE`` holds
    them: ``(level, vector bytes, fwd_f, fwd_v, dw_f, dw_c, dw3_c, fv_f, fv_p,
    one_v)``."""
    return (LEVEL, VBYTES, WIDE_F, WIDE_V, DW_F, DW_C, DW3_C, FV_F, FV_P, ONE_V)


@pjit
def forward_direct(x, wpk, b, out, xbuf, wide, filter_block, tap_offsets, outputs,
                   output_taps, ph, pw, relu, images, chunks, threads):
    """The direct forward: threads take the ``chunks`` of the batch as they finish,
    pack each into their row of xbuf and run the forward pass into their row of wide
    (with filters in vectors where ``outputs`` are listed), then compact into out."""
    N, C, H, Wd = x.shape
    Wp = Wd + pw
    S = (H + ph) * Wp
    xs, nrows = xbuf.shape[2], wide.shape[1]
    fv = outputs.shape[0] > 0
    _check_width(min(xs, wide.shape[2]), images, S, Wp, ph, tap_offsets,
                 VBYTES // x.itemsize)
    counter = np.zeros(1, np.intp)
    for t in prange(threads):
        xb = xbuf[t].reshape(xbuf.shape[1] * xs)
        wb = wide[t].reshape(nrows * wide.shape[2])
        k = next_chunk(counter)
        while k < chunks:
            n0 = _share_start(k, chunks, N)
            m = _share_start(k + 1, chunks, N) - n0
            _pack(x, x, False, n0, m, ph, pw, Wp, S, xb, xs, (ph + 1) * Wp)
            _forward_pass(xb, xs, C, tap_offsets, wpk, wb, nrows, filter_block, outputs,
                          output_taps, fv, m, Wp, S, b, relu, out, n0)
            k = next_chunk(counter)


@pjit
def backward_direct(dout, rout, has_relu, x, wdx, dx, need_dx, dW_part, db_part, xbuf, dbuf,
                    gbuf, wide, dx_filter_block, tap_offsets, outputs, filters_last_row,
                    dw_inputs, dx_outputs, dx_output_taps, kh, kw, ph, pw, images, chunks,
                    threads):
    """As the Cython backend's: dout (masked by the fused ReLU) is packed once with the
    padding of dx's convolution; the same buffer read (KH-1-PH)*Wp + KW-1-PW values on is
    the weight-gradient kernel's g. Where ``outputs`` are listed, dW comes instead from
    dout packed filters last (``gbuf``) into dW_part's (channel x tap, filters_last_row)
    rows; where ``dx_outputs`` are, dx from the forward with filters in vectors. dW and
    db are summed per chunk (threads take chunks as they finish; the chunks are added in
    their order afterwards)."""
    N, C, H, Wd = x.shape
    FN, OH, OW = dout.shape[1], dout.shape[2], dout.shape[3]
    Wp = Wd + pw
    S = (H + ph) * Wp
    top, left = kh - 1 - ph, kw - 1 - pw
    shift = top * Wp + left
    L = VBYTES // x.itemsize
    Cp, FNp, nrows_dx = xbuf.shape[1], dbuf.shape[1], wide.shape[1]
    ldg = filters_last_row
    xs, ds = xbuf.shape[2], dbuf.shape[2]
    fv_dw, fv_dx = outputs.shape[0] > 0, dx_outputs.shape[0] > 0
    no_bias = np.zeros(C, x.dtype)
    _check_width(min(xs, ds), images, S, Wp, max(ph, top), tap_offsets, L)
    if need_dx:
        _check_width(wide.shape[2], images, S, Wp, max(ph, top), tap_offsets, L)
    counter = np.zeros(1, np.intp)
    for t in prange(threads):
        xb = xbuf[t].reshape(Cp * xs)
        db_ = dbuf[t].reshape(FNp * ds)
        wb = wide[t].reshape(nrows_dx * wide.shape[2])
        k = next_chunk(counter)
        while k < chunks:
            n0 = _share_start(k, chunks, N)
            m = _share_start(k + 1, chunks, N) - n0
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
                _dwv(gbuf[t], ldg, ldg // (FV_F * L), xb, dw_inputs, outputs, m * OH * OW, dw,
                     ldg)
            else:
                _dw(db_, shift, ds, FNp // DW_F, xb, xs, Cp, tap_offsets, dw, Q)
            if need_dx:
                _forward_pass(db_, ds, FN, tap_offsets, wdx, wb, nrows_dx, dx_filter_block,
                              dx_outputs, dx_output_taps, fv_dx, m, Wp, S, no_bias, False, dx,
                              n0)
            k = next_chunk(counter)


#: The raw kernels, the same in every compiled backend (kernels/_conv_driver.py runs them).
__all__ = ["block_shapes", "get_num_threads", "forward_gemm", "backward_gemm",
           "forward_direct", "backward_direct"]
