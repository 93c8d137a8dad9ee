"""im2col / col2im in plain NumPy: the book's algorithm ("Deep Learning from Scratch",
common/util.py), rewritten here.

Difference from the book: the book's ``im2col`` returns float64 whatever the input;
these keep the input's dtype.
"""
import numpy as np

from .._validation import out_size


def _pair(v):
    return (v, v) if np.isscalar(v) else tuple(v)


def im2col(input_data, filter_h, filter_w, stride=1, pad=0):
    """Unfold sliding windows into rows.

    Parameters
    ----------
    input_data : ndarray of shape (N, C, H, W)
    filter_h, filter_w : int
    stride, pad : int or (h, w) pair

    Returns
    -------
    col : ndarray of shape (N*OH*OW, C*filter_h*filter_w), dtype of ``input_data``
        Row ``(n*OH + oy)*OW + ox`` holds window ``(oy, ox)`` of image ``n``,
        channel-major then row-major inside the window.
    """
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    N, C, H, W = input_data.shape
    out_h, out_w = out_size(H, filter_h, sh, ph), out_size(W, filter_w, sw, pw)
    img = np.pad(input_data, [(0, 0), (0, 0), (ph, ph), (pw, pw)])
    col = np.zeros((N, C, filter_h, filter_w, out_h, out_w), dtype=input_data.dtype)
    for y in range(filter_h):
        y_max = y + sh * out_h
        for x in range(filter_w):
            x_max = x + sw * out_w
            col[:, :, y, x, :, :] = img[:, :, y:y_max:sh, x:x_max:sw]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * out_h * out_w, -1)


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    """Fold rows of windows back into an image, summing where windows overlap.

    Parameters
    ----------
    col : ndarray of shape (N*OH*OW, C*filter_h*filter_w)
    input_shape : tuple (N, C, H, W)
    filter_h, filter_w : int
    stride, pad : int or (h, w) pair

    Returns
    -------
    ndarray of shape ``input_shape``, dtype of ``col``
    """
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    N, C, H, W = input_shape
    out_h, out_w = out_size(H, filter_h, sh, ph), out_size(W, filter_w, sw, pw)
    col = col.reshape(N, out_h, out_w, C, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)
    # Big enough for every window start plus stride overhang, as the book does.
    img = np.zeros((N, C, H + 2 * ph + sh - 1, W + 2 * pw + sw - 1), dtype=col.dtype)
    for y in range(filter_h):
        y_max = y + sh * out_h
        for x in range(filter_w):
            x_max = x + sw * out_w
            img[:, :, y:y_max:sh, x:x_max:sw] += col[:, :, y, x, :, :]
    return img[:, :, ph:H + ph, pw:W + pw]
