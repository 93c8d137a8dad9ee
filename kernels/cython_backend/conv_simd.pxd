# The C side of the direct conv kernels (conv_simd.h), declared once for every .pyx that
# cimports it: the per-level function-pointer table and the generated list of levels.

cdef extern from "conv_simd.h" nogil:
    ctypedef void (*fc_wide_f32)(const float* x, Py_ssize_t xs, Py_ssize_t C,
                                 const Py_ssize_t* off, Py_ssize_t ntap, const float* w,
                                 Py_ssize_t nfb, float* out, Py_ssize_t ldo,
                                 Py_ssize_t Q) noexcept nogil
    ctypedef void (*fc_wide_f64)(const double* x, Py_ssize_t xs, Py_ssize_t C,
                                 const Py_ssize_t* off, Py_ssize_t ntap, const double* w,
                                 Py_ssize_t nfb, double* out, Py_ssize_t ldo,
                                 Py_ssize_t Q) noexcept nogil
    ctypedef struct fc_simd_level:
        const char* name
        int vbytes, fwd_f, fwd_v, dw_f, dw_c, dw3_c, fv_f, fv_p, one_v
        fc_wide_f32 conv_wide_f32, conv_wide1_f32
        fc_wide_f64 conv_wide_f64, conv_wide1_f64
        void (*conv_fv_f32)(const float* x, Py_ssize_t xs, Py_ssize_t C,
                            const Py_ssize_t* off, Py_ssize_t ntap, const float* w,
                            Py_ssize_t nfb, float* out, Py_ssize_t ldo,
                            const Py_ssize_t* pos, const Py_ssize_t* taps,
                            Py_ssize_t npos) noexcept nogil
        void (*conv_fv_f64)(const double* x, Py_ssize_t xs, Py_ssize_t C,
                            const Py_ssize_t* off, Py_ssize_t ntap, const double* w,
                            Py_ssize_t nfb, double* out, Py_ssize_t ldo,
                            const Py_ssize_t* pos, const Py_ssize_t* taps,
                            Py_ssize_t npos) noexcept nogil
        void (*conv_dwv_f32)(const float* g, Py_ssize_t ldg, Py_ssize_t nfb, const float* x,
                             const Py_ssize_t* xo, Py_ssize_t nk, const Py_ssize_t* pos,
                             Py_ssize_t npos, float* dwt, Py_ssize_t ldw) noexcept nogil
        void (*conv_dwv_f64)(const double* g, Py_ssize_t ldg, Py_ssize_t nfb,
                             const double* x, const Py_ssize_t* xo, Py_ssize_t nk,
                             const Py_ssize_t* pos, Py_ssize_t npos, double* dwt,
                             Py_ssize_t ldw) noexcept nogil
        void (*pack_t_f32)(const float* src, const float* mask, Py_ssize_t m, Py_ssize_t F,
                           Py_ssize_t P, float* dst, Py_ssize_t ldg) noexcept nogil
        void (*pack_t_f64)(const double* src, const double* mask, Py_ssize_t m,
                           Py_ssize_t F, Py_ssize_t P, double* dst,
                           Py_ssize_t ldg) noexcept nogil
        void (*unpack_t_f32)(const float* src, Py_ssize_t ldt, Py_ssize_t m, Py_ssize_t F,
                             Py_ssize_t P, const float* b, int relu,
                             float* dst) noexcept nogil
        void (*unpack_t_f64)(const double* src, Py_ssize_t ldt, Py_ssize_t m, Py_ssize_t F,
                             Py_ssize_t P, const double* b, int relu,
                             double* dst) noexcept nogil
        void (*conv_dw_f32)(const float* g, Py_ssize_t gs, Py_ssize_t nfb, const float* x,
                            Py_ssize_t xs, Py_ssize_t Cp, const Py_ssize_t* off,
                            Py_ssize_t ntap, float* dw, Py_ssize_t Q) noexcept nogil
        void (*conv_dw_f64)(const double* g, Py_ssize_t gs, Py_ssize_t nfb, const double* x,
                            Py_ssize_t xs, Py_ssize_t Cp, const Py_ssize_t* off,
                            Py_ssize_t ntap, double* dw, Py_ssize_t Q) noexcept nogil
        void (*pack_f32)(const float* src, const float* mask, Py_ssize_t m, Py_ssize_t C,
                         Py_ssize_t H, Py_ssize_t W, Py_ssize_t top, Py_ssize_t left,
                         Py_ssize_t Wp, Py_ssize_t S, float* dst, Py_ssize_t ds,
                         Py_ssize_t tail) noexcept nogil
        void (*pack_f64)(const double* src, const double* mask, Py_ssize_t m, Py_ssize_t C,
                         Py_ssize_t H, Py_ssize_t W, Py_ssize_t top, Py_ssize_t left,
                         Py_ssize_t Wp, Py_ssize_t S, double* dst, Py_ssize_t ds,
                         Py_ssize_t tail) noexcept nogil
        void (*unwide_f32)(const float* wide, Py_ssize_t ldo, Py_ssize_t m, Py_ssize_t F,
                           Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t Wp, Py_ssize_t S,
                           const float* b, int relu, float* dst) noexcept nogil
        void (*unwide_f64)(const double* wide, Py_ssize_t ldo, Py_ssize_t m, Py_ssize_t F,
                           Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t Wp, Py_ssize_t S,
                           const double* b, int relu, double* dst) noexcept nogil
        void (*add_row_sums_f32)(const float* a, Py_ssize_t lda, Py_ssize_t rows,
                                 Py_ssize_t Q, float* sums) noexcept nogil
        void (*add_row_sums_f64)(const double* a, Py_ssize_t lda, Py_ssize_t rows,
                                 Py_ssize_t Q, double* sums) noexcept nogil
    const fc_simd_level* const fc_simd_levels[]
    int fc_simd_level_count
    int fc_simd_cpu_supports(const fc_simd_level* level)
