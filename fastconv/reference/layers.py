"""The book's layers ("Deep Learning from Scratch", common/layers.py) in plain NumPy,
rewritten here on :mod:`fastconv.reference` functions: the ground truth for
:mod:`fastconv.layers`.

Written the book's way (masks, copies, the same formulas and constants), with these
differences, each one shared with :mod:`fastconv.layers`:

* dtypes are kept: a float32 net stays float32 (constants are cast to the input's dtype,
  BatchNormalization's running statistics start in the input's dtype).
* ``Relu.backward`` returns a new array instead of zeroing ``dout`` in place.
* ``SoftmaxWithLoss.backward(dout)`` scales the gradient by ``dout`` (the book ignores
  it; the two agree for the book's only value, 1).
* ``cross_entropy_error`` and ``SoftmaxWithLoss`` read a label ``t`` as one-hot only when
  it has as many entries as ``y`` and there are K > 1 classes; otherwise ``t`` holds class
  indices, which may be floats holding whole numbers. So an (N, 1) ``t`` is class
  indices for every N (the book's indexing broadcasts it to N x N entries when N > 1) and
  with K == 1 (the book reads it as one-hot). For one sample ``y`` of shape (K,) the
  backward divides by 1, not by the book's ``t.shape[0]``.
* ``Convolution`` and ``Pooling`` run :func:`fastconv.reference.conv2d` /
  :func:`fastconv.reference.max_pool2d` and keep ``x`` (and ``arg_max``, in fastconv's
  (N, C, OH, OW) window-position layout) for backward, not the book's ``col``.
"""
import numpy as np

from .conv import conv2d, conv2d_backward
from .pool import max_pool2d, max_pool2d_backward

__all__ = ["Relu", "Sigmoid", "Affine", "SoftmaxWithLoss", "Dropout", "BatchNormalization",
           "Convolution", "Pooling", "softmax", "cross_entropy_error"]


def softmax(x):
    """Row softmax of ``x`` (N, K) (or a single row (K,)), max subtracted first."""
    x = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(x)
    return e / np.sum(e, axis=-1, keepdims=True)


def cross_entropy_error(y, t):
    """Mean ``-log(y[i, t_i] + 1e-7)``; one-hot ``t`` is turned into indices first."""
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    if t.size == y.size and y.shape[1] > 1:
        t = t.argmax(axis=1)
    # flat indices: y[arange(N), t] would broadcast an (N, 1) t to N x N entries
    t = t.reshape(-1).astype(np.int64)
    batch_size = y.shape[0]
    eps = y.dtype.type(1e-7)
    return -np.sum(np.log(y[np.arange(batch_size), t] + eps)) / y.dtype.type(batch_size)


class Relu:
    def __init__(self):
        self.mask = None

    def forward(self, x):
        self.mask = (x <= 0)
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dx = dout.copy()
        dx[self.mask] = 0
        return dx


class Sigmoid:
    def __init__(self):
        self.out = None

    def forward(self, x):
        one = x.dtype.type(1)
        out = one / (one + np.exp(-x))
        self.out = out
        return out

    def backward(self, dout):
        return dout * (self.out.dtype.type(1) - self.out) * self.out


class Affine:
    def __init__(self, W, b):
        self.W = W
        self.b = b
        self.x = None
        self.original_x_shape = None
        self.dW = None
        self.db = None

    def forward(self, x):
        self.original_x_shape = x.shape
        x = x.reshape(x.shape[0], -1)
        self.x = x
        return np.dot(self.x, self.W) + self.b

    def backward(self, dout):
        dx = np.dot(dout, self.W.T)
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        return dx.reshape(*self.original_x_shape)


class SoftmaxWithLoss:
    def __init__(self):
        self.loss = None
        self.y = None
        self.t = None

    def forward(self, x, t):
        self.t = t
        self.y = softmax(x)
        self.loss = cross_entropy_error(self.y, self.t)
        return self.loss

    def backward(self, dout=1):
        y = self.y.reshape(-1, self.y.shape[-1])  # one sample (K,) as a batch of one
        batch_size = y.shape[0]
        if self.t.size == y.size and y.shape[1] > 1:
            dx = (y - self.t.reshape(y.shape)).astype(y.dtype, copy=False)
        else:
            dx = y.copy()
            dx[np.arange(batch_size), self.t.reshape(-1).astype(np.int64)] -= 1
        return (dx * y.dtype.type(dout / batch_size)).reshape(self.y.shape)


