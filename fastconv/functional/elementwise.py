"""Elementwise passes of the layers, dispatched to a backend: ReLU forward with its mask,
ReLU backward, dropout, softmax + cross-entropy forward and backward.

These are the building blocks of :mod:`fastconv.layers`; they validate their arguments
like every public op (a compiled kernel trusts what it gets) and keep the input's dtype.
They are not part of the top-level ``fc.*`` API (``fastconv.__all__``).

Every backend runs each pass through its elementwise kernels (the reference's on
``'numpy'``); softmax + cross-entropy runs the reference above ``FUSED_SOFTMAX_MAX_K``
classes, where the fused row loop's scalar ``exp`` loses to NumPy's vectorized one, and
float16 passes run the reference in float16 (see docs/tuning.md, "Elementwise passes").
"""
import numpy as np

from .. import _backend
from .. import _validation as v
from ..reference.elementwise import XENT_EPS

#: Most classes for which softmax + cross-entropy runs the fused kernel (see above).
FUSED_SOFTMAX_MAX_K = 32


def _kernels(backend, native=True):
    """The backend's elementwise kernels, or the reference's where ``native`` is false
    (the backend is resolved either way, so a bad name raises)."""
    name = _backend.resolve(backend)
    return _backend.kernels(name if native else "numpy", "elementwise")


def _flat(a):
    """A 1-D view of a C-contiguous array (kernels index flat)."""
    return a.reshape(-1)


def _check_mask(mask, shape, op, who):
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        raise TypeError(
            f"{op}: mask must be a bool ndarray (as {who} returns), got "
            f"{type(mask).__name__ if not isinstance(mask, np.ndarray) else mask.dtype}"
        )
    v.check_shape(mask, shape, "mask", op, "pass the mask of the forward call that produced it")


def _masked_pass(op, a, name, mask, who, backend):
    """The kernel ``op`` over ``a`` (argument ``name``) and the bool ``mask`` that ``who``
    made, into a new array shaped and typed like ``a``."""
    v.check_array(a, name, op)
    _check_mask(mask, a.shape, op, who)
    compute, out_dt = v.dtypes(a)
    k = _kernels(backend, out_dt == compute)
    a = v.prepare(a, out_dt)
    out = np.empty_like(a)
    getattr(k, op)(_flat(a), _flat(np.ascontiguousarray(mask)), _flat(out))
    return out


def relu_forward(x, *, backend=None):
    """ReLU and its mask in one pass.

    Parameters
    ----------
    x : ndarray of any shape
        float16, float32 or float64.
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}

    Returns
    -------
    out : ndarray shaped and typed like ``x``
        ``x`` where ``x > 0``, else 0 (NaN stays NaN, as in the book).
    mask : bool ndarray shaped like ``x``
        ``x <= 0`` (the book's ``Relu.mask``).
    """
    op = "relu_forward"
    v.check_array(x, "x", op)
    compute, out_dt = v.dtypes(x)
    k = _kernels(backend, out_dt == compute)
    x = v.prepare(x, out_dt)
    out = np.empty_like(x)
    mask = np.empty(x.shape, dtype=np.bool_)
    k.relu_forward(_flat(x), _flat(out), _flat(mask))
    return out, mask


def relu_backward(dout, mask, *, backend=None):
    """Gradient of ReLU: ``dout`` with the positions in ``mask`` zeroed.

    Parameters
    ----------
    dout : ndarray of any shape
    mask : bool ndarray of ``dout``'s shape
        From :func:`relu_forward` (``x <= 0``).
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}

    Returns
    -------
    dx : new ndarray shaped and typed like ``dout`` (``dout`` is not modified)
    """
    return _masked_pass("relu_backward", dout, "dout", mask, "relu_forward", backend)


def dropout_apply(x, mask, *, backend=None):
    """``x * mask`` (the book's Dropout forward in training, and its backward).

    Parameters
    ----------
    x : ndarray of any shape
    mask : bool ndarray of ``x``'s shape
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}

    Returns
    -------
    ndarray shaped and typed like ``x`` (a product: NaN/inf where dropped stay NaN)
    """
    return _masked_pass("dropout_apply", x, "x", mask, "Dropout", backend)


