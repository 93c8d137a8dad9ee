"""Data augmentation in plain NumPy: per-image horizontal flip, then shift with zero fill.

The ground truth for the ``shift_flip`` kernels. For image ``n``, with ``f`` the image
flipped left-right when ``flip[n]`` is set (else the image itself)::

    out[n, c, i, j] = f[n, c, i - dy[n], j - dx[n]]   where inside the image, else 0

so a positive ``dy`` moves the content down and a positive ``dx`` moves it right.
"""
import numpy as np


def shift_flip(x, dy, dx, flip):
    """Flip (optionally) and shift each image of a batch, filling with zeros.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    dy, dx : integer ndarray of shape (N,)
        Per-image shift down and right, in pixels (negative: up, left).
    flip : bool or integer ndarray of shape (N,)
        Nonzero: mirror image ``n`` left-right before shifting it.

    Returns
    -------
    out : ndarray of shape (N, C, H, W), dtype of ``x``
    """
    N, C, H, W = x.shape
    rows = np.arange(H)[None, :] - np.asarray(dy)[:, None]          # (N, H)
    cols = np.arange(W)[None, :] - np.asarray(dx)[:, None]          # (N, W)
    cols = np.where(np.asarray(flip, dtype=bool)[:, None], W - 1 - cols, cols)
    valid = ((rows >= 0) & (rows < H))[:, :, None] & ((cols >= 0) & (cols < W))[:, None, :]
    r = np.clip(rows, 0, H - 1)[:, None, :, None]
    c = np.clip(cols, 0, W - 1)[:, None, None, :]
    n = np.arange(N)[:, None, None, None]
    ch = np.arange(C)[None, :, None, None]
    out = x[n, ch, r, c]
    out[np.broadcast_to(~valid[:, None], out.shape)] = 0
    return out
