"""The test suite's shared helpers (data paths, backends, the data builder, tolerances,
finite differences; results are compared with fastconv.testing.assert_close)
and its hypothesis profiles; test modules import them with ``from _support import ...``.

Hypothesis profiles, picked by the environment variable ``FASTCONV_HYPOTHESIS_PROFILE``:

``ci`` (the default)
    Derandomized (the same examples on every run, so a CI failure reproduces), no example
    database, no deadline (kernels compile on first use; the machines are shared), and
    ``CI_EXAMPLES`` examples per property test: tests/test_properties.py, the largest
    user, is sized to take at most about 90 s on 2 cores.
``long``
    ``LONG_EXAMPLES`` examples, randomized, with the example database (a failure found
    is replayed first next time): a longer search after a kernel change, e.g.
    ``FASTCONV_HYPOTHESIS_PROFILE=long python -m pytest -q tests/test_properties.py``.

Tests that set their own ``max_examples`` keep it under both.
"""

import gzip
from pathlib import Path

import pytest

#: ``../shared/data`` relative to the project root: MNIST test set, Fashion-MNIST
#: and the book's pretrained DeepConvNet weights (see its README). Never copied
#: into the repository; tests that need it skip when it is absent.
SHARED_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data_path(*parts):
    """Return ``SHARED_DATA_DIR / parts``, skipping the test when it is absent."""
    path = SHARED_DATA_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared/data absent: {path} not found (the real data is read from ../shared/data beside the checkout)")
    return path


# --------------------------------------------------------------------------- kernels

import numpy as np  # noqa: E402

import fastconv  # noqa: E402
from fastconv.testing import EPS, TOLERANCE  # noqa: E402,F401 (EPS: tests import it from here)

#: Tolerances against fastconv.reference, one row per dtype: fastconv.testing's table, the
#: one rule for the suite and for users' own checks.
TOL = {dt: dict(rtol=rtol, atol=atol) for dt, (rtol, atol) in TOLERANCE.items()}

#: Every backend that imports here, the reference included.
BACKENDS = fastconv.available_backends()
#: The compiled backends only.
COMPILED = tuple(b for b in BACKENDS if b != "numpy")