def _labels(t, y_shape, op):
    """``t`` checked against scores of ``y_shape`` (N, K): int64 class indices (N,), or the
    dense (N, K) array as given.

    The forms the book's code passes: one-hot rows (N, K) when K > 1, and class indices of
    shape (N,) or (N, 1), of an integer dtype or a float one holding whole numbers. An
    (N, 1) ``t`` is class indices for every N and every K, K == 1 included: with one class
    its entries must all be 0 (a column of ones, that class's one-hot rows, is refused).
    """
    N, K = y_shape
    if not isinstance(t, np.ndarray):
        raise TypeError(
            f"{op}: t must be a NumPy ndarray of class indices (N,) or (N, 1), or of one-hot "
            f"rows (N, K), got {type(t).__name__}; convert it with np.asarray(t)"
        )
    if t.ndim == 2 and t.shape[1] != 1 and K > 1:
        if t.shape != (N, K):
            raise ValueError(
                f"{op}: one-hot t has shape {t.shape}, expected {(N, K)}: one row per sample "
                f"of x and one column per class (class indices go in shape ({N},) or ({N}, 1))"
            )
        if not (np.issubdtype(t.dtype, np.number) or t.dtype == np.bool_):
            raise TypeError(f"{op}: one-hot t has dtype {t.dtype}; pass numbers")
        return t
    idx = t.reshape(-1) if t.ndim == 2 else t  # an (N, 1) column of class indices
    if idx.shape != (N,):
        raise ValueError(
            f"{op}: t has shape {t.shape}; expected class indices of shape ({N},) or ({N}, 1)"
            + (f", or one-hot rows of shape {(N, K)}," if K > 1 else "")
            + f" for x of shape {(N, K)}: one label per sample"
        )
    if idx.dtype.kind == "f":
        whole = np.isfinite(idx) & (idx == np.floor(idx))
        if not whole.all():
            i = int(np.argmin(whole))
            raise ValueError(
                f"{op}: class indices t must be whole numbers in [0, {K}), got {idx[i]} at "
                f"position {i}; pass integer class indices (np.rint(t).astype(np.int64) if "
                f"that is rounding noise), or class probabilities as rows of shape {(N, K)}"
            )
    elif idx.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: class indices t have dtype {t.dtype}; pass integers, e.g. t.astype(np.int64)"
        )
    lo, hi = idx.min(), idx.max()
    if lo < 0 or hi >= K:
        fix = ("with one class, (N,) and (N, 1) labels are class indices and must all be 0"
               if K == 1 else "count classes from 0 and give x one column per class")
        raise ValueError(
            f"{op}: class indices must lie in [0, {K}) for {K} class{'es' * (K > 1)}, got "
            f"values in [{int(lo)}, {int(hi)}]; {fix}"
        )
    return idx.astype(np.int64, copy=False)


def softmax_cross_entropy(x, t, *, backend=None):
    """Row softmax and the mean cross-entropy loss, the book's ``SoftmaxWithLoss.forward``.

    ``y = softmax(x)`` row by row (max subtracted first); with one-hot ``t`` the loss uses
    ``t.argmax(axis=1)`` as the book's ``cross_entropy_error`` does.

    Parameters
    ----------
    x : ndarray of shape (N, K)
        Scores, float16/32/64.
    t : ndarray of shape (N,) or (N, 1) (class indices) or (N, K) with K > 1 (one-hot)
        Class indices are integers, or floats holding whole numbers. An (N, 1) ``t`` is
        class indices for every N and K: with K == 1 (one class) its entries must be 0.
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}

    Returns
    -------
    loss : scalar of ``x``'s dtype
        ``-sum(log(y[i, t_i] + 1e-7)) / N``.
    y : ndarray of shape (N, K), ``x``'s dtype

    Raises
    ------
    TypeError
        ``t`` is not an ndarray, or its class indices are neither integers nor floats.
    ValueError
        ``t`` has none of the shapes above, or holds a class index outside [0, K) or a
        float index that is not a whole number (NaN and inf included).
    """
    op = "softmax_cross_entropy"
    v.check_array(x, "x", op, ndim=2)
    t = _labels(t, x.shape, op)
    idx = t.argmax(axis=1).astype(np.int64) if t.ndim == 2 else t
    compute, out_dt = v.dtypes(x)
    xc = v.prepare(x, compute)
    y = np.empty_like(xc)
    k = _kernels(backend, x.shape[1] <= FUSED_SOFTMAX_MAX_K)
    loss = k.softmax_cross_entropy(xc, np.ascontiguousarray(idx), y, XENT_EPS)
    return out_dt.type(loss), y.astype(out_dt, copy=False)


def softmax_cross_entropy_backward(y, t, dout=1, *, backend=None):
    """Gradient of :func:`softmax_cross_entropy` with respect to ``x``.

    Parameters
    ----------
    y : ndarray of shape (N, K)
        The softmax from the forward call.
    t : ndarray of shape (N,), (N, 1) or (N, K)
        The labels of the forward call, read as there. Dense (N, K) ``t`` is used as given
        (the book's ``(y - t) / N``), class indices as one-hot rows.
    dout : float
        Upstream gradient of the loss (1 for a loss at the end of a net, the book's
        only case: its ``SoftmaxWithLoss.backward`` ignores ``dout``).
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}

    Returns
    -------
    dx : ndarray of shape (N, K), ``y``'s dtype
        ``(y - onehot(t)) * dout / N``.
    """
    op = "softmax_cross_entropy_backward"
    v.check_array(y, "y", op, ndim=2)
    t = _labels(t, y.shape, op)
    compute, out_dt = v.dtypes(y)
    yc = v.prepare(y, compute)
    scale = float(dout) / y.shape[0]
    dx = np.empty_like(yc)
    tk = v.prepare(t, compute) if t.ndim == 2 else np.ascontiguousarray(t)
    k = _kernels(backend, y.shape[1] <= FUSED_SOFTMAX_MAX_K)
    k.softmax_cross_entropy_backward(yc, tk, scale, dx)
    return dx.astype(out_dt, copy=False)
