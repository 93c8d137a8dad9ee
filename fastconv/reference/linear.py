"""The fully connected layer in plain NumPy: the book's ``Affine`` (common/layers.py),
rewritten here, with the optional ReLU of :func:`fastconv.linear`.

float16 is computed in float32 and the result cast back.
"""
import numpy as np


def _compute_dtype(*arrays):
    dt = np.result_type(*arrays)
    return np.dtype(np.float32) if dt == np.float16 else dt


def linear(x, W, b=None, relu=False):
    """``x.reshape(N, -1) @ W + b``, then ``max(., 0)`` when ``relu``.

    Parameters
    ----------
    x : ndarray of shape (N, ...)
        Flattened to (N, D) with D = ``W.shape[0]``.
    W : ndarray of shape (D, M)
    b : None or ndarray of shape (M,)
    relu : bool

    Returns
    -------
    out : ndarray of shape (N, M), dtype ``np.result_type(x, W, b)``
    """
    args = (x, W) if b is None else (x, W, b)
    dt = _compute_dtype(*args)
    out = np.dot(x.reshape(x.shape[0], -1).astype(dt), W.astype(dt))
    if b is not None:
        out += b.astype(dt)
    if relu:
        out = np.maximum(out, 0)
    return out.astype(np.result_type(*args), copy=False)


def linear_backward(dout, x, W, *, relu_out=None):
    """Gradients of :func:`linear`.

    Parameters
    ----------
    dout : ndarray of shape (N, M)
        Gradient of the loss with respect to the output of :func:`linear`.
    x : ndarray of shape (N, ...)
    W : ndarray of shape (D, M)
    relu_out : None or ndarray of shape (N, M)
        The forward output when it ran with ``relu=True``: ``dout`` is zeroed where it is
        ``<= 0`` (the book's ``Relu.backward``). None when the forward had no ReLU.

    Returns
    -------
    dx : ndarray shaped like ``x``
    dW : ndarray of shape (D, M)
    db : ndarray of shape (M,)
        All in dtype ``np.result_type(dout, x, W)``.
    """
    dt_out = np.result_type(dout, x, W)
    dt = _compute_dtype(dout, x, W)
    d = dout.astype(dt)
    if relu_out is not None:
        d = np.where(relu_out <= 0, 0, d).astype(dt, copy=False)
    x2 = x.reshape(x.shape[0], -1).astype(dt)
    dx = np.dot(d, W.astype(dt).T).reshape(x.shape)
    dW = np.dot(x2.T, d)
    db = np.sum(d, axis=0)
    return dx.astype(dt_out, copy=False), dW.astype(dt_out, copy=False), db.astype(dt_out, copy=False)
