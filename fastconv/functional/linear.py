"""The public fully connected layer (``linear``): validate once, dispatch."""
import numpy as np

from .. import _backend
from .. import _validation as v


def _check_x(x, op):
    x = v.check_array(x, "x", op)
    if x.ndim < 2:
        raise ValueError(
            f"{op}: x is {x.ndim}-dimensional with shape {x.shape}; {op} needs at least "
            f"2 dimensions (N, ...), flattened to (N, D). For one sample use x[None]"
        )
    return x


_BLAS_MAX = 2**31 - 1


def _check_W(W, x, op):
    W = v.check_array(W, "W", op, ndim=2)
    D = x.size // x.shape[0]
    if W.shape[0] != D:
        raise ValueError(
            f"{op}: W has shape {W.shape} but x of shape {x.shape} flattens to "
            f"({x.shape[0]}, {D}); W needs shape ({D}, M)"
        )
    # BLAS takes 32-bit dimensions and leading strides.
    if max(x.shape[0] * D, D * W.shape[1], x.shape[0] * W.shape[1]) > _BLAS_MAX:
        raise ValueError(
            f"{op}: x {x.shape} @ W {W.shape} has a matrix of more than 2**31 - 1 elements, "
            f"beyond BLAS's 32-bit sizes; split the batch"
        )
    return W


def linear(x: np.ndarray, W: np.ndarray, b: np.ndarray | None = None, relu: bool = False, *,
           backend: str | None = None) -> np.ndarray:
    """``x.reshape(N, -1) @ W + b``, optionally followed by ReLU, as one fused op.

    The GEMM runs in BLAS; the bias and the ReLU are then applied in a single pass over
    the output.

    Parameters
    ----------
    x : ndarray of shape (N, ...)
        At least 2-D; flattened to (N, D) as the book's ``Affine`` does.
    W : ndarray of shape (D, M)
    b : None or ndarray of shape (M,)
    relu : bool
        Apply ``max(., 0)`` (NaN propagates).
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}
        None uses the current backend (see :func:`fastconv.set_backend`).

    Returns
    -------
    out : ndarray of shape (N, M), dtype ``np.result_type(x, W, b)``
        float16 is computed in float32 and cast back.

    Raises
    ------
    TypeError
        An argument is not a float ndarray, or ``relu`` is not a bool.
    ValueError
        ``x`` has fewer than 2 dimensions, ``W`` is not (D, M) for x's D, or ``b`` is not
        of shape (M,).

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv as fc
    >>> x = np.array([[1., -2.], [3., 4.]])
    >>> W = np.array([[1., 0., -1.], [2., 1., 0.]])
    >>> fc.linear(x, W, np.array([0., 0., 1.]), relu=True)    # max(x @ W + b, 0)
    array([[ 0.,  0.,  0.],
           [11.,  4.,  0.]])
    """
    op = "linear"
    x = _check_x(x, op)
    W = _check_W(W, x, op)
    if b is not None:
        b = v.check_array(b, "b", op)
        v.check_shape(b, (W.shape[1],), "b", op, "one bias per output column of W")
    if not isinstance(relu, (bool, np.bool_)):
        raise TypeError(f"{op}: relu must be a bool, got {type(relu).__name__} {relu!r}")
    args = (x, W) if b is None else (x, W, b)
    compute, out_dtype = v.dtypes(*args)
    x2 = v.prepare(x.reshape(x.shape[0], -1), compute)
    W = v.prepare(W, compute)
    b = None if b is None else v.prepare(b, compute)
    out = _backend.kernels(_backend.resolve(backend), "linear").linear(x2, W, b, bool(relu))
    return v.restore(out_dtype, out)


def linear_backward(dout: np.ndarray, x: np.ndarray, W: np.ndarray, *,
                    relu_out: np.ndarray | None = None, backend: str | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`linear`.

    Parameters
    ----------
    dout : ndarray of shape (N, M)
        Gradient of the loss with respect to the output of :func:`linear`.
    x : ndarray of shape (N, ...)
        The forward's input.
    W : ndarray of shape (D, M)
    relu_out : None or ndarray of shape (N, M)
        When the forward ran with ``relu=True``, its output: ``dout`` is then zeroed where
        ``relu_out <= 0`` (the book's ``Relu.backward``) in the same pass that sums
        ``db``. None when the forward had no ReLU.
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}

    Returns
    -------
    dx : ndarray shaped like ``x``
        ``dout @ W.T``, reshaped to ``x.shape``.
    dW : ndarray of shape (D, M)
        ``x.reshape(N, -1).T @ dout``.
    db : ndarray of shape (M,)
        ``dout.sum(axis=0)``.
        All three in dtype ``np.result_type(dout, x, W)`` (float16 computed in float32).

    Raises
    ------
    TypeError
        An argument is not a float ndarray.
    ValueError
        ``x`` has fewer than 2 dimensions, ``W`` is not (D, M) for x's D, or ``dout`` /
        ``relu_out`` is not of shape (N, M).

    Examples
    --------
    With ``x`` and ``W`` of :func:`linear`'s example:

    >>> import numpy as np
    >>> import fastconv as fc
    >>> x, W = np.array([[1., -2.], [3., 4.]]), np.array([[1., 0., -1.], [2., 1., 0.]])
    >>> dx, dW, db = fc.linear_backward(np.ones((2, 3)), x, W)
    >>> dx, db                                              # dout @ W.T, dout summed
    (array([[0., 3.],
           [0., 3.]]), array([2., 2., 2.]))
    """
    op = "linear_backward"
    x = _check_x(x, op)
    W = _check_W(W, x, op)
    d = v.check_array(dout, "dout", op, ndim=2)
    expected = (x.shape[0], W.shape[1])
    v.check_shape(d, expected, "dout", op, "the output of linear(x, W) has that shape")
    if relu_out is not None:
        relu_out = v.check_array(relu_out, "relu_out", op, ndim=2)
        v.check_shape(relu_out, expected, "relu_out", op,
                      "pass the output of linear(x, W, b, relu=True)")
    compute, out_dtype = v.dtypes(d, x, W)
    d = v.prepare(d, compute)
    x2 = v.prepare(x.reshape(x.shape[0], -1), compute)
    W = v.prepare(W, compute)
    if relu_out is not None:
        relu_out = v.prepare(relu_out, compute)
    dx, dW, db = _backend.kernels(_backend.resolve(backend), "linear").linear_backward(
        d, x2, W, relu_out)
    return v.restore(out_dtype, dx.reshape(x.shape), dW, db)
