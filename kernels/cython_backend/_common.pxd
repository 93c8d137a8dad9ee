# Helpers several Cython kernel families share, inlined where they are cimported.
from cython cimport floating
from scipy.linalg.cython_blas cimport dgemm, sgemm


cdef inline void gemm(char ta, char tb, int M, int N, int K, floating alpha,
                      const floating* A, int lda, const floating* B, int ldb,
                      floating beta, floating* C, int ldc) noexcept nogil:
    """Row-major ``C(M, N) = alpha * op(A) @ op(B) + beta * C`` by SciPy's BLAS: the
    column-major call on the transposed problem ``C.T = op(B).T @ op(A).T``."""
    if floating is float:
        sgemm(&tb, &ta, &N, &M, &K, &alpha, <float*>B, &ldb, <float*>A, &lda,
              &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &N, &M, &K, &alpha, <double*>B, &ldb, <double*>A, &lda,
              &beta, C, &ldc)


cdef inline Py_ssize_t round_up(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """``a`` rounded up to a multiple of ``b``."""
    return (a + b - 1) // b * b


cdef inline void valid_range(int k, int s, int p, Py_ssize_t n_out, Py_ssize_t n_in,
                             Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    """Output indices o with ``0 <= o*s + k - p < n_in`` (window tap k, stride s, pad p),
    as ``[lo, hi)``."""
    lo[0] = (p - k + s - 1) // s if p - k > 0 else 0
    hi[0] = (n_in - 1 + p - k) // s + 1 if n_in - 1 + p - k >= 0 else 0
    if hi[0] > n_out:
        hi[0] = n_out
    if hi[0] < lo[0]:
        hi[0] = lo[0]
