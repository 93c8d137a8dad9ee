/* The body of one level's translation unit. setup.py writes one unit per level (into
 * build/, from its record in kernels/_isa.TABLE) that defines FC_LEVEL, the block shapes
 * (FC_VBYTES, FC_FWD_F, FC_FWD_V, FC_DW_F, FC_DW_C, FC_DW3_C, FC_FV_F, FC_FV_P, FC_ONE_V)
 * and, for x86 levels above the baseline, FC_TARGET (a target attribute string such as
 * "avx2,fma"), then includes this file. */
#include "conv_simd.h"

#define FC_PRAGMA_(x) _Pragma(#x)
#define FC_PRAGMA(x) FC_PRAGMA_(x)

#if !defined(FC_TARGET) || defined(__x86_64__) || defined(__i386__)

#if defined(FC_TARGET) && defined(__clang__)
FC_PRAGMA(clang attribute push(__attribute__((target(FC_TARGET))), apply_to = function))
#elif defined(FC_TARGET)
FC_PRAGMA(GCC target(FC_TARGET))
#endif

/* FC_IN_REGISTER keeps a loaded vector in a register: without it GCC folds the load into
 * every FMA that uses it. FC_BASE_REGISTER keeps a pointer computed once per step as the
 * base of the loads after it, where GCC would add a lea per broadcast. Both measured:
 * docs/tuning.md, "C kernel details". */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FC_IN_REGISTER(v) __asm__("" : "+v"(v))
#define FC_BASE_REGISTER(p) __asm__("" : "+r"(p))
#else
#define FC_IN_REGISTER(v) ((void)0)
#define FC_BASE_REGISTER(p) ((void)0)
#endif

/* Keeps GCC from turning a row's short copy and zero loops back into memcpy and memset
 * calls, three per packed row (fc_pack; docs/tuning.md, "C kernel details"). */
#if defined(__GNUC__) && !defined(__clang__)
#define FC_NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define FC_NO_LIBCALLS
#endif

#define FC_T float
#define FC_I int32_t
#define FC_SUF f32
#include "conv_simd_impl.h"
#undef FC_T
#undef FC_I
#undef FC_SUF

#define FC_T double
#define FC_I int64_t
#define FC_SUF f64
#include "conv_simd_impl.h"
#undef FC_T
#undef FC_I
#undef FC_SUF

#define FC_STR_(s) #s
#define FC_STR(s) FC_STR_(s)
#define FC_K(name) FC_CAT3(name, FC_LEVEL, f32), FC_CAT3(name, FC_LEVEL, f64)

const fc_simd_level FC_CAT(fc_simd, FC_LEVEL) = {
    FC_STR(FC_LEVEL), FC_VBYTES, FC_FWD_F, FC_FWD_V, FC_DW_F, FC_DW_C, FC_DW3_C,
    FC_FV_F, FC_FV_P, FC_ONE_V, FC_K(fc_conv_wide), FC_K(fc_conv_wide1), FC_K(fc_conv_fv),
    FC_K(fc_conv_dwv), FC_K(fc_pack_t), FC_K(fc_unpack_t),
    FC_K(fc_conv_dw), FC_K(fc_pack), FC_K(fc_unwide),
    FC_K(fc_add_row_sums),
};

#if defined(FC_TARGET) && defined(__clang__)
#pragma clang attribute pop
#endif

#else

/* An x86 level on another architecture: present, marked unavailable. */
const fc_simd_level FC_CAT(fc_simd, FC_LEVEL) = {0};

#endif
