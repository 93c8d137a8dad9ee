# Fused elementwise kernels in Cython: ReLU, dropout, softmax + cross-entropy and the
# optimizers' update rules, each one pass over memory.
#
# Arrays come flat (1-D, C-contiguous views of the caller's arrays) except the softmax
# kernels, which take (N, K) rows; masks are np.bool_ arrays (viewed as uint8 here).
# Scalars arrive as doubles, so the update arithmetic is carried out in double and
# rounded once to the parameter's dtype on store.
#
# Loops run on OpenMP threads from PARALLEL_MIN elements on (prange's use_threads_if);
# below that a serial pass takes under ~3 us (float32 ReLU), less than starting a
# parallel region. Same threshold as the Numba kernels.
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log, sqrt
import numpy as np

cdef Py_ssize_t _PARALLEL_MIN = 32768
PARALLEL_MIN = _PARALLEL_MIN


# ----------------------------------------------------------------------------- ReLU
# Each parallel iteration runs a raw-pointer loop over one CHUNK of elements: written
# inline over memoryview indexing, the ReLU select compiled to a branch and ran ~50x
# slower on random signs (7.5 ms vs 0.13 ms for 1.25M float32, one thread).

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


# Python-level entry points pick the specialisation by dtype: calling a fused ``def``
# made Cython match the signature at run time, 4 us per call (16 calls per optimizer
# step of DeepConvNet), against 0.7 us for this dispatch.

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


# ------------------------------------------------------------------------ optimizers
# Same chunked raw-pointer loops as above. GCC vectorizes sqrt only without errno
# handling, hence setup.py's project-wide -fno-math-errno (the state under
# the sqrt is never negative, so errno is never set): without it the Adam pass over 1M
# float32 ran 2.0 ms, scalar and slower than NumPy's 1.6 ms.


cdef inline void _sgd_chunk(floating* p, const floating* g, Py_ssize_t n,
                            double lr) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        p[i] = <floating>(p[i] - lr * g[i])


cdef inline void _momentum_chunk(floating* p, const floating* g, floating* v, Py_ssize_t n,
                                 double lr, double momentum) noexcept nogil:
    cdef Py_ssize_t i
    cdef double vi
    for i in range(n):
        vi = momentum * v[i] - lr * g[i]
        v[i] = <floating>vi
        p[i] = <floating>(p[i] + vi)


cdef inline void _nesterov_chunk(floating* p, const floating* g, floating* v, Py_ssize_t n,
                                 double lr, double momentum) noexcept nogil:
    cdef Py_ssize_t i
    cdef double vi, gi
    for i in range(n):
        gi = g[i]
        vi = momentum * v[i] - lr * gi
        v[i] = <floating>vi
        p[i] = <floating>(p[i] + momentum * momentum * vi - (1.0 + momentum) * lr * gi)


cdef inline void _adagrad_chunk(floating* p, const floating* g, floating* h, Py_ssize_t n,
                                double lr, double eps) noexcept nogil:
    cdef Py_ssize_t i
    cdef double hi, gi
    for i in range(n):
        gi = g[i]
        hi = h[i] + gi * gi
        h[i] = <floating>hi
        p[i] = <floating>(p[i] - lr * gi / (sqrt(hi) + eps))


cdef inline void _rmsprop_chunk(floating* p, const floating* g, floating* h, Py_ssize_t n,
                                double lr, double decay_rate, double eps) noexcept nogil:
    cdef Py_ssize_t i
    cdef double hi, gi
    for i in range(n):
        gi = g[i]
        hi = h[i] * decay_rate + (1.0 - decay_rate) * gi * gi
        h[i] = <floating>hi
        p[i] = <floating>(p[i] - lr * gi / (sqrt(hi) + eps))


