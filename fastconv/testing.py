"""Assertions for checking fastconv results in your own tests, as :mod:`numpy.testing`
serves NumPy users.

>>> import numpy as np
>>> import fastconv as fc
>>> from fastconv.testing import assert_matches_reference, check_grad
>>> rng = np.random.default_rng(0)
>>> x, W, b = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), np.zeros(4)
>>> assert_matches_reference(fc.conv2d, x, W, b, pad=1)    # every backend vs the reference
>>> check_grad(fc.conv2d, x, W, b, pad=1, relu=True)       # conv2d_backward vs differences
>>> check_grad(fc.layers.Convolution(W, b, pad=1), x)      # a layer's backward, dW and db

The tolerance rule (:func:`tolerance`) follows the dtype and, for results that are sums
(convolutions, GEMMs, their gradients), the number of terms summed: two correct
implementations add the terms in different orders (BLAS picks kernels per CPU, vector
kernels sum lane-wise), and the difference grows with the terms' magnitude and with
sqrt(terms), not with the possibly cancelled element itself.
"""
import inspect
import math

import numpy as np

from ._validation import out_size

__all__ = ["TOLERANCE", "EPS", "tolerance", "assert_close", "assert_matches_reference",
           "check_grad"]

#: (rtol, atol) of elementwise results (copies, pooling, activations) per dtype.
TOLERANCE = {
    np.dtype(np.float32): (1e-5, 1e-6),
    np.dtype(np.float64): (1e-10, 1e-12),
    np.dtype(np.float16): (2e-3, 2e-3),
}

#: Unit round-off of each dtype's arithmetic (float16 is accumulated in float32).
EPS = {
    np.dtype(np.float32): 2.0**-24,
    np.dtype(np.float64): 2.0**-53,
    np.dtype(np.float16): 2.0**-24,
}


def _float_dtype(dtype, what):
    dt = np.dtype(dtype)
    if dt not in TOLERANCE:
        raise TypeError(f"{what}: no tolerance for dtype {dt}; fastconv computes in "
                        f"{', '.join(d.name for d in TOLERANCE)}")
    return dt


def tolerance(expected, terms=None, dtype=None):
    """``(rtol, atol)`` for comparing a result with ``expected``.

    Parameters
    ----------
    expected : ndarray
        The reference result.
    terms : int, optional
        How many products each element sums (a convolution's ``C*KH*KW``, a GEMM's inner
        dimension, ...). None: the result is computed elementwise and the dtype's row of
        :data:`TOLERANCE` applies as it is.
    dtype : dtype, optional
        Whose row to use; default ``expected.dtype``.

    Returns
    -------
    rtol, atol : float
        For a sum, ``atol`` grows to ``max(rtol, 4 * eps * sqrt(terms)) * max|expected|``
        (plus the row's ``atol``): the largest expected magnitude stands for the scale of
        the terms. (An elementwise tolerance failed on an AVX2 host for a 1024-term
        float32 sum: 0.3163041 against 0.3163093 in a row reaching 50.)
    """
    dt = _float_dtype(dtype or expected.dtype, "tolerance")
    rtol, atol = TOLERANCE[dt]
    if terms is not None:
        finite = np.abs(expected[np.isfinite(expected)])
        scale = float(finite.max(initial=0.0))
        atol += max(rtol, 4 * EPS[dt] * math.sqrt(terms)) * scale
    return rtol, atol


