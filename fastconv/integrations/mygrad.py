"""fastconv's ops as MyGrad operations (``pip install "fastconv[mygrad]"``).

MyGrad's ``mygrad.nnet.conv_nd`` and ``max_pool`` work on sliding-window views of the
input in NumPy. These ops take and return ``mygrad.Tensor`` objects inside a MyGrad graph and
run fastconv's kernels forward and backward::

    import mygrad as mg
    from mygrad.nnet.losses import softmax_crossentropy
    from fastconv.integrations.mygrad import conv2d, max_pool2d, linear

    h = max_pool2d(conv2d(x, W1, b1, pad=1, relu=True), 2, 2)
    loss = softmax_crossentropy(linear(h, W2, b2), t)
    loss.backward()          # W1.grad, b1.grad, W2.grad, b2.grad

They keep the signatures of fastconv's public ops (``conv2d(x, W, b=None, stride=1,
pad=0, relu=False)``, ...) plus MyGrad's ``constant=`` keyword; the pooling ops return
the pooled tensor alone. Arguments may be Tensors or NumPy arrays (an array is a
constant, as everywhere in MyGrad). The backward kernel runs once per op for all of its
non-constant inputs (``conv2d`` skips the input gradient when ``x`` is constant, e.g. a
net's input batch). Bad input raises fastconv's own ``TypeError`` / ``ValueError``.
"""
from abc import abstractmethod

import numpy as np

try:
    import mygrad as _mg
    from mygrad.operation_base import Operation as _Operation
except ImportError as _err:
    from . import _host_missing

    raise _host_missing("mygrad", "MyGrad", _err) from _err

from ..functional import (avg_pool2d as _avg_pool2d, avg_pool2d_backward, conv2d as _conv2d,
                          conv2d_backward, linear as _linear, linear_backward,
                          max_pool2d as _max_pool2d, max_pool2d_backward)

__all__ = ["conv2d", "max_pool2d", "avg_pool2d", "linear"]


def _check_inputs(op, **arrays):
    for name, a in arrays.items():
        if a is not None and not isinstance(a, (_mg.Tensor, np.ndarray)):
            raise TypeError(
                f"{op}: {name} must be a mygrad Tensor or a NumPy ndarray, got "
                f"{type(a).__name__}; convert it with mygrad.tensor({name}, dtype=np.float32)"
            )


def _lockable(out):
    """``out``, or a copy of it that MyGrad can lock. MyGrad makes an op's output and its
    ``base`` read-only, and reads ``base.flags`` again on release, taking every base for
    an ndarray; an array that a Numba kernel allocated (Numba's ``linear``) has Numba's
    ``MemInfo`` at the end of its base chain (AttributeError in MyGrad 2.5). Those few
    outputs are copied; the others are handed over as they are."""
    base = out.base
    while isinstance(base, np.ndarray):
        base = base.base
    return out if base is None else out.copy()


class _Op(_Operation):
    """An operation whose backward kernel yields every input's gradient in one call:
    ``_gradients(grad)`` returns them in the order of ``variables``. MyGrad asks for them
    one input at a time; the first request runs the kernel, the others take its results."""

    @abstractmethod
    def _gradients(self, grad):
        """The gradients of every input, in the order of ``variables``."""

    def backward_var(self, grad, index, **kwargs):
        pending = getattr(self, "_pending", None)
        if pending is None or pending[0] is not grad:
            pending = self._pending = (grad, dict(enumerate(self._gradients(grad))))
        return pending[1].pop(index).astype(self.variables[index].dtype, copy=False)


class _Conv2d(_Op):
    def __call__(self, x, W, b=None, *, stride, pad, relu, backend):
        self.variables = (x, W) if b is None else (x, W, b)
        self.geometry, self.relu, self.backend = (stride, pad), relu, backend
        self.out = _lockable(_conv2d(x.data, W.data, None if b is None else b.data, stride,
                                     pad, relu, backend=backend))
        return self.out

    def _gradients(self, grad):
        x, W = self.variables[:2]
        return conv2d_backward(grad, x.data, W.data, *self.geometry, need_dx=not x.constant,
                               relu_out=self.out if self.relu else None,
                               backend=self.backend)


class _MaxPool2d(_Op):
    def __call__(self, x, *, pool_h, pool_w, stride, pad, backend):
        self.variables = (x,)
        self.geometry, self.backend = (pool_h, pool_w, stride, pad), backend
        out, self.argmax = _max_pool2d(x.data, pool_h, pool_w, stride, pad, backend=backend)
        return _lockable(out)

    def _gradients(self, grad):
        return (max_pool2d_backward(grad, self.argmax, self.variables[0].shape,
                                    *self.geometry, backend=self.backend),)


