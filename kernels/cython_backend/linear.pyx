# The fully connected layer in Cython: x @ W by SciPy's BLAS (the row-major gemm of
# _common.pxd, writing straight into the output), then one parallel pass over the output
# adding the bias and applying the ReLU.
# ReLU is "v < 0 -> 0", so NaN propagates as in np.maximum(v, 0). The backward's ReLU mask
# zeroes dout where the forward output is <= 0 (the book's Relu.backward), fused with the
# column sums that give db.
from cython cimport floating
from cython.parallel cimport prange

from _common cimport gemm
import numpy as np

from .._blas import guard_for


def _linear_into(const floating[:, ::1] x, const floating[:, ::1] W, const floating[::1] b,
                 bint has_bias, bint relu, floating[:, ::1] out):
    cdef int N = x.shape[0], D = x.shape[1], M = W.shape[1]
    cdef Py_ssize_t i, j
    cdef floating v
    cdef floating* op = &out[0, 0]
    cdef const floating* bp = &b[0] if has_bias else NULL
    with nogil:
        # out^T (M, N) = W^T (M, D) @ x^T (D, N)
        gemm(c'N', c'N', N, M, D, 1, &x[0, 0], D, &W[0, 0], M, 0, op, M)
        if has_bias or relu:
            for i in prange(N, schedule="static"):
                for j in range(M):
                    v = op[i * M + j]
                    if has_bias:
                        v = v + bp[j]
                    if relu and v < 0:
                        v = 0
                    op[i * M + j] = v


def _linear_backward_into(const floating[:, ::1] dout, const floating[:, ::1] x,
                          const floating[:, ::1] W, const floating[:, ::1] relu_out,
                          bint has_relu, floating[:, ::1] g, floating[::1] db,
                          floating[:, ::1] dx, floating[:, ::1] dW):
    cdef int N = dout.shape[0], M = dout.shape[1], D = x.shape[1]
    cdef Py_ssize_t i, j
    cdef floating v
    cdef const floating* gp = &g[0, 0] if has_relu else &dout[0, 0]
    with nogil:
        # Serial: db sums over rows, and (N, M) is the small side of the layer (the
        # GEMMs below cost N*M*D).
        for j in range(M):
            db[j] = 0
        for i in range(N):
            for j in range(M):
                v = dout[i, j]
                if has_relu:
                    if not relu_out[i, j] > 0:
                        v = 0
                    g[i, j] = v
                db[j] += v
        # dx^T (D, N) = W (D, M) @ g^T (M, N)
        gemm(c'N', c'T', N, D, M, 1, gp, M, &W[0, 0], M, 0, &dx[0, 0], D)
        # dW^T (M, D) = g^T (M, N) @ x (N, D)
        gemm(c'T', c'N', D, M, N, 1, &x[0, 0], D, gp, M, 0, &dW[0, 0], M)


def linear(x, W, b, bint relu):
    """``x`` (N, D) @ ``W`` (D, M) [+ ``b`` (M,)] [then ReLU] -> (N, M).

    All arrays C-contiguous, of one float dtype; ``b`` may be None.
    """
    out = np.empty((x.shape[0], W.shape[1]), dtype=x.dtype)
    has_bias = b is not None
    with guard_for(x.shape[0] * x.shape[1] * W.shape[1]):
        _linear_into(x, W, b if has_bias else np.zeros(1, dtype=x.dtype), has_bias, relu, out)
    return out


def linear_backward(dout, x, W, relu_out):
    """Gradients of :func:`linear` -> ``(dx (N, D), dW (D, M), db (M,))``.

    ``dout`` (N, M), ``x`` (N, D), ``W`` (D, M) C-contiguous, one float dtype;
    ``relu_out`` (N, M) is the forward's output when it ran with ReLU, else None.
    """
    has_relu = relu_out is not None
    g = np.empty_like(dout) if has_relu else np.empty((1, 1), dtype=dout.dtype)
    db = np.empty(dout.shape[1], dtype=dout.dtype)
    dx = np.empty_like(x)
    dW = np.empty_like(W)
    with guard_for(x.shape[0] * x.shape[1] * W.shape[1]):
        _linear_backward_into(dout, x, W, relu_out if has_relu else dout, has_relu,
                              g, db, dx, dW)
    return dx, dW, db


#: The family's entry points, the same in every backend (tests/test_kernel_interface.py).
__all__ = ["linear", "linear_backward"]
