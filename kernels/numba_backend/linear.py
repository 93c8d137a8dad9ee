"""The fully connected layer in Numba: ``x @ W`` by BLAS (Numba's ``np.dot`` calls
SciPy's OpenBLAS), then one parallel pass over the output adding the bias and applying
the ReLU.

ReLU is ``v if not v < 0 else 0`` so NaN propagates as in ``np.maximum(v, 0)``. The
backward's ReLU mask zeroes ``dout`` where the forward output is ``<= 0`` (the book's
``Relu.backward``), fused with the column sums that give ``db``.
"""
import numpy as np
from numba import prange

from .._blas import guard_for
from ._jit import jit, pjit


@jit
def _dot(x, W):
    return np.dot(x, W)


@pjit
def _bias_relu(out, b, has_bias, relu, zero):
    N, M = out.shape
    for i in prange(N):
        for j in range(M):
            v = out[i, j]
            if has_bias:
                v += b[j]
            if relu and v < 0:
                v = zero
            out[i, j] = v


# The two reductions below are serial: db sums over rows, and (N, M) is the small side
# of the layer (the GEMMs that follow cost N*M*D).
@jit
def _colsum(d, db):
    for j in range(d.shape[1]):
        db[j] = 0
    for i in range(d.shape[0]):
        for j in range(d.shape[1]):
            db[j] += d[i, j]


@jit
def _mask_colsum(dout, relu_out, g, db, zero):
    for j in range(dout.shape[1]):
        db[j] = 0
    for i in range(dout.shape[0]):
        for j in range(dout.shape[1]):
            v = dout[i, j] if relu_out[i, j] > 0 else zero
            g[i, j] = v
            db[j] += v


@jit
def _linear_backward(g, x, W):
    return np.dot(g, W.T), np.dot(x.T, g)


def linear(x, W, b, relu):
    """``x`` (N, D) @ ``W`` (D, M) [+ ``b`` (M,)] [then ReLU] -> (N, M).

    All arrays C-contiguous, of one float dtype; ``b`` may be None.
    """
    has_bias = b is not None
    # The GEMM outside the parallel function: np.dot inside a parallel=True one is many
    # times slower (docs/tuning.md, "Numba linear").
    with guard_for(x.shape[0] * x.shape[1] * W.shape[1]):
        out = _dot(x, W)
    _bias_relu(out, b if has_bias else np.zeros(0, dtype=x.dtype), has_bias, bool(relu),
               x.dtype.type(0))
    return out


def linear_backward(dout, x, W, relu_out):
    """Gradients of :func:`linear` -> ``(dx (N, D), dW (D, M), db (M,))``.

    ``dout`` (N, M), ``x`` (N, D), ``W`` (D, M) C-contiguous, one float dtype;
    ``relu_out`` (N, M) is the forward's output when it ran with ReLU, else None.
    """
    db = np.empty(dout.shape[1], dtype=dout.dtype)
    if relu_out is None:
        g = dout
        _colsum(dout, db)
    else:
        g = np.empty_like(dout)
        _mask_colsum(dout, relu_out, g, db, dout.dtype.type(0))
    with guard_for(x.shape[0] * x.shape[1] * W.shape[1]):
        dx, dW = _linear_backward(g, x, W)
    return dx, dW, db


#: The family's entry points, the same in every backend (tests/test_kernel_interface.py).
__all__ = ["linear", "linear_backward"]
