/* Register-blocked convolution kernels for conv.pyx's 'direct' algorithm (stride 1),
 * compiled once per instruction-set level and chosen at run time.
 *
 * The wide kernels work on "wide" planes: a padded image (Hp, Wp) is stored flat, so the
 * window tap (ky, kx) of output position q = oy*Wp + ox reads the input at q + ky*Wp + kx,
 * a contiguous shifted load for every tap. Positions with ox >= OW are computed and
 * thrown away (the caller compacts them); this costs (Wp - OW) / Wp of the work and buys
 * unit-stride vector loads with no im2col matrix. The direct_filters kernels (fc_conv_fv,
 * fc_conv_dwv) read the same planes at listed output positions only, with vectors of
 * filters instead of positions, for the passes whose planes waste much that way.
 *
 * The kernels are written once (conv_simd_impl.h) with GCC/Clang vector extensions and
 * built by one translation unit per level (written by setup.py from kernels/_isa.TABLE,
 * see conv_simd_level.h), each with its own vector width, block shapes and target
 * attributes, so the extension itself needs no
 * -march flag and runs on any x86-64 CPU. Each unit exports one fc_simd_level table.
 */
#ifndef FASTCONV_CONV_SIMD_H
#define FASTCONV_CONV_SIMD_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The wide forward/dx kernels (fc_conv_wide, fc_conv_wide1): nfb blocks of filters. */
typedef void (*fc_wide_f32)(const float* x, ptrdiff_t xs, ptrdiff_t C, const ptrdiff_t* off,
                            ptrdiff_t ntap, const float* w, ptrdiff_t nfb, float* out,
                            ptrdiff_t ldo, ptrdiff_t Q);
typedef void (*fc_wide_f64)(const double* x, ptrdiff_t xs, ptrdiff_t C, const ptrdiff_t* off,
                            ptrdiff_t ntap, const double* w, ptrdiff_t nfb, double* out,
                            ptrdiff_t ldo, ptrdiff_t Q);

