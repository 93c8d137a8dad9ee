"""fastconv's ops as HIPS autograd primitives (``pip install "fastconv[autograd]"``).

autograd has no convolution or pooling of its own; a net written with ``autograd.numpy``
slices and ``tensordot`` runs them at NumPy speed, forward and backward. With this
module ``autograd.grad`` of a loss runs fastconv's kernels both ways::

    import autograd.numpy as anp
    from autograd import grad
    from fastconv.integrations.autograd import conv2d, max_pool2d, linear

    def loss(params, x, t):
        h = max_pool2d(conv2d(x, params["W1"], params["b1"], pad=1, relu=True), 2, 2)
        scores = linear(h, params["W2"], params["b2"])
        ...

    grads = grad(loss)(params, x, t)

The ops keep the signatures of fastconv's public ops (and their ``backend=`` keyword);
the pooling ops return the pooled output alone (max pooling's argmax stays inside, for
the backward). Each VJP calls fastconv's backward kernel once for all the inputs being
differentiated (``conv2d`` skips the input gradient when only the weights are), and
returns every gradient in its input's dtype. Inputs may be boxed by autograd in any
argument that is an array; bad input raises fastconv's own ``TypeError`` /
``ValueError``.

Only first derivatives are defined: differentiating a gradient again through these ops
(``grad`` of ``grad``, Hessians) raises ``NotImplementedError``.
"""
try:
    from autograd.extend import defvjp_argnums, primitive
    from autograd.tracer import getval, isbox
except ImportError as _err:
    from . import _host_missing

    raise _host_missing("autograd", "HIPS autograd", _err) from _err

from ..functional import (avg_pool2d as _avg_pool2d, avg_pool2d_backward, conv2d as _conv2d,
                          conv2d_backward, linear as _linear, linear_backward,
                          max_pool2d as _max_pool2d, max_pool2d_backward)

__all__ = ["conv2d", "max_pool2d", "avg_pool2d", "linear"]


def _first_order(ans, name):
    """An output that is itself boxed means autograd is differentiating this op's VJP."""
    if isbox(ans):
        raise NotImplementedError(
            f"fastconv.integrations.autograd.{name} defines first derivatives only; "
            f"differentiating its gradient again (grad of grad, a Hessian) is not supported"
        )


def _like(grad, a):
    """``grad`` in the dtype of the input ``a`` it is the gradient of."""
    return grad.astype(a.dtype, copy=False)


# --------------------------------------------------------------------------- conv2d

@primitive
def _conv2d_p(x, W, b, stride, pad, relu, backend):
    return _conv2d(x, W, b, stride, pad, relu, backend=backend)


def _conv2d_vjp(argnums, ans, args, kwargs):
    _first_order(ans, "conv2d")
    x, W, b, stride, pad, relu, backend = args

    def vjp(g):
        grads = conv2d_backward(g, x, W, stride, pad, need_dx=0 in argnums,
                                relu_out=ans if relu else None, backend=backend)
        return tuple(_like(grads[i], args[i]) for i in argnums)

    return vjp


defvjp_argnums(_conv2d_p, _conv2d_vjp)


def conv2d(x, W, b=None, stride=1, pad=0, relu=False, *, backend=None):
    """:func:`fastconv.conv2d` as an autograd primitive, differentiable in x, W and b.

    Parameters
    ----------
    x, W, b, stride, pad, backend
        As :func:`fastconv.conv2d`'s.
    relu : bool
        Fuse ``max(0, .)``; the VJP then masks the incoming gradient in the backward
        kernel's pass.

    Returns
    -------
    out : ndarray of shape (N, FN, OH, OW)
    """
    return _conv2d_p(x, W, b, stride, pad, relu, backend)


# --------------------------------------------------------------------------- pooling

@primitive
def _max_pooled(x, out, argmax, pool_h, pool_w, stride, pad, backend):
    """``out``, computed before the call together with ``argmax``: the primitive only
    records the node whose VJP routes the gradient through ``argmax``."""
    return out


def _max_pool2d_vjp(argnums, ans, args, kwargs):
    _first_order(ans, "max_pool2d")
    x, _, argmax, pool_h, pool_w, stride, pad, backend = args
    return lambda g: (_like(max_pool2d_backward(g, argmax, x.shape, pool_h, pool_w, stride,
                                                pad, backend=backend), x),)


defvjp_argnums(_max_pooled, _max_pool2d_vjp)


def max_pool2d(x, pool_h, pool_w, stride=None, pad=0, *, backend=None):
    """:func:`fastconv.max_pool2d` as an autograd primitive, differentiable in x.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    pool_h, pool_w : int
    stride : None, int or (h, w) pair
        None means the window size.
    pad : int or (h, w) pair
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}

    Returns
    -------
    out : ndarray of shape (N, C, OH, OW)
        The pooled values only; each window's winner is kept for the VJP, which sends
        the gradient to it (to the first of tied maxima).
    """
    out, argmax = _max_pool2d(getval(x), pool_h, pool_w, stride, pad, backend=backend)
    if not isbox(x):
        return out
    return _max_pooled(x, out, argmax, pool_h, pool_w, stride, pad, backend)


@primitive
def _avg_pool2d_p(x, pool_h, pool_w, stride, pad, backend):
    return _avg_pool2d(x, pool_h, pool_w, stride, pad, backend=backend)


def _avg_pool2d_vjp(argnums, ans, args, kwargs):
    _first_order(ans, "avg_pool2d")
    x, pool_h, pool_w, stride, pad, backend = args
    return lambda g: (_like(avg_pool2d_backward(g, x.shape, pool_h, pool_w, stride, pad,
                                                backend=backend), x),)


defvjp_argnums(_avg_pool2d_p, _avg_pool2d_vjp)


def avg_pool2d(x, pool_h, pool_w, stride=None, pad=0, *, backend=None):
    """:func:`fastconv.avg_pool2d` as an autograd primitive, differentiable in x.

    Parameters and result as for :func:`max_pool2d`; padded cells count as zeros and
    every window divides by ``pool_h * pool_w``.
    """
    return _avg_pool2d_p(x, pool_h, pool_w, stride, pad, backend)


# --------------------------------------------------------------------------- linear

@primitive
def _linear_p(x, W, b, relu, backend):
    return _linear(x, W, b, relu, backend=backend)


def _linear_vjp(argnums, ans, args, kwargs):
    _first_order(ans, "linear")
    x, W, b, relu, backend = args

    def vjp(g):
        grads = linear_backward(g, x, W, relu_out=ans if relu else None, backend=backend)
        return tuple(_like(grads[i], args[i]) for i in argnums)

    return vjp


defvjp_argnums(_linear_p, _linear_vjp)


def linear(x, W, b=None, relu=False, *, backend=None):
    """:func:`fastconv.linear` (``x.reshape(N, -1) @ W + b``, optional ReLU) as an
    autograd primitive, differentiable in x, W and b.

    Parameters
    ----------
    x : ndarray of shape (N, ...)
    W : ndarray of shape (D, M)
    b : ndarray of shape (M,) or None
    relu : bool
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}

    Returns
    -------
    out : ndarray of shape (N, M)
    """
    return _linear_p(x, W, b, relu, backend)
