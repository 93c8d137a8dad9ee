"""The optimizers' update rules in Numba, each one pass over flat, C-contiguous parameter,
gradient and state arrays of one dtype. Scalars (learning rates, decay factors) arrive as
Python floats, so the update arithmetic is carried out in float64 and rounded once to
the parameter's dtype on store. Serial below ``PARALLEL_MIN`` elements, ``prange`` from
there on (``_jit.pair``/``_jit.pick``), as the elementwise family.
"""
import math

from numba import prange

from ._jit import pair as _pair, pick as _pick


def _sgd_body(p, g, lr):
    for i in prange(p.shape[0]):
        p[i] -= lr * g[i]


def _momentum_body(p, g, v, lr, momentum):
    for i in prange(p.shape[0]):
        vi = momentum * v[i] - lr * g[i]
        v[i] = vi
        p[i] += vi


def _nesterov_body(p, g, v, lr, momentum):
    for i in prange(p.shape[0]):
        gi = g[i]
        vi = momentum * v[i] - lr * gi
        v[i] = vi
        p[i] += momentum * momentum * vi - (1.0 + momentum) * lr * gi


def _adagrad_body(p, g, h, lr, eps):
    for i in prange(p.shape[0]):
        gi = g[i]
        hi = h[i] + gi * gi
        h[i] = hi
        p[i] -= lr * gi / (math.sqrt(hi) + eps)


def _rmsprop_body(p, g, h, lr, decay_rate, eps):
    for i in prange(p.shape[0]):
        gi = g[i]
        hi = h[i] * decay_rate + (1.0 - decay_rate) * gi * gi
        h[i] = hi
        p[i] -= lr * gi / (math.sqrt(hi) + eps)


def _adam_body(p, g, m, v, lr_t, beta1, beta2, eps):
    for i in prange(p.shape[0]):
        gi = g[i]
        mi = m[i] + (1.0 - beta1) * (gi - m[i])
        vi = v[i] + (1.0 - beta2) * (gi * gi - v[i])
        m[i] = mi
        v[i] = vi
        p[i] -= lr_t * mi / (math.sqrt(vi) + eps)


_sgd_k = _pair(_sgd_body)
_momentum_k = _pair(_momentum_body)
_nesterov_k = _pair(_nesterov_body)
_adagrad_k = _pair(_adagrad_body)
_rmsprop_k = _pair(_rmsprop_body)
_adam_k = _pair(_adam_body)


def sgd_update(p, g, lr):
    """``p -= lr * g`` (flat arrays, same dtype)."""
    _pick(_sgd_k, p.shape[0])(p, g, lr)


def momentum_update(p, g, v, lr, momentum):
    """``v = momentum*v - lr*g; p += v``."""
    _pick(_momentum_k, p.shape[0])(p, g, v, lr, momentum)


def nesterov_update(p, g, v, lr, momentum):
    """``v = momentum*v - lr*g; p += momentum**2 * v - (1 + momentum)*lr*g`` (the book's)."""
    _pick(_nesterov_k, p.shape[0])(p, g, v, lr, momentum)


def adagrad_update(p, g, h, lr, eps):
    """``h += g*g; p -= lr*g / (sqrt(h) + eps)``."""
    _pick(_adagrad_k, p.shape[0])(p, g, h, lr, eps)


def rmsprop_update(p, g, h, lr, decay_rate, eps):
    """``h = decay_rate*h + (1 - decay_rate)*g*g; p -= lr*g / (sqrt(h) + eps)``."""
    _pick(_rmsprop_k, p.shape[0])(p, g, h, lr, decay_rate, eps)


def adam_update(p, g, m, v, lr_t, beta1, beta2, eps):
    """``m += (1-beta1)*(g-m); v += (1-beta2)*(g*g-v); p -= lr_t*m / (sqrt(v) + eps)``."""
    _pick(_adam_k, p.shape[0])(p, g, m, v, lr_t, beta1, beta2, eps)


#: The family's entry points, the same in every backend (tests/test_kernel_interface.py).
__all__ = ["sgd_update", "momentum_update", "nesterov_update", "adagrad_update",
           "rmsprop_update", "adam_update"]
