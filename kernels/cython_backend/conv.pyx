# conv2d forward and backward in Cython + OpenMP: direct convolution and im2col + GEMM.
#
# The raw kernels only: kernels/_conv_driver.py runs them as kernels/_conv_plan.py plans
# (the rule and its measurements are there). GEMMs call SciPy's BLAS
# (scipy.linalg.cython_blas) from inside the parallel loop, one call per thread; the
# driver holds BLAS to one thread around them.
#
# col layout here is transposed relative to the book: col[(c*KH + ky)*KW + kx,
# j*OH*OW + oy*OW + ox] = x[n0 + j, c, oy*SH + ky - PH, ox*SW + kx - PW] for the j-th
# image of a group, so W(FN, K) @ col is already in NCHW order.
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.string cimport memset
from .._isa import level as isa_level

from _common cimport gemm, round_up, valid_range
from conv_simd cimport (fc_simd_cpu_supports, fc_simd_level, fc_simd_level_count,
                       fc_simd_levels)
from ._runtime import get_num_threads

cdef const fc_simd_level* _level_table(str name) except NULL:
    """The kernel table of level ``name`` (kernels/_isa.TABLE, compiled into
    conv_simd_levels.h), refused where this CPU cannot run it."""
    cdef const fc_simd_level* k
    cdef int i
    for i in range(fc_simd_level_count):
        k = fc_simd_levels[i]
        if k.name != NULL and k.name.decode() == name:
            if fc_simd_cpu_supports(k):
                return k
            break
    raise ValueError(f"the {name} kernels cannot run on this CPU (not built for its "
                     f"architecture, or the CPU lacks the instructions)")


#: The direct kernels of the level in force (kernels/_isa.py).
cdef const fc_simd_level* _K = _level_table(isa_level())


def block_shapes():
    """The compiled block shapes of the level in force, as ``kernels._isa.TABLE`` holds
    them: ``(level, vector bytes, fwd_f, fwd_v, dw_f, dw_c, dw3_c, fv_f, fv_p,
    one_v)``."""
    return (_K.name.decode(), _K.vbytes, _K.fwd_f, _K.fwd_v, _K.dw_f, _K.dw_c, _K.dw3_c,
            _K.fv_f, _K.fv_p, _K.one_v)


cdef void _im2col_t(const floating* img, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                    floating* col, Py_ssize_t ldc, Py_ssize_t OH, Py_ssize_t OW,
                    int kh, int kw, int sh, int sw, int ph, int pw) noexcept nogil:
    """One image (C, H, W) -> rows of ``col`` (row stride ``ldc``), OH*OW columns."""
    cdef Py_ssize_t c, ky, kx, oy, ox, ylo, yhi, xlo, xhi
    cdef floating* dst
    cdef const floating* src
    for c in range(C):
        for ky in range(kh):
            valid_range(ky, sh, ph, OH, H, &ylo, &yhi)
            for kx in range(kw):
                valid_range(kx, sw, pw, OW, W, &xlo, &xhi)
                dst = col + ((c * kh + ky) * kw + kx) * ldc
                for oy in range(OH):
                    if oy < ylo or oy >= yhi:
                        memset(dst, 0, OW * sizeof(floating))
                    else:
                        src = img + (c * H + oy * sh + ky - ph) * W + kx - pw
                        for ox in range(xlo):
                            dst[ox] = 0
                        if sw == 1:
                            for ox in range(xlo, xhi):
                                dst[ox] = src[ox]
                        else:
                            for ox in range(xlo, xhi):
                                dst[ox] = src[ox * sw]
                        for ox in range(xhi, OW):
                            dst[ox] = 0
                    dst += OW


