"""The layers' elementwise passes in plain NumPy, as the book writes them
(common/layers.py, common/functions.py): ReLU, dropout, softmax + cross-entropy.

Same names as :mod:`fastconv.functional.elementwise`, on labels that are already checked:
``t`` holds int64 class indices (N,) or dense rows (N, K). Results keep the input dtype.
"""
import numpy as np

#: ``log(y + 1e-7)``: the book's constant in cross_entropy_error (common/functions.py).
XENT_EPS = 1e-7


def relu_forward(x):
    """``(out, mask)``: ``x`` where ``x > 0`` else 0 (NaN stays NaN), and ``x <= 0``."""
    mask = x <= 0
    return np.where(mask, x.dtype.type(0), x), mask


def relu_backward(dout, mask):
    """``dout`` with the positions of ``mask`` zeroed (inf and NaN there too)."""
    return np.where(mask, dout.dtype.type(0), dout)


def dropout_apply(x, mask):
    """``x * mask``: a product, so NaN and inf where dropped stay NaN."""
    return x * mask


def softmax_cross_entropy(x, t, eps=XENT_EPS):
    """``(loss, y)``: the row softmax ``y`` of ``x`` (N, K), max subtracted first, and
    ``-sum(log(y[i, t_i] + eps)) / N`` in ``x``'s dtype (one-hot ``t`` read by argmax)."""
    idx = t.argmax(axis=1) if t.ndim == 2 else t
    n = x.shape[0]
    e = np.exp(x - x.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    loss = -np.sum(np.log(y[np.arange(n), idx] + x.dtype.type(eps))) / x.dtype.type(n)
    return loss, y


def softmax_cross_entropy_backward(y, t, scale):
    """``(y - onehot(t)) * scale``: dense ``t`` used as given, class indices as one-hot rows."""
    if t.ndim == 2:
        dx = y - t.astype(y.dtype, copy=False)
    else:
        dx = y.copy()
        dx[np.arange(y.shape[0]), t] -= y.dtype.type(1)
    dx *= y.dtype.type(scale)
    return dx
