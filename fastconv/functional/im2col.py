"""Public im2col / col2im: validate once, then dispatch to a backend."""
import numpy as np

from .. import _backend
from .. import _validation as v
from ..reference.im2col import col2im as _col2im_ref, im2col as _im2col_ref


def _geometry(op, filter_h, filter_w, stride, pad):
    kh = v.check_int(filter_h, "filter_h", op, 1)
    kw = v.check_int(filter_w, "filter_w", op, 1)
    return kh, kw, v.pair(stride, "stride", op, 1), v.pair(pad, "pad", op, 0)


def im2col(input_data, filter_h, filter_w, stride=1, pad=0, *, out=None, backend=None):
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
    """
    op = "im2col"
    x = v.check_array(input_data, "input_data", op, ndim=4)
    kh, kw, stride, pad = _geometry(op, filter_h, filter_w, stride, pad)
    N, C, H, W = x.shape
    OH, OW = v.output_size(H, W, kh, kw, stride, pad, op)
    compute, out_dtype = v.dtypes(x)
    if out is not None:
        v.check_out(out, (N * OH * OW, C * kh * kw), compute, op, x)
    x = v.prepare(x, compute)
    name = _backend.resolve(backend)
    if name == "numpy":
        col = np.ascontiguousarray(_im2col_ref(x, kh, kw, stride, pad))
        if out is not None:
            out[...] = col
            col = out
    else:
        col = _backend.kernels(name, "im2col").im2col(x, kh, kw, *stride, *pad, out=out)
    return col if out is not None else col.astype(out_dtype, copy=False)


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0, *, out=None, backend=None):
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
    """
    op = "col2im"
    c = v.check_array(col, "col", op, ndim=2)
    N, C, H, W = v.check_shape_tuple(input_shape, "input_shape", op, 4)
    kh, kw, stride, pad = _geometry(op, filter_h, filter_w, stride, pad)
    OH, OW = v.output_size(H, W, kh, kw, stride, pad, op)
    v.check_shape(c, (N * OH * OW, C * kh * kw), "col", op,
                  f"im2col of input_shape {(N, C, H, W)} with a {kh}x{kw} filter, "
                  f"stride {stride} and pad {pad} has that shape")
    compute, out_dtype = v.dtypes(c)
    if out is not None:
        v.check_out(out, (N, C, H, W), compute, op, c)
    c = v.prepare(c, compute)
    name = _backend.resolve(backend)
    if name == "numpy":
        img = np.ascontiguousarray(_col2im_ref(c, (N, C, H, W), kh, kw, stride, pad))
        if out is not None:
            out[...] = img
            img = out
    else:
        img = _backend.kernels(name, "im2col").col2im(
            c, N, C, H, W, kh, kw, *stride, *pad, out=out
        )
    return img if out is not None else img.astype(out_dtype, copy=False)
