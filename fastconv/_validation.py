"""Argument checking for every public op, done once at the public boundary.

The compiled kernels run without bounds checks and trust what they get: C-contiguous
float32/float64 arrays and geometry that has been checked here. Every message says what
was expected, what came, and how to fix it.
"""
import numbers
from typing import NamedTuple

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_NDIM_NAMES = {2: "(N, D)", 4: "(N, C, H, W)"}


def check_array(a, name, op, ndim=None):
    """Return ``a`` if it is a floating ndarray of ``ndim`` dimensions, else raise.

    Raises
    ------
    TypeError
        ``a`` is not an ndarray, or its dtype is not float16/float32/float64.
    ValueError
        ``a`` has the wrong number of dimensions or holds no elements.
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(
            f"{op}: {name} must be a NumPy ndarray, got {type(a).__name__}; "
            f"convert it with np.asarray({name}, dtype=np.float32)"
        )
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{op}: {name} has dtype {a.dtype}; fastconv computes in float16, float32 or "
            f"float64. Cast it first, e.g. {name}.astype(np.float32)"
        )
    if ndim is not None and a.ndim != ndim:
        layout = _NDIM_NAMES.get(ndim, f"{ndim} dimensions")
        raise ValueError(
            f"{op}: {name} is {a.ndim}-dimensional with shape {a.shape}; "
            f"{op} needs {ndim} dimensions {layout}"
        )
    if a.size == 0:
        raise ValueError(f"{op}: {name} has shape {a.shape} with no elements; pass a non-empty array")
    return a


def dtypes(*arrays):
    """``(compute_dtype, out_dtype)`` for inputs combined as ``np.result_type`` does.

    float16 results are computed in float32 and cast back at the end.
    """
    out = np.result_type(*arrays)
    compute = np.dtype(np.float32) if out == np.float16 else out
    return compute, out


def prepare(a, dtype):
    """C-contiguous copy of ``a`` in ``dtype``, or ``a`` itself when it already is one.

    Fortran-ordered, negative-stride and strided views are copied once here.
    """
    return np.ascontiguousarray(a, dtype=dtype)


#: Largest window size, stride or pad accepted: the compiled kernels do their index
#: arithmetic on sums of a few of these in 32-bit ints, which this keeps from overflowing.
MAX_GEOMETRY = 1 << 24


def check_int(v, name, op, minimum, maximum=MAX_GEOMETRY):
    """An ``int`` (NumPy integers too, bools refused) in ``[minimum, maximum]``."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{op}: {name} must be an int, got {type(v).__name__} {v!r}")
    v = int(v)
    if v < minimum:
        what = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{op}: {name} must be {what}, got {v}")
    if v > maximum:
        raise ValueError(f"{op}: {name} must be at most {maximum}, got {v}")
    return v


def pair(v, name, op, minimum):
    """``v`` as ``(h, w)``: an int applies to both; a pair is taken as (h, w)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(
                f"{op}: {name} must be an int or an (h, w) pair, got {v!r} of length {len(v)}"
            )
        return (check_int(v[0], f"{name}[0]", op, minimum),
                check_int(v[1], f"{name}[1]", op, minimum))
    v = check_int(v, name, op, minimum)
    return v, v


def out_size(size, k, stride, pad):
    """Output length of a sliding window of ``k`` over ``size`` cells with ``pad`` on
    each side, moved by ``stride``: the one place this formula is written."""
    return (size + 2 * pad - k) // stride + 1


class Window(NamedTuple):
    """A checked sliding-window geometry: window, stride, pad and output size.

    Built once per call by :func:`window` at the public boundary; the compiled kernels
    take it as it is (the numpy reference's adapters turn it back into the book's
    stride and pad arguments, from which the reference recomputes the output size).
    """

    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    oh: int
    ow: int


def window(H, W, kh, kw, stride, pad, op, what="filter"):
    """The :class:`Window` of a ``kh`` x ``kw`` window with ``stride`` and ``pad`` pairs
    over (H, W) images; ValueError when the window does not fit the padded input."""
    (sh, sw), (ph, pw) = stride, pad
    if kh > H + 2 * ph or kw > W + 2 * pw:
        raise ValueError(
            f"{op}: the {kh}x{kw} {what} is larger than the padded input "
            f"{H + 2 * ph}x{W + 2 * pw} (input {H}x{W}, pad {ph, pw}); use a smaller "
            f"{what} or more padding"
        )
    return Window(kh, kw, sh, sw, ph, pw, out_size(H, kh, sh, ph), out_size(W, kw, sw, pw))


def restore(dtype, *arrays):
    """The kernels' results in the caller's dtype (float16 inputs are computed in
    float32); None entries stay None. One array in, one out."""
    res = tuple(None if a is None else a.astype(dtype, copy=False) for a in arrays)
    return res[0] if len(res) == 1 else res


def check_shape(a, expected, name, op, hint=""):
    """ValueError naming both shapes when ``a.shape != expected``."""
    if tuple(a.shape) != tuple(expected):
        raise ValueError(
            f"{op}: {name} has shape {tuple(a.shape)}, expected {tuple(expected)}" + (f"; {hint}" if hint else "")
        )


def check_shape_tuple(shape, name, op, ndim):
    """A shape given as a tuple of ``ndim`` positive ints."""
    if not isinstance(shape, (tuple, list)) or len(shape) != ndim:
        raise ValueError(
            f"{op}: {name} must be a tuple of {ndim} ints {_NDIM_NAMES.get(ndim, '')}, got {shape!r}"
        )
    return tuple(check_int(s, f"{name}[{i}]", op, 1) for i, s in enumerate(shape))


def check_out(out, shape, dtype, op, source):
    """``out=`` must be a writable, C-contiguous ndarray of exactly ``shape`` and ``dtype``
    that shares no memory with the input ``source`` (the kernels write ``out`` while
    they read ``source``)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{op}: out must be a NumPy ndarray, got {type(out).__name__}")
    if out.dtype != dtype or tuple(out.shape) != tuple(shape):
        raise ValueError(
            f"{op}: out has shape {out.shape} and dtype {out.dtype}, expected shape "
            f"{tuple(shape)} and dtype {np.dtype(dtype)}; allocate it with "
            f"np.empty({tuple(shape)}, dtype=np.{np.dtype(dtype).name})"
        )
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{op}: out must be C-contiguous and writeable")
    if np.may_share_memory(out, source):
        raise ValueError(f"{op}: out overlaps the input in memory; pass a separate array")
    return out


def check_index_array(a, name, op, shape, upper, hint=""):
    """An integer ndarray of ``shape`` whose values all lie in ``[0, upper)``.

    The range is checked with one ``min`` and one ``max`` pass: a compiled kernel
    indexes with these values unchecked.
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{op}: {name} must be a NumPy ndarray, got {type(a).__name__}")
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
        raise TypeError(
            f"{op}: {name} has dtype {a.dtype}; it must hold integers"
            + (f" ({hint})" if hint else "")
        )
    check_shape(a, shape, name, op, hint)
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= upper:
        raise ValueError(
            f"{op}: {name} holds values in [{lo}, {hi}], expected them in [0, {upper - 1}]"
            + (f"; {hint}" if hint else "")
        )
    return a
