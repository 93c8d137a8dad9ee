"""2-D convolution forward and backward in plain NumPy: the book's im2col algorithm
("Deep Learning from Scratch", common/layers.py, ``Convolution``), rewritten here as
functions.

Forward: ``col = im2col(x)`` (N*OH*OW, C*KH*KW), ``out = col @ W.reshape(FN, -1).T + b``,
reshaped to (N, OH, OW, FN) and transposed to NCHW. Backward: ``db`` sums ``dout`` over
(N, OH, OW), ``dW = col.T @ dout_rows``, ``dx = col2im(dout_rows @ W_rows)``.
"""
import numpy as np

from .._validation import out_size
from .im2col import _pair, col2im, im2col


def _rows(W):
    return W.reshape(W.shape[0], -1)


def _non_finite_quiet():
    """No 'invalid value' warning from the products: with inf in the input they compute
    inf * 0 (a zero weight, or zeros a BLAS may pad its blocks with, which warn even
    where the result holds no NaN); the NaN that comes out is the result defined for such
    input, and the compiled kernels do not warn either."""
    return np.errstate(invalid="ignore")


def conv2d(x, W, b=None, stride=1, pad=0, relu=False):
    """Cross-correlate a batch of images with a bank of filters (the book's "convolution").

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    W : ndarray of shape (FN, C, KH, KW)
    b : ndarray of shape (FN,) or None
    stride, pad : int or (h, w) pair
    relu : bool
        Apply ``max(0, .)`` to the result.

    Returns
    -------
    out : ndarray of shape (N, FN, OH, OW)
        ``OH = (H + 2*pad_h - KH) // stride_h + 1``, likewise ``OW``.
    """
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    N, _, H, Wd = x.shape
    FN, _, KH, KW = W.shape
    OH, OW = out_size(H, KH, sh, ph), out_size(Wd, KW, sw, pw)
    col = im2col(x, KH, KW, (sh, sw), (ph, pw))
    with _non_finite_quiet():
        out = col @ _rows(W).T
        if b is not None:
            out += b
    if relu:
        np.maximum(out, 0, out=out)
    return out.reshape(N, OH, OW, FN).transpose(0, 3, 1, 2)


def conv2d_backward(dout, x, W, stride=1, pad=0, need_dx=True, relu_out=None):
    """Gradients of :func:`conv2d` with respect to x, W and b.

    Parameters
    ----------
    dout : ndarray of shape (N, FN, OH, OW)
        Gradient of the loss with respect to the convolution's output.
    x : ndarray of shape (N, C, H, W)
        The forward input.
    W : ndarray of shape (FN, C, KH, KW)
    stride, pad : int or (h, w) pair
    need_dx : bool
        False skips the input gradient and returns None for it (a net's first layer).
    relu_out : ndarray of shape (N, FN, OH, OW) or None
        The output of a ``relu=True`` forward: ``dout`` is first zeroed where it is
        ``<= 0`` (the book's ``Relu.backward``). None: the forward had no ReLU.

    Returns
    -------
    dx : ndarray of shape (N, C, H, W), or None when ``need_dx`` is False
    dW : ndarray of shape (FN, C, KH, KW)
    db : ndarray of shape (FN,)
    """
    FN, C, KH, KW = W.shape
    if relu_out is not None:
        dout = np.where(relu_out <= 0, 0, dout).astype(dout.dtype, copy=False)
    rows = dout.transpose(0, 2, 3, 1).reshape(-1, FN)
    db = np.sum(rows, axis=0)
    col = im2col(x, KH, KW, stride, pad)
    with _non_finite_quiet():
        dW = (col.T @ rows).T.reshape(FN, C, KH, KW)
        dx = None
        if need_dx:
            dx = col2im(rows @ _rows(W), x.shape, KH, KW, stride, pad)
    return dx, dW, db