def _index(flat, shape):
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def assert_close(actual, expected, terms=None, dtype=None, what="result"):
    """Assert that ``actual`` matches ``expected`` under :func:`tolerance`.

    Integer arrays (e.g. max pooling's argmax) must be equal. NaN matches NaN at the
    same position, an infinity the same infinity.

    Parameters
    ----------
    actual, expected : ndarray
    terms, dtype :
        As for :func:`tolerance`.
    what : str
        Names the result in the failure message.

    Raises
    ------
    AssertionError
        Naming the shapes or dtypes when they differ, else the worst element (its index,
        both values, the difference and the tolerance) and how many elements fail.
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {actual.shape}, expected {expected.shape}")
    if actual.dtype != expected.dtype:
        raise AssertionError(f"{what}: dtype {actual.dtype}, expected {expected.dtype}")
    if not np.issubdtype(expected.dtype, np.floating):
        bad = actual != expected
        if bad.any():
            i = _index(np.argmax(bad), bad.shape)
            raise AssertionError(
                f"{what}: {int(bad.sum())} of {bad.size} elements differ (exact comparison "
                f"of {expected.dtype}); first at index {i}: got {actual[i]!r}, expected "
                f"{expected[i]!r}")
        return
    rtol, atol = tolerance(expected, terms, dtype)
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    same = (a == e) | (np.isnan(a) & np.isnan(e))
    finite = np.isfinite(a) & np.isfinite(e)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(same, 0.0, np.abs(a - e))
        allowed = atol + rtol * np.where(finite, np.abs(e), 0.0)
        ratio = np.where(diff <= allowed, 0.0, diff / allowed)
    # NaN against a number, an infinity against anything else
    ratio[~same & ~finite] = np.inf
    if ratio.max(initial=0.0) > 0:
        k = _index(np.argmax(ratio), ratio.shape)
        rule = "elementwise results" if terms is None else f"sums of {terms} terms"
        raise AssertionError(
            f"{what}: {int((ratio > 0).sum())} of {ratio.size} elements differ beyond the "
            f"{expected.dtype} tolerance for {rule} (rtol {rtol:.3g}, atol {atol:.3g}); "
            f"worst at index {k}: got {actual[k]!r}, expected {expected[k]!r} "
            f"(|difference| {diff[k]:.3g}, allowed {allowed[k]:.3g})")


# --------------------------------------------------------------------------- reference

def _pair(v):
    return (int(v), int(v)) if np.ndim(v) == 0 else (int(v[0]), int(v[1]))


def _overlaps(pool_h, pool_w, stride):
    """Most windows that cover one input cell (terms of a col2im-style scatter-add)."""
    sh, sw = (pool_h, pool_w) if stride is None else _pair(stride)
    return -(-pool_h // sh) * -(-pool_w // sw)


def _bin_terms(sizes, counts):
    """Most cells in one of PyTorch's adaptive bins of ``counts`` bins over ``sizes``
    cells; swapped, most bins that cover one cell (an upper bound where not dividing)."""
    return math.prod(s // c if s % c == 0 else -(-s // c) + 1
                     for s, c in zip(sizes, _pair(counts)))


def _conv_out(x, W, stride, pad):
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    return out_size(x.shape[2], W.shape[2], sh, ph), out_size(x.shape[3], W.shape[3], sw, pw)


#: Terms summed per output element of each fastconv op, from its bound arguments (one
#: entry per output; None: computed elementwise). Ops not listed are elementwise; every
#: key is an op of the family registry (tests/test_kernel_interface.py checks).
_TERMS = {
    "conv2d": lambda a: (a["W"][0].size + 1,),
    "conv2d_backward": lambda a: (
        a["W"].shape[0] * _overlaps(a["W"].shape[2], a["W"].shape[3], a["stride"]),
        a["x"].shape[0] * math.prod(_conv_out(a["x"], a["W"], a["stride"], a["pad"])),
        a["x"].shape[0] * math.prod(_conv_out(a["x"], a["W"], a["stride"], a["pad"]))),
    "linear": lambda a: (a["W"].shape[0] + 1,),
    "linear_backward": lambda a: (a["W"].shape[1], a["x"].shape[0], a["x"].shape[0]),
    "avg_pool2d": lambda a: (a["pool_h"] * a["pool_w"],),
    "avg_pool2d_backward": lambda a: (_overlaps(a["pool_h"], a["pool_w"], a["stride"]),),
    "max_pool2d_backward": lambda a: (_overlaps(a["pool_h"], a["pool_w"], a["stride"]),),
    "col2im": lambda a: (_overlaps(a["filter_h"], a["filter_w"], a["stride"]),),
    "global_avg_pool2d": lambda a: (a["x"].shape[2] * a["x"].shape[3],),
    "adaptive_avg_pool2d": lambda a: (_bin_terms(a["x"].shape[2:], a["output_size"]),),
    "adaptive_avg_pool2d_backward": lambda a: (
        _bin_terms(_pair(a["output_size"]), a["x_shape"][2:]),),
}


def _reference_of(name):
    from . import reference

    fn = getattr(reference, name, None) if name in reference.__all__ else None
    if callable(fn):
        return fn
    raise TypeError(f"assert_matches_reference: fastconv.reference has no {name!r}; pass the "
                    f"function to compare with as reference=")


def _leaves(result, path=""):
    """(path, value) of every array (or other value) in a nested result; a MyGrad Tensor
    counts as its ``.data``."""
    if isinstance(result, (tuple, list)):
        for i, r in enumerate(result):
            yield from _leaves(r, f"{path}[{i}]")
    elif isinstance(result, dict):
        for k, r in result.items():
            yield from _leaves(r, f"{path}[{k!r}]")
    elif isinstance(getattr(result, "data", None), np.ndarray) and not isinstance(
            result, np.ndarray):
        yield path, result.data
    elif isinstance(result, (np.ndarray, np.generic)):
        yield path, np.asarray(result)
    else:
        yield path, result


def _promote_half(a):
    if isinstance(a, np.ndarray) and a.dtype == np.float16:
        return a.astype(np.float32)
    return a


def assert_matches_reference(op, *args, reference=None, terms=None, backends=None,
                             select=None, **kwargs):
    """Run ``op(*args, **kwargs)`` on every available backend and compare each result
    with the reference's.

    Parameters
    ----------
    op : callable
        A fastconv op (``fc.conv2d``, ...) or any function that runs on fastconv's
        current backend (an integration's op, your own layer code).
    *args, **kwargs
        Its arguments (no ``backend=``: each backend is selected with
        :func:`fastconv.use_backend`).
    reference : callable, optional
        The ground truth, called with the same arguments. Default: the function of
        ``fastconv.reference`` with ``op``'s name; float16 arrays are passed to it as
        float32 and its results cast back, as fastconv computes float16.
    terms : int or sequence, optional
        Terms summed per element (see :func:`tolerance`): one int for every output, or
        one entry per output array (None for an elementwise one). Default: known for
        fastconv's ops when the reference is the default one, else elementwise.
    backends : sequence of str, optional
        Default: :func:`fastconv.available_backends`, the reference backend included.
    select : callable, optional
        Applied to both results before comparing, e.g. ``lambda r: r[0]`` to compare
        the output of a function that also returns a cache.

    Raises
    ------
    AssertionError
        Naming the op, the backend, the output and its worst element.
    """
    name = getattr(op, "__name__", type(op).__name__)
    if "backend" in kwargs:
        raise TypeError("assert_matches_reference: do not pass backend=; every backend is "
                        "run in turn (choose them with backends=)")
    ref_args, ref_kwargs, promoted = args, kwargs, False
    if reference is None:
        reference = _reference_of(name)
        ref_args = tuple(_promote_half(a) for a in args)
        ref_kwargs = {k: _promote_half(a) for k, a in kwargs.items()}
        promoted = True
        if terms is None and name in _TERMS:
            bound = inspect.signature(reference).bind(*args, **kwargs)
            bound.apply_defaults()
            terms = _TERMS[name](bound.arguments)
    expected = reference(*ref_args, **ref_kwargs)
    if select is not None:
        expected = select(expected)
    expected = list(_leaves(expected))
    if terms is None or np.ndim(terms) == 0:
        terms = [terms] * len(expected)
    elif len(terms) != len(expected):
        raise ValueError(f"assert_matches_reference: terms has {len(terms)} entries for "
                         f"{len(expected)} outputs of {name}; give one per output or one int")
    from . import available_backends, use_backend

    for b in backends or available_backends():
        with use_backend(b):
            result = op(*args, **kwargs)
        if select is not None:
            result = select(result)
        actual = list(_leaves(result))
        what = f"{name} on backend {b!r}"
        if [p for p, _ in actual] != [p for p, _ in expected]:
            raise AssertionError(f"{what}: returned outputs {[p or '.' for p, _ in actual]}, "
                                 f"the reference {[p or '.' for p, _ in expected]}")
        for (path, got), (_, want), n in zip(actual, expected, terms):
            label = f"{what}, output {path}" if path else what
            if isinstance(want, np.ndarray) or isinstance(got, np.ndarray):
                if not (isinstance(want, np.ndarray) and isinstance(got, np.ndarray)):
                    raise AssertionError(f"{label}: got {type(got).__name__}, expected "
                                         f"{type(want).__name__}")
                if promoted and got.dtype == np.float16 and want.dtype == np.float32:
                    want = want.astype(np.float16)
                assert_close(got, want, n, what=label)
            elif not (got is want or got == want):
                raise AssertionError(f"{label}: got {got!r}, expected {want!r}")


# --------------------------------------------------------------------------- gradients

#: Step and tolerance of the centered differences per dtype: h relative to max(1, |x|).
_GRAD_STEP = {np.dtype(np.float64): (1e-6, 1e-6), np.dtype(np.float32): (1e-3, 1e-2)}

#: Mixed into check_grad's seed (the digits of the golden ratio).
_DOUT_STREAM = 0x9E3779B9

#: A layer's parameters and the attributes its backward stores their gradients in.
_LAYER_PARAMS = (("W", "dW"), ("b", "db"), ("gamma", "dgamma"), ("beta", "dbeta"))


def _fastconv_backward(op):
    """``backward(dout, result, bound_arguments) -> gradients`` of a fastconv forward
    op, one per leading positional argument; None for any other callable."""
    from . import functional as F

    def conv2d(dout, out, a):
        return F.conv2d_backward(dout, a["x"], a["W"], a["stride"], a["pad"],
                                 relu_out=out if a["relu"] else None, backend=a["backend"])

    def linear(dout, out, a):
        return F.linear_backward(dout, a["x"], a["W"], relu_out=out if a["relu"] else None,
                                 backend=a["backend"])

    def max_pool2d(dout, out, a):
        geometry = (a["pool_h"], a["pool_w"], a["stride"], a["pad"])
        return (F.max_pool2d_backward(dout, out[1], a["x"].shape, *geometry,
                                      backend=a["backend"]),)

    def avg_pool2d(dout, out, a):
        geometry = (a["pool_h"], a["pool_w"], a["stride"], a["pad"])
        return (F.avg_pool2d_backward(dout, a["x"].shape, *geometry, backend=a["backend"]),)

    known = {F.conv2d: conv2d, F.linear: linear, F.max_pool2d: max_pool2d,
             F.avg_pool2d: avg_pool2d}
    return known.get(op)


def _first(result):
    """The output differentiated: the result, or its first element (``max_pool2d``'s
    ``(out, argmax)``, CS231n's ``(out, cache)``); a MyGrad Tensor as its data."""
    if isinstance(result, (tuple, list)):
        result = result[0]
    data = getattr(result, "data", None)
    return np.asarray(data if isinstance(data, np.ndarray) else result)


class _Numeric:
    """Centered differences of ``L = sum(dout * f())`` with respect to one array that
    ``f`` reads, perturbed in place and restored; ``out`` is ``f``'s unperturbed output.

    Each call returns the difference and its round-off bound: every output element is
    off by about ``eps * |out|``, so the weighted sum by up to ``eps * max|out| *
    ||dout||`` (8 times that, for the few roundings of each element), divided by the
    step. It matters where the gradient is small against the outputs (BatchNorm's dx)."""

    def __init__(self, f, dout, h, rng, max_checks, out):
        self.f, self.dout, self.h, self.rng, self.max_checks = f, dout, h, rng, max_checks
        self.noise = (8 * EPS[out.dtype] * float(np.max(np.abs(out), initial=0.0))
                      * float(np.linalg.norm(dout)))

    def positions(self, a):
        n = a.size
        flat = (np.arange(n) if n <= self.max_checks
                else np.sort(self.rng.choice(n, self.max_checks, replace=False)))
        return [_index(i, a.shape) for i in flat]

    def __call__(self, a, i):
        x0 = a[i]
        step = self.h * max(1.0, abs(float(x0)))
        a[i] = x0 + step
        plus = _first(self.f()).astype(np.float64)
        up = a[i]
        a[i] = x0 - step
        minus = _first(self.f()).astype(np.float64)
        down = a[i]
        a[i] = x0
        # differencing the outputs before the weighted sum keeps L's round-off out
        width = float(up) - float(down)
        return float(np.sum(self.dout * (plus - minus))) / width, self.noise / width


def _compare_grad(label, analytic, a, numeric, rtol, h):
    analytic = np.asarray(analytic)
    if analytic.shape != a.shape:
        raise AssertionError(f"{label}: the backward's gradient has shape {analytic.shape}, "
                             f"the argument {a.shape}")
    scale = float(np.max(np.abs(analytic), initial=0.0))
    worst, bad, positions = None, 0, numeric.positions(a)
    for i in positions:
        (num, noise), ana = numeric(a, i), float(analytic[i])
        allowed = rtol * (scale + abs(ana)) + noise + 1e-300
        excess = abs(num - ana) / allowed
        if not excess <= 1:
            bad += 1
            if worst is None or not excess <= worst[0]:
                worst = (excess, i, ana, num, allowed)
    if worst is not None:
        _, i, ana, num, allowed = worst
        raise AssertionError(
            f"{label}: {bad} of {len(positions)} checked elements disagree; worst at index "
            f"{i}: the backward gives {ana!r}, centered differences (h={h:g}) give {num!r} "
            f"(|difference| {abs(num - ana):.3g}, allowed {allowed:.3g}: rtol {rtol:g} "
            f"x (max|gradient| {scale:.3g} + |gradient|) + round-off)")


def _cast(a, dtype):
    if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating):
        return a.astype(dtype or a.dtype)
    return a


def check_grad(op_or_layer, *args, backward=None, wrt=None, dtype=np.float64, h=None,
               rtol=None, max_checks=50, seed=0, **kwargs):
    """Compare a backward pass with centered finite differences.

    The loss differentiated is ``sum(dout * out)`` with a fixed-seed random ``dout``
    (``out`` a scalar loss: ``dout = 1``); the analytic gradients come from the backward,
    the numerical ones from ``(L(a + h) - L(a - h)) / 2h`` element by element.

    Parameters
    ----------
    op_or_layer : callable or layer
        * A fastconv op with a backward (``fc.conv2d``, ``fc.max_pool2d``,
          ``fc.avg_pool2d``, ``fc.linear``): its backward function is called.
        * Any other callable, with ``backward=``. Its output is the result, or the
          result's first element when it returns a tuple.
        * A layer object with ``forward(*args, **kwargs)`` and ``backward(dout)`` (the
          book's layers, :mod:`fastconv.layers`, your own): the returned ``dx`` and the
          gradients it stores (``dW``, ``db``, ``dgamma``, ``dbeta``) are checked.
    *args, **kwargs
        The arguments of the op or of the layer's ``forward``.
    backward : callable, optional
        ``backward(dout, *args, **kwargs)`` returning the gradients of the leading
        positional arguments, in order (an array for the first alone).
    wrt : sequence, optional
        Which gradients to check: positions in ``args`` for an op (default: every float
        array argument the backward returns a gradient for); for a layer, ``'x'`` and
        parameter names (default: all of them).
    dtype : dtype or None
        The float arrays (a layer's parameters too, for the check only) are cast to it;
        default float64, where differences are accurate. None keeps their dtypes
        (float32 gets a looser step and tolerance).
    h, rtol : float, optional
        Step (relative to ``max(1, |a|)``) and tolerance: an element fails when
        ``|numeric - analytic| > rtol * (max|gradient| + |analytic|)``. Defaults:
        1e-6 and 1e-6 in float64, 1e-3 and 1e-2 in float32. A bound on the round-off
        of the differences is added (see ``_Numeric``).
    max_checks : int
        Elements checked per gradient: all of them up to this many, else a fixed-seed
        random choice.
    seed : int
        Seed of ``dout`` and of the choice of elements (a stream of their own, so that
        ``dout`` never equals data drawn with ``np.random.default_rng(seed)``).

    Raises
    ------
    AssertionError
        Naming the argument or parameter, the worst element, both values and the
        tolerance.

    Notes
    -----
    A kink closer than ``h`` to an input (a ReLU at 0, tied maxima in a pooling window)
    makes the differences meaningless there; random normal data almost never has one.
    A layer's attributes are restored after the check, and NumPy's global random state
    and the layer's own generators are reset before every ``forward``, so that
    ``Dropout`` draws the same mask each time.
    """
    # a stream of its own: with default_rng(seed), dout would equal test data drawn with
    # the same seed (x.T @ x is symmetric and hides a transposed dW)
    rng = np.random.default_rng([_DOUT_STREAM, seed])
    is_layer = (callable(getattr(op_or_layer, "forward", None))
                and callable(getattr(op_or_layer, "backward", None)))
    args = tuple(_cast(a, dtype) for a in args)
    kwargs = {k: _cast(a, dtype) for k, a in kwargs.items()}
    if is_layer:
        _check_layer(op_or_layer, args, kwargs, wrt, dtype, h, rtol, max_checks, rng)
        return
    name = getattr(op_or_layer, "__name__", type(op_or_layer).__name__)
    result = op_or_layer(*args, **kwargs)
    out = _first(result)
    step, tol = _step(out.dtype, h, rtol)
    dout = rng.standard_normal(out.shape).astype(out.dtype)
    if backward is not None:
        grads = backward(dout, *args, **kwargs)
    else:
        fc_backward = _fastconv_backward(op_or_layer)
        if fc_backward is None:
            raise TypeError(f"check_grad: {name} is not a fastconv op with a known backward; "
                            f"pass backward=")
        bound = inspect.signature(op_or_layer).bind(*args, **kwargs)
        bound.apply_defaults()
        grads = fc_backward(dout, result, bound.arguments)
    # a graph library's result (a MyGrad Tensor) keeps its inputs read-only while alive
    del result
    if isinstance(grads, np.ndarray):
        grads = (grads,)
    floats = [i for i, a in enumerate(args)
              if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating)]
    if wrt is None:
        wrt = [i for i in floats if i < len(grads) and grads[i] is not None]
    numeric = _Numeric(lambda: op_or_layer(*args, **kwargs), dout.astype(np.float64), step,
                       rng, max_checks, out)
    for i in wrt:
        if i not in floats or i >= len(grads) or grads[i] is None:
            raise ValueError(f"check_grad: wrt names argument {i} of {name}, which is not a "
                             f"float array with a gradient from the backward")
        _compare_grad(f"check_grad({name}): gradient of argument {i}", grads[i], args[i],
                      numeric, tol, step)


