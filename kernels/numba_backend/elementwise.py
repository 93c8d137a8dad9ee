"""Fused elementwise kernels in Numba: ReLU, dropout and softmax + cross-entropy, each one
pass over memory (the optimizers' update rules are the optim family, ``optim.py``).

Arrays come flat (1-D, C-contiguous views of the caller's arrays) except the softmax
kernels, which take (N, K) rows; masks are ``np.bool_`` arrays.

Every kernel has a serial and a ``prange`` variant; the wrappers pick the parallel one
from ``PARALLEL_MIN`` elements on: below it a serial pass takes less than waking a thread
pool (docs/tuning.md, "Elementwise passes").
"""
import math

import numpy as np
from numba import prange

from ._jit import PARALLEL_MIN, jit, pair as _pair, pick as _pick

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


__all__ = [
    "PARALLEL_MIN", "relu_forward", "relu_backward", "dropout_apply",
    "softmax_cross_entropy", "softmax_cross_entropy_backward",
]
del np
