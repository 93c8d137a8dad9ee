"""Public im2col / col2im: validate once, then dispatch to a backend."""
import numpy as np

from .. import _backend
from .. import _validation as v
from .._typing import IntPair


def _window(op, H, W, filter_h, filter_w, stride, pad):
    kh = v.check_int(filter_h, "filter_h", op, 1)
    kw = v.check_int(filter_w, "filter_w", op, 1)
    return v.window(H, W, kh, kw, v.pair(stride, "stride", op, 1), v.pair(pad, "pad", op, 0),
                    op)


def im2col(input_data: np.ndarray, filter_h: int, filter_w: int, stride: IntPair = 1,
           pad: IntPair = 0, *, out: np.ndarray | None = None,
           backend: str | None = None) -> np.ndarray:
    """Unfold the sliding windows of a batch of images into the rows of a matrix.

    Parameters
    ----------
    input_data : ndarray of shape (N, C, H, W)
        float16, float32 or float64; any memory layout (copied once if not C-contiguous).
    filter_h, filter_w : int
        Window size.
    stride, pad : int or (h, w) pair
        Window step and zero padding.
    out : ndarray, optional
        C-contiguous array of the result's shape and of the input's dtype (float32 for
        float16 input) to write into, so a caller can reuse one workspace across calls;
        a fresh 45 MB array costs about as much in page faults as the unfolding itself.
        The 'numpy' backend computes a new array and copies it into ``out``.
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}
        None uses the current backend (see :func:`fastconv.set_backend`).

    Returns
    -------
    col : ndarray of shape (N*OH*OW, C*filter_h*filter_w)
        The book's layout; the dtype is ``input_data``'s (the book always returns float64).

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv as fc
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> fc.im2col(x, 2, 2, stride=2)         # one row per window, float32 kept
    array([[ 0.,  1.,  4.,  5.],
           [ 2.,  3.,  6.,  7.],
           [ 8.,  9., 12., 13.],
           [10., 11., 14., 15.]], dtype=float32)
    """
    op = "im2col"
    x = v.check_array(input_data, "input_data", op, ndim=4)
    N, C, H, W = x.shape
    g = _window(op, H, W, filter_h, filter_w, stride, pad)
    compute, out_dtype = v.dtypes(x)
    if out is not None:
        v.check_out(out, (N * g.oh * g.ow, C * g.kh * g.kw), compute, op, x)
    x = v.prepare(x, compute)
    col = _backend.kernels(_backend.resolve(backend), "im2col").im2col(x, g, out=out)
    return col if out is not None else v.restore(out_dtype, col)


def col2im(col: np.ndarray, input_shape: tuple[int, int, int, int], filter_h: int,
           filter_w: int, stride: IntPair = 1, pad: IntPair = 0, *,
           out: np.ndarray | None = None, backend: str | None = None) -> np.ndarray:
    """Fold rows of windows back into images, summing where windows overlap.

    The adjoint of :func:`im2col` (the book's semantics): ``col2im(im2col(x))`` multiplies
    each pixel by the number of windows that cover it.

    Parameters
    ----------
    col : ndarray of shape (N*OH*OW, C*filter_h*filter_w)
    input_shape : tuple of 4 ints (N, C, H, W)
    filter_h, filter_w : int
    stride, pad : int or (h, w) pair
    out : ndarray of shape ``input_shape``, optional
        Workspace to write into (``col``'s dtype, float32 for float16), as for :func:`im2col`.
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}

    Returns
    -------
    ndarray of shape ``input_shape``, dtype of ``col``

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv as fc
    >>> col = np.ones((9, 4), np.float32)     # the nine 2x2 windows of a 4x4 image, stride 1
    >>> img = fc.col2im(col, (1, 1, 4, 4), 2, 2)   # how many windows cover each pixel
    >>> img[0, 0, 0], img[0, 0, 1]                  # the first two rows (rows 3-4 mirror them)
    (array([1., 2., 2., 1.], dtype=float32), array([2., 4., 4., 2.], dtype=float32))
    """
    op = "col2im"
    c = v.check_array(col, "col", op, ndim=2)
    N, C, H, W = v.check_shape_tuple(input_shape, "input_shape", op, 4)
    g = _window(op, H, W, filter_h, filter_w, stride, pad)
    v.check_shape(c, (N * g.oh * g.ow, C * g.kh * g.kw), "col", op,
                  f"im2col of input_shape {(N, C, H, W)} with a {g.kh}x{g.kw} filter, "
                  f"stride {(g.sh, g.sw)} and pad {(g.ph, g.pw)} has that shape")
    compute, out_dtype = v.dtypes(c)
    if out is not None:
        v.check_out(out, (N, C, H, W), compute, op, c)
    c = v.prepare(c, compute)
    img = _backend.kernels(_backend.resolve(backend), "im2col").col2im(c, (N, C, H, W), g,
                                                                       out=out)
    return img if out is not None else v.restore(out_dtype, img)
