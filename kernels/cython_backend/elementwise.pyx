# Fused elementwise kernels in Cython: ReLU, dropout and softmax + cross-entropy, each one
# pass over memory (the optimizers' update rules are the optim family, optim.pyx).
#
# Arrays come flat (1-D, C-contiguous views of the caller's arrays) except the softmax
# kernels, which take (N, K) rows; masks are np.bool_ arrays (viewed as uint8 here).
# Loops run on OpenMP threads from PARALLEL_MIN elements on (prange's use_threads_if);
# below that a serial pass takes less than starting a parallel region. Same threshold as
# the Numba kernels (docs/tuning.md, "Elementwise passes").
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log, sqrt
import numpy as np

cdef Py_ssize_t _PARALLEL_MIN = 32768
PARALLEL_MIN = _PARALLEL_MIN


# ----------------------------------------------------------------------------- ReLU
# Each parallel iteration runs a raw-pointer loop over one CHUNK of elements: written
# inline over memoryview indexing, the ReLU select compiled to a branch, which
# mispredicts on random signs (docs/tuning.md, "Elementwise passes").

cdef Py_ssize_t CHUNK = 8192


cdef inline void _relu_fwd_chunk(const floating* x, floating* out, unsigned char* mask,
                                 Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating v
    cdef unsigned char m
    for i in range(n):
        v = x[i]
        m = v <= 0
        mask[i] = m
        out[i] = 0 if m else v


cdef inline void _relu_bwd_chunk(const floating* dout, const unsigned char* mask,
                                 floating* dx, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating d
    for i in range(n):
        d = dout[i]  # loaded unconditionally so the select compiles branch-free
        dx[i] = 0 if mask[i] else d


cdef inline void _dropout_chunk(const floating* x, const unsigned char* mask,
                                floating* out, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    # A product, not a select: the book's ``x * mask`` keeps NaN/inf * 0 = NaN.
    for i in range(n):
        out[i] = x[i] * mask[i]


cdef void _relu_forward(const floating[::1] x, floating[::1] out, unsigned char[::1] mask):
    cdef Py_ssize_t c, lo, n = x.shape[0], nchunks = (n + CHUNK - 1) // CHUNK
    cdef const floating* xp = &x[0]
    cdef floating* op = &out[0]
    cdef unsigned char* mp = &mask[0]
    for c in prange(nchunks, nogil=True, schedule="static",
                    use_threads_if=n >= _PARALLEL_MIN):
        lo = c * CHUNK
        _relu_fwd_chunk(xp + lo, op + lo, mp + lo, min(CHUNK, n - lo))


cdef void _relu_backward(const floating[::1] dout, const unsigned char[::1] mask, floating[::1] dx):
    cdef Py_ssize_t c, lo, n = dout.shape[0], nchunks = (n + CHUNK - 1) // CHUNK
    cdef const floating* dp = &dout[0]
    cdef const unsigned char* mp = &mask[0]
    cdef floating* xp = &dx[0]
    for c in prange(nchunks, nogil=True, schedule="static",
                    use_threads_if=n >= _PARALLEL_MIN):
        lo = c * CHUNK
        _relu_bwd_chunk(dp + lo, mp + lo, xp + lo, min(CHUNK, n - lo))


cdef void _dropout_apply(const floating[::1] x, const unsigned char[::1] mask, floating[::1] out):
    cdef Py_ssize_t c, lo, n = x.shape[0], nchunks = (n + CHUNK - 1) // CHUNK
    cdef const floating* xp = &x[0]
    cdef const unsigned char* mp = &mask[0]
    cdef floating* op = &out[0]
    for c in prange(nchunks, nogil=True, schedule="static",
                    use_threads_if=n >= _PARALLEL_MIN):
        lo = c * CHUNK
        _dropout_chunk(xp + lo, mp + lo, op + lo, min(CHUNK, n - lo))


# Python-level entry points pick the specialisation by dtype: a fused ``def`` makes
# Cython match the signature at run time, several times this dispatch's cost
# (docs/tuning.md, "Elementwise passes").

def relu_forward(x, out, mask):
    """``out = where(x <= 0, 0, x)``, ``mask = x <= 0``; all flat, same length."""
    if x.dtype == np.float32:
        _relu_forward[float](x, out, mask.view(np.uint8))
    else:
        _relu_forward[double](x, out, mask.view(np.uint8))


def relu_backward(dout, mask, dx):
    """``dx = where(mask, 0, dout)``; all flat, same length (``dx`` may be ``dout``)."""
    if dout.dtype == np.float32:
        _relu_backward[float](dout, mask.view(np.uint8), dx)
    else:
        _relu_backward[double](dout, mask.view(np.uint8), dx)


def dropout_apply(x, mask, out):
    """``out = x * mask``; all flat, same length (``out`` may be ``x``)."""
    if x.dtype == np.float32:
        _dropout_apply[float](x, mask.view(np.uint8), out)
    else:
        _dropout_apply[double](x, mask.view(np.uint8), out)


# ------------------------------------------------------------ softmax + cross-entropy

cdef double _softmax_xent_idx(const floating[:, ::1] x, const long long[::1] t,
                      floating[:, ::1] y, double eps):
    cdef Py_ssize_t i, j, n = x.shape[0], k = x.shape[1]
    cdef double mx, s, e, inv, loss = 0
    with nogil:
        for i in range(n):
            mx = x[i, 0]
            for j in range(1, k):
                if x[i, j] > mx:
                    mx = x[i, j]
            s = 0
            for j in range(k):
                e = exp(x[i, j] - mx)
                y[i, j] = <floating>e
                s += e
            inv = 1.0 / s
            for j in range(k):
                y[i, j] = <floating>(y[i, j] * inv)
            loss -= log(y[i, t[i]] + eps)
    return loss / n


cdef void _softmax_xent_grad_idx(const floating[:, ::1] y, const long long[::1] t,
                           double scale, floating[:, ::1] dx):
    cdef Py_ssize_t i, j, n = y.shape[0], k = y.shape[1]
    with nogil:
        for i in range(n):
            for j in range(k):
                dx[i, j] = <floating>(y[i, j] * scale)
            dx[i, t[i]] = <floating>((y[i, t[i]] - 1.0) * scale)


cdef void _softmax_xent_grad_dense(const floating[:, ::1] y, const floating[:, ::1] t,
                             double scale, floating[:, ::1] dx):
    cdef Py_ssize_t i, j, n = y.shape[0], k = y.shape[1]
    with nogil:
        for i in range(n):
            for j in range(k):
                dx[i, j] = <floating>((y[i, j] - t[i, j]) * scale)


def softmax_cross_entropy(x, t, y, double eps):
    """Row softmax of ``x`` (N, K) into ``y``; returns ``-sum(log(y[i, t[i]] + eps)) / N``
    as a Python float. ``t`` holds int64 class indices (N,), checked to lie in [0, K)."""
    if x.dtype == np.float32:
        return _softmax_xent_idx[float](x, t, y, eps)
    return _softmax_xent_idx[double](x, t, y, eps)


def softmax_cross_entropy_backward(y, t, double scale, dx):
    """``dx = (y - onehot(t)) * scale``: ``t`` int64 indices (N,) or dense (N, K) of
    ``y``'s dtype."""
    single = y.dtype == np.float32
    if t.ndim == 1:
        if single:
            _softmax_xent_grad_idx[float](y, t, scale, dx)
        else:
            _softmax_xent_grad_idx[double](y, t, scale, dx)
    elif single:
        _softmax_xent_grad_dense[float](y, t, scale, dx)
    else:
        _softmax_xent_grad_dense[double](y, t, scale, dx)


#: The family's entry points, the same in every backend (tests/test_kernel_interface.py).
__all__ = ["relu_forward", "relu_backward", "dropout_apply", "softmax_cross_entropy",
           "softmax_cross_entropy_backward"]
