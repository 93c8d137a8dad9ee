/* The kernels of conv_simd.h for one element type FC_T and one level FC_LEVEL (included
 * once per type by conv_simd_level.h). */
#define FC_FN(name) FC_CAT3(name, FC_LEVEL, FC_SUF)
#define FC_VEC FC_FN(fc_vec)
#define FC_UVEC FC_FN(fc_uvec)
#define FC_IVEC FC_FN(fc_ivec)
#define FC_L ((ptrdiff_t)(FC_VBYTES / sizeof(FC_T)))

typedef FC_T FC_VEC __attribute__((vector_size(FC_VBYTES)));
typedef FC_T FC_UVEC __attribute__((vector_size(FC_VBYTES), aligned(sizeof(FC_T)), may_alias));
typedef FC_I FC_IVEC __attribute__((vector_size(FC_VBYTES)));

/* sums[r] += a[r*lda + 0 .. Q) for r < rows; Q is a multiple of FC_L. */
static void FC_FN(fc_add_row_sums)(const FC_T* a, ptrdiff_t lda, ptrdiff_t rows,
                                   ptrdiff_t Q, FC_T* sums)
{
    FC_CHECK(rows >= 0 && Q >= 0 && Q % FC_L == 0);
    for (ptrdiff_t r = 0; r < rows; r++) {
        FC_VEC acc = (FC_VEC){0};
        for (ptrdiff_t q = 0; q < Q; q += FC_L)
            acc += *(const FC_UVEC*)(a + r * lda + q);
        FC_T s = 0;
        for (ptrdiff_t i = 0; i < FC_L; i++)
            s += acc[i];
        sums[r] += s;
    }
}

/* out[f*ldo + q] = sum over c < C, t < ntap of w[c][t][f] * x[c*xs + q + off[t]]
 * for every filter block (nfb of them, F filters each, weights packed as
 * (nfb, C, ntap, F)) and q < Q rounded up to V*FC_L. x must be readable
 * up to (C-1)*xs + round_up(Q) + max(off); out holds nfb*F rows of ldo. Called with
 * constant F and V (fc_conv_wide, fc_conv_wide1), so after inlining its loops unroll
 * and the F x V accumulators live in registers. */
static inline __attribute__((always_inline)) void FC_FN(fc_wide_blocks)(
    const FC_T* x, ptrdiff_t xs, ptrdiff_t C, const ptrdiff_t* off, ptrdiff_t ntap,
    const FC_T* w, ptrdiff_t nfb, FC_T* out, ptrdiff_t ldo, ptrdiff_t Q, const int F,
    const int V)
{
    const ptrdiff_t step = V * FC_L;
    /* Each filter's row of out holds every position written, Q rounded up to step. */
    FC_CHECK(C >= 0 && nfb >= 0 && Q >= 0 && (Q + step - 1) / step * step <= ldo);
    FC_CHECK(fc_taps_forward(off, ntap));
    /* Filter blocks outermost: each block's weights stay in L1, x streams from L2
     * (docs/tuning.md, "C kernel details"). */
    for (ptrdiff_t fb = 0; fb < nfb; fb++) {
        const FC_T* wb = w + fb * C * ntap * F;
        FC_T* ob = out + fb * F * ldo;
        for (ptrdiff_t q0 = 0; q0 < Q; q0 += step) {
            FC_VEC acc[FC_FWD_F][FC_FWD_V > FC_ONE_V ? FC_FWD_V : FC_ONE_V];
#pragma GCC unroll 8
            for (int f = 0; f < F; f++)
#pragma GCC unroll 16
                for (int v = 0; v < V; v++)
                    acc[f][v] = (FC_VEC){0};
            const FC_T* wc = wb;
            for (ptrdiff_t c = 0; c < C; c++) {
                const FC_T* xc = x + c * xs + q0;
                for (ptrdiff_t t = 0; t < ntap; t++) {
                    const FC_T* xp = xc + off[t];
                    FC_VEC xv[FC_FWD_V > FC_ONE_V ? FC_FWD_V : FC_ONE_V];
#pragma GCC unroll 16
                    for (int v = 0; v < V; v++)
                        xv[v] = *(const FC_UVEC*)(xp + v * FC_L);
#pragma GCC unroll 8
                    for (int f = 0; f < F; f++) {
                        const FC_T wf = wc[f];
#pragma GCC unroll 16
                        for (int v = 0; v < V; v++)
                            acc[f][v] += wf * xv[v];
                    }
                    wc += F;
                }
            }
#pragma GCC unroll 8
            for (int f = 0; f < F; f++)
#pragma GCC unroll 16
                for (int v = 0; v < V; v++)
                    *(FC_UVEC*)(ob + f * ldo + q0 + v * FC_L) = acc[f][v];
        }
    }
}