def randn(shape, dtype=np.float64, seed=0):
    """Standard normal data of ``shape`` and ``dtype``, the same for the same ``seed``:
    the suite's one data builder."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def pair(v):
    """``(v, v)`` for an int, else ``tuple(v)``: a stride or pad as ``(h, w)``."""
    return (v, v) if np.ndim(v) == 0 else tuple(v)


def naive_conv2d(x, W, b, stride, pad):
    """The convolution by its definition, four loops (CS231n's ``conv_forward_naive``):
    ``out[n, f, i, j] = sum(x_pad[n, :, window(i, j)] * W[f]) + b[f]``, ``x``'s dtype."""
    (sh, sw), (ph, pw) = pair(stride), pair(pad)
    N, C, H, Wd = x.shape
    FN, _, KH, KW = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    OH, OW = (H + 2 * ph - KH) // sh + 1, (Wd + 2 * pw - KW) // sw + 1
    out = np.zeros((N, FN, OH, OW), x.dtype)
    for n in range(N):
        for f in range(FN):
            for i in range(OH):
                for j in range(OW):
                    window = xp[n, :, i * sh:i * sh + KH, j * sw:j * sw + KW]
                    out[n, f, i, j] = np.sum(window * W[f]) + b[f]
    return out


#: Pooling geometries of the integrations' tests: (N, C, H, W), (pool_h, pool_w), stride, pad.
POOL_CASES = [
    ((2, 3, 8, 8), (2, 2), None, 0),            # the nets' 2x2 pool
    ((2, 2, 7, 9), (3, 3), 2, 1),               # overlap, padding, windows that do not tile
    ((1, 2, 6, 5), (2, 3), (1, 2), (1, 0)),     # stride and pad pairs
]


def bad_op_calls(X, W):
    """``(name, args, kwargs)`` calls of the ops ``fc.<name>`` that every integration
    wraps, each one refused by fastconv; ``X`` (2, 3, 6, 6) and ``W`` (4, 3, 3, 3) float32."""
    return [
        ("conv2d", (X.astype(np.int64), W), {}),
        ("conv2d", (X[0], W), {}),
        ("conv2d", (X, W[:, :2]), {}),
        ("conv2d", (X, W), dict(stride=0)),
        ("conv2d", (X, W), dict(relu=1)),
        ("max_pool2d", (X, 2, 2.0), {}),
        ("max_pool2d", (X, 7, 2), {}),
        ("avg_pool2d", (X, 2, 2), dict(pad=2)),
        ("linear", (X, W), {}),
        ("linear", (X, np.zeros((108, 3), np.float32), np.zeros(4, np.float32)), {}),
    ]


#: IDX type codes (the format of MNIST files) by dtype.
_IDX_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def idx_bytes(arr):
    """Serialize ``arr`` as an IDX file (big-endian, as the format requires)."""
    arr = np.asarray(arr)
    header = bytes([0, 0, _IDX_CODES[arr.dtype], arr.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path, arr=None, *, raw=None):
    """Write ``arr`` (or the bytes ``raw``) to ``path``, gzipped when it ends in .gz."""
    path = Path(path)
    data = idx_bytes(arr) if raw is None else raw
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


#: A DeepConvNet on 10x10 images (1x1 after its three pools): small enough for finite
#: differences, and not 28x28.
TINY_DEEPCONVNET = dict(
    input_dim=(1, 10, 10), hidden_size=6, output_size=3,
    # the book's six 3x3 convolutions, stride 1, with 2, 2, 3, 3, 4, 4 filters
    **{f"conv_param_{i}": {'filter_num': n, 'filter_size': 3, 'pad': pad, 'stride': 1}
       for i, (n, pad) in enumerate([(2, 1), (2, 1), (3, 1), (3, 2), (4, 1), (4, 1)], 1)},
)


# --------------------------------------------------------------------------- hypothesis

import os  # noqa: E402

from hypothesis import settings  # noqa: E402

# 150: tests/test_properties.py (6171 examples over 3 backends) took 42-44 s on a shared,
# loaded 2-core machine, one core busy; 100 took 29 s.
CI_EXAMPLES = 150
LONG_EXAMPLES = 10 * CI_EXAMPLES
settings.register_profile("ci", max_examples=CI_EXAMPLES, derandomize=True, database=None,
                          deadline=None, print_blob=True)
settings.register_profile("long", max_examples=LONG_EXAMPLES, deadline=None, print_blob=True)
HYPOTHESIS_PROFILE = os.environ.get("FASTCONV_HYPOTHESIS_PROFILE", "ci").strip() or "ci"
if HYPOTHESIS_PROFILE not in ("ci", "long"):
    raise pytest.UsageError(
        f"FASTCONV_HYPOTHESIS_PROFILE={HYPOTHESIS_PROFILE!r} is not a hypothesis profile of "
        f"this suite; use 'ci' (the default) or 'long' (see tests/_support.py)"
    )
settings.load_profile(HYPOTHESIS_PROFILE)


# --------------------------------------------------------------------------- gradients


def centered_difference(f, a, i, eps=1e-6):
    """(f() with a[i] + eps - f() with a[i] - eps) / (2 eps): the derivative of the scalar
    ``f()`` with respect to the element ``a[i]``, changed in place and restored."""
    old = a[i]
    a[i] = old + eps
    hi = f()
    a[i] = old - eps
    lo = f()
    a[i] = old
    return (hi - lo) / (2 * eps)


def numeric_grad(f, a, eps=1e-6):
    """The gradient of the scalar ``f()`` with respect to every element of ``a`` (which
    ``f`` reads), by centered differences."""
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        g[i] = centered_difference(f, a, i, eps)
    return g