cdef inline void _adam_chunk(floating* p, const floating* g, floating* m, floating* v,
                             Py_ssize_t n, double lr_t, double beta1, double beta2,
                             double eps) noexcept nogil:
    cdef Py_ssize_t i
    cdef double mi, vi, gi
    for i in range(n):
        gi = g[i]
        mi = m[i] + (1.0 - beta1) * (gi - m[i])
        vi = v[i] + (1.0 - beta2) * (gi * gi - v[i])
        m[i] = <floating>mi
        v[i] = <floating>vi
        p[i] = <floating>(p[i] - lr_t * mi / (sqrt(vi) + eps))


cdef enum Rule:
    SGD, MOMENTUM, NESTEROV, ADAGRAD, RMSPROP, ADAM


cdef void _update(Rule rule, floating[::1] p, const floating[::1] g, floating[::1] s1,
                  floating[::1] s2, double a, double b, double c, double d):
    """One optimizer step over flat ``p`` with gradient ``g`` and state ``s1``/``s2``
    (unused ones may alias ``p``), chunk by chunk in parallel; ``a..d`` are the rule's
    scalars in the order of its ``*_chunk`` function."""
    cdef Py_ssize_t ch, lo, m, n = p.shape[0], nchunks = (n + CHUNK - 1) // CHUNK
    cdef floating* pp = &p[0]
    cdef const floating* gp = &g[0]
    cdef floating* s1p = &s1[0]
    cdef floating* s2p = &s2[0]
    for ch in prange(nchunks, nogil=True, schedule="static",
                     use_threads_if=n >= _PARALLEL_MIN):
        lo = ch * CHUNK
        m = min(CHUNK, n - lo)
        if rule == SGD:
            _sgd_chunk(pp + lo, gp + lo, m, a)
        elif rule == MOMENTUM:
            _momentum_chunk(pp + lo, gp + lo, s1p + lo, m, a, b)
        elif rule == NESTEROV:
            _nesterov_chunk(pp + lo, gp + lo, s1p + lo, m, a, b)
        elif rule == ADAGRAD:
            _adagrad_chunk(pp + lo, gp + lo, s1p + lo, m, a, b)
        elif rule == RMSPROP:
            _rmsprop_chunk(pp + lo, gp + lo, s1p + lo, m, a, b, c)
        else:
            _adam_chunk(pp + lo, gp + lo, s1p + lo, s2p + lo, m, a, b, c, d)


def _step(Rule rule, p, g, s1, s2, double a, double b=0, double c=0, double d=0):
    if p.dtype == np.float32:
        _update[float](rule, p, g, s1, s2, a, b, c, d)
    else:
        _update[double](rule, p, g, s1, s2, a, b, c, d)


def sgd_update(p, g, double lr):
    """``p -= lr * g`` (flat arrays, same dtype)."""
    _step(SGD, p, g, p, p, lr)


def momentum_update(p, g, v, double lr, double momentum):
    """``v = momentum*v - lr*g; p += v``."""
    _step(MOMENTUM, p, g, v, v, lr, momentum)


def nesterov_update(p, g, v, double lr, double momentum):
    """``v = momentum*v - lr*g; p += momentum**2 * v - (1 + momentum)*lr*g`` (the book's)."""
    _step(NESTEROV, p, g, v, v, lr, momentum)


def adagrad_update(p, g, h, double lr, double eps):
    """``h += g*g; p -= lr*g / (sqrt(h) + eps)``."""
    _step(ADAGRAD, p, g, h, h, lr, eps)


def rmsprop_update(p, g, h, double lr, double decay_rate, double eps):
    """``h = decay_rate*h + (1 - decay_rate)*g*g; p -= lr*g / (sqrt(h) + eps)``."""
    _step(RMSPROP, p, g, h, h, lr, decay_rate, eps)


def adam_update(p, g, m, v, double lr_t, double beta1, double beta2, double eps):
    """``m += (1-beta1)*(g-m); v += (1-beta2)*(g*g-v); p -= lr_t*m / (sqrt(v) + eps)``."""
    _step(ADAM, p, g, m, v, lr_t, beta1, beta2, eps)
