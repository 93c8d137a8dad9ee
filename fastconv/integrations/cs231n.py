"""CS231n's fast layer API on fastconv's kernels.

Code written against the course's ``cs231n/fast_layers.py`` and ``cs231n/layer_utils.py``
switches by changing one import::

    # from cs231n.fast_layers import conv_forward_fast, conv_backward_fast
    # from cs231n.layer_utils import conv_relu_pool_forward, conv_relu_pool_backward
    # from cs231n.layers import affine_forward, affine_backward
    from fastconv.integrations.cs231n import *

Same signatures and semantics as CS231n: NCHW arrays, ``w`` of shape (F, C, HH, WW),
``b`` of shape (F,), ``conv_param = {'stride': s, 'pad': p}``, ``pool_param =
{'pool_height': ph, 'pool_width': pw, 'stride': s}``; every forward returns ``(out,
cache)`` and the matching backward takes ``(dout, cache)``. Each call runs on fastconv's
current backend (:func:`fastconv.set_backend`, :func:`fastconv.use_backend`).

Differences from CS231n's code:

* The caches hold what fastconv's backward kernels need (for the ReLU, the layer's
  output rather than its input; for pooling, the input's shape and the winners'
  positions rather than the input), so they are not interchangeable with CS231n's own.
  ``conv_relu_forward``'s cache holds the returned ``out``: do not modify it in place
  before the backward.
* ``conv_relu_forward`` / ``conv_relu_pool_forward`` run the ReLU inside the
  convolution's output pass (``fastconv.conv2d(..., relu=True)``) and their backward
  masks ``dout`` inside the convolution's backward pass.
* A stride that does not tile the input is accepted, as in CS231n's naive layers (the
  output size rounds down); CS231n's im2col version asserts on it.
* Max pooling routes each gradient to the first maximum of its window, as CS231n's
  naive layer does (CS231n's reshape-based fast version splits it among tied maxima).
* dtypes are kept (float32 stays float32); float16 is computed in float32.
* Bad input raises the ``TypeError`` / ``ValueError`` of fastconv's ops; a bad
  ``conv_param`` / ``pool_param`` or cache raises one naming the function and the key.
"""
from collections.abc import Mapping

from .. import _validation as v
from ..functional import (conv2d, conv2d_backward, linear, linear_backward, max_pool2d,
                          max_pool2d_backward)

__all__ = ["conv_forward_fast", "conv_backward_fast", "max_pool_forward_fast",
           "max_pool_backward_fast", "conv_relu_forward", "conv_relu_backward",
           "conv_relu_pool_forward", "conv_relu_pool_backward", "affine_forward",
           "affine_backward", "affine_relu_forward", "affine_relu_backward"]

#: key -> (reader, smallest value): window sizes are ints, strides and pads an int or an
#: (h, w) pair.
_CONV_KEYS = {"stride": (v.pair, 1), "pad": (v.pair, 0)}
_POOL_KEYS = {"pool_height": (v.check_int, 1), "pool_width": (v.check_int, 1),
              "stride": (v.pair, 1)}
_CONV_EXAMPLE = "{'stride': 1, 'pad': 1}"
_POOL_EXAMPLE = "{'pool_height': 2, 'pool_width': 2, 'stride': 2}"


def _read_param(param, name, op, keys, example):
    """The values of ``keys`` in the dict ``param``, each checked by its reader."""
    if not isinstance(param, Mapping):
        raise TypeError(f"{op}: {name} must be a dict like {example}, got "
                        f"{type(param).__name__} {param!r}")
    missing = [k for k in keys if k not in param]
    if missing:
        raise ValueError(f"{op}: {name} lacks {', '.join(map(repr, missing))} (got "
                         f"{dict(param)!r}); pass e.g. {name}={example}")
    unknown = [k for k in param if k not in keys]
    if unknown:
        raise ValueError(f"{op}: {name} has unknown key(s) {', '.join(map(repr, unknown))}; "
                         f"it takes exactly {', '.join(map(repr, keys))}, e.g. {example}")
    return [read(param[k], f"{name}[{k!r}]", op, lo) for k, (read, lo) in keys.items()]


def _conv_geometry(conv_param, op):
    return _read_param(conv_param, "conv_param", op, _CONV_KEYS, _CONV_EXAMPLE)


def _pool_geometry(pool_param, op):
    return _read_param(pool_param, "pool_param", op, _POOL_KEYS, _POOL_EXAMPLE)


def _unpack(cache, n, op, producer):
    if not isinstance(cache, tuple) or len(cache) != n:
        raise TypeError(f"{op}: cache must be the cache returned by {producer} (a tuple of "
                        f"{n}), got {type(cache).__name__}"
                        + (f" of {len(cache)}" if isinstance(cache, tuple) else ""))
    return cache


def conv_forward_fast(x, w, b, conv_param):
    """Convolution (cross-correlation) forward pass.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    w : ndarray of shape (F, C, HH, WW)
    b : ndarray of shape (F,)
    conv_param : dict
        ``'stride'`` and ``'pad'`` (ints, or (h, w) pairs).

    Returns
    -------
    out : ndarray of shape (N, F, H', W')
        ``H' = 1 + (H + 2 * pad - HH) // stride``, likewise ``W'``.
    cache : tuple
        ``(x, w, b, conv_param)``, for :func:`conv_backward_fast`.
    """
    stride, pad = _conv_geometry(conv_param, "conv_forward_fast")
    out = conv2d(x, w, b, stride, pad)
    return out, (x, w, b, conv_param)


