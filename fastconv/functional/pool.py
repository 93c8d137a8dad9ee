"""Public max / average pooling (sliding windows, global and adaptive): validate once,
then dispatch to a backend.

``argmax`` is int32 (half the memory traffic of int64; a window never holds 2**31
cells). The backward passes accept any integer dtype and convert it once.
"""
import numpy as np

from .. import _backend
from .. import _validation as v
from .._typing import IntPair

_ARGMAX_HINT = "pass the argmax returned by max_pool2d with the same geometry"


def _window(op, x_shape, pool_h, pool_w, stride, pad):
    """The checked :class:`~fastconv._validation.Window` of the pooling window."""
    kh = v.check_int(pool_h, "pool_h", op, 1)
    kw = v.check_int(pool_w, "pool_w", op, 1)
    stride = (kh, kw) if stride is None else v.pair(stride, "stride", op, 1)
    pad = v.pair(pad, "pad", op, 0)
    if 2 * pad[0] > kh or 2 * pad[1] > kw:
        raise ValueError(
            f"{op}: pad {pad} is more than half the {kh}x{kw} window; pad may be at most "
            f"({kh // 2}, {kw // 2}), else a window could hold padding only"
        )
    return v.window(x_shape[2], x_shape[3], kh, kw, stride, pad, op, what="window")


def _describe(g):
    return f"a {g.kh}x{g.kw} window, stride {(g.sh, g.sw)} and pad {(g.ph, g.pw)}"


def _dout(dout, x_shape, g, op):
    d = v.check_array(dout, "dout", op, ndim=4)
    v.check_shape(d, tuple(x_shape[:2]) + (g.oh, g.ow), "dout", op,
                  f"the forward output for x_shape {tuple(x_shape)} with {_describe(g)} "
                  f"has that shape")
    return d


