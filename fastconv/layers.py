"""The book's layers ("Deep Learning from Scratch", common/layers.py) on fastconv's ops:
a book-style net runs on them by changing one import.

Same constructors, attribute names and ``forward``/``backward`` (and ``train_flg``)
behaviour as the book; :mod:`fastconv.reference.layers` is the plain-NumPy ground truth
they are tested against. Each call runs on the current backend (:func:`fastconv.set_backend`,
:func:`fastconv.use_backend`); the constructors take no ``backend=`` so that they keep
the book's signatures.

What runs where:

* ``Convolution``, ``Pooling`` and ``Affine`` call :func:`fastconv.conv2d`,
  :func:`fastconv.max_pool2d` and :func:`fastconv.linear` and their backward functions
  (they inherit only their constructors from :mod:`fastconv.reference.layers`).
* ``Relu``, ``Dropout`` and ``SoftmaxWithLoss`` run fused one-pass kernels
  (:mod:`fastconv.functional.elementwise`; the measurements are there).
* ``Sigmoid`` and ``BatchNormalization`` run the book's NumPy formulas on every backend.

Differences from the book (shared with :mod:`fastconv.reference.layers`):

* dtypes are kept end to end: a float32 net stays float32 (the book's constants and
  BatchNormalization's float64 running statistics would otherwise promote it).
* ``Relu.backward`` and ``Dropout.backward`` return new arrays; the book's Relu zeroes
  ``dout`` in place.
* ``SoftmaxWithLoss.backward(dout)`` scales by ``dout`` (the book ignores it; they agree
  for ``dout=1``, the book's only use).
* ``Convolution`` keeps ``x`` for backward instead of the book's ``col``/``col_W``;
  ``Pooling.arg_max`` has fastconv's layout: per output cell (N, C, OH, OW), the winning
  position inside its window.
* ``Dropout`` draws its mask with ``np.random.rand`` like the book, so
  ``np.random.seed`` reproduces the book's masks.
* Bad input raises ``TypeError``/``ValueError`` saying what was expected; ``backward``
  before ``forward`` raises ``RuntimeError``.
"""
import numbers

import numpy as np

from . import _validation as v
from .functional import conv2d, conv2d_backward, linear, linear_backward
from .functional import max_pool2d, max_pool2d_backward
from .functional import elementwise as ew
from .reference import layers as _ref

__all__ = ["Relu", "Sigmoid", "Affine", "SoftmaxWithLoss", "Dropout", "BatchNormalization",
           "Convolution", "Pooling"]


def _need_forward(layer, attr):
    if getattr(layer, attr) is None:
        raise RuntimeError(
            f"{type(layer).__name__}.backward called before forward; run forward first"
        )


class Relu:
    """``max(x, 0)``; ``mask`` holds ``x <= 0`` for backward.

    Attributes
    ----------
    mask : bool ndarray shaped like the last input, or None
    """

    def __init__(self):
        self.mask = None

    def forward(self, x):
        """x : float ndarray of any shape -> ndarray of the same shape and dtype."""
        out, self.mask = ew.relu_forward(x)
        return out

    def backward(self, dout):
        """dout : ndarray shaped like the input -> dx (a new array; ``dout`` is kept)."""
        _need_forward(self, "mask")
        return ew.relu_backward(dout, self.mask)


class Sigmoid(_ref.Sigmoid):
    """``1 / (1 + exp(-x))``; ``out`` kept for backward (NumPy on every backend)."""

    def forward(self, x):
        """x : float ndarray of any shape -> ndarray of the same shape and dtype."""
        v.check_array(x, "x", "Sigmoid.forward")
        return super().forward(x)

    def backward(self, dout):
        """dout : ndarray shaped like the input -> dx = dout * (1 - out) * out."""
        _need_forward(self, "out")
        v.check_array(dout, "dout", "Sigmoid.backward")
        v.check_shape(dout, self.out.shape, "dout", "Sigmoid.backward",
                      "pass the gradient of the forward output")
        return super().backward(dout)


class Affine(_ref.Affine):
    """Fully connected layer ``x.reshape(N, -1) @ W + b`` (:func:`fastconv.linear`).

    Parameters
    ----------
    W : ndarray of shape (D, M)
    b : ndarray of shape (M,)

    Attributes
    ----------
    x : ndarray of shape (N, D)
        The last input, flattened.
    original_x_shape : tuple
    dW, db : ndarray
        Gradients from the last backward.
    """

    def forward(self, x):
        """x : ndarray of shape (N, ...) with D elements per sample -> (N, M)."""
        v.check_array(x, "x", "Affine.forward")
        self.original_x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return linear(self.x, self.W, self.b)

    def backward(self, dout):
        """dout : ndarray of shape (N, M) -> dx shaped like the forward input."""
        _need_forward(self, "x")
        dx, self.dW, self.db = linear_backward(dout, self.x, self.W)
        return dx.reshape(*self.original_x_shape)


class SoftmaxWithLoss:
    """Softmax followed by the mean cross-entropy loss.

    Attributes
    ----------
    loss : scalar of the input's dtype
    y : ndarray of shape (N, K)
        The softmax output.
    t : ndarray of shape (N,) (class indices) or (N, K) (one-hot)
    """

    def __init__(self):
        self.loss = None
        self.y = None
        self.t = None

    def forward(self, x, t):
        """x : (N, K) scores, t : (N,) int labels or (N, K) one-hot -> the loss."""
        self.loss, self.y = ew.softmax_cross_entropy(x, t)
        self.t = t
        return self.loss

    def backward(self, dout=1):
        """dx = (y - t) * dout / N, of shape (N, K)."""
        _need_forward(self, "y")
        return ew.softmax_cross_entropy_backward(self.y, self.t, dout)