cdef void _col2im_t(const floating* col, Py_ssize_t ldc, floating* img, Py_ssize_t C,
                    Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                    int kh, int kw, int sh, int sw, int ph, int pw) noexcept nogil:
    """Rows of ``col`` (row stride ``ldc``) -> one image (C, H, W), windows summed."""
    cdef Py_ssize_t c, ky, kx, oy, ox, ylo, yhi, xlo, xhi
    cdef const floating* src
    cdef floating* dst
    memset(img, 0, C * H * W * sizeof(floating))
    for c in range(C):
        for ky in range(kh):
            valid_range(ky, sh, ph, OH, H, &ylo, &yhi)
            for kx in range(kw):
                valid_range(kx, sw, pw, OW, W, &xlo, &xhi)
                src = col + ((c * kh + ky) * kw + kx) * ldc
                for oy in range(ylo, yhi):
                    dst = img + (c * H + oy * sh + ky - ph) * W + kx - pw
                    if sw == 1:
                        for ox in range(xlo, xhi):
                            dst[ox] += src[oy * OW + ox]
                    else:
                        for ox in range(xlo, xhi):
                            dst[ox * sw] += src[oy * OW + ox]


cdef inline void _bias_relu(const floating* src, floating* dst, Py_ssize_t n, floating bf,
                            bint relu) noexcept nogil:
    """``dst[:n] = src[:n] + bf``, then ReLU when ``relu``."""
    cdef Py_ssize_t i
    cdef floating val
    if relu:
        for i in range(n):
            val = src[i] + bf
            dst[i] = 0 if val < 0 else val  # NaN propagates, as np.maximum(v, 0)
    else:
        for i in range(n):
            dst[i] = src[i] + bf


cdef inline Py_ssize_t _share_start(Py_ssize_t t, Py_ssize_t nt, Py_ssize_t N) noexcept nogil:
    """First image of part t when N images are cut into nt parts as evenly as possible:
    a thread's share of the batch (im2col + GEMM: thread t owns images
    [_share_start(t), _share_start(t + 1)), walked in groups of G, the last one short) or
    a chunk of the direct kernels (``_conv_plan.batch_chunks``); images rather than whole
    groups per share, so no thread ends a group behind (docs/tuning.md, "Chunk sizes")."""
    return t * N // nt


# ------------------------------------------------------------------ im2col + GEMM

cdef void _forward_share(const floating* x, const floating* Wm, const floating* b,
                         floating* out, floating* col, floating* res,
                         Py_ssize_t n_begin, Py_ssize_t n_end, Py_ssize_t G,
                         Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t FN,
                         Py_ssize_t OH, Py_ssize_t OW, int kh, int kw, int sh, int sw,
                         int ph, int pw, bint relu) noexcept nogil:
    cdef Py_ssize_t P = OH * OW, K = C * kh * kw
    cdef Py_ssize_t n0, m, j, f
    n0 = n_begin
    while n0 < n_end:
        m = min(G, n_end - n0)
        for j in range(m):
            _im2col_t(x + (n0 + j) * C * H * W, C, H, W, col + j * P, m * P, OH, OW,
                      kh, kw, sh, sw, ph, pw)
        gemm(c'N', c'N', FN, m * P, K, 1, Wm, K, col, m * P, 0, res, m * P)
        for j in range(m):
            for f in range(FN):
                _bias_relu(res + f * m * P + j * P, out + ((n0 + j) * FN + f) * P, P, b[f],
                           relu)
        n0 += m