/* The forward/dx kernel: blocks of FC_FWD_F filters x FC_FWD_V vectors. */
static void FC_FN(fc_conv_wide)(const FC_T* x, ptrdiff_t xs, ptrdiff_t C,
                                const ptrdiff_t* off, ptrdiff_t ntap,
                                const FC_T* w, ptrdiff_t nfb,
                                FC_T* out, ptrdiff_t ldo, ptrdiff_t Q)
{
    FC_FN(fc_wide_blocks)(x, xs, C, off, ntap, w, nfb, out, ldo, Q, FC_FWD_F, FC_FWD_V);
}

/* The same for outputs of few channels (_conv_plan.use_one): blocks of one filter x
 * FC_ONE_V vectors, so no filter rows are computed past the real ones (a
 * one-channel output took FC_FWD_F rows). */
static void FC_FN(fc_conv_wide1)(const FC_T* x, ptrdiff_t xs, ptrdiff_t C,
                                 const ptrdiff_t* off, ptrdiff_t ntap,
                                 const FC_T* w, ptrdiff_t nf,
                                 FC_T* out, ptrdiff_t ldo, ptrdiff_t Q)
{
    FC_FN(fc_wide_blocks)(x, xs, C, off, ntap, w, nf, out, ldo, Q, 1, FC_ONE_V);
}

/* The register block of the direct_filters kernels, as Numba's _simd.fv_*: FC_FV_P
 * broadcast inputs x FC_FV_F vectors of filters. Always inlined, so the accumulators
 * live in registers. */
static inline __attribute__((always_inline)) void FC_FN(fc_fv_zeros)(
    FC_VEC acc[FC_FV_P][FC_FV_F])
{
#pragma GCC unroll 16
    for (int p = 0; p < FC_FV_P; p++)
#pragma GCC unroll 4
        for (int v = 0; v < FC_FV_F; v++)
            acc[p][v] = (FC_VEC){0};
}

/* pp[p] = idx[p] for p < FC_FV_P: a block's broadcast offsets, read once outside its
 * loop. */
static inline __attribute__((always_inline)) void FC_FN(fc_fv_index)(
    ptrdiff_t pp[FC_FV_P], const ptrdiff_t* idx)
{
#pragma GCC unroll 16
    for (int p = 0; p < FC_FV_P; p++)
        pp[p] = idx[p];
}

/* acc[p][v] += xp[pp[p]] * w[v*FC_L ...]: FC_FV_F loads, FC_FV_P broadcasts,
 * FC_FV_P*FC_FV_F FMAs. The forward's tap (pp: output positions, w: packed filters) and
 * the weight gradient's step (pp: channel-and-tap offsets, w: dout with filters last). */
static inline __attribute__((always_inline)) void FC_FN(fc_fv_step)(
    FC_VEC acc[FC_FV_P][FC_FV_F], const FC_T* xp, const ptrdiff_t pp[FC_FV_P], const FC_T* w)
{
    FC_BASE_REGISTER(xp);
    FC_VEC wv[FC_FV_F];
#pragma GCC unroll 4
    for (int v = 0; v < FC_FV_F; v++) {
        wv[v] = *(const FC_UVEC*)(w + v * FC_L);
        FC_IN_REGISTER(wv[v]);
    }
#pragma GCC unroll 16
    for (int p = 0; p < FC_FV_P; p++) {
        const FC_T xb = xp[pp[p]];
#pragma GCC unroll 4
        for (int v = 0; v < FC_FV_F; v++)
            acc[p][v] += xb * wv[v];
    }
}

/* The forward with filters in vectors: out[i*ldo + f] = sum over c < C, t < ntap
 * of w[c][t][f] * x[c*xs + pos[i] + off[t]] for every filter block (nfb blocks of
 * FC_FV_F vectors of filters, weights packed as (nfb, C, ntap, FC_FV_F*FC_L)) and
 * i < npos, a multiple of FC_FV_P: rows of filters per output, as the block holds them
 * (fc_unpack_t transposes them). Only the listed positions (an image's outputs) are
 * computed, where fc_conv_wide computes whole planes; each of FC_FV_P positions
 * broadcasts its input value against FC_FV_F vectors of filters. Block b sums taps
 * taps[2b] <= t < taps[2b+1] only (_conv_plan.tap_ranges: the others read padding).
 * Stored as held, not transposed (docs/tuning.md, "C kernel details"). */
