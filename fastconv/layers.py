"""The book's layers ("Deep Learning from Scratch", common/layers.py) on fastconv's ops:
a book-style net runs on them by changing one import.

Same constructors, attribute names and ``forward``/``backward`` (and ``train_flg``)
behaviour as the book; :mod:`fastconv.reference.layers` is the plain-NumPy ground truth
they are tested against. Each call runs on the current backend (:func:`fastconv.set_backend`,
:func:`fastconv.use_backend`); the constructors take no ``backend=`` so that they keep
the book's signatures.

What runs where:

* ``Convolution``, ``Pooling`` and ``Affine`` call :func:`fastconv.conv2d`,
  :func:`fastconv.max_pool2d` and :func:`fastconv.linear` and their backward functions.
  ``Convolution`` and ``Affine`` take ``relu=True`` to fuse the ReLU that follows them
  (the backward masks the gradient with ``out > 0``, as the book's ``Relu``), and
  ``Convolution(need_dx=False)`` skips the input gradient of a net's first layer.
* ``GlobalAvgPool`` (not in the book: MobileNet/ResNet heads) calls
  :func:`fastconv.global_avg_pool2d` and its backward.
* ``Relu``, ``Dropout`` and ``SoftmaxWithLoss`` run fused one-pass kernels
  (:mod:`fastconv.functional.elementwise`; the measurements are there).
* ``Sigmoid`` and ``BatchNormalization`` are NumPy on every backend (BatchNormalization's
  backward in the closed form of the book's computational graph).

None of them uses :mod:`fastconv.reference.layers`, the ground truth they are tested
against.

Differences from the book (shared with :mod:`fastconv.reference.layers`):

* dtypes are kept end to end: a float32 net stays float32 (the book's constants and
  BatchNormalization's float64 running statistics would otherwise promote it).
* ``Relu.backward`` and ``Dropout.backward`` return new arrays; the book's Relu zeroes
  ``dout`` in place.
* ``SoftmaxWithLoss.backward(dout)`` scales by ``dout`` (the book ignores it; they agree
  for ``dout=1``, the book's only use).
* ``SoftmaxWithLoss`` reads an (N, 1) label as class indices for every N (the book's
  indexing picks N x N entries from it when N > 1) and with one class, K == 1 (the book
  reads it as one-hot there), and takes float class indices that are whole numbers.
  For one sample of scores (K,) its backward divides by 1, not by the book's
  ``t.shape[0]`` (K for a one-hot row; an index label fails there in the book).
* ``Convolution`` keeps ``x`` for backward instead of the book's ``col``/``col_W``;
  ``Pooling.arg_max`` has fastconv's layout: per output cell (N, C, OH, OW), the winning
  position inside its window.
* ``Dropout`` draws its mask with ``np.random.rand`` like the book, so
  ``np.random.seed`` reproduces the book's masks, unless it is given its own ``rng``.
* Bad input raises ``TypeError``/``ValueError`` saying what was expected; ``backward``
  before ``forward`` raises ``RuntimeError``.
"""
import numbers

import numpy as np

from . import _validation as v
from .functional import conv2d, conv2d_backward, linear, linear_backward
from .functional import global_avg_pool2d, global_avg_pool2d_backward
from .functional import max_pool2d, max_pool2d_backward
from .functional import elementwise as ew

__all__ = ["Relu", "Sigmoid", "Affine", "SoftmaxWithLoss", "Dropout", "BatchNormalization",
           "Convolution", "Pooling", "GlobalAvgPool"]


def _layer_repr(layer, *names):
    """``Name(W: float32 (16, 1, 3, 3), stride=1, ...)``: arrays as dtype and shape,
    other attributes as their repr."""
    parts = []
    for name in names:
        value = getattr(layer, name)
        parts.append(f"{name}: {value.dtype} {value.shape}" if isinstance(value, np.ndarray)
                     else f"{name}={value!r}")
    return f"{type(layer).__name__}({', '.join(parts)})"


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

    def __repr__(self):
        return _layer_repr(self)

    def forward(self, x):
        """x : float ndarray of any shape -> ndarray of the same shape and dtype."""
        out, self.mask = ew.relu_forward(x)
        return out

    def backward(self, dout):
        """dout : ndarray shaped like the input -> dx (a new array; ``dout`` is kept)."""
        _need_forward(self, "mask")
        return ew.relu_backward(dout, self.mask)