class _AvgPool2d(_Op):
    def __call__(self, x, *, pool_h, pool_w, stride, pad, backend):
        self.variables = (x,)
        self.geometry, self.backend = (pool_h, pool_w, stride, pad), backend
        return _lockable(_avg_pool2d(x.data, pool_h, pool_w, stride, pad, backend=backend))

    def _gradients(self, grad):
        return (avg_pool2d_backward(grad, self.variables[0].shape, *self.geometry,
                                    backend=self.backend),)


class _Linear(_Op):
    def __call__(self, x, W, b=None, *, relu, backend):
        self.variables = (x, W) if b is None else (x, W, b)
        self.relu, self.backend = relu, backend
        self.out = _lockable(_linear(x.data, W.data, None if b is None else b.data, relu,
                                     backend=backend))
        return self.out

    def _gradients(self, grad):
        x, W = self.variables[:2]
        return linear_backward(grad, x.data, W.data, relu_out=self.out if self.relu else None,
                               backend=self.backend)


def conv2d(x, W, b=None, stride=1, pad=0, relu=False, *, backend=None, constant=None):
    """:func:`fastconv.conv2d` as a MyGrad operation, differentiable in x, W and b.

    Parameters
    ----------
    x : Tensor or ndarray of shape (N, C, H, W)
    W : Tensor or ndarray of shape (FN, C, KH, KW)
    b : Tensor or ndarray of shape (FN,), or None
    stride, pad : int or (h, w) pair
    relu : bool
        Fuse ``max(0, .)``; the backward masks the gradient in its kernel's pass.
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}
    constant : bool, optional
        MyGrad's flag: True makes the result a constant (no gradient flows back).

    Returns
    -------
    out : Tensor of shape (N, FN, OH, OW)
    """
    _check_inputs("conv2d", x=x, W=W, b=b)
    args = (x, W) if b is None else (x, W, b)
    return _mg.execute_op(_Conv2d, *args, op_kwargs=dict(stride=stride, pad=pad, relu=relu,
                                                         backend=backend), constant=constant)


def max_pool2d(x, pool_h, pool_w, stride=None, pad=0, *, backend=None, constant=None):
    """:func:`fastconv.max_pool2d` as a MyGrad operation, differentiable in x.

    Parameters
    ----------
    x : Tensor or ndarray of shape (N, C, H, W)
    pool_h, pool_w : int
    stride : None, int or (h, w) pair
        None means the window size.
    pad : int or (h, w) pair
    backend, constant :
        As for :func:`conv2d`.

    Returns
    -------
    out : Tensor of shape (N, C, OH, OW)
        The pooled values only; the backward sends each gradient to its window's winner
        (the first of tied maxima).
    """
    _check_inputs("max_pool2d", x=x)
    return _mg.execute_op(_MaxPool2d, x, op_kwargs=dict(pool_h=pool_h, pool_w=pool_w,
                                                        stride=stride, pad=pad,
                                                        backend=backend), constant=constant)


def avg_pool2d(x, pool_h, pool_w, stride=None, pad=0, *, backend=None, constant=None):
    """:func:`fastconv.avg_pool2d` as a MyGrad operation, differentiable in x.

    Parameters and result as for :func:`max_pool2d`; padded cells count as zeros and
    every window divides by ``pool_h * pool_w``.
    """
    _check_inputs("avg_pool2d", x=x)
    return _mg.execute_op(_AvgPool2d, x, op_kwargs=dict(pool_h=pool_h, pool_w=pool_w,
                                                        stride=stride, pad=pad,
                                                        backend=backend), constant=constant)


def linear(x, W, b=None, relu=False, *, backend=None, constant=None):
    """:func:`fastconv.linear` (``x.reshape(N, -1) @ W + b``, optional ReLU) as a MyGrad
    operation, differentiable in x, W and b.

    Parameters
    ----------
    x : Tensor or ndarray of shape (N, ...)
    W : Tensor or ndarray of shape (D, M)
    b : Tensor or ndarray of shape (M,), or None
    relu : bool
    backend, constant :
        As for :func:`conv2d`.

    Returns
    -------
    out : Tensor of shape (N, M)
    """
    _check_inputs("linear", x=x, W=W, b=b)
    args = (x, W) if b is None else (x, W, b)
    return _mg.execute_op(_Linear, *args, op_kwargs=dict(relu=relu, backend=backend),
                          constant=constant)