static void FC_FN(fc_conv_fv)(const FC_T* x, ptrdiff_t xs, ptrdiff_t C,
                              const ptrdiff_t* off, ptrdiff_t ntap,
                              const FC_T* w, ptrdiff_t nfb, FC_T* out, ptrdiff_t ldo,
                              const ptrdiff_t* pos, const ptrdiff_t* taps, ptrdiff_t npos)
{
    FC_CHECK(C >= 0 && nfb >= 0 && npos >= 0 && npos % FC_FV_P == 0);
    FC_CHECK(nfb * FC_FV_F * FC_L <= ldo);
    FC_CHECK(fc_taps_forward(off, ntap));
    const ptrdiff_t F = FC_FV_F * FC_L;
    for (ptrdiff_t fb = 0; fb < nfb; fb++) {
        const FC_T* wb = w + fb * C * ntap * F;
        FC_T* ob = out + fb * F;
        for (ptrdiff_t i0 = 0; i0 < npos; i0 += FC_FV_P) {
            FC_VEC acc[FC_FV_P][FC_FV_F];
            ptrdiff_t pp[FC_FV_P];
            const ptrdiff_t t0 = taps[i0 / FC_FV_P * 2], t1 = taps[i0 / FC_FV_P * 2 + 1];
            FC_CHECK(0 <= t0 && t0 <= t1 && t1 <= ntap);
            FC_FN(fc_fv_zeros)(acc);
            FC_FN(fc_fv_index)(pp, pos + i0);
            const FC_T* xc = x;
            for (ptrdiff_t c = 0; c < C; c++) {
                const FC_T* wc = wb + (c * ntap + t0) * F;
                for (ptrdiff_t t = t0; t < t1; t++) {
                    FC_FN(fc_fv_step)(acc, xc + off[t], pp, wc);
                    wc += F;
                }
                xc += xs;
            }
#pragma GCC unroll 16
            for (int p = 0; p < FC_FV_P; p++)
#pragma GCC unroll 4
                for (int v = 0; v < FC_FV_F; v++)
                    *(FC_UVEC*)(ob + (i0 + p) * ldo + v * FC_L) = acc[p][v];
        }
    }
}

/* The weight gradient with filters in vectors: dwt[k*ldw + f] += sum over i < npos of
 * x[xo[k] + pos[i]] * g[i*ldg + f], for k < nk (a multiple of FC_FV_P; k stands for a
 * channel and tap, xo[k] = c*xs + off[t]) and f < nfb*FC_FV_F*FC_L. g holds dout with
 * filters last, one row per output position listed in pos (fc_pack_t), so only real
 * outputs are summed; FC_FV_P inputs are broadcast against FC_FV_F vectors of g, and
 * the sums stay vectors of filters (no horizontal sums). */
static void FC_FN(fc_conv_dwv)(const FC_T* g, ptrdiff_t ldg, ptrdiff_t nfb, const FC_T* x,
                               const ptrdiff_t* xo, ptrdiff_t nk, const ptrdiff_t* pos,
                               ptrdiff_t npos, FC_T* dwt, ptrdiff_t ldw)
{
    FC_CHECK(nfb >= 0 && nk >= 0 && nk % FC_FV_P == 0 && npos >= 0);
    FC_CHECK(nfb * FC_FV_F * FC_L <= ldg && nfb * FC_FV_F * FC_L <= ldw);
    for (ptrdiff_t k0 = 0; k0 < nk; k0 += FC_FV_P) {
        ptrdiff_t pp[FC_FV_P];
        FC_FN(fc_fv_index)(pp, xo + k0);
        for (ptrdiff_t fb = 0; fb < nfb; fb++) {
            FC_VEC acc[FC_FV_P][FC_FV_F];
            FC_FN(fc_fv_zeros)(acc);
            const FC_T* gi = g + fb * FC_FV_F * FC_L;
            for (ptrdiff_t i = 0; i < npos; i++) {
                FC_FN(fc_fv_step)(acc, x + pos[i], pp, gi);
                gi += ldg;
            }
#pragma GCC unroll 16
            for (int p = 0; p < FC_FV_P; p++)
#pragma GCC unroll 4
                for (int v = 0; v < FC_FV_F; v++) {
                    FC_UVEC* d = (FC_UVEC*)(dwt + (k0 + p) * ldw + (fb * FC_FV_F + v) * FC_L);
                    *d = *d + acc[p][v];
                }
        }
    }
}

