# The optimizers' update rules in Cython + OpenMP, each one pass over flat, C-contiguous
# parameter, gradient and state arrays of one dtype. Scalars arrive as doubles, so the
# update arithmetic is carried out in double and rounded once to the parameter's dtype on
# store.
#
# Loops run on OpenMP threads from PARALLEL_MIN elements on, in chunks of CHUNK elements,
# the thresholds of the elementwise family (elementwise.pyx, where they were measured).
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt
import numpy as np

cdef Py_ssize_t _PARALLEL_MIN = 32768
PARALLEL_MIN = _PARALLEL_MIN
cdef Py_ssize_t CHUNK = 8192


# Chunked raw-pointer loops, as elementwise.pyx's. GCC vectorizes sqrt only without errno
# handling, hence setup.py's project-wide -fno-math-errno (the state under the sqrt is
# never negative, so errno is never set; docs/tuning.md, "Optimizer updates").


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


#: The family's entry points, the same in every backend (tests/test_kernel_interface.py).
__all__ = ["sgd_update", "momentum_update", "nesterov_update", "adagrad_update",
           "rmsprop_update", "adam_update"]