def _step(dt, h, rtol):
    dt = np.dtype(dt)
    if dt not in _GRAD_STEP:
        raise TypeError(f"check_grad: finite differences in {dt} are too coarse; check in "
                        f"float64 (dtype=np.float64) or float32")
    default_h, default_rtol = _GRAD_STEP[dt]
    return h or default_h, rtol or default_rtol


def _check_layer(layer, args, kwargs, wrt, dtype, h, rtol, max_checks, rng):
    name = type(layer).__name__
    saved = dict(vars(layer))
    state = np.random.get_state()
    # a layer's own generators (Dropout(rng=...)) restart too
    generators = {g: g.bit_generator.state for g in saved.values()
                  if isinstance(g, np.random.Generator)}
    params = [(p, g) for p, g in _LAYER_PARAMS
              if isinstance(getattr(layer, p, None), np.ndarray)]
    try:
        for p, _ in params:
            setattr(layer, p, _cast(getattr(layer, p), dtype))

        def forward():
            np.random.set_state(state)
            for g, s in generators.items():
                g.bit_generator.state = s
            return layer.forward(*args, **kwargs)

        out = np.asarray(forward())
        step, tol = _step(out.dtype, h, rtol)
        dout = (np.ones((), np.float64) if out.ndim == 0
                else rng.standard_normal(out.shape).astype(out.dtype))
        dx = layer.backward(1 if out.ndim == 0 else dout)
        grads = {"x": dx, **{p: getattr(layer, g, None) for p, g in params}}
        targets = {"x": args[0], **{p: getattr(layer, p) for p, _ in params}}
        numeric = _Numeric(forward, dout.astype(np.float64), step, rng, max_checks, out)
        for key in wrt or grads:
            if key not in grads or grads[key] is None:
                raise ValueError(f"check_grad: {name} has no gradient for {key!r} after "
                                 f"backward (known: {', '.join(grads)})")
            label = (f"check_grad({name}): " +
                     ("dx" if key == "x" else f"d{key} (parameter {key})"))
            _compare_grad(label, grads[key], targets[key], numeric, tol, step)
    finally:
        vars(layer).clear()
        vars(layer).update(saved)