/* One weight-gradient block: FC_DW_F filters x CB channels x TB taps (at most
 * FC_DW_C x 3), dw[f*fstride + c*ntap + k] += sum over q < Q of
 * g[f*gs + q] * x[c*xs + q + off[k]]. Called with constant CB and TB, so after inlining
 * its loops unroll and the accumulators live in registers. */
static inline __attribute__((always_inline)) void FC_FN(fc_dw_block)(
    const FC_T* g, ptrdiff_t gs, const FC_T* x, ptrdiff_t xs, const ptrdiff_t* off,
    ptrdiff_t Q, FC_T* dw, ptrdiff_t fstride, ptrdiff_t ntap, const int CB, const int TB)
{
    FC_VEC acc[FC_DW_F][FC_DW_C > FC_DW3_C ? FC_DW_C : FC_DW3_C][3];
#pragma GCC unroll 4
    for (int f = 0; f < FC_DW_F; f++)
#pragma GCC unroll 4
        for (int c = 0; c < CB; c++)
#pragma GCC unroll 3
            for (int k = 0; k < TB; k++)
                acc[f][c][k] = (FC_VEC){0};
    for (ptrdiff_t q = 0; q < Q; q += FC_L) {
        FC_VEC xv[FC_DW_C > FC_DW3_C ? FC_DW_C : FC_DW3_C][3];
#pragma GCC unroll 4
        for (int c = 0; c < CB; c++)
#pragma GCC unroll 3
            for (int k = 0; k < TB; k++) {
                xv[c][k] = *(const FC_UVEC*)(x + c * xs + q + off[k]);
                FC_IN_REGISTER(xv[c][k]);
            }
        /* One register of g at a time: the block needs CB*TB + 1 registers besides
         * its accumulators, which fits AVX2's 16 with a 4 x 1 x 3 block. */
#pragma GCC unroll 4
        for (int f = 0; f < FC_DW_F; f++) {
            FC_VEC gv = *(const FC_UVEC*)(g + f * gs + q);
            FC_IN_REGISTER(gv);
#pragma GCC unroll 4
            for (int c = 0; c < CB; c++)
#pragma GCC unroll 3
                for (int k = 0; k < TB; k++)
                    acc[f][c][k] += gv * xv[c][k];
        }
    }
    for (int f = 0; f < FC_DW_F; f++)
        for (int c = 0; c < CB; c++)
            for (int k = 0; k < TB; k++) {
                FC_T s = 0;
                for (ptrdiff_t i = 0; i < FC_L; i++)
                    s += acc[f][c][k][i];
                dw[f * fstride + c * ntap + k] += s;
            }
}

/* dw[(f*Cp + c)*ntap + t] += sum over q < Q of g[f*gs + q] * x[c*xs + q + off[t]],
 * for f < nfb*FC_DW_F, c < Cp and every tap t; Cp is a multiple of FC_DW3_C when there
 * are three-tap blocks (ntap >= 3) and of FC_DW_C when taps are left over (dw_channels).
 * Q is a multiple of FC_L; g is zero wherever it is not a real output position (so an
 * inf or NaN in x can still reach dw as 0 * inf: the drivers check dW, _conv_plan.finite).
 * Taps go three at a time (FC_DW_F filters x FC_DW3_C channels x 3 taps: one load of g
 * serves three taps), the remainder one at a time (FC_DW_F x FC_DW_C). */
