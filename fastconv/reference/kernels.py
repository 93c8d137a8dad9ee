"""The reference behind the kernel interface: the entry points and arguments of every
compiled family (``kernels/<backend>_backend/<family>``, the registry
``fastconv._backend.FAMILIES``), so that the public ops run validate -> resolve ->
``kernels(backend, family).op(...)`` whatever the backend.

Each family is a namespace of thin adapters over the book-signature functions of this
package: they take the checked :class:`fastconv._validation.Window` and return fresh
C-contiguous arrays (or write ``out=``), as the compiled kernels do. A family whose
reference functions take the kernels' arguments needs none (optim:
:mod:`fastconv.reference.optim`).
"""
from types import SimpleNamespace

import numpy as np

from . import augment as _augment, conv as _conv, elementwise as _elementwise
from . import pool as _pool
from .im2col import col2im as _col2im, im2col as _im2col
from .linear import linear as _linear, linear_backward as _linear_backward


def _into(result, out):
    result = np.ascontiguousarray(result)
    if out is None:
        return result
    out[...] = result
    return out


def _stride_pad(g):
    return (g.sh, g.sw), (g.ph, g.pw)


im2col = SimpleNamespace(
    im2col=lambda x, g, out=None: _into(_im2col(x, g.kh, g.kw, *_stride_pad(g)), out),
    col2im=lambda col, x_shape, g, out=None: _into(
        _col2im(col, x_shape, g.kh, g.kw, *_stride_pad(g)), out),
)

conv = SimpleNamespace(
    conv2d=lambda x, W, b, g, relu=False: _conv.conv2d(x, W, b, *_stride_pad(g), relu),
    conv2d_backward=lambda dout, x, W, g, need_dx=True, relu_out=None: _conv.conv2d_backward(
        dout, x, W, *_stride_pad(g), need_dx, relu_out),
)

pool = SimpleNamespace(
    max_pool2d=lambda x, g: _pool.max_pool2d(x, g.kh, g.kw, *_stride_pad(g)),
    max_pool2d_backward=lambda dout, arg, x_shape, g: _pool.max_pool2d_backward(
        dout, arg, x_shape, g.kh, g.kw, *_stride_pad(g)),
    avg_pool2d=lambda x, g: _pool.avg_pool2d(x, g.kh, g.kw, *_stride_pad(g)),
    avg_pool2d_backward=lambda dout, x_shape, g: _pool.avg_pool2d_backward(
        dout, x_shape, g.kh, g.kw, *_stride_pad(g)),
    global_avg_pool2d=_pool.global_avg_pool2d,
    global_avg_pool2d_backward=_pool.global_avg_pool2d_backward,
    adaptive_avg_pool2d=_pool.adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward=_pool.adaptive_avg_pool2d_backward,
)

linear = SimpleNamespace(
    linear=_linear,
    linear_backward=lambda dout, x, W, relu_out=None: _linear_backward(
        dout, x, W, relu_out=relu_out),
)

augment = SimpleNamespace(
    shift_flip=lambda x, dy, dx, flip, out=None: _into(_augment.shift_flip(x, dy, dx, flip), out),
)


def _relu_forward(x, out, mask):
    out[...], mask[...] = _elementwise.relu_forward(x)


def _softmax_cross_entropy(x, t, y, eps):
    loss, y[...] = _elementwise.softmax_cross_entropy(x, t, eps)
    return loss


elementwise = SimpleNamespace(
    relu_forward=_relu_forward,
    relu_backward=lambda dout, mask, dx: _into(_elementwise.relu_backward(dout, mask), dx),
    dropout_apply=lambda x, mask, out: _into(_elementwise.dropout_apply(x, mask), out),
    softmax_cross_entropy=_softmax_cross_entropy,
    softmax_cross_entropy_backward=lambda y, t, scale, dx: _into(
        _elementwise.softmax_cross_entropy_backward(y, t, scale), dx),
)
