"""Public conv2d / conv2d_backward: validate once, then dispatch to a backend."""
import numpy as np

from .. import _backend
from .. import _validation as v
from .._typing import IntPair


def _window(op, x, W, stride, pad):
    """Check x, W, stride and pad together; return their :class:`~fastconv._validation.Window`."""
    if x.shape[1] != W.shape[1]:
        raise ValueError(
            f"{op}: x has {x.shape[1]} channels (shape {x.shape}) but W expects "
            f"{W.shape[1]} (shape {W.shape}); W must be (FN, C, KH, KW) with C = x.shape[1]"
        )
    return v.window(x.shape[2], x.shape[3], W.shape[2], W.shape[3],
                    v.pair(stride, "stride", op, 1), v.pair(pad, "pad", op, 0), op)


def _pointwise(g):
    """A 1x1 convolution without padding: per image a GEMM over the channels,
    ``W (FN, C) @ x (C, OH*OW)``, with no im2col (strided: on the subsampled image)."""
    return g.kh == g.kw == 1 and g.ph == g.pw == 0


def _subsample(x, g):
    xs = x if g.sh == g.sw == 1 else np.ascontiguousarray(x[:, :, ::g.sh, ::g.sw])
    return xs.reshape(x.shape[0], x.shape[1], g.oh * g.ow)


def _pointwise_forward(x, W, b, g, relu):
    # NumPy's BLAS runs on fastconv's OpenMP threads (kernels/_pool.py): one pool.
    out = np.matmul(W.reshape(W.shape[0], -1), _subsample(x, g))
    out += b[:, None]
    if relu:
        np.maximum(out, 0, out=out)
    return out.reshape(x.shape[0], W.shape[0], g.oh, g.ow)


def _pointwise_backward(dout, x, W, g, need_dx, relu_out):
    N, FN = dout.shape[:2]
    d = dout.reshape(N, FN, -1)
    if relu_out is not None:
        d = np.where(relu_out.reshape(d.shape) > 0, d, 0).astype(d.dtype, copy=False)
    dW = np.matmul(d, _subsample(x, g).transpose(0, 2, 1)).sum(axis=0).reshape(W.shape)
    db = d.sum(axis=(0, 2))
    if not need_dx:
        return None, dW, db
    dxs = np.matmul(W.reshape(FN, -1).T, d)
    if g.sh == g.sw == 1:
        return dxs.reshape(x.shape), dW, db
    dx = np.zeros_like(x)
    dx[:, :, ::g.sh, ::g.sw] = dxs.reshape(N, -1, g.oh, g.ow)  # 1x1, no pad: OH = ceil(H/sh)
    return dx, dW, db


def conv2d(x: np.ndarray, W: np.ndarray, b: np.ndarray | None = None, stride: IntPair = 1,
           pad: IntPair = 0, relu: bool = False, *, backend: str | None = None) -> np.ndarray:
    """2-D convolution (cross-correlation, as in the book and PyTorch) of a batch of images.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
        float16, float32 or float64; any memory layout (copied once if not C-contiguous).
    W : ndarray of shape (FN, C, KH, KW)
    b : ndarray of shape (FN,) or None
    stride, pad : int or (h, w) pair
    relu : bool
        Fuse ``max(0, .)`` into the output pass.
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}
        None uses the current backend (see :func:`fastconv.set_backend`).

    Returns
    -------
    out : ndarray of shape (N, FN, OH, OW)
        ``OH = (H + 2*pad_h - KH) // stride_h + 1``, likewise ``OW``; dtype
        ``np.result_type(x, W, b)`` (float16 is computed in float32 and cast back).

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv as fc
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> W = np.ones((2, 1, 3, 3), np.float32)
    >>> out = fc.conv2d(x, W, np.array([0, -50], np.float32), pad=1, relu=True)
    >>> out.shape, out.dtype
    ((1, 2, 4, 4), dtype('float32'))
    >>> out[0, 1, 1:3]           # rows 1-2 of the second filter's sums less 50, ReLU'd
    array([[ 0.,  0.,  4.,  0.],
           [ 1., 31., 40., 13.]], dtype=float32)
    """
    op = "conv2d"
    x = v.check_array(x, "x", op, ndim=4)
    W = v.check_array(W, "W", op, ndim=4)
    if b is not None:
        b = v.check_array(b, "b", op, ndim=1)
        if b.shape[0] != W.shape[0]:
            raise ValueError(
                f"{op}: b has shape {b.shape} but W has {W.shape[0]} filters (shape "
                f"{W.shape}); b must have shape ({W.shape[0]},)"
            )
    g = _window(op, x, W, stride, pad)
    if not isinstance(relu, (bool, np.bool_)):
        raise TypeError(f"{op}: relu must be True or False, got {type(relu).__name__} {relu!r}")
    compute, out_dtype = v.dtypes(x, W) if b is None else v.dtypes(x, W, b)
    x, W = v.prepare(x, compute), v.prepare(W, compute)
    b = np.zeros(W.shape[0], compute) if b is None else v.prepare(b, compute)
    name = _backend.resolve(backend)
    if name != "numpy" and _pointwise(g):
        return v.restore(out_dtype, _pointwise_forward(x, W, b, g, bool(relu)))
    out = _backend.kernels(name, "conv").conv2d(x, W, b, g, bool(relu))
    return v.restore(out_dtype, out)