class Dropout:
    """Dropout as the book writes it (no rescaling in training).

    ``forward(x, train_flg=True)`` keeps each element where ``np.random.rand() >
    dropout_ratio`` (``mask``); with ``train_flg=False`` it returns
    ``x * (1 - dropout_ratio)``.

    Parameters
    ----------
    dropout_ratio : float
        In [0, 1].
    """

    def __init__(self, dropout_ratio=0.5):
        if isinstance(dropout_ratio, bool) or not isinstance(dropout_ratio, numbers.Real):
            raise TypeError(
                f"Dropout: dropout_ratio must be a real number in [0, 1], got "
                f"{type(dropout_ratio).__name__}"
            )
        if not 0 <= dropout_ratio <= 1:
            raise ValueError(f"Dropout: dropout_ratio must lie in [0, 1], got {dropout_ratio}")
        self.dropout_ratio = dropout_ratio
        self.mask = None

    def forward(self, x, train_flg=True):
        """x : float ndarray of any shape -> ndarray of the same shape and dtype."""
        v.check_array(x, "x", "Dropout.forward")
        if train_flg:
            self.mask = np.random.rand(*x.shape) > self.dropout_ratio
            return ew.dropout_apply(x, self.mask)
        return x * x.dtype.type(1.0 - self.dropout_ratio)

    def backward(self, dout):
        """dout : ndarray shaped like the input -> dout * mask (a new array)."""
        _need_forward(self, "mask")
        return ew.dropout_apply(dout, self.mask)


class BatchNormalization(_ref.BatchNormalization):
    """Batch normalization as the book writes it (NumPy on every backend).

    A 4-D input (N, C, H, W) is flattened to (N, C*H*W) and normalized per feature (the
    book's choice, not per channel), so ``gamma`` and ``beta`` have C*H*W entries.

    Parameters
    ----------
    gamma, beta : ndarray of shape (D,)
    momentum : float
        Running statistics: ``running = momentum * running + (1 - momentum) * batch``.
    running_mean, running_var : ndarray of shape (D,) or None
        None starts them at zeros of the input's dtype on the first forward.

    Attributes
    ----------
    dgamma, dbeta : ndarray of shape (D,)
        Gradients from the last backward.
    """

    def forward(self, x, train_flg=True):
        """x : ndarray of shape (N, D) or (N, C, H, W) -> same shape and dtype."""
        op = "BatchNormalization.forward"
        v.check_array(x, "x", op)
        if x.ndim not in (2, 4):
            raise ValueError(f"{op}: x is {x.ndim}-dimensional with shape {x.shape}; "
                             f"expected (N, D) or (N, C, H, W)")
        D = int(np.prod(x.shape[1:]))
        for name in ("gamma", "beta", "running_mean", "running_var"):
            a = getattr(self, name)
            if a is not None and np.size(a) != D:
                raise ValueError(
                    f"{op}: {name} has {np.size(a)} entries but x has {D} features per "
                    f"sample (shape {x.shape}); give {name} shape ({D},)"
                )
        if not train_flg and self.running_mean is None:
            raise RuntimeError(f"{op}: train_flg=False needs running statistics; run a "
                               f"training forward first or pass running_mean/running_var")
        return super().forward(x, train_flg)

    def backward(self, dout):
        """dout : ndarray shaped like the training input -> dx of that shape."""
        _need_forward(self, "xc")
        op = "BatchNormalization.backward"
        v.check_array(dout, "dout", op)
        v.check_shape(dout, self.input_shape, "dout", op, "pass the gradient of the "
                      "output of the last training forward")
        return super().backward(dout)


class Convolution(_ref.Convolution):
    """2-D convolution layer (:func:`fastconv.conv2d`).

    Parameters
    ----------
    W : ndarray of shape (FN, C, KH, KW)
    b : ndarray of shape (FN,)
    stride, pad : int or (h, w) pair

    Attributes
    ----------
    x : ndarray of shape (N, C, H, W)
        The last input (what backward needs).
    dW, db : ndarray
        Gradients from the last backward.
    """

    def forward(self, x):
        """x : (N, C, H, W) -> (N, FN, OH, OW)."""
        out = conv2d(x, self.W, self.b, self.stride, self.pad)
        self.x = x
        return out

    def backward(self, dout):
        """dout : (N, FN, OH, OW) -> dx : (N, C, H, W); sets dW and db."""
        _need_forward(self, "x")
        dx, self.dW, self.db = conv2d_backward(dout, self.x, self.W, self.stride, self.pad)
        return dx


class Pooling(_ref.Pooling):
    """Max pooling layer (:func:`fastconv.max_pool2d`).

    Parameters
    ----------
    pool_h, pool_w : int
    stride, pad : int or (h, w) pair

    Attributes
    ----------
    x : ndarray of shape (N, C, H, W)
        The last input.
    arg_max : integer ndarray of shape (N, C, OH, OW)
        Winning position inside each window (fastconv's layout, not the book's).
    """

    def forward(self, x):
        """x : (N, C, H, W) -> (N, C, OH, OW)."""
        out, self.arg_max = max_pool2d(x, self.pool_h, self.pool_w, self.stride, self.pad)
        self.x = x
        return out

    def backward(self, dout):
        """dout : (N, C, OH, OW) -> dx : (N, C, H, W)."""
        _need_forward(self, "arg_max")
        return max_pool2d_backward(dout, self.arg_max, self.x.shape, self.pool_h,
                                   self.pool_w, self.stride, self.pad)