typedef struct {
    const char* name;   /* NULL: this level is not built for this architecture */
    int vbytes;         /* bytes in one vector */
    int fwd_f, fwd_v;   /* forward block: filters x vectors of positions */
    int dw_f, dw_c;     /* weight-gradient block of one tap: filters x channels */
    int dw3_c;          /* channels of the three-tap weight-gradient block (dw_f filters) */
    int fv_f, fv_p;     /* forward with filters in vectors: vectors of filters x positions */
    int one_v;          /* forward block of one filter: vectors of positions */
    fc_wide_f32 conv_wide_f32;   /* blocks of fwd_f filters */
    fc_wide_f64 conv_wide_f64;
    fc_wide_f32 conv_wide1_f32;  /* blocks of one filter */
    fc_wide_f64 conv_wide1_f64;
    void (*conv_fv_f32)(const float* x, ptrdiff_t xs, ptrdiff_t C, const ptrdiff_t* off,
                        ptrdiff_t ntap, const float* w, ptrdiff_t nfb, float* out,
                        ptrdiff_t ldo, const ptrdiff_t* pos, const ptrdiff_t* taps,
                        ptrdiff_t npos);
    void (*conv_fv_f64)(const double* x, ptrdiff_t xs, ptrdiff_t C, const ptrdiff_t* off,
                        ptrdiff_t ntap, const double* w, ptrdiff_t nfb, double* out,
                        ptrdiff_t ldo, const ptrdiff_t* pos, const ptrdiff_t* taps,
                        ptrdiff_t npos);
    void (*conv_dwv_f32)(const float* g, ptrdiff_t ldg, ptrdiff_t nfb, const float* x,
                         const ptrdiff_t* xo, ptrdiff_t nk, const ptrdiff_t* pos,
                         ptrdiff_t npos, float* dwt, ptrdiff_t ldw);
    void (*conv_dwv_f64)(const double* g, ptrdiff_t ldg, ptrdiff_t nfb, const double* x,
                         const ptrdiff_t* xo, ptrdiff_t nk, const ptrdiff_t* pos,
                         ptrdiff_t npos, double* dwt, ptrdiff_t ldw);
    void (*pack_t_f32)(const float* src, const float* mask, ptrdiff_t m, ptrdiff_t F,
                       ptrdiff_t P, float* dst, ptrdiff_t ldg);
    void (*pack_t_f64)(const double* src, const double* mask, ptrdiff_t m, ptrdiff_t F,
                       ptrdiff_t P, double* dst, ptrdiff_t ldg);
    void (*unpack_t_f32)(const float* src, ptrdiff_t ldt, ptrdiff_t m, ptrdiff_t F,
                         ptrdiff_t P, const float* b, int relu, float* dst);
    void (*unpack_t_f64)(const double* src, ptrdiff_t ldt, ptrdiff_t m, ptrdiff_t F,
                         ptrdiff_t P, const double* b, int relu, double* dst);
    void (*conv_dw_f32)(const float* g, ptrdiff_t gs, ptrdiff_t nfb, const float* x,
                        ptrdiff_t xs, ptrdiff_t Cp, const ptrdiff_t* off, ptrdiff_t ntap,
                        float* dw, ptrdiff_t Q);
    void (*conv_dw_f64)(const double* g, ptrdiff_t gs, ptrdiff_t nfb, const double* x,
                        ptrdiff_t xs, ptrdiff_t Cp, const ptrdiff_t* off, ptrdiff_t ntap,
                        double* dw, ptrdiff_t Q);
    void (*pack_f32)(const float* src, const float* mask, ptrdiff_t m, ptrdiff_t C,
                     ptrdiff_t H, ptrdiff_t W, ptrdiff_t top, ptrdiff_t left, ptrdiff_t Wp,
                     ptrdiff_t S, float* dst, ptrdiff_t ds, ptrdiff_t tail);
    void (*pack_f64)(const double* src, const double* mask, ptrdiff_t m, ptrdiff_t C,
                     ptrdiff_t H, ptrdiff_t W, ptrdiff_t top, ptrdiff_t left, ptrdiff_t Wp,
                     ptrdiff_t S, double* dst, ptrdiff_t ds, ptrdiff_t tail);
    void (*unwide_f32)(const float* wide, ptrdiff_t ldo, ptrdiff_t m, ptrdiff_t F,
                       ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t Wp, ptrdiff_t S, const float* b,
                       int relu, float* dst);
    void (*unwide_f64)(const double* wide, ptrdiff_t ldo, ptrdiff_t m, ptrdiff_t F,
                       ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t Wp, ptrdiff_t S, const double* b,
                       int relu, double* dst);
    void (*add_row_sums_f32)(const float* a, ptrdiff_t lda, ptrdiff_t rows, ptrdiff_t Q,
                             float* sums);
    void (*add_row_sums_f64)(const double* a, ptrdiff_t lda, ptrdiff_t rows, ptrdiff_t Q,
                             double* sums);
} fc_simd_level;

/* The levels (their extern tables, the list conv.pyx looks the level in force up in, and
 * fc_simd_cpu_supports, the run-time check): written by setup.py from kernels/_isa.TABLE. */
#include "conv_simd_levels.h"

/* FC_CHECK(cond): the kernels' index checks, compiled in the bounds-checked build only
 * (FASTCONV_BOUNDSCHECK, see setup.py); there it prints the file, line and condition and
 * aborts when cond is false, elsewhere it is nothing and cond is not evaluated. Each check
 * states a precondition that keeps the indices a kernel forms inside the regions its
 * comment gives (rows, planes, padding); the kernels see no buffer sizes, so a read past a
 * whole buffer is AddressSanitizer's to catch. Not assert(): Python's CFLAGS carry
 * -DNDEBUG. */
#ifdef FC_BOUNDSCHECK
#include <stdio.h>
#include <stdlib.h>
#define FC_CHECK(cond)                                                                   \
    ((cond) ? (void)0                                                                    \
            : (fprintf(stderr, "%s:%d: fastconv index check failed: %s\n", __FILE__,    \
                       __LINE__, #cond),                                                 \
               abort()))
/* 1 when every tap offset is >= 0: the kernels read at and after each position. */
static inline int fc_taps_forward(const ptrdiff_t* off, ptrdiff_t ntap)
{
    for (ptrdiff_t t = 0; t < ntap; t++)
        if (off[t] < 0)
            return 0;
    return 1;
}
#else
#define FC_CHECK(cond) ((void)0)
#endif

#define FC_CAT3_(a, b, c) a##_##b##_##c
#define FC_CAT3(a, b, c) FC_CAT3_(a, b, c)
#define FC_CAT_(a, b) a##_##b
#define FC_CAT(a, b) FC_CAT_(a, b)

#endif