def conv2d_backward(dout: np.ndarray, x: np.ndarray, W: np.ndarray, stride: IntPair = 1,
                    pad: IntPair = 0, *, need_dx: bool = True,
                    relu_out: np.ndarray | None = None, backend: str | None = None
                    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv2d` with respect to x, W and b.

    Parameters
    ----------
    dout : ndarray of shape (N, FN, OH, OW)
        Gradient of the loss with respect to the output; must have the forward
        output's shape.
    x : ndarray of shape (N, C, H, W)
        The forward input.
    W : ndarray of shape (FN, C, KH, KW)
    stride, pad : int or (h, w) pair
        As in the forward call.
    need_dx : bool
        False skips the input gradient (a net's first layer) and returns None for it.
    relu_out : ndarray of shape (N, FN, OH, OW), optional
        For a fused ``relu=True`` forward, pass its output: ``dout`` is zeroed where the
        output is ``<= 0`` (the book's ``Relu.backward``) inside the kernel's pass over
        ``dout``, instead of a separate mask and copy.
    backend : {None, 'auto', 'numba', 'cython', 'numpy'}

    Returns
    -------
    dx : ndarray of shape (N, C, H, W), or None when ``need_dx`` is False
    dW : ndarray of shape (FN, C, KH, KW)
    db : ndarray of shape (FN,)
        dtype ``np.result_type(dout, x, W)`` (float16 computed in float32).

    Notes
    -----
    With a non-finite value (inf or NaN) in ``x``, the compiled backends' stride-1
    kernels can produce NaN in ``dW`` where the reference's is finite (they multiply
    zeros of ``dout`` between outputs by neighbouring input values, ``0 * inf``); their
    results are checked and such a call is recomputed by im2col + GEMM, which gives the
    reference's values.

    Examples
    --------
    The forward of :func:`conv2d`'s example, then its gradients:

    >>> import numpy as np
    >>> import fastconv as fc
    >>> x, W = np.arange(16.0).reshape(1, 1, 4, 4), np.ones((2, 1, 3, 3))
    >>> out = fc.conv2d(x, W, np.array([0.0, -50.0]), pad=1, relu=True)
    >>> dx, dW, db = fc.conv2d_backward(np.ones_like(out), x, W, pad=1, relu_out=out)
    >>> dx.shape, dW.shape
    ((1, 1, 4, 4), (2, 1, 3, 3))
    >>> db                                   # 16 outputs, 7 of the second filter's above 0
    array([16.,  7.])
    """
    op = "conv2d_backward"
    dout = v.check_array(dout, "dout", op, ndim=4)
    x = v.check_array(x, "x", op, ndim=4)
    W = v.check_array(W, "W", op, ndim=4)
    g = _window(op, x, W, stride, pad)
    v.check_shape(dout, (x.shape[0], W.shape[0], g.oh, g.ow), "dout", op,
                  f"conv2d of x {x.shape} with W {W.shape}, stride {(g.sh, g.sw)} and pad "
                  f"{(g.ph, g.pw)} gives that shape")
    if not isinstance(need_dx, (bool, np.bool_)):
        raise TypeError(f"{op}: need_dx must be True or False, got {type(need_dx).__name__}")
    compute, out_dtype = v.dtypes(dout, x, W)
    if relu_out is not None:
        relu_out = v.check_array(relu_out, "relu_out", op, ndim=4)
        v.check_shape(relu_out, dout.shape, "relu_out", op,
                      "pass the output of conv2d(..., relu=True) that dout is the gradient of")
        relu_out = v.prepare(relu_out, compute)
    dout, x, W = (v.prepare(a, compute) for a in (dout, x, W))
    name = _backend.resolve(backend)
    if name != "numpy" and _pointwise(g):
        return v.restore(out_dtype, *_pointwise_backward(dout, x, W, g, bool(need_dx),
                                                         relu_out))
    grads = _backend.kernels(name, "conv").conv2d_backward(
        dout, x, W, g, bool(need_dx), relu_out=relu_out)
    return v.restore(out_dtype, *grads)
