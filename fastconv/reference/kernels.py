"""The reference behind the kernel interface: the entry points and arguments of five of
the compiled families (``kernels/<backend>_backend/<family>``: im2col, conv, pool, fma,
augment), so that their public ops run validate -> resolve ->
``kernels(backend, family).op(...)`` whatever the backend. The elementwise and optim
families have no adapters here: their wrappers call the reference themselves when the
backend is ``'numpy'`` (``functional/elementwise.py``, ``optim.py``).

Each family is a namespace of thin adapters over the book-signature functions of this
package: they take the checked :class:`fastconv._validation.Window` and return fresh
C-contiguous arrays (or write ``out=``), as the compiled kernels do.
"""
from types import SimpleNamespace

import numpy as np

from . import augment as _augment, conv as _conv, fma as _fma, pool as _pool
from .im2col import col2im as _col2im, im2col as _im2col


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
)

fma = SimpleNamespace(
    linear=_fma.linear,
    linear_backward=lambda dout, x, W, relu_out=None: _fma.linear_backward(
        dout, x, W, relu_out=relu_out),
)

augment = SimpleNamespace(
    shift_flip=lambda x, dy, dx, flip, out=None: _into(_augment.shift_flip(x, dy, dx, flip), out),
)
