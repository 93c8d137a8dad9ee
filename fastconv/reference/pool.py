"""Max and average pooling in plain NumPy: the book's algorithm ("Deep Learning from
Scratch", common/layers.py ``Pooling``), rewritten here on :mod:`.im2col`; global and
adaptive average pooling (not in the book) follow PyTorch's definitions, one slice per bin.

Forward: im2col, one row per (image, output pixel, channel) window, then ``argmax`` /
``max`` (or ``mean``) along the row. Backward: scatter ``dout`` into a matrix of window
rows, then col2im sums the overlaps.

Differences from the book, each made to match the public contract:

* ``argmax`` is returned shaped (N, C, OH, OW) (the book keeps it flat in
  (N, OH, OW, C) order).
* With ``pad > 0`` padded cells never win (PyTorch's rule); the book pads with zeros, so
  a zero pad beats an all-negative window. Without padding the code is the book's.
* NaN propagates: ``np.max`` returns NaN for a window holding one and ``np.argmax``
  returns the first NaN's position.
* float16 is computed in float32 and the result cast back.
"""
import numpy as np

from .._validation import out_size
from .im2col import _pair, col2im, im2col


def _geometry(x_shape, pool_h, pool_w, stride, pad):
    stride = (pool_h, pool_w) if stride is None else _pair(stride)
    pad = _pair(pad)
    N, C, H, W = x_shape
    OH, OW = out_size(H, pool_h, stride[0], pad[0]), out_size(W, pool_w, stride[1], pad[1])
    return stride, pad, OH, OW


def _compute_dtype(dtype):
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def _backward(dout, x_shape, pool_h, pool_w, stride, pad, spread):
    """The backward passes' frame: ``spread(d, K)`` turns ``dout``, flat in (N, OH, OW, C)
    order and in the compute dtype, into one row of K window cells per value, which
    col2im sums into ``dx``."""
    stride, pad, OH, OW = _geometry(x_shape, pool_h, pool_w, stride, pad)
    d = dout.astype(_compute_dtype(dout.dtype), copy=False).transpose(0, 2, 3, 1).ravel()
    dcol = spread(d, pool_h * pool_w).reshape(x_shape[0] * OH * OW, -1)
    return col2im(dcol, x_shape, pool_h, pool_w, stride, pad).astype(dout.dtype)


def max_pool2d(x, pool_h, pool_w, stride=None, pad=0):
    """Max pooling with the winner's position.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    pool_h, pool_w : int
        Window size.
    stride : None, int or (h, w) pair
        None means the window size.
    pad : int or (h, w) pair
        Padding; padded cells never win.

    Returns
    -------
    out : ndarray of shape (N, C, OH, OW), dtype of ``x``
    argmax : ndarray of int32, shape (N, C, OH, OW)
        Winning position inside each window, row-major ``ky*pool_w + kx``; ties go to the
        first, a window holding NaN points at its first NaN.
    """
    stride, pad, OH, OW = _geometry(x.shape, pool_h, pool_w, stride, pad)
    N, C = x.shape[:2]
    K = pool_h * pool_w
    xc = x.astype(_compute_dtype(x.dtype), copy=False)
    col = im2col(xc, pool_h, pool_w, stride, pad).reshape(-1, K)
    if pad == (0, 0):
        arg = np.argmax(col, axis=1)
        out = np.max(col, axis=1)
    else:
        valid = im2col(np.ones((1, 1) + x.shape[2:], dtype=np.int8), pool_h, pool_w,
                       stride, pad).astype(bool)
        valid = np.broadcast_to(valid.reshape(1, OH * OW, 1, K), (N, OH * OW, C, K)).reshape(-1, K)
        col = np.where(valid, col, -np.inf).astype(col.dtype, copy=False)
        out = np.max(col, axis=1)
        # First valid cell equal to the max (an all -inf window must not pick a padded
        # cell), or the first NaN.
        hit = valid & ((col == out[:, None]) | np.isnan(col))
        arg = np.argmax(hit, axis=1)
    out = out.reshape(N, OH, OW, C).transpose(0, 3, 1, 2).astype(x.dtype)
    arg = arg.reshape(N, OH, OW, C).transpose(0, 3, 1, 2).astype(np.int32)
    return out, arg


def max_pool2d_backward(dout, argmax, x_shape, pool_h, pool_w, stride=None, pad=0):
    """Gradient of :func:`max_pool2d`: ``dout`` routed to each window's winner, summed
    where windows overlap.

    Parameters
    ----------
    dout : ndarray of shape (N, C, OH, OW)
    argmax : integer ndarray of shape (N, C, OH, OW)
        As returned by :func:`max_pool2d`.
    x_shape : tuple (N, C, H, W)
    pool_h, pool_w, stride, pad : as for :func:`max_pool2d`

    Returns
    -------
    dx : ndarray of shape ``x_shape``, dtype of ``dout``
    """
    arg = argmax.transpose(0, 2, 3, 1).ravel()

    def to_winner(d, K):
        dmax = np.zeros((d.size, K), dtype=d.dtype)
        dmax[np.arange(d.size), arg] = d
        return dmax

    return _backward(dout, x_shape, pool_h, pool_w, stride, pad, to_winner)


