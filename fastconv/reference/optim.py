"""The book's optimizer update rules (common/optimizer.py) in plain NumPy, in place.

Same names and arguments as the optim kernels (``kernels/<backend>_backend/optim``): the
parameter ``p``, its gradient ``g`` and state arrays of one dtype, changed in place, any
shape and layout. The arithmetic runs in the parameter's dtype, as the book's does (the
kernels carry it in float64 and round once: float32 results agree to rounding).
"""
import numpy as np

__all__ = ["sgd_update", "momentum_update", "nesterov_update", "adagrad_update",
           "rmsprop_update", "adam_update"]


def _scaled_step(p, num, s, tmp, lr, eps):
    """``p -= lr * num / (sqrt(s) + eps)`` in place; ``tmp`` (``p``'s shape and dtype) is
    overwritten as scratch."""
    t = p.dtype.type
    np.sqrt(s, out=tmp)
    tmp += t(eps)
    np.divide(num, tmp, out=tmp)
    tmp *= t(lr)
    p -= tmp


def sgd_update(p, g, lr):
    """``p -= lr * g``."""
    p -= p.dtype.type(lr) * g


def momentum_update(p, g, v, lr, momentum):
    """``v = momentum*v - lr*g; p += v``."""
    t = p.dtype.type
    v *= t(momentum)
    v -= t(lr) * g
    p += v


def nesterov_update(p, g, v, lr, momentum):
    """``v = momentum*v - lr*g; p += momentum**2 * v - (1 + momentum)*lr*g`` (the book's)."""
    t = p.dtype.type
    v *= t(momentum)
    v -= t(lr) * g
    p += t(momentum * momentum) * v
    p -= t((1 + momentum) * lr) * g


def adagrad_update(p, g, h, lr, eps):
    """``h += g*g; p -= lr*g / (sqrt(h) + eps)``."""
    tmp = g * g
    h += tmp
    _scaled_step(p, g, h, tmp, lr, eps)


def rmsprop_update(p, g, h, lr, decay_rate, eps):
    """``h = decay_rate*h + (1 - decay_rate)*g*g; p -= lr*g / (sqrt(h) + eps)``."""
    t = p.dtype.type
    h *= t(decay_rate)
    tmp = g * g
    tmp *= t(1 - decay_rate)
    h += tmp
    _scaled_step(p, g, h, tmp, lr, eps)


def adam_update(p, g, m, v, lr_t, beta1, beta2, eps):
    """``m += (1-beta1)*(g-m); v += (1-beta2)*(g*g-v); p -= lr_t*m / (sqrt(v) + eps)``."""
    t = p.dtype.type
    tmp = g - m
    tmp *= t(1 - beta1)
    m += tmp
    np.multiply(g, g, out=tmp)
    tmp -= v
    tmp *= t(1 - beta2)
    v += tmp
    _scaled_step(p, m, v, tmp, lr_t, eps)