static void FC_FN(fc_conv_dw)(const FC_T* g, ptrdiff_t gs, ptrdiff_t nfb,
                              const FC_T* x, ptrdiff_t xs, ptrdiff_t Cp,
                              const ptrdiff_t* off, ptrdiff_t ntap,
                              FC_T* dw, ptrdiff_t Q)
{
    /* Whole channel blocks for each loop that runs (kernels/_conv_plan.dw_channels). */
    FC_CHECK(nfb >= 0 && Q >= 0 && Q % FC_L == 0);
    FC_CHECK((ntap < 3 || Cp % FC_DW3_C == 0) && (ntap % 3 == 0 || Cp % FC_DW_C == 0));
    FC_CHECK(fc_taps_forward(off, ntap));
    const ptrdiff_t ntap3 = ntap - ntap % 3;
    for (ptrdiff_t fb = 0; fb < nfb; fb++) {
        const FC_T* gb = g + fb * FC_DW_F * gs;
        FC_T* db = dw + fb * FC_DW_F * Cp * ntap;
        for (ptrdiff_t c0 = 0; c0 < Cp; c0 += FC_DW3_C)
            for (ptrdiff_t t = 0; t < ntap3; t += 3)
                FC_FN(fc_dw_block)(gb, gs, x + c0 * xs, xs, off + t, Q, db + c0 * ntap + t,
                                   Cp * ntap, ntap, FC_DW3_C, 3);
        for (ptrdiff_t c0 = 0; c0 < Cp; c0 += FC_DW_C)
            for (ptrdiff_t t = ntap3; t < ntap; t++)
                FC_FN(fc_dw_block)(gb, gs, x + c0 * xs, xs, off + t, Q, db + c0 * ntap + t,
                                   Cp * ntap, ntap, FC_DW_C, 1);
    }
}

/* Images src (m, C, H, W) -> dst[c*ds + j*S + (top + y)*Wp + left + x], zero elsewhere in
 * each plane of S values and in the tail values after the last plane (at least the last
 * image's bottom pad and the wrap of its last row, top + 1 rows). mask (like src) or
 * NULL: keep a value only where mask > 0 (the fused ReLU's backward). Compiled per
 * level with the kernels: at the SSE2 baseline GCC leaves the masked copy scalar
 * (docs/tuning.md, "C kernel details"). */
static void FC_NO_LIBCALLS FC_FN(fc_pack)(const FC_T* src, const FC_T* mask, ptrdiff_t m,
                                          ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                          ptrdiff_t top, ptrdiff_t left, ptrdiff_t Wp,
                                          ptrdiff_t S, FC_T* restrict dst, ptrdiff_t ds,
                                          ptrdiff_t tail)
{
    /* Rows and planes hold their padding (no negative memset length), and one channel's
     * m planes and tail end before the next channel's begin. */
    FC_CHECK(m >= 0 && C >= 0 && H >= 0 && W >= 0 && top >= 0 && left >= 0);
    FC_CHECK(left + W <= Wp && (top + H) * Wp <= S && tail >= 0 && m * S + tail <= ds);
    /* A row is copied as whole vectors where its source plane has the `over` values they
     * read past it: the values written past the row land in its right padding (zeroed
     * next) and in the following rows, planes or tail, all written after it. */
    const ptrdiff_t Wv = (W + FC_L - 1) / FC_L * FC_L, over = Wv - W;
    /* Image by image, so the source is read in one sequential stream (docs/tuning.md,
     * "C kernel details"). */
    for (ptrdiff_t j = 0; j < m; j++) {
        for (ptrdiff_t c = 0; c < C; c++) {
            FC_T* plane = dst + c * ds + j * S;
            const FC_T* s = src + (j * C + c) * H * W;
            const FC_T* mk = mask ? mask + (j * C + c) * H * W : NULL;
            memset(plane, 0, (size_t)(top * Wp) * sizeof(FC_T));
            for (ptrdiff_t y = 0; y < H; y++) {
                FC_T* restrict row = plane + (top + y) * Wp;
                const FC_T* sy = s + y * W;
                for (ptrdiff_t i = 0; i < left; i++)
                    row[i] = 0;
                if ((H - 1 - y) * W >= over) {
                    if (mk == NULL) {
                        for (ptrdiff_t i = 0; i < Wv; i += FC_L)
                            *(FC_UVEC*)(row + left + i) = *(const FC_UVEC*)(sy + i);
                    } else {
                        const FC_T* my = mk + y * W;
                        for (ptrdiff_t i = 0; i < Wv; i += FC_L) {
                            const FC_VEC v = *(const FC_UVEC*)(sy + i);
                            const FC_VEC k = *(const FC_UVEC*)(my + i);
                            *(FC_UVEC*)(row + left + i) = (FC_VEC)((FC_IVEC)v & (k > 0));
                        }
                    }
                } else if (mk == NULL) {
                    for (ptrdiff_t i = 0; i < W; i++)
                        row[left + i] = sy[i];
                } else {
                    const FC_T* my = mk + y * W;
                    for (ptrdiff_t i = 0; i < W; i++)
                        row[left + i] = my[i] > 0 ? sy[i] : (FC_T)0;
                }
                for (ptrdiff_t i = left + W; i < Wp; i++)
                    row[i] = 0;
            }
            memset(plane + (top + H) * Wp, 0, (size_t)(S - (top + H) * Wp) * sizeof(FC_T));
        }
    }
    for (ptrdiff_t c = 0; c < C; c++)
        memset(dst + c * ds + m * S, 0, (size_t)tail * sizeof(FC_T));
}