class Sigmoid:
    """``1 / (1 + exp(-x))``; ``out`` kept for backward (NumPy on every backend)."""

    def __init__(self):
        self.out = None

    def __repr__(self):
        return _layer_repr(self)

    def forward(self, x):
        """x : float ndarray of any shape -> ndarray of the same shape and dtype."""
        v.check_array(x, "x", "Sigmoid.forward")
        one = x.dtype.type(1)
        self.out = one / (one + np.exp(-x))
        return self.out

    def backward(self, dout):
        """dout : ndarray shaped like the input -> dx = dout * (1 - out) * out."""
        _need_forward(self, "out")
        v.check_array(dout, "dout", "Sigmoid.backward")
        v.check_shape(dout, self.out.shape, "dout", "Sigmoid.backward",
                      "pass the gradient of the forward output")
        return dout * (self.out.dtype.type(1) - self.out) * self.out


class Affine:
    """Fully connected layer ``x.reshape(N, -1) @ W + b`` (:func:`fastconv.linear`).

    Parameters
    ----------
    W : ndarray of shape (D, M)
    b : ndarray of shape (M,)
    relu : bool, keyword
        Fuse the ReLU that follows (``max(., 0)`` in the output pass).

    Attributes
    ----------
    x : ndarray of shape (N, D)
        The last input, flattened.
    original_x_shape : tuple
    dW, db : ndarray
        Gradients from the last backward.
    """

    def __init__(self, W, b, *, relu=False):
        self.W, self.b, self.relu = W, b, relu
        self.x = self.original_x_shape = self.out = self.dW = self.db = None

    def __repr__(self):
        return _layer_repr(self, "W", "b", "relu")

    def forward(self, x):
        """x : ndarray of shape (N, ...) with D elements per sample -> (N, M)."""
        v.check_array(x, "x", "Affine.forward")
        self.original_x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        self.out = linear(self.x, self.W, self.b, relu=self.relu)
        return self.out

    def backward(self, dout):
        """dout : ndarray of shape (N, M) -> dx shaped like the forward input."""
        _need_forward(self, "x")
        dx, self.dW, self.db = linear_backward(dout, self.x, self.W,
                                               relu_out=self.out if self.relu else None)
        return dx.reshape(*self.original_x_shape)


def _one_sample(t, K):
    """The label of one sample of K scores, as the label of a batch of one."""
    if not isinstance(t, np.ndarray):
        return t  # softmax_cross_entropy names the type
    if t.size == 1:
        return t.reshape(1)
    if t.shape in ((K,), (1, K)):
        return t.reshape(1, K)
    raise ValueError(
        f"SoftmaxWithLoss.forward: x is one sample of {K} scores, shape ({K},), so t must "
        f"be its class index (a scalar, shape (1,) or (1, 1)) or its one-hot row of shape "
        f"({K},), got shape {t.shape}; for a batch, pass x of shape (N, {K})"
    )


