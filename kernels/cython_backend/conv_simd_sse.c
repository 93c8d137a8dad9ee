/* Baseline level: 16-byte vectors (SSE2 on x86-64, NEON on ARM), 16 registers and no
 * FMA on x86 (a multiply and an add need a temporary register).
 * The block shapes are kernels/_conv_plan.py's BLOCKS["sse"] (the measurements
 * behind them are there; tests/test_isa.py checks the two agree). */
#define FC_LEVEL sse
#define FC_VBYTES 16
#define FC_FWD_F 4
#define FC_FWD_V 2
#define FC_DW_F 4
#define FC_DW_C 2
#define FC_DW3_C 1
#include "conv_simd_level.h"