cdef void _backward_share(const floating* dout, const floating* rout,
                          const floating* x, const floating* Wm,
                          floating* dx, floating* dW, floating* db,
                          floating* col, floating* dg, floating* dcol,
                          Py_ssize_t n_begin, Py_ssize_t n_end, Py_ssize_t G,
                          Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t FN,
                          Py_ssize_t OH, Py_ssize_t OW, int kh, int kw, int sh, int sw,
                          int ph, int pw, bint need_dx, bint has_relu) noexcept nogil:
    cdef Py_ssize_t P = OH * OW, K = C * kh * kw
    cdef Py_ssize_t n0, m, j, f, p
    cdef double s
    cdef floating v
    cdef const floating* src
    cdef const floating* rsrc
    cdef floating* dst
    memset(dW, 0, FN * K * sizeof(floating))
    memset(db, 0, FN * sizeof(floating))
    n0 = n_begin
    while n0 < n_end:
        m = min(G, n_end - n0)
        for j in range(m):
            _im2col_t(x + (n0 + j) * C * H * W, C, H, W, col + j * P, m * P, OH, OW,
                      kh, kw, sh, sw, ph, pw)
            for f in range(FN):
                src = dout + ((n0 + j) * FN + f) * P
                dst = dg + f * m * P + j * P
                s = 0
                if has_relu:
                    # The fused ReLU's backward (the book's mask out <= 0).
                    rsrc = rout + ((n0 + j) * FN + f) * P
                    for p in range(P):
                        v = 0 if rsrc[p] <= 0 else src[p]
                        dst[p] = v
                        s += v
                else:
                    for p in range(P):
                        v = src[p]
                        dst[p] = v
                        s += v
                db[f] += <floating>s
        # dW(FN, K) += dg(FN, mP) @ col(K, mP).T
        gemm(c'N', c'T', FN, K, m * P, 1, dg, m * P, col, m * P, 1, dW, K)
        if need_dx:
            # dcol(K, mP) = Wm(FN, K).T @ dg(FN, mP)
            gemm(c'T', c'N', K, m * P, FN, 1, Wm, K, dg, m * P, 0, dcol, m * P)
            for j in range(m):
                _col2im_t(dcol + j * P, m * P, dx + (n0 + j) * C * H * W, C, H, W,
                          OH, OW, kh, kw, sh, sw, ph, pw)
        n0 += m


def forward_gemm(const floating[:, :, :, ::1] x, const floating[:, ::1] Wm,
                 const floating[::1] b, floating[:, :, :, ::1] out,
                 floating[:, ::1] col_ws, floating[:, ::1] res_ws,
                 int kh, int kw, int sh, int sw, int ph, int pw, bint relu,
                 Py_ssize_t images, int threads):
    """im2col + GEMM forward: thread t takes its share of the batch in groups of
    ``images``, with its rows of the col and result workspaces."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t FN = out.shape[1], OH = out.shape[2], OW = out.shape[3]
    cdef int t
    for t in prange(threads, nogil=True, schedule="static", num_threads=threads):
        _forward_share(&x[0, 0, 0, 0], &Wm[0, 0], &b[0], &out[0, 0, 0, 0],
                       &col_ws[t, 0], &res_ws[t, 0],
                       _share_start(t, threads, N), _share_start(t + 1, threads, N),
                       images, C, H, W, FN, OH, OW, kh, kw, sh, sw, ph, pw, relu)


def backward_gemm(const floating[:, :, :, ::1] dout, const floating[:, :, :, ::1] rout,
                  bint has_relu, const floating[:, :, :, ::1] x,
                  const floating[:, ::1] Wm, floating[:, :, :, ::1] dx, bint need_dx,
                  floating[:, :, ::1] dW_part, floating[:, ::1] db_part,
                  floating[:, ::1] col_ws, floating[:, ::1] dg_ws,
                  floating[:, ::1] dcol_ws,
                  int kh, int kw, int sh, int sw, int ph, int pw,
                  Py_ssize_t images, int threads):
    """im2col + GEMM backward: thread t sums its share's dW and db into dW_part[t] and
    db_part[t] and folds its images' dx."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t FN = dout.shape[1], OH = dout.shape[2], OW = dout.shape[3]
    cdef int t
    for t in prange(threads, nogil=True, schedule="static", num_threads=threads):
        _backward_share(&dout[0, 0, 0, 0], &rout[0, 0, 0, 0], &x[0, 0, 0, 0], &Wm[0, 0],
                        &dx[0, 0, 0, 0], &dW_part[t, 0, 0], &db_part[t, 0],
                        &col_ws[t, 0], &dg_ws[t, 0], &dcol_ws[t, 0],
                        _share_start(t, threads, N), _share_start(t + 1, threads, N),
                        images, C, H, W, FN, OH, OW, kh, kw, sh, sw, ph, pw, need_dx,
                        has_relu)


