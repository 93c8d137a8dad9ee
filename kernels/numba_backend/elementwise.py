"""Fused elementwise kernels in Numba: ReLU, dropout, softmax + cross-entropy and the
optimizers' update rules, each one pass over memory.

Arrays come flat (1-D, C-contiguous views of the caller's arrays) except the softmax
kernels, which take (N, K) rows; masks are ``np.bool_`` arrays. Scalars (learning rates,
decay factors) arrive as Python floats, so the update arithmetic is carried out in
float64 and rounded once to the parameter's dtype on store.

Every kernel has a serial and a ``prange`` variant; the wrappers pick the parallel one
from ``PARALLEL_MIN`` elements on. Below it the serial ReLU forward takes under 3.3 us
(measured: 8192 -> 1.5 us, 32768 -> 3.2 us, 1.25M -> 133 us, float32), less than waking
a thread pool; the break-even of the two variants could not be timed cleanly on the
shared 2-core machine (load average 9: parallel medians were milliseconds of waiting).
"""
import math
import types

import numpy as np
from numba import prange

from ._jit import jit, pjit

PARALLEL_MIN = 32768


def _pair(body):
    """Compile ``body`` twice: serial (``prange`` runs as ``range``) and parallel.

    The serial copy gets its own ``__qualname__`` so the two never share a cache entry
    (Numba's cache key does not include the ``parallel`` flag).
    """
    serial = types.FunctionType(body.__code__, body.__globals__, body.__name__ + "_serial")
    serial.__qualname__ = body.__qualname__ + "_serial"
    return jit(serial), pjit(body)


# ----------------------------------------------------------------------------- ReLU

def _relu_forward_body(x, out, mask):
    for i in prange(x.shape[0]):
        v = x[i]
        m = v <= 0
        mask[i] = m
        out[i] = 0 if m else v


def _relu_backward_body(dout, mask, dx):
    for i in prange(dout.shape[0]):
        dx[i] = 0 if mask[i] else dout[i]


def _dropout_apply_body(x, mask, dx):
    # A product, not a select: the book's ``x * mask`` keeps NaN/inf * 0 = NaN.
    for i in prange(x.shape[0]):
        dx[i] = x[i] * mask[i]


_relu_forward_k = _pair(_relu_forward_body)
_relu_backward_k = _pair(_relu_backward_body)
_dropout_apply_k = _pair(_dropout_apply_body)


def _pick(kernels, n):
    return kernels[1] if n >= PARALLEL_MIN else kernels[0]


def relu_forward(x, out, mask):
    """``out = where(x <= 0, 0, x)``, ``mask = x <= 0``; all flat, same length."""
    _pick(_relu_forward_k, x.shape[0])(x, out, mask)


def relu_backward(dout, mask, dx):
    """``dx = where(mask, 0, dout)``; all flat, same length (``dx`` may be ``dout``)."""
    _pick(_relu_backward_k, dout.shape[0])(dout, mask, dx)


def dropout_apply(x, mask, out):
    """``out = x * mask``; all flat, same length (``out`` may be ``x``)."""
    _pick(_dropout_apply_k, x.shape[0])(x, mask, out)


# ------------------------------------------------------------ softmax + cross-entropy

@jit
def _softmax_xent_idx(x, t, y, eps):
    n, k = x.shape
    loss = 0.0
    for i in range(n):
        mx = x[i, 0]
        for j in range(1, k):
            if x[i, j] > mx:
                mx = x[i, j]
        s = 0.0
        for j in range(k):
            e = math.exp(x[i, j] - mx)
            y[i, j] = e
            s += e
        inv = 1.0 / s
        for j in range(k):
            y[i, j] = y[i, j] * inv
        loss -= math.log(y[i, t[i]] + eps)
    return loss / n


@jit
def _softmax_xent_grad_idx(y, t, scale, dx):
    n, k = y.shape
    for i in range(n):
        for j in range(k):
            dx[i, j] = y[i, j] * scale
        dx[i, t[i]] = (y[i, t[i]] - 1.0) * scale


@jit
def _softmax_xent_grad_dense(y, t, scale, dx):
    n, k = y.shape
    for i in range(n):
        for j in range(k):
            dx[i, j] = (y[i, j] - t[i, j]) * scale


def softmax_cross_entropy(x, t, y, eps):
    """Row softmax of ``x`` (N, K) into ``y``; returns ``-sum(log(y[i, t[i]] + eps)) / N``
    as a Python float. ``t`` holds int64 class indices (N,), checked to lie in [0, K)."""
    return _softmax_xent_idx(x, t, y, eps)


def softmax_cross_entropy_backward(y, t, scale, dx):
    """``dx = (y - onehot(t)) * scale``: ``t`` int64 indices (N,) or dense (N, K)."""
    if t.ndim == 1:
        _softmax_xent_grad_idx(y, t, scale, dx)
    else:
        _softmax_xent_grad_dense(y, t, scale, dx)


# ------------------------------------------------------------------------ optimizers

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


__all__ = [
    "PARALLEL_MIN", "relu_forward", "relu_backward", "dropout_apply",
    "softmax_cross_entropy", "softmax_cross_entropy_backward",
    "sgd_update", "momentum_update", "nesterov_update", "adagrad_update",
    "rmsprop_update", "adam_update",
]
del np