/* r[k][i] <-> r[i][k]: a square block of FC_L vectors transposed in registers, in
 * log2(FC_L) rounds of two-vector shuffles, each swapping the off-diagonal blocks of half
 * the size (as Numba's _simd.transpose_block). */
static inline __attribute__((always_inline)) void FC_FN(fc_transpose)(FC_VEC r[FC_L])
{
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 8
    for (int half = FC_L / 2; half > 0; half /= 2) {
        FC_IVEC lo, hi;
#pragma GCC unroll 16
        for (int j = 0; j < FC_L; j++) {
            lo[j] = (j & half) ? FC_L + j - half : j;
            hi[j] = (j & half) ? FC_L + j : j + half;
        }
#pragma GCC unroll 16
        for (int i = 0; i < FC_L; i++)
            if (!(i & half)) {
                const FC_VEC a = r[i], b = r[i + half];
                r[i] = __builtin_shuffle(a, b, lo);
                r[i + half] = __builtin_shuffle(a, b, hi);
            }
    }
#else
    for (int i = 0; i < FC_L; i++)
        for (int k = i + 1; k < FC_L; k++) {
            const FC_T v = r[i][k];
            r[i][k] = r[k][i];
            r[k][i] = v;
        }
#endif
}

/* ReLU that keeps NaN, as np.maximum(v, 0). */
static inline __attribute__((always_inline)) FC_VEC FC_FN(fc_relu)(FC_VEC v)
{
    return (FC_VEC)((FC_IVEC)v & ~(v < 0));
}

/* Rows of filters per output (m*P rows of ldt, fc_conv_fv's out) -> dst (m, F, P), plus
 * b[f] (b may be NULL) and ReLU when relu (NaN propagates, as np.maximum(v, 0)): the
 * compaction of the kernels with filters in vectors. Square blocks of FC_L filters x FC_L
 * positions go through fc_transpose, the edges element by element. */
static void FC_FN(fc_unpack_t)(const FC_T* src, ptrdiff_t ldt, ptrdiff_t m, ptrdiff_t F,
                               ptrdiff_t P, const FC_T* b, int relu, FC_T* restrict dst)
{
    FC_CHECK(m >= 0 && F >= 0 && P >= 0 && F <= ldt);
    const ptrdiff_t Fb = F - F % FC_L, Pb = P - P % FC_L;
    for (ptrdiff_t j = 0; j < m; j++) {
        const FC_T* s = src + j * P * ldt;
        FC_T* d = dst + j * F * P;
        for (ptrdiff_t f0 = 0; f0 < Fb; f0 += FC_L)
            for (ptrdiff_t p0 = 0; p0 < Pb; p0 += FC_L) {
                FC_VEC r[FC_L];
#pragma GCC unroll 16
                for (int k = 0; k < FC_L; k++)
                    r[k] = *(const FC_UVEC*)(s + (p0 + k) * ldt + f0);
                FC_FN(fc_transpose)(r);
#pragma GCC unroll 16
                for (int k = 0; k < FC_L; k++) {
                    const FC_VEC v = r[k] + (b ? b[f0 + k] : (FC_T)0);
                    *(FC_UVEC*)(d + (f0 + k) * P + p0) = relu ? FC_FN(fc_relu)(v) : v;
                }
            }
        for (ptrdiff_t f = 0; f < F; f++) {
            const FC_T bf = b ? b[f] : (FC_T)0;
            for (ptrdiff_t p = f < Fb ? Pb : 0; p < P; p++) {
                const FC_T v = s[p * ldt + f] + bf;
                d[f * P + p] = relu && v < 0 ? (FC_T)0 : v;
            }
        }
    }
}

/* Images src (m, F, P) -> dst[(j*P + p)*ldg + f], filters last, zero in columns F..ldg;
 * mask (like src) or NULL: keep a value only where mask > 0 (the fused ReLU's
 * backward). The g of fc_conv_dwv. Square blocks go through fc_transpose, the edges
 * element by element. */