# ------------------------------------------------------------------ direct, stride 1
#
# The register-blocked kernels of conv_simd.h on "wide" planes: a chunk of images is
# packed channel by channel into padded planes laid end to end (row c of a buffer holds
# channel c of every image of the chunk), so every window tap is one shifted contiguous
# read. Neighbours share their zero padding: a row's right pad is the next row's left pad
# and an image's bottom pad the next image's top pad, so a plane is (H + ph) x (W + pw)
# and the kernels waste only the pw columns and ph rows computed past each image's
# outputs (then dropped by the compaction that applies bias and ReLU). The passes the
# plan gives to filters in vectors (Plan.pos, pos_dx) run those kernels on the same
# planes, at the outputs only.

cdef inline void _pack(const floating* src, const floating* mask, Py_ssize_t m,
                       Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t top,
                       Py_ssize_t left, Py_ssize_t Wp, Py_ssize_t S, floating* dst,
                       Py_ssize_t ds, Py_ssize_t tail) noexcept nogil:
    if floating is float:
        _K.pack_f32(src, mask, m, C, H, W, top, left, Wp, S, dst, ds, tail)
    else:
        _K.pack_f64(src, mask, m, C, H, W, top, left, Wp, S, dst, ds, tail)


cdef inline void _unwide(const floating* wide, Py_ssize_t ldo, Py_ssize_t m, Py_ssize_t F,
                         Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t Wp, Py_ssize_t S,
                         const floating* b, bint relu, floating* dst) noexcept nogil:
    if floating is float:
        _K.unwide_f32(wide, ldo, m, F, OH, OW, Wp, S, b, relu, dst)
    else:
        _K.unwide_f64(wide, ldo, m, F, OH, OW, Wp, S, b, relu, dst)


