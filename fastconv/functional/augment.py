"""Public batch augmentation: per-image horizontal flip and shift, in one kernel pass.

``fastconv train --augment`` draws the per-image offsets and flip flags from a seeded
``np.random.Generator`` and hands them to :func:`shift_flip`, so an augmented epoch is
deterministic per seed (and identical across backends: the kernels only move pixels).
"""
import numpy as np

from .. import _backend
from .. import _validation as v


def _per_image(a, name, n, op, shift=False):
    """``a`` as a C-contiguous int64 array of shape (n,); TypeError for non-integers.
    ``shift``: also ValueError beyond the geometry cap (no overflow in the kernels'
    index arithmetic, no wrap of uint64 values)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(
            f"{op}: {name} must be a NumPy integer array of shape ({n},), got "
            f"{type(a).__name__}; use np.asarray({name}, dtype=np.int64)"
        )
    if a.dtype.kind not in "iub":
        raise TypeError(
            f"{op}: {name} has dtype {a.dtype}; it must hold integers (pixels), "
            f"e.g. rng.integers(-2, 3, size=N)"
        )
    v.check_shape(a, (n,), name, op, "one value per image of x")
    if shift and a.size and a.dtype.kind != "b":
        lo, hi = int(a.min()), int(a.max())
        if lo < -v.MAX_GEOMETRY or hi > v.MAX_GEOMETRY:
            raise ValueError(
                f"{op}: {name} holds shifts in [{lo}, {hi}]; a shift is at most "
                f"{v.MAX_GEOMETRY} pixels either way (one of the image's size or more "
                f"already leaves it all zero): clip it, e.g. np.clip({name}, -H, H)"
            )
    return np.ascontiguousarray(a, dtype=np.int64)


def shift_flip(x, dy, dx, flip, *, backend=None):
    """Mirror (where asked) and shift each image of a batch, filling vacated pixels with 0.

    ``out[n, c, i, j] = f[n, c, i - dy[n], j - dx[n]]`` inside the image, else 0, where
    ``f`` is image ``n`` mirrored left-right when ``flip[n]`` is nonzero: the flip comes
    first, then the shift.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
        float16, float32 or float64 (float16 is moved as float32 and returned as float16).
    dy, dx : integer ndarray of shape (N,)
        Shift of image ``n`` down and right in pixels (negative: up, left). Shifts of
        ``H`` / ``W`` or more leave an all-zero image; beyond 2**24 either way they are
        refused (ValueError).
    flip : bool or integer ndarray of shape (N,)
        Nonzero: mirror image ``n`` left-right before shifting.
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}
        None uses the current backend.

    Returns
    -------
    out : ndarray of shape (N, C, H, W), dtype of ``x``
    """
    op = "shift_flip"
    x = v.check_array(x, "x", op, ndim=4)
    n = x.shape[0]
    dy = _per_image(dy, "dy", n, op, shift=True)
    dx = _per_image(dx, "dx", n, op, shift=True)
    flip = (_per_image(flip, "flip", n, op) != 0).astype(np.uint8)
    compute, out_dtype = v.dtypes(x)
    x = v.prepare(x, compute)
    res = _backend.kernels(_backend.resolve(backend), "augment").shift_flip(x, dy, dx, flip)
    return v.restore(out_dtype, res)


def erase(x, top, left, height, width):
    """Random erasing: zero one rectangle per image (all channels), in one vectorised
    NumPy pass on every backend (no kernel: a masked multiply costs about as much as
    reading the batch).

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W), float
    top, left, height, width : integer ndarray of shape (N,)
        Image ``n`` loses rows ``[top[n], top[n] + height[n])`` and columns
        ``[left[n], left[n] + width[n])``, clipped to the image; a height or width of 0
        erases nothing.

    Returns
    -------
    ndarray of the shape and dtype of ``x`` (a new array; NaN/inf inside a rectangle are
    zeroed too)
    """
    op = "erase"
    x = v.check_array(x, "x", op, ndim=4)
    n, _, H, W = x.shape
    top, left, height, width = (_per_image(a, name, n, op, shift=True) for a, name in
                                ((top, "top"), (left, "left"), (height, "height"),
                                 (width, "width")))
    if (height < 0).any() or (width < 0).any():
        raise ValueError(f"{op}: height and width must be >= 0 (0 erases nothing)")
    rows = np.arange(H)[None, :]
    cols = np.arange(W)[None, :]
    keep_r = (rows < top[:, None]) | (rows >= (top + height)[:, None])     # (N, H)
    keep_c = (cols < left[:, None]) | (cols >= (left + width)[:, None])   # (N, W)
    keep = keep_r[:, None, :, None] | keep_c[:, None, None, :]            # (N, 1, H, W)
    return np.where(keep, x, x.dtype.type(0))