class Dropout:
    def __init__(self, dropout_ratio=0.5):
        self.dropout_ratio = dropout_ratio
        self.mask = None

    def forward(self, x, train_flg=True):
        if train_flg:
            self.mask = np.random.rand(*x.shape) > self.dropout_ratio
            return x * self.mask
        return x * x.dtype.type(1.0 - self.dropout_ratio)

    def backward(self, dout):
        return dout * self.mask


class BatchNormalization:
    def __init__(self, gamma, beta, momentum=0.9, running_mean=None, running_var=None):
        self.gamma = gamma
        self.beta = beta
        self.momentum = momentum
        self.input_shape = None
        self.running_mean = running_mean
        self.running_var = running_var
        self.batch_size = None
        self.xc = None
        self.xn = None
        self.std = None
        self.dgamma = None
        self.dbeta = None

    def forward(self, x, train_flg=True):
        self.input_shape = x.shape
        if x.ndim != 2:
            x = x.reshape(x.shape[0], -1)
        out = self._forward(x, train_flg)
        return out.reshape(*self.input_shape)

    def _forward(self, x, train_flg):
        dt = x.dtype.type
        if self.running_mean is None:
            D = x.shape[1]
            self.running_mean = np.zeros(D, dtype=x.dtype)
            self.running_var = np.zeros(D, dtype=x.dtype)
        if train_flg:
            mu = x.mean(axis=0)
            xc = x - mu
            var = np.mean(xc ** 2, axis=0)
            std = np.sqrt(var + dt(10e-7))
            xn = xc / std
            self.batch_size = x.shape[0]
            self.xc = xc
            self.xn = xn
            self.std = std
            mom = dt(self.momentum)
            self.running_mean = mom * self.running_mean + (dt(1) - mom) * mu
            self.running_var = mom * self.running_var + (dt(1) - mom) * var
        else:
            xc = x - self.running_mean
            xn = xc / np.sqrt(self.running_var + dt(10e-7))
        return self.gamma * xn + self.beta

    def backward(self, dout):
        if dout.ndim != 2:
            dout = dout.reshape(dout.shape[0], -1)
        dx = self._backward(dout)
        return dx.reshape(*self.input_shape)

    def _backward(self, dout):
        dt = dout.dtype.type
        dbeta = dout.sum(axis=0)
        dgamma = np.sum(self.xn * dout, axis=0)
        dxn = self.gamma * dout
        dxc = dxn / self.std
        dstd = -np.sum((dxn * self.xc) / (self.std * self.std), axis=0)
        dvar = dt(0.5) * dstd / self.std
        dxc += (dt(2.0) / dt(self.batch_size)) * self.xc * dvar
        dmu = np.sum(dxc, axis=0)
        dx = dxc - dmu / dt(self.batch_size)
        self.dgamma = dgamma
        self.dbeta = dbeta
        return dx


class Convolution:
    def __init__(self, W, b, stride=1, pad=0):
        self.W = W
        self.b = b
        self.stride = stride
        self.pad = pad
        self.x = None
        self.dW = None
        self.db = None

    def forward(self, x):
        self.x = x
        return conv2d(x, self.W, self.b, self.stride, self.pad)

    def backward(self, dout):
        dx, self.dW, self.db = conv2d_backward(dout, self.x, self.W, self.stride, self.pad)
        return dx


class Pooling:
    def __init__(self, pool_h, pool_w, stride=2, pad=0):
        self.pool_h = pool_h
        self.pool_w = pool_w
        self.stride = stride
        self.pad = pad
        self.x = None
        self.arg_max = None

    def forward(self, x):
        self.x = x
        out, self.arg_max = max_pool2d(x, self.pool_h, self.pool_w, self.stride, self.pad)
        return out

    def backward(self, dout):
        return max_pool2d_backward(dout, self.arg_max, self.x.shape, self.pool_h,
                                   self.pool_w, self.stride, self.pad)
