/* Register-blocked convolution kernels for conv.pyx's 'direct' algorithm (stride 1).
 *
 * Both kernels work on "wide" planes: a padded image (Hp, Wp) is stored flat, so the
 * window tap (ky, kx) of output position q = oy*Wp + ox reads the input at q + ky*Wp + kx,
 * a contiguous shifted load for every tap. Positions with ox >= OW are computed and
 * thrown away (the caller compacts them); this costs (Wp - OW) / Wp of the work and buys
 * unit-stride vector loads with no im2col matrix.
 *
 * Written with GCC vector extensions, so the same source builds for AVX-512 (16 floats a
 * register, with -march=native), AVX or SSE; the accumulators of a block stay in
 * registers for the whole reduction over channels and taps.
 */
#ifndef FASTCONV_CONV_SIMD_H
#define FASTCONV_CONV_SIMD_H
#include <stddef.h>

#if defined(__AVX512F__)
#define FC_VBYTES 64
#elif defined(__AVX__)
#define FC_VBYTES 32
#else
#define FC_VBYTES 16
#endif

/* Forward block: FC_FWD_F filters x FC_FWD_V vectors of positions (24 of the 32
 * AVX-512 registers hold accumulators; 3 hold the shifted input vectors). */
#define FC_FWD_F 8
#define FC_FWD_V 3
/* Weight-gradient blocks: FC_DW_F filters x FC_DW3_C channels x 3 taps (24
 * accumulators, 10 loads per 24 FMAs), and FC_DW_F x FC_DW_C for one leftover tap.
 * Against one tap at a time everywhere (4 x 4), the 3-tap block measured 5-25% faster on
 * DeepConvNet's conv2-6 shapes, one thread. */
#define FC_DW_F 4
#define FC_DW_C 4
#define FC_DW3_C 2

/* Keeps a loaded vector in a register: without it GCC folds the load into every FMA
 * that uses it (4 loads per FMA block instead of 1 in the weight-gradient loop, measured
 * measured 30-48 -> 89-95 GFLOP/s, one thread, conv6's shape). */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FC_IN_REGISTER(v) __asm__("" : "+v"(v))
#else
#define FC_IN_REGISTER(v) ((void)0)
#endif

#define FC_CAT_(a, b) a##_##b
#define FC_CAT(a, b) FC_CAT_(a, b)

#define FC_T float
#define FC_SUF f32
#include "conv_simd_impl.h"
#undef FC_T
#undef FC_SUF

#define FC_T double
#define FC_SUF f64
#include "conv_simd_impl.h"
#undef FC_T
#undef FC_SUF

#endif