def max_pool2d(x: np.ndarray, pool_h: int, pool_w: int, stride: IntPair | None = None,
               pad: IntPair = 0, *, backend: str | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling over sliding windows, with the winner's position in each window.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
        float16, float32 or float64; any memory layout (copied once if not C-contiguous).
    pool_h, pool_w : int
        Window size.
    stride : None, int or (h, w) pair
        Window step; None means the window size.
    pad : int or (h, w) pair
        Padding on each side, at most half the window. Padded cells never win (PyTorch's
        rule), so an all-negative window next to the border still outputs its maximum.
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}
        None uses the current backend (see :func:`fastconv.set_backend`).

    Returns
    -------
    out : ndarray of shape (N, C, OH, OW), dtype of ``x``
        ``OH = (H + 2*pad_h - pool_h) // stride_h + 1``, likewise ``OW``. A window holding
        NaN outputs NaN.
    argmax : ndarray of int32, shape (N, C, OH, OW)
        Winning position inside each window, row-major ``ky*pool_w + kx`` in
        ``[0, pool_h*pool_w)``; ties go to the first, a window holding NaN points at its
        first NaN.

    Raises
    ------
    TypeError
        ``x`` is not a float ndarray, or a size is not an int.
    ValueError
        ``x`` is not 4-D, a window size or stride is < 1, pad is negative or more than
        half the window, or the window is larger than the padded input.

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv as fc
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> out, argmax = fc.max_pool2d(x, 2, 2)
    >>> out[0, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    >>> argmax[0, 0]                         # each winner is its window's bottom right
    array([[3, 3],
           [3, 3]], dtype=int32)
    """
    op = "max_pool2d"
    x = v.check_array(x, "x", op, ndim=4)
    g = _window(op, x.shape, pool_h, pool_w, stride, pad)
    compute, out_dtype = v.dtypes(x)
    x = v.prepare(x, compute)
    out, arg = _backend.kernels(_backend.resolve(backend), "pool").max_pool2d(x, g)
    return v.restore(out_dtype, out), arg


def max_pool2d_backward(dout: np.ndarray, argmax: np.ndarray,
                        x_shape: tuple[int, int, int, int], pool_h: int, pool_w: int,
                        stride: IntPair | None = None, pad: IntPair = 0, *,
                        backend: str | None = None) -> np.ndarray:
    """Gradient of :func:`max_pool2d` with respect to ``x``.

    Each ``dout`` cell goes to its window's winner; where windows overlap
    (stride < window) the contributions are summed.

    Parameters
    ----------
    dout : ndarray of shape (N, C, OH, OW)
        Gradient of the loss with respect to ``out``.
    argmax : integer ndarray of shape (N, C, OH, OW)
        As returned by :func:`max_pool2d`; values in ``[0, pool_h*pool_w)``.
    x_shape : tuple of 4 ints (N, C, H, W)
        Shape of the forward input.
    pool_h, pool_w, stride, pad :
        The forward's geometry.
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}

    Returns
    -------
    dx : ndarray of shape ``x_shape``, dtype of ``dout``

    Raises
    ------
    TypeError
        ``dout`` is not a float ndarray or ``argmax`` does not hold integers.
    ValueError
        A bad geometry (as in :func:`max_pool2d`), ``dout`` or ``argmax`` not shaped
        like the forward output, or ``argmax`` values outside ``[0, pool_h*pool_w)``.

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv as fc
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> out, argmax = fc.max_pool2d(x, 2, 2)
    >>> fc.max_pool2d_backward(np.ones_like(out), argmax, x.shape, 2, 2)[0, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 0., 1.],
           [0., 0., 0., 0.],
           [0., 1., 0., 1.]], dtype=float32)
    """
    op = "max_pool2d_backward"
    x_shape = v.check_shape_tuple(x_shape, "x_shape", op, 4)
    g = _window(op, x_shape, pool_h, pool_w, stride, pad)
    d = _dout(dout, x_shape, g, op)
    v.check_index_array(argmax, "argmax", op, d.shape, g.kh * g.kw, _ARGMAX_HINT)
    compute, out_dtype = v.dtypes(d)
    d = v.prepare(d, compute)
    arg = np.ascontiguousarray(argmax, dtype=np.int32)
    dx = _backend.kernels(_backend.resolve(backend), "pool").max_pool2d_backward(
        d, arg, x_shape, g)
    return v.restore(out_dtype, dx)


def avg_pool2d(x: np.ndarray, pool_h: int, pool_w: int, stride: IntPair | None = None,
               pad: IntPair = 0, *, backend: str | None = None) -> np.ndarray:
    """Average pooling over sliding windows.

    Padded cells count as zeros and every window divides by ``pool_h*pool_w``
    (PyTorch's default, ``count_include_pad=True``).

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    pool_h, pool_w, stride, pad, backend :
        As for :func:`max_pool2d`.

    Returns
    -------
    out : ndarray of shape (N, C, OH, OW), dtype of ``x``

    Raises
    ------
    TypeError, ValueError
        As for :func:`max_pool2d`.
    """
    op = "avg_pool2d"
    x = v.check_array(x, "x", op, ndim=4)
    g = _window(op, x.shape, pool_h, pool_w, stride, pad)
    compute, out_dtype = v.dtypes(x)
    x = v.prepare(x, compute)
    return v.restore(out_dtype, _backend.kernels(_backend.resolve(backend), "pool").avg_pool2d(x, g))


def avg_pool2d_backward(dout: np.ndarray, x_shape: tuple[int, int, int, int], pool_h: int,
                        pool_w: int, stride: IntPair | None = None, pad: IntPair = 0, *,
                        backend: str | None = None) -> np.ndarray:
    """Gradient of :func:`avg_pool2d` with respect to ``x``: each ``dout`` cell divided
    by ``pool_h*pool_w`` and spread over the real cells of its window, summed where
    windows overlap.

    Parameters
    ----------
    dout : ndarray of shape (N, C, OH, OW)
    x_shape : tuple of 4 ints (N, C, H, W)
    pool_h, pool_w, stride, pad, backend :
        The forward's geometry, as for :func:`max_pool2d`.

    Returns
    -------
    dx : ndarray of shape ``x_shape``, dtype of ``dout``

    Raises
    ------
    TypeError, ValueError
        A bad ``dout`` or geometry, or ``dout`` not shaped like the forward output.
    """
    op = "avg_pool2d_backward"
    x_shape = v.check_shape_tuple(x_shape, "x_shape", op, 4)
    g = _window(op, x_shape, pool_h, pool_w, stride, pad)
    d = _dout(dout, x_shape, g, op)
    compute, out_dtype = v.dtypes(d)
    d = v.prepare(d, compute)
    dx = _backend.kernels(_backend.resolve(backend), "pool").avg_pool2d_backward(d, x_shape, g)
    return v.restore(out_dtype, dx)


def _output_size(output_size, op):
    return v.pair(output_size, "output_size", op, 1)


def global_avg_pool2d(x: np.ndarray, *, backend: str | None = None) -> np.ndarray:
    """Mean of each (image, channel) plane: a ResNet or MobileNet head.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
        float16, float32 or float64; any memory layout (copied once if not C-contiguous).
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}
        None uses the current backend (see :func:`fastconv.set_backend`).

    Returns
    -------
    out : ndarray of shape (N, C, 1, 1), dtype of ``x``
        The compiled backends sum each plane row by row, left to right, in ``x``'s dtype
        (float16 in float32) and divide once by ``H*W``; the reference (NumPy's
        ``mean``) sums pairwise, so float32 results agree to about
        ``eps * sqrt(H*W)`` relative to the largest output.

    Raises
    ------
    TypeError
        ``x`` is not a float ndarray.
    ValueError
        ``x`` is not 4-D or holds no elements.

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv as fc
    >>> x = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
    >>> fc.global_avg_pool2d(x)[:, :, 0, 0]
    array([[1.5, 5.5]], dtype=float32)
    """
    op = "global_avg_pool2d"
    x = v.check_array(x, "x", op, ndim=4)
    compute, out_dtype = v.dtypes(x)
    x = v.prepare(x, compute)
    return v.restore(out_dtype, _backend.kernels(_backend.resolve(backend), "pool")
                     .global_avg_pool2d(x))


def global_avg_pool2d_backward(dout: np.ndarray, x_shape: tuple[int, int, int, int], *,
                               backend: str | None = None) -> np.ndarray:
    """Gradient of :func:`global_avg_pool2d` with respect to ``x``: each ``dout`` cell
    divided by ``H*W`` on every cell of its plane.

    Parameters and result are those of :func:`adaptive_avg_pool2d_backward` with
    ``output_size=1``: ``dout`` of shape (N, C, 1, 1), ``x_shape`` the forward input's
    (N, C, H, W); a ValueError names a ``dout`` of another shape.
    """
    op = "global_avg_pool2d_backward"
    x_shape = v.check_shape_tuple(x_shape, "x_shape", op, 4)
    d = v.check_array(dout, "dout", op, ndim=4)
    v.check_shape(d, x_shape[:2] + (1, 1), "dout", op,
                  f"the forward output for x_shape {x_shape} has that shape")
    compute, out_dtype = v.dtypes(d)
    d = v.prepare(d, compute)
    dx = _backend.kernels(_backend.resolve(backend), "pool").global_avg_pool2d_backward(
        d, x_shape)
    return v.restore(out_dtype, dx)


def adaptive_avg_pool2d(x: np.ndarray, output_size: IntPair, *,
                        backend: str | None = None) -> np.ndarray:
    """Average pooling to a given output size, with PyTorch's bins
    (``F.adaptive_avg_pool2d``).

    Output row ``i`` averages input rows ``floor(i*H/OH)`` to ``ceil((i+1)*H/OH) - 1``,
    likewise columns; where ``OH`` does not divide ``H`` neighbouring bins overlap by a
    row. As in PyTorch, ``output_size`` may exceed the input: bins then repeat cells.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
        float16, float32 or float64; any memory layout (copied once if not C-contiguous).
    output_size : int or (OH, OW) pair
        Each at least 1 (PyTorch's ``None`` for "keep this dimension" is not taken:
        pass the input's size).
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}

    Returns
    -------
    out : ndarray of shape (N, C, OH, OW), dtype of ``x``
        The compiled backends sum each bin row by row, left to right, in ``x``'s dtype
        (float16 in float32) and divide once by its area; the reference sums with
        NumPy's ``mean`` (pairwise).

    Raises
    ------
    TypeError
        ``x`` is not a float ndarray, or ``output_size`` is not an int or pair of ints.
    ValueError
        ``x`` is not 4-D or is empty, or ``output_size`` is not an int or (OH, OW) pair
        of values >= 1.

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv as fc
    >>> x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    >>> fc.adaptive_avg_pool2d(x, 2)[0, 0]   # bins rows/columns [0, 2) and [1, 3)
    array([[2., 3.],
           [5., 6.]])
    """
    op = "adaptive_avg_pool2d"
    x = v.check_array(x, "x", op, ndim=4)
    size = _output_size(output_size, op)
    compute, out_dtype = v.dtypes(x)
    x = v.prepare(x, compute)
    return v.restore(out_dtype, _backend.kernels(_backend.resolve(backend), "pool")
                     .adaptive_avg_pool2d(x, size))


def adaptive_avg_pool2d_backward(dout: np.ndarray, x_shape: tuple[int, int, int, int],
                                 output_size: IntPair, *,
                                 backend: str | None = None) -> np.ndarray:
    """Gradient of :func:`adaptive_avg_pool2d` with respect to ``x``: each ``dout`` cell
    divided by its bin's area and added to the bin's cells, summed where bins overlap.

    Parameters
    ----------
    dout : ndarray of shape (N, C, OH, OW)
        Gradient of the loss with respect to ``out``.
    x_shape : tuple of 4 ints (N, C, H, W)
        Shape of the forward input.
    output_size : int or (OH, OW) pair
        The forward's.
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}

    Returns
    -------
    dx : ndarray of shape ``x_shape``, dtype of ``dout``

    Raises
    ------
    TypeError, ValueError
        A bad ``dout``, ``x_shape`` or ``output_size``, or ``dout`` not shaped
        (N, C, OH, OW).
    """
    op = "adaptive_avg_pool2d_backward"
    x_shape = v.check_shape_tuple(x_shape, "x_shape", op, 4)
    size = _output_size(output_size, op)
    d = v.check_array(dout, "dout", op, ndim=4)
    v.check_shape(d, x_shape[:2] + size, "dout", op,
                  f"the forward output for x_shape {x_shape} and output_size {size} has "
                  f"that shape")
    compute, out_dtype = v.dtypes(d)
    d = v.prepare(d, compute)
    dx = _backend.kernels(_backend.resolve(backend), "pool").adaptive_avg_pool2d_backward(
        d, x_shape, size)
    return v.restore(out_dtype, dx)