def avg_pool2d(x, pool_h, pool_w, stride=None, pad=0):
    """Average pooling; padded cells count as zeros and every window divides by
    ``pool_h * pool_w`` (PyTorch's default ``count_include_pad=True``).

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    pool_h, pool_w, stride, pad : as for :func:`max_pool2d`

    Returns
    -------
    out : ndarray of shape (N, C, OH, OW), dtype of ``x``
    """
    stride, pad, OH, OW = _geometry(x.shape, pool_h, pool_w, stride, pad)
    N, C = x.shape[:2]
    xc = x.astype(_compute_dtype(x.dtype), copy=False)
    col = im2col(xc, pool_h, pool_w, stride, pad).reshape(-1, pool_h * pool_w)
    out = np.mean(col, axis=1)
    return out.reshape(N, OH, OW, C).transpose(0, 3, 1, 2).astype(x.dtype)


def avg_pool2d_backward(dout, x_shape, pool_h, pool_w, stride=None, pad=0):
    """Gradient of :func:`avg_pool2d`: each ``dout`` cell spread evenly over its window
    (``/ (pool_h*pool_w)``), summed where windows overlap; padded cells are dropped.

    Parameters
    ----------
    dout : ndarray of shape (N, C, OH, OW)
    x_shape : tuple (N, C, H, W)
    pool_h, pool_w, stride, pad : as for :func:`max_pool2d`

    Returns
    -------
    dx : ndarray of shape ``x_shape``, dtype of ``dout``
    """
    return _backward(dout, x_shape, pool_h, pool_w, stride, pad,
                     lambda d, K: np.repeat((d / K)[:, None], K, axis=1))


def _bins(size, out):
    """PyTorch's adaptive bins along one axis: bin ``i`` covers ``[floor(i*size/out),
    ceil((i+1)*size/out))``; bins overlap where ``out`` does not divide ``size``."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def global_avg_pool2d(x):
    """Mean of each (image, channel) plane.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)

    Returns
    -------
    out : ndarray of shape (N, C, 1, 1), dtype of ``x``
    """
    xc = x.astype(_compute_dtype(x.dtype), copy=False)
    return xc.mean(axis=(2, 3), keepdims=True).astype(x.dtype)


def global_avg_pool2d_backward(dout, x_shape):
    """Gradient of :func:`global_avg_pool2d`: ``dout / (H*W)`` on every cell of its plane.

    Parameters
    ----------
    dout : ndarray of shape (N, C, 1, 1)
    x_shape : tuple (N, C, H, W)

    Returns
    -------
    dx : ndarray of shape ``x_shape``, dtype of ``dout``
    """
    d = dout.astype(_compute_dtype(dout.dtype), copy=False)
    dx = np.broadcast_to(d / (x_shape[2] * x_shape[3]), x_shape)
    return dx.astype(dout.dtype)


def adaptive_avg_pool2d(x, output_size):
    """Mean over PyTorch's adaptive bins: output row ``i`` averages input rows
    ``floor(i*H/OH)`` to ``ceil((i+1)*H/OH) - 1``, likewise columns.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    output_size : int or (OH, OW) pair

    Returns
    -------
    out : ndarray of shape (N, C, OH, OW), dtype of ``x``
    """
    OH, OW = _pair(output_size)
    N, C, H, W = x.shape
    xc = x.astype(_compute_dtype(x.dtype), copy=False)
    out = np.empty((N, C, OH, OW), dtype=xc.dtype)
    for i, (ys, ye) in enumerate(_bins(H, OH)):
        for j, (xs, xe) in enumerate(_bins(W, OW)):
            out[:, :, i, j] = xc[:, :, ys:ye, xs:xe].mean(axis=(2, 3))
    return out.astype(x.dtype)


def adaptive_avg_pool2d_backward(dout, x_shape, output_size):
    """Gradient of :func:`adaptive_avg_pool2d`: each ``dout`` cell divided by its bin's
    area and added to the bin's cells, summed where bins overlap.

    Parameters
    ----------
    dout : ndarray of shape (N, C, OH, OW)
    x_shape : tuple (N, C, H, W)
    output_size : int or (OH, OW) pair

    Returns
    -------
    dx : ndarray of shape ``x_shape``, dtype of ``dout``
    """
    OH, OW = _pair(output_size)
    d = dout.astype(_compute_dtype(dout.dtype), copy=False)
    dx = np.zeros(x_shape, dtype=d.dtype)
    for i, (ys, ye) in enumerate(_bins(x_shape[2], OH)):
        for j, (xs, xe) in enumerate(_bins(x_shape[3], OW)):
            dx[:, :, ys:ye, xs:xe] += d[:, :, i:i + 1, j:j + 1] / ((ye - ys) * (xe - xs))
    return dx.astype(dout.dtype)
