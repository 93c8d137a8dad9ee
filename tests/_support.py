"""The test suite's shared helpers (data paths, backends, tolerances, finite differences)
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
from fastconv.testing import EPS, TOLERANCE, tolerance  # noqa: E402,F401 (EPS: tests import it from here)

#: Tolerances against fastconv.reference, one row per dtype: fastconv.testing's table, the
#: one rule for the suite and for users' own checks.
TOL = {dt: dict(rtol=rtol, atol=atol) for dt, (rtol, atol) in TOLERANCE.items()}

#: Every backend that imports here, the reference included.
BACKENDS = fastconv.available_backends()
#: The compiled backends only.
COMPILED = tuple(b for b in BACKENDS if b != "numpy")


def assert_sum_close(actual, expected, terms, dtype=None):
    """Reduction results (GEMM, convolution, their gradients, sums), each element a sum
    of up to ``terms`` products, against the reference.

    Two correct implementations add the terms in different orders (BLAS builds pick
    kernels per CPU; the vector kernels sum lane-wise), and the difference scales with
    the magnitude of the terms and with sqrt(terms), not with the possibly cancelled
    element itself. So the absolute tolerance is the largest expected magnitude (the
    scale of the terms for these tests' data) times max(rtol, 4 * eps * sqrt(terms)):
    an elementwise tolerance failed on an AVX2 host for a 1024-term float32 sum
    (0.3163041 against 0.3163093 in a row reaching 50)."""
    assert actual.shape == expected.shape
    rtol, atol = tolerance(expected, terms, dtype)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def assert_close(actual, expected, dtype=None):
    """``np.testing.assert_allclose`` with the tolerance row of ``dtype`` (default:
    expected's), for results computed elementwise (copies, pooling, activations);
    reductions use :func:`assert_sum_close`."""
    dt = np.dtype(dtype or expected.dtype)
    np.testing.assert_allclose(actual, expected, **TOL[dt])


#: A DeepConvNet on 10x10 images (1x1 after its three pools): small enough for finite
#: differences, and not 28x28.
TINY_DEEPCONVNET = dict(
    input_dim=(1, 10, 10),
    conv_param_1={'filter_num': 2, 'filter_size': 3, 'pad': 1, 'stride': 1},
    conv_param_2={'filter_num': 2, 'filter_size': 3, 'pad': 1, 'stride': 1},
    conv_param_3={'filter_num': 3, 'filter_size': 3, 'pad': 1, 'stride': 1},
    conv_param_4={'filter_num': 3, 'filter_size': 3, 'pad': 2, 'stride': 1},
    conv_param_5={'filter_num': 4, 'filter_size': 3, 'pad': 1, 'stride': 1},
    conv_param_6={'filter_num': 4, 'filter_size': 3, 'pad': 1, 'stride': 1},
    hidden_size=6, output_size=3,
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