def conv_backward_fast(dout, cache):
    """Convolution backward pass.

    Parameters
    ----------
    dout : ndarray of shape (N, F, H', W')
    cache : tuple from :func:`conv_forward_fast`

    Returns
    -------
    dx : ndarray of shape (N, C, H, W)
    dw : ndarray of shape (F, C, HH, WW)
    db : ndarray of shape (F,)
    """
    x, w, _, conv_param = _unpack(cache, 4, "conv_backward_fast", "conv_forward_fast")
    stride, pad = _conv_geometry(conv_param, "conv_backward_fast")
    return conv2d_backward(dout, x, w, stride, pad)


def max_pool_forward_fast(x, pool_param):
    """Max pooling forward pass.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    pool_param : dict
        ``'pool_height'``, ``'pool_width'`` (ints) and ``'stride'`` (int or (h, w) pair).

    Returns
    -------
    out : ndarray of shape (N, C, H', W')
        ``H' = 1 + (H - pool_height) // stride``, likewise ``W'``.
    cache : tuple
        ``(x.shape, argmax, pool_param)``, for :func:`max_pool_backward_fast`.
    """
    ph, pw, stride = _pool_geometry(pool_param, "max_pool_forward_fast")
    out, argmax = max_pool2d(x, ph, pw, stride)
    return out, (x.shape, argmax, pool_param)


def max_pool_backward_fast(dout, cache):
    """Max pooling backward pass: each ``dout`` cell goes to its window's maximum.

    Parameters
    ----------
    dout : ndarray of shape (N, C, H', W')
    cache : tuple from :func:`max_pool_forward_fast`

    Returns
    -------
    dx : ndarray of shape (N, C, H, W)
    """
    op = "max_pool_backward_fast"
    x_shape, argmax, pool_param = _unpack(cache, 3, op, "max_pool_forward_fast")
    ph, pw, stride = _pool_geometry(pool_param, op)
    return max_pool2d_backward(dout, argmax, x_shape, ph, pw, stride)


def conv_relu_forward(x, w, b, conv_param):
    """Convolution followed by ReLU, in one pass over the output.

    Returns
    -------
    out : ndarray of shape (N, F, H', W')
    cache : tuple
        ``(conv_cache, out)``, for :func:`conv_relu_backward`.
    """
    stride, pad = _conv_geometry(conv_param, "conv_relu_forward")
    out = conv2d(x, w, b, stride, pad, relu=True)
    return out, ((x, w, b, conv_param), out)


def conv_relu_backward(dout, cache):
    """Backward pass of :func:`conv_relu_forward`: ``(dx, dw, db)``."""
    op = "conv_relu_backward"
    conv_cache, out = _unpack(cache, 2, op, "conv_relu_forward")
    x, w, _, conv_param = _unpack(conv_cache, 4, op, "conv_relu_forward")
    stride, pad = _conv_geometry(conv_param, op)
    return conv2d_backward(dout, x, w, stride, pad, relu_out=out)


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    """Convolution, ReLU (fused into the convolution) and max pooling.

    Returns
    -------
    out : ndarray of shape (N, F, H'', W'')
    cache : tuple
        ``(conv_cache, relu_out, pool_cache)``, for :func:`conv_relu_pool_backward`.
    """
    op = "conv_relu_pool_forward"
    stride, pad = _conv_geometry(conv_param, op)
    _pool_geometry(pool_param, op)  # a bad pool_param fails before the convolution runs
    a = conv2d(x, w, b, stride, pad, relu=True)
    out, pool_cache = max_pool_forward_fast(a, pool_param)
    return out, ((x, w, b, conv_param), a, pool_cache)


def conv_relu_pool_backward(dout, cache):
    """Backward pass of :func:`conv_relu_pool_forward`: ``(dx, dw, db)``."""
    op = "conv_relu_pool_backward"
    conv_cache, a, pool_cache = _unpack(cache, 3, op, "conv_relu_pool_forward")
    x, w, _, conv_param = _unpack(conv_cache, 4, op, "conv_relu_pool_forward")
    stride, pad = _conv_geometry(conv_param, op)
    da = max_pool_backward_fast(dout, pool_cache)
    return conv2d_backward(da, x, w, stride, pad, relu_out=a)


def affine_forward(x, w, b):
    """CS231n's ``affine_forward``: ``x.reshape(N, -1) @ w + b`` by :func:`fastconv.linear`.

    Its BLAS call runs single-threaded right after the convolutions' parallel loops, where
    NumPy's multi-threaded ``@`` waits on their still-spinning threads (the small CNN's
    (64, 1568) @ (1568, 10) took milliseconds that way).

    Returns
    -------
    out : ndarray of shape (N, M)
    cache : tuple
        ``(x, w, b)``, for :func:`affine_backward`.
    """
    return linear(x, w, b), (x, w, b)


def affine_backward(dout, cache):
    """Backward pass of :func:`affine_forward`: ``(dx shaped like x, dw, db)``."""
    x, w, _ = _unpack(cache, 3, "affine_backward", "affine_forward")
    return linear_backward(dout, x, w)


def affine_relu_forward(x, w, b):
    """CS231n's ``affine_relu_forward``: the affine layer and its ReLU in one output pass.

    Returns ``(out, cache)``; the cache ``((x, w, b), out)`` holds the returned ``out``.
    """
    out = linear(x, w, b, relu=True)
    return out, ((x, w, b), out)


def affine_relu_backward(dout, cache):
    """Backward pass of :func:`affine_relu_forward`: ``(dx, dw, db)``."""
    op = "affine_relu_backward"
    fc_cache, out = _unpack(cache, 2, op, "affine_relu_forward")
    x, w, _ = _unpack(fc_cache, 3, op, "affine_relu_forward")
    return linear_backward(dout, x, w, relu_out=out)
