/* AVX2 + FMA level: 32-byte vectors, 16 registers.
 * The block shapes are kernels/_conv_plan.py's BLOCKS["avx2"] (the measurements
 * behind them are there; tests/test_isa.py checks the two agree). */
#define FC_LEVEL avx2
#define FC_VBYTES 32
#define FC_FWD_F 4
#define FC_FWD_V 3
#define FC_DW_F 4
#define FC_DW_C 2
#define FC_DW3_C 1
#define FC_TARGET_X86
#if defined(__x86_64__) || defined(__i386__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif
#endif
#include "conv_simd_level.h"
#if defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#pragma clang attribute pop
#endif