static void FC_FN(fc_pack_t)(const FC_T* src, const FC_T* mask, ptrdiff_t m, ptrdiff_t F,
                             ptrdiff_t P, FC_T* restrict dst, ptrdiff_t ldg)
{
    FC_CHECK(m >= 0 && F >= 0 && P >= 0 && F <= ldg);
    const ptrdiff_t Fb = F - F % FC_L, Pb = P - P % FC_L;
    for (ptrdiff_t j = 0; j < m; j++) {
        const FC_T* s = src + j * F * P;
        const FC_T* mk = mask ? mask + j * F * P : NULL;
        FC_T* d = dst + j * P * ldg;
        for (ptrdiff_t p = 0; p < P; p++)
            memset(d + p * ldg + F, 0, (size_t)(ldg - F) * sizeof(FC_T));
        for (ptrdiff_t f0 = 0; f0 < Fb; f0 += FC_L)
            for (ptrdiff_t p0 = 0; p0 < Pb; p0 += FC_L) {
                FC_VEC r[FC_L];
#pragma GCC unroll 16
                for (int k = 0; k < FC_L; k++) {
                    const ptrdiff_t at = (f0 + k) * P + p0;
                    r[k] = *(const FC_UVEC*)(s + at);
                    if (mk != NULL)
                        r[k] = (FC_VEC)((FC_IVEC)r[k] & (*(const FC_UVEC*)(mk + at) > 0));
                }
                FC_FN(fc_transpose)(r);
#pragma GCC unroll 16
                for (int k = 0; k < FC_L; k++)
                    *(FC_UVEC*)(d + (p0 + k) * ldg + f0) = r[k];
            }
        for (ptrdiff_t f = 0; f < F; f++)
            for (ptrdiff_t p = f < Fb ? Pb : 0; p < P; p++)
                d[p * ldg + f] = (mk == NULL || mk[f * P + p] > 0) ? s[f * P + p] : (FC_T)0;
    }
}

/* Rows of a wide output (F rows of ldo, m planes of S) -> dst (m, F, OH, OW), plus
 * b[f] (b may be NULL) and ReLU when relu (NaN propagates, as np.maximum(v, 0)). */
static void FC_FN(fc_unwide)(const FC_T* wide, ptrdiff_t ldo, ptrdiff_t m, ptrdiff_t F,
                             ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t Wp, ptrdiff_t S,
                             const FC_T* b, int relu, FC_T* restrict dst)
{
    /* Output rows inside wide rows, planes inside planes, m planes inside a row of ldo. */
    FC_CHECK(m >= 0 && F >= 0 && OH >= 0 && OW >= 0);
    FC_CHECK(OW <= Wp && OH * Wp <= S && m * S <= ldo);
    /* A row goes as whole vectors where `over` values of dst follow it: the values
     * written past the row land in rows written after it (wide rows are readable past
     * OW, into their padding and the overrun of the last block). */
    const ptrdiff_t Wv = (OW + FC_L - 1) / FC_L * FC_L, over = Wv - OW, rows = m * F * OH;
    for (ptrdiff_t j = 0; j < m; j++)
        for (ptrdiff_t f = 0; f < F; f++) {
            const FC_T bf = b ? b[f] : (FC_T)0;
            for (ptrdiff_t oy = 0; oy < OH; oy++) {
                const FC_T* src = wide + f * ldo + j * S + oy * Wp;
                const ptrdiff_t r = (j * F + f) * OH + oy;
                FC_T* restrict d = dst + r * OW;
                if ((rows - 1 - r) * OW >= over) {
                    for (ptrdiff_t i = 0; i < Wv; i += FC_L) {
                        const FC_VEC v = *(const FC_UVEC*)(src + i) + bf;
                        *(FC_UVEC*)(d + i) = relu ? FC_FN(fc_relu)(v) : v;
                    }
                } else if (relu) {
                    for (ptrdiff_t i = 0; i < OW; i++) {
                        const FC_T v = src[i] + bf;
                        d[i] = v < 0 ? (FC_T)0 : v;
                    }
                } else {
                    for (ptrdiff_t i = 0; i < OW; i++)
                        d[i] = src[i] + bf;
                }
            }
        }
}

#undef FC_FN
#undef FC_VEC
#undef FC_UVEC
#undef FC_IVEC
#undef FC_L
