"""The reference's elementwise and optim families (fastconv.reference.elementwise and
.optim, behind ``kernels('numpy', ...)``) against the compiled kernels, both dtypes."""
import numpy as np
import pytest

from fastconv import _backend
from fastconv.reference.elementwise import XENT_EPS
from fastconv.testing import assert_close

from _support import COMPILED

DTYPES = [np.float32, np.float64]
pytestmark = pytest.mark.skipif(not COMPILED, reason="no compiled backend built")

# 40000: above the kernels' PARALLEL_MIN, so their parallel variant runs too
SIZES = [1, 7, 40000]


def _kernel_pair(family):
    return _backend.kernels("numpy", family), [_backend.kernels(b, family) for b in COMPILED]


def _x(n, dtype, seed=0):
    x = np.random.default_rng(seed).standard_normal(n).astype(dtype)
    x[::5] = 0  # ReLU's boundary: 0 is masked
    return x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_relu_and_dropout_match(n, dtype):
    ref, compiled = _kernel_pair("elementwise")
    x = _x(n, dtype)
    x[1::7] = np.nan  # NaN stays NaN through ReLU and the product
    keep = np.random.default_rng(1).random(n) < 0.5
    want_out, want_mask = np.empty_like(x), np.empty(n, np.bool_)
    ref.relu_forward(x, want_out, want_mask)
    want_dx, want_drop = np.empty_like(x), np.empty_like(x)
    ref.relu_backward(x, want_mask, want_dx)
    ref.dropout_apply(x, keep, want_drop)
    for k in compiled:
        out, mask, dx, drop = np.empty_like(x), np.empty(n, np.bool_), np.empty_like(x), np.empty_like(x)
        k.relu_forward(x, out, mask)
        k.relu_backward(x, mask, dx)
        k.dropout_apply(x, keep, drop)
        assert_close(out, want_out, what="relu_forward out")
        assert_close(mask, want_mask, what="relu_forward mask")
        assert_close(dx, want_dx, what="relu_backward")
        assert_close(drop, want_drop, what="dropout_apply")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dense", [False, True], ids=["indices", "one-hot"])
def test_softmax_cross_entropy_matches(dtype, dense):
    ref, compiled = _kernel_pair("elementwise")
    rng = np.random.default_rng(2)
    N, K = 9, 5
    x = (3 * rng.standard_normal((N, K))).astype(dtype)
    idx = rng.integers(0, K, N).astype(np.int64)
    t = np.eye(K, dtype=dtype)[idx] if dense else idx
    want_y = np.empty_like(x)
    want_loss = ref.softmax_cross_entropy(x, idx, want_y, XENT_EPS)
    want_dx = np.empty_like(x)
    ref.softmax_cross_entropy_backward(want_y, t, 0.25, want_dx)
    for k in compiled:
        y, dx = np.empty_like(x), np.empty_like(x)
        loss = k.softmax_cross_entropy(x, idx, y, XENT_EPS)
        k.softmax_cross_entropy_backward(want_y, t, 0.25, dx)
        assert_close(y, want_y, what="softmax")
        assert_close(np.asarray(loss, dtype), np.asarray(want_loss), terms=N, what="loss")
        assert_close(dx, want_dx, what="softmax_cross_entropy_backward")


#: Each rule with its state count and scalars.
RULES = [
    ("sgd_update", 0, (0.1,)),
    ("momentum_update", 1, (0.1, 0.9)),
    ("nesterov_update", 1, (0.1, 0.9)),
    ("adagrad_update", 1, (0.1, 1e-7)),
    ("rmsprop_update", 1, (0.1, 0.99, 1e-7)),
    ("adam_update", 2, (0.01, 0.9, 0.999, 1e-7)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("rule, n_states, scalars", RULES, ids=[r[0] for r in RULES])
def test_optim_rules_match(rule, n_states, scalars, n, dtype):
    """Three steps from nonzero state: the reference computes in the parameter's dtype,
    the kernels in float64 rounded once, so they agree to the dtype's rounding."""
    ref, compiled = _kernel_pair("optim")
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(3)]
    s0 = [rng.random(n).astype(dtype) for _ in range(n_states)]

    def run(kernels):
        p, states = p0.copy(), [s.copy() for s in s0]
        for g in grads:
            getattr(kernels, rule)(p, g, *states, *scalars)
        return p, states

    want_p, want_states = run(ref)
    assert not np.array_equal(want_p, p0)
    for k in compiled:
        p, states = run(k)
        assert_close(p, want_p, terms=8, what=f"{rule}: p")
        for i, (s, want) in enumerate(zip(states, want_states)):
            assert_close(s, want, terms=8, what=f"{rule}: state {i}")