class SoftmaxWithLoss:
    """Softmax followed by the mean cross-entropy loss.

    The labels ``t`` take each form the book's code passes:

    * class indices of shape (N,) or (N, 1), of an integer dtype or a float dtype holding
      whole numbers (an (N, 1) ``t`` is class indices for every N, N == 1 included);
    * one-hot rows of shape (N, K), K > 1 (used as given in backward: ``(y - t) / N``);
    * for one sample of scores ``x`` of shape (K,), as the book's ``cross_entropy_error``
      allows: its class index (a scalar, shape (1,) or (1, 1)) or its one-hot row (K,);
      ``y`` and ``dx`` then have shape (K,).

    With one class (K == 1) a label of shape (N, 1) equals the scores' shape; it is read
    as class indices all the same, so its entries must be 0 (the only class). The book
    reads it as one-hot: its loss is the same, but for a column of zeros its dx is
    ``1 / N`` where the derivative of the (constant) loss is the 0 returned here; a
    column of ones, the one-hot form, is a ValueError here.

    A label of another shape, a class index outside [0, K) or a float index that is not a
    whole number raises ValueError, saying what was expected.

    Attributes
    ----------
    loss : scalar of the input's dtype
    y : ndarray shaped like the scores, (N, K) or (K,)
        The softmax output.
    t : ndarray
        The labels as given.
    """

    def __init__(self):
        self.loss = None
        self.y = None
        self.t = None

    def __repr__(self):
        return _layer_repr(self)

    def forward(self, x, t):
        """x : (N, K) scores (or (K,), one sample), t : labels in a form above -> the loss."""
        if isinstance(x, np.ndarray) and x.ndim == 1:
            self.loss, y = ew.softmax_cross_entropy(x[np.newaxis], _one_sample(t, x.shape[0]))
            self.y = y[0]
        else:
            self.loss, self.y = ew.softmax_cross_entropy(x, t)
        self.t = t
        return self.loss

    def backward(self, dout=1):
        """dx = (y - onehot(t)) * dout / N, shaped like the scores."""
        _need_forward(self, "y")
        if self.y.ndim == 1:
            return ew.softmax_cross_entropy_backward(
                self.y[np.newaxis], _one_sample(self.t, self.y.shape[0]), dout)[0]
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
    rng : None, int or np.random.Generator, keyword
        None draws with ``np.random.rand`` (the book's global state); otherwise the masks
        come from this generator (an int seeds one), in float32 for float32 input.
    """

    def __init__(self, dropout_ratio=0.5, *, rng=None):
        if isinstance(dropout_ratio, bool) or not isinstance(dropout_ratio, numbers.Real):
            raise TypeError(
                f"Dropout: dropout_ratio must be a real number in [0, 1], got "
                f"{type(dropout_ratio).__name__}"
            )
        if not 0 <= dropout_ratio <= 1:
            raise ValueError(f"Dropout: dropout_ratio must lie in [0, 1], got {dropout_ratio}")
        self.dropout_ratio = dropout_ratio
        self.rng = None if rng is None else np.random.default_rng(rng)
        self.mask = None

    def __repr__(self):
        return _layer_repr(self, "dropout_ratio")

    def forward(self, x, train_flg=True):
        """x : float ndarray of any shape -> ndarray of the same shape and dtype."""
        v.check_array(x, "x", "Dropout.forward")
        if train_flg:
            if self.rng is None:
                draw = np.random.rand(*x.shape)
            else:
                draw = self.rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32
                                       else np.float64)
            self.mask = draw > self.dropout_ratio
            return ew.dropout_apply(x, self.mask)
        return x * x.dtype.type(1.0 - self.dropout_ratio)

    def backward(self, dout):
        """dout : ndarray shaped like the input -> dout * mask (a new array)."""
        _need_forward(self, "mask")
        return ew.dropout_apply(dout, self.mask)


class BatchNormalization:
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

    #: Added to the variance before the square root (the book's 10e-7).
    EPS = 10e-7

    def __init__(self, gamma, beta, momentum=0.9, running_mean=None, running_var=None):
        self.gamma, self.beta, self.momentum = gamma, beta, momentum
        self.running_mean, self.running_var = running_mean, running_var
        self.input_shape = self.xc = self.xn = self.std = None
        self.dgamma = self.dbeta = None

    def __repr__(self):
        return _layer_repr(self, "gamma", "beta", "momentum", "running_mean", "running_var")

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
        self.input_shape = x.shape
        x2 = x.reshape(x.shape[0], -1)
        dt = x.dtype.type
        if train_flg:
            if self.running_mean is None:
                self.running_mean = np.zeros(D, dtype=x.dtype)
                self.running_var = np.zeros(D, dtype=x.dtype)
            mu = x2.mean(axis=0)
            self.xc = x2 - mu
            var = np.mean(self.xc ** 2, axis=0)
            self.std = np.sqrt(var + dt(self.EPS))
            self.xn = self.xc / self.std
            mom = dt(self.momentum)
            self.running_mean = mom * self.running_mean + (dt(1) - mom) * mu
            self.running_var = mom * self.running_var + (dt(1) - mom) * var
            xn = self.xn
        else:
            xn = (x2 - self.running_mean) / np.sqrt(self.running_var + dt(self.EPS))
        return (self.gamma * xn + self.beta).reshape(x.shape)

    def backward(self, dout):
        """dout : ndarray shaped like the training input, or flattened to (N, D) as the
        book's backward also takes it -> dx shaped like the training input."""
        _need_forward(self, "xc")
        op = "BatchNormalization.backward"
        v.check_array(dout, "dout", op)
        if dout.shape != self.xc.shape:
            v.check_shape(dout, self.input_shape, "dout", op, "pass the gradient of the "
                          f"output of the last training forward, or that flattened to "
                          f"{self.xc.shape}")
        d = dout.reshape(dout.shape[0], -1)
        self.dbeta = d.sum(axis=0)
        self.dgamma = np.sum(self.xn * d, axis=0)
        # The book's graph (through xc, std, var and mu) collapsed: with g = gamma*dout,
        # dx = (g - mean(g) - xn * mean(g * xn)) / std, per feature.
        g = self.gamma * d
        dx = (g - g.mean(axis=0) - self.xn * np.mean(g * self.xn, axis=0)) / self.std
        return dx.astype(dout.dtype, copy=False).reshape(self.input_shape)


class Convolution:
    """2-D convolution layer (:func:`fastconv.conv2d`).

    Parameters
    ----------
    W : ndarray of shape (FN, C, KH, KW)
    b : ndarray of shape (FN,)
    stride, pad : int or (h, w) pair
    relu : bool, keyword
        Fuse the ReLU that follows (``conv2d(..., relu=True)``).
    need_dx : bool, keyword
        False for a net's first layer: ``backward`` returns None instead of the input
        gradient, which nothing would use.

    Attributes
    ----------
    x : ndarray of shape (N, C, H, W)
        The last input (what backward needs).
    dW, db : ndarray
        Gradients from the last backward.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.layers import Convolution
    >>> conv = Convolution(np.ones((2, 1, 3, 3)), np.zeros(2), pad=1)
    >>> y = conv.forward(np.ones((1, 1, 4, 4)))
    >>> y[0, 0]                              # how many of each window's taps are inside
    array([[4., 6., 6., 4.],
           [6., 9., 9., 6.],
           [6., 9., 9., 6.],
           [4., 6., 6., 4.]])
    >>> dx = conv.backward(np.ones_like(y))
    >>> conv.db, conv.dW.shape, dx.shape
    (array([16., 16.]), (2, 1, 3, 3), (1, 1, 4, 4))
    """

    def __init__(self, W, b, stride=1, pad=0, *, relu=False, need_dx=True):
        self.W, self.b, self.stride, self.pad = W, b, stride, pad
        self.relu, self.need_dx = relu, need_dx
        self.x = self.out = self.dW = self.db = None

    def __repr__(self):
        return _layer_repr(self, "W", "b", "stride", "pad", "relu", "need_dx")

    def forward(self, x):
        """x : (N, C, H, W) -> (N, FN, OH, OW)."""
        self.out = conv2d(x, self.W, self.b, self.stride, self.pad, relu=self.relu)
        self.x = x
        return self.out

    def backward(self, dout):
        """dout : (N, FN, OH, OW) -> dx : (N, C, H, W), or None without ``need_dx``;
        sets dW and db."""
        _need_forward(self, "x")
        dx, self.dW, self.db = conv2d_backward(
            dout, self.x, self.W, self.stride, self.pad, need_dx=self.need_dx,
            relu_out=self.out if self.relu else None)
        return dx


class Pooling:
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

    def __init__(self, pool_h, pool_w, stride=2, pad=0):
        self.pool_h, self.pool_w, self.stride, self.pad = pool_h, pool_w, stride, pad
        self.x = self.arg_max = None

    def __repr__(self):
        return _layer_repr(self, "pool_h", "pool_w", "stride", "pad")

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


class GlobalAvgPool:
    """Global average pooling (:func:`fastconv.global_avg_pool2d`): the mean of each
    channel, a ResNet or MobileNet head before the last ``Affine``. Not in the book.

    Attributes
    ----------
    x_shape : tuple (N, C, H, W)
        The last input's shape.
    """

    def __init__(self):
        self.x_shape = None

    def __repr__(self):
        return _layer_repr(self)

    def forward(self, x):
        """x : (N, C, H, W) -> (N, C, 1, 1)."""
        out = global_avg_pool2d(x)
        self.x_shape = x.shape
        return out

    def backward(self, dout):
        """dout : (N, C, 1, 1) -> dx : (N, C, H, W)."""
        _need_forward(self, "x_shape")
        return global_avg_pool2d_backward(dout, self.x_shape)