cdef inline void _wide(const floating* x, Py_ssize_t xs, Py_ssize_t C, const Py_ssize_t* off,
                       Py_ssize_t ntap, const floating* w, Py_ssize_t nrows, Py_ssize_t F,
                       floating* out, Py_ssize_t ldo, Py_ssize_t Q) noexcept nogil:
    """The wide kernel for nrows rows in blocks of F filters: the one-filter blocks'
    when F is 1, else the fwd_f blocks'."""
    if floating is float:
        (_K.conv_wide1_f32 if F == 1 else _K.conv_wide_f32)(x, xs, C, off, ntap, w,
                                                            nrows // F, out, ldo, Q)
    else:
        (_K.conv_wide1_f64 if F == 1 else _K.conv_wide_f64)(x, xs, C, off, ntap, w,
                                                            nrows // F, out, ldo, Q)


cdef inline void _fv(const floating* x, Py_ssize_t xs, Py_ssize_t C, const Py_ssize_t* off,
                     Py_ssize_t ntap, const floating* w, Py_ssize_t nfb, floating* out,
                     Py_ssize_t ldo, const Py_ssize_t* pos, const Py_ssize_t* taps,
                     Py_ssize_t npos) noexcept nogil:
    if floating is float:
        _K.conv_fv_f32(x, xs, C, off, ntap, w, nfb, out, ldo, pos, taps, npos)
    else:
        _K.conv_fv_f64(x, xs, C, off, ntap, w, nfb, out, ldo, pos, taps, npos)


cdef inline void _unpack_t(const floating* src, Py_ssize_t ldt, Py_ssize_t m, Py_ssize_t F,
                           Py_ssize_t P, const floating* b, bint relu,
                           floating* dst) noexcept nogil:
    if floating is float:
        _K.unpack_t_f32(src, ldt, m, F, P, b, relu, dst)
    else:
        _K.unpack_t_f64(src, ldt, m, F, P, b, relu, dst)


cdef inline void _forward_pass(const floating* x, Py_ssize_t xs, Py_ssize_t C,
                               const Py_ssize_t* off, Py_ssize_t ntap, const floating* w,
                               floating* wide, Py_ssize_t ldo, Py_ssize_t nrows, Py_ssize_t F,
                               const Py_ssize_t* pos, const Py_ssize_t* taps, Py_ssize_t m,
                               Py_ssize_t FN, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t Wp,
                               Py_ssize_t S, const floating* b, bint relu,
                               floating* dst) noexcept nogil:
    """The forward kernel over m packed images in blocks of F filters
    (``_conv_plan.filter_block``), nrows filter rows in all, then its compaction into dst
    (m, FN, OH, OW) with bias b (or NULL) and ReLU: with filters in vectors over the m*P
    outputs listed in pos (pos not NULL; each block's taps: ``_conv_plan.tap_ranges``)
    into rows of nrows filters per output, else with positions in vectors over the m
    whole planes into nrows rows of ldo. wide holds nrows*ldo values either way (ldo, a
    packed row's length, exceeds the rows the filters kernel writes, m*P rounded up to
    whole blocks)."""
    if pos != NULL:
        _fv(x, xs, C, off, ntap, w, nrows // F, wide, nrows, pos, taps,
            round_up(m * OH * OW, _K.fv_p))
        _unpack_t(wide, nrows, m, FN, OH * OW, b, relu, dst)
    else:
        _wide(x, xs, C, off, ntap, w, nrows, F, wide, ldo, m * S)
        _unwide(wide, ldo, m, FN, OH, OW, Wp, S, b, relu, dst)


cdef inline void _dwv(const floating* g, Py_ssize_t ldg, Py_ssize_t nfb, const floating* x,
                      const Py_ssize_t* xo, Py_ssize_t nk, const Py_ssize_t* pos,
                      Py_ssize_t npos, floating* dwt, Py_ssize_t ldw) noexcept nogil:
    if floating is float:
        _K.conv_dwv_f32(g, ldg, nfb, x, xo, nk, pos, npos, dwt, ldw)
    else:
        _K.conv_dwv_f64(g, ldg, nfb, x, xo, nk, pos, npos, dwt, ldw)


cdef inline void _pack_t(const floating* src, const floating* mask, Py_ssize_t m,
                         Py_ssize_t F, Py_ssize_t P, floating* dst,
                         Py_ssize_t ldg) noexcept nogil:
    if floating is float:
        _K.pack_t_f32(src, mask, m, F, P, dst, ldg)
    else:
        _K.pack_t_f64(src, mask, m, F, P, dst, ldg)


cdef inline void _dw(const floating* g, Py_ssize_t gs, Py_ssize_t nfb, const floating* x,
                     Py_ssize_t xs, Py_ssize_t Cp, const Py_ssize_t* off, Py_ssize_t ntap,
                     floating* dw, Py_ssize_t Q) noexcept nogil:
    if floating is float:
        _K.conv_dw_f32(g, gs, nfb, x, xs, Cp, off, ntap, dw, Q)
    else:
        _K.conv_dw_f64(g, gs, nfb, x, xs, Cp, off, ntap, dw, Q)


cdef inline void _add_row_sums(const floating* a, Py_ssize_t lda, Py_ssize_t rows,
                               Py_ssize_t Q, floating* sums) noexcept nogil:
    if floating is float:
        _K.add_row_sums_f32(a, lda, rows, Q, sums)
    else:
        _K.add_row_sums_f64(a, lda, rows, Q, sums)


cdef int _check_width(Py_ssize_t width, Py_ssize_t images, Py_ssize_t S, Py_ssize_t Wp,
                      Py_ssize_t top, const Py_ssize_t[::1] off, Py_ssize_t L) except -1:
    """Refuse a packed buffer too short for the kernels, which run without bounds
    checks (``_conv_plan.wide_buffer_width`` sizes it)."""
    if width < (images * S + (top + 1) * Wp + L + max(_K.fwd_v, _K.one_v) * L
                + off[off.shape[0] - 1] + 1):
        raise ValueError(f"conv: packed rows of {width} values are too short for this "
                         f"call; size them with kernels._conv_plan.plan")
    return 0


def forward_direct(const floating[:, :, :, ::1] x, const floating[::1] wpk,
                   const floating[::1] b, floating[:, :, :, ::1] out,
                   floating[:, :, ::1] xbuf, floating[:, :, ::1] wide,
                   Py_ssize_t filter_block, const Py_ssize_t[::1] tap_offsets,
                   const Py_ssize_t[::1] outputs, const Py_ssize_t[::1] output_taps,
                   int ph, int pw, bint relu, Py_ssize_t images, Py_ssize_t chunks,
                   int threads):
    """The direct forward: threads take the ``chunks`` of the batch as they finish,
    pack each into their row of xbuf and run the forward pass into their row of wide
    (with filters in vectors where ``outputs`` are listed), then compact into out."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t FN = out.shape[1], OH = out.shape[2], OW = out.shape[3]
    cdef Py_ssize_t Wp = W + pw, S = (H + ph) * Wp
    cdef Py_ssize_t xs = xbuf.shape[2], ldo = wide.shape[2]
    cdef const Py_ssize_t* pp = &outputs[0] if outputs.shape[0] else NULL
    cdef const Py_ssize_t* tp = &output_taps[0] if outputs.shape[0] else NULL
    cdef Py_ssize_t n0, m, k
    cdef int t
    _check_width(min(xs, ldo), images, S, Wp, ph, tap_offsets, _K.vbytes // sizeof(floating))
    for k in prange(chunks, nogil=True, schedule="dynamic", chunksize=1, num_threads=threads):
        t = threadid()
        n0 = _share_start(k, chunks, N)
        m = _share_start(k + 1, chunks, N) - n0
        _pack(&x[n0, 0, 0, 0], <floating*>NULL, m, C, H, W, ph, pw, Wp, S,
              &xbuf[t, 0, 0], xs, (ph + 1) * Wp)
        _forward_pass(&xbuf[t, 0, 0], xs, C, &tap_offsets[0], tap_offsets.shape[0], &wpk[0],
                      &wide[t, 0, 0], ldo, wide.shape[1], filter_block, pp, tp, m, FN, OH,
                      OW, Wp, S, &b[0], relu, &out[n0, 0, 0, 0])


def backward_direct(const floating[:, :, :, ::1] dout, const floating[:, :, :, ::1] rout,
                    bint has_relu, const floating[:, :, :, ::1] x,
                    const floating[::1] wdx, floating[:, :, :, ::1] dx, bint need_dx,
                    floating[:, ::1] dW_part, floating[:, ::1] db_part,
                    floating[:, :, ::1] xbuf, floating[:, :, ::1] dbuf,
                    floating[:, ::1] gbuf, floating[:, :, ::1] wide,
                    Py_ssize_t dx_filter_block, const Py_ssize_t[::1] tap_offsets,
                    const Py_ssize_t[::1] outputs, Py_ssize_t filters_last_row,
                    const Py_ssize_t[::1] dw_inputs, const Py_ssize_t[::1] dx_outputs,
                    const Py_ssize_t[::1] dx_output_taps, int kh, int kw, int ph, int pw,
                    Py_ssize_t images, Py_ssize_t chunks, int threads):
    """dout (masked by the fused ReLU) is packed once, padded by (kh-1-ph, kw-1-pw).
    That layout has x's plane geometry (Wp = OW + kw-1-pw = W + pw, likewise S), so
    dx is the forward kernel over it with the flipped, transposed filters, and the same
    buffer read ``(kh-1-ph)*Wp + kw-1-pw`` values further on is dout aligned with x's
    windows, zero between outputs: the weight-gradient kernel's g. Where ``outputs`` are
    listed, dW comes instead from dout packed filters last (``gbuf``, rows of
    ``filters_last_row``) by the kernel with filters in vectors, into dW_part's
    (channel x tap, filters_last_row) rows; where ``dx_outputs`` are, dx from the forward
    with filters in vectors. Threads take the chunks as they finish, so dW and db are
    summed per chunk (dW_part[k], db_part[k]) and the chunks added in their order
    afterwards: the same bits whichever thread ran which chunk."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t FN = dout.shape[1], OH = dout.shape[2], OW = dout.shape[3]
    cdef Py_ssize_t Wp = W + pw, S = (H + ph) * Wp
    cdef Py_ssize_t top = kh - 1 - ph, left = kw - 1 - pw, shift = top * Wp + left
    cdef Py_ssize_t xs = xbuf.shape[2], ds = dbuf.shape[2]
    cdef Py_ssize_t ldo = wide.shape[2], Cp = xbuf.shape[1], nfb = dbuf.shape[1] // _K.dw_f
    cdef Py_ssize_t L = _K.vbytes // sizeof(floating), ldg = filters_last_row
    cdef bint fv_dw = outputs.shape[0] > 0
    cdef const Py_ssize_t* pp_dx = &dx_outputs[0] if dx_outputs.shape[0] else NULL
    cdef const Py_ssize_t* tp_dx = &dx_output_taps[0] if dx_outputs.shape[0] else NULL
    cdef Py_ssize_t n0, m, Q, k
    cdef const floating* mask
    cdef int t
    _check_width(min(xs, ds), images, S, Wp, max(ph, top), tap_offsets, L)
    if need_dx:
        _check_width(ldo, images, S, Wp, max(ph, top), tap_offsets, L)
    for k in prange(chunks, nogil=True, schedule="dynamic", chunksize=1, num_threads=threads):
        t = threadid()
        n0 = _share_start(k, chunks, N)
        m = _share_start(k + 1, chunks, N) - n0
        mask = &rout[n0, 0, 0, 0] if has_relu else NULL
        _pack(&x[n0, 0, 0, 0], <floating*>NULL, m, C, H, W, ph, pw, Wp, S,
              &xbuf[t, 0, 0], xs, (ph + 1) * Wp)
        _pack(&dout[n0, 0, 0, 0], mask, m, FN, OH, OW, top, left, Wp, S,
              &dbuf[t, 0, 0], ds, (top + 1) * Wp + L)
        Q = round_up(m * S, L)
        memset(&dW_part[k, 0], 0, dW_part.shape[1] * sizeof(floating))
        memset(&db_part[k, 0], 0, FN * sizeof(floating))
        _add_row_sums(&dbuf[t, 0, shift], ds, FN, Q, &db_part[k, 0])
        if fv_dw:
            _pack_t(&dout[n0, 0, 0, 0], mask, m, FN, OH * OW, &gbuf[t, 0], ldg)
            _dwv(&gbuf[t, 0], ldg, ldg // (_K.fv_f * L), &xbuf[t, 0, 0], &dw_inputs[0],
                 dw_inputs.shape[0], &outputs[0], m * OH * OW, &dW_part[k, 0], ldg)
        else:
            _dw(&dbuf[t, 0, shift], ds, nfb, &xbuf[t, 0, 0], xs, Cp, &tap_offsets[0],
                tap_offsets.shape[0], &dW_part[k, 0], Q)
        if need_dx:
            _forward_pass(&dbuf[t, 0, 0], ds, FN, &tap_offsets[0], tap_offsets.shape[0],
                          &wdx[0], &wide[t, 0, 0], ldo, wide.shape[1], dx_filter_block,
                          pp_dx, tp_dx, m, C, H, W, Wp, S, <floating*>NULL, False,
                          &dx[n0, 0, 0, 0])


#: The raw kernels, the same in every compiled backend (kernels/_conv_driver.py runs them).
__all__ = ["block_shapes", "get_num_threads", "forward_gemm", "backward_gemm",
           "forward_direct", "backward_direct"]
