"""linear / linear_backward: every backend against fastconv.reference, gradients by
centered differences, dtypes, layouts and every bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv import reference as ref
from fastconv.testing import assert_close

from _support import BACKENDS, COMPILED, numeric_grad, randn

DTYPES = [np.float32, np.float64]

# x shape, M
CASES = [
    ((1, 5), 3),             # N=1
    ((7, 24), 1),            # one output
    ((4, 2, 3, 4), 5),       # 4-D input flattened, as the book's Affine
    ((3, 6, 2), 4),          # 3-D input
    ((100, 1024), 50),       # DeepConvNet's first affine
    ((100, 50), 10),         # DeepConvNet's last affine
]



def _inputs(xshape, M, dtype, seed=0):
    D = int(np.prod(xshape[1:]))
    return randn(xshape, dtype, seed), randn((D, M), dtype, seed + 1), randn((M,), dtype, seed + 2)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xshape,M", CASES)
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("relu", [False, True])
def test_linear_matches_reference(backend, dtype, xshape, M, with_bias, relu):
    x, W, b = _inputs(xshape, M, dtype)
    b = b if with_bias else None
    expected = ref.linear(x, W, b, relu)
    out = fc.linear(x, W, b, relu, backend=backend)
    assert out.dtype == dtype and out.shape == (xshape[0], M)
    assert_close(out, expected, W.shape[0])
    if relu:
        assert np.all(out >= 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_is_the_books_affine(backend):
    x, W, b = _inputs((4, 3, 2, 2), 6, np.float64)
    book = np.dot(x.reshape(x.shape[0], -1), W) + b
    np.testing.assert_allclose(fc.linear(x, W, b, backend=backend), book, rtol=1e-12)
    np.testing.assert_allclose(fc.linear(x, W, b, relu=True, backend=backend),
                               np.maximum(book, 0), rtol=1e-12)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xshape,M", CASES)
@pytest.mark.parametrize("relu", [False, True])
def test_linear_backward_matches_reference(backend, dtype, xshape, M, relu):
    x, W, b = _inputs(xshape, M, dtype)
    out = ref.linear(x, W, b, relu)
    d = randn(out.shape, dtype, seed=9)
    relu_out = out if relu else None
    expected = ref.linear_backward(d, x, W, relu_out=relu_out)
    got = fc.linear_backward(d, x, W, relu_out=relu_out, backend=backend)
    assert got[0].shape == x.shape and got[1].shape == W.shape and got[2].shape == b.shape
    for g, e in zip(got, expected):
        assert g.dtype == dtype
        assert_close(g, e, max(x.shape[0], M))


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_backward_relu_mask_is_the_books(backend):
    # The book's Relu.backward zeroes dout where the forward output is <= 0.
    x, W, b = _inputs((6, 8), 5, np.float64, seed=3)
    out = fc.linear(x, W, b, relu=True, backend=backend)
    d = randn(out.shape, np.float64, seed=4)
    masked = np.where(out <= 0, 0.0, d)
    plain = fc.linear_backward(masked, x, W, backend=backend)
    fused = fc.linear_backward(d, x, W, relu_out=out, backend=backend)
    for p, f in zip(plain, fused):
        np.testing.assert_allclose(f, p, rtol=1e-12, atol=1e-14)
    assert np.any(out == 0) and np.any(out > 0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("relu", [False, True])
def test_linear_gradient_by_finite_differences(backend, relu):
    x, W, b = _inputs((3, 2, 2, 2), 4, np.float64, seed=5)
    r = randn((3, 4), np.float64, seed=6)
    if relu:
        # Keep every pre-activation at least 0.05 away from the kink.
        pre = ref.linear(x, W, b)
        b = b + np.where(np.abs(pre) < 0.05, 0.1, 0.0).max(axis=0)
        assert np.all(np.abs(ref.linear(x, W, b)) >= 0.05)

    def loss():
        return float(np.sum(fc.linear(x, W, b, relu, backend=backend) * r))

    out = fc.linear(x, W, b, relu, backend=backend)
    dx, dW, db = fc.linear_backward(r, x, W, relu_out=out if relu else None, backend=backend)
    for analytic, param in ((dx, x), (dW, W), (db, b)):
        np.testing.assert_allclose(analytic, numeric_grad(loss, param), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_mixed_dtypes_follow_result_type(backend):
    x, W, b = _inputs((5, 6), 3, np.float32)
    W64 = W.astype(np.float64)
    out = fc.linear(x, W64, b, backend=backend)
    assert out.dtype == np.float64
    assert_close(out, ref.linear(x.astype(np.float64), W64, b.astype(np.float64)))
    grads = fc.linear_backward(randn((5, 3), np.float32), x, W64, backend=backend)
    assert all(g.dtype == np.float64 for g in grads)


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_float16_computes_in_float32(backend):
    x, W, b = _inputs((4, 3, 5), 6, np.float16)
    out = fc.linear(x, W, b, relu=True, backend=backend)
    assert out.dtype == np.float16
    f32 = [a.astype(np.float32) for a in (x, W, b)]
    assert_close(out, ref.linear(*f32, relu=True).astype(np.float16))
    d = randn(out.shape, np.float16, seed=7)
    grads = fc.linear_backward(d, x, W, relu_out=out, backend=backend)
    expected = ref.linear_backward(d.astype(np.float32), f32[0], f32[1],
                                   relu_out=out.astype(np.float32))
    for g, e in zip(grads, expected):
        assert g.dtype == np.float16
        np.testing.assert_allclose(g.astype(np.float32), e, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_non_contiguous(backend):
    x, W, b = _inputs((6, 12), 5, np.float64)
    xv = np.asfortranarray(x)                     # F-ordered
    xs = np.repeat(x, 2, axis=1)[:, ::2]          # strided view
    Wf = np.asfortranarray(W)
    bs = np.repeat(b, 2)[::2]
    expected = ref.linear(x, W, b, True)
    for xi in (xv, xs):
        assert_close(fc.linear(xi, Wf, bs, True, backend=backend), expected, 12)
    d = np.asfortranarray(randn((6, 5), np.float64, seed=1))
    exp_grads = ref.linear_backward(np.ascontiguousarray(d), x, W)
    for g, e in zip(fc.linear_backward(d, xs, Wf, backend=backend), exp_grads):
        assert_close(g, e, 6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_relu_propagates_nan(backend):
    x, W, b = _inputs((3, 4), 2, np.float64)
    x[1, 2] = np.nan
    out = fc.linear(x, W, b, relu=True, backend=backend)
    assert np.all(np.isnan(out[1])) and not np.any(np.isnan(out[[0, 2]]))


@settings(max_examples=25, deadline=None)
@given(N=st.integers(1, 9), rest=st.lists(st.integers(1, 5), min_size=1, max_size=3),
       M=st.integers(1, 9), dtype=st.sampled_from(DTYPES), relu=st.booleans(),
       with_bias=st.booleans(), seed=st.integers(0, 2**16))
def test_linear_property_every_backend_matches_reference(N, rest, M, dtype, relu, with_bias, seed):
    x, W, b = _inputs((N, *rest), M, dtype, seed)
    b = b if with_bias else None
    out = ref.linear(x, W, b, relu)
    d = randn(out.shape, dtype, seed + 3)
    expected = ref.linear_backward(d, x, W, relu_out=out if relu else None)
    for backend in BACKENDS:
        assert_close(fc.linear(x, W, b, relu, backend=backend), out, W.shape[0])
        got = fc.linear_backward(d, x, W, relu_out=out if relu else None, backend=backend)
        for g, e in zip(got, expected):
            assert_close(g, e, max(N, M))


# --------------------------------------------------------------------------- validation

Xv = np.zeros((4, 2, 3), np.float32)
Wv = np.zeros((6, 5), np.float32)
bv = np.zeros(5, np.float32)


@pytest.mark.parametrize("args,kwargs,err,match", [
    ((np.zeros(6, np.float32), Wv), {}, ValueError, "at least 2 dimensions"),
    ((Xv, np.zeros(6, np.float32)), {}, ValueError, "needs 2 dimensions"),
    ((Xv, np.zeros((5, 5), np.float32)), {}, ValueError, r"W needs shape \(6, M\)"),
    ((Xv, Wv, np.zeros(4, np.float32)), {}, ValueError, r"b has shape \(4,\), expected \(5,\)"),
    ((Xv, Wv, np.zeros((1, 5), np.float32)), {}, ValueError, r"expected \(5,\)"),
    ((Xv, Wv, bv, 1), {}, TypeError, "relu must be a bool"),
    ((Xv.astype(np.int64), Wv), {}, TypeError, "dtype int64"),
    ((Xv, Wv.tolist()), {}, TypeError, "W must be a NumPy ndarray"),
    ((Xv[:0], Wv), {}, ValueError, "no elements"),
])
def test_linear_rejects(args, kwargs, err, match):
    with pytest.raises(err, match=match):
        fc.linear(*args, **kwargs)


@pytest.mark.parametrize("args,kwargs,err,match", [
    ((np.zeros((4, 4), np.float32), Xv, Wv), {}, ValueError, r"dout has shape \(4, 4\), expected \(4, 5\)"),
    ((np.zeros((4, 5, 1), np.float32), Xv, Wv), {}, ValueError, "needs 2 dimensions"),
    ((np.zeros((4, 5), np.float32), Xv, np.zeros((7, 5), np.float32)), {}, ValueError, "W needs shape"),
    ((np.zeros((4, 5), np.float32), Xv[0, 0], Wv), {}, ValueError, "at least 2 dimensions"),
    ((np.zeros((4, 5), np.float32), Xv, Wv), dict(relu_out=np.zeros((4, 4), np.float32)),
     ValueError, r"relu_out has shape \(4, 4\)"),
    ((np.zeros((4, 5), np.int32), Xv, Wv), {}, TypeError, "dtype int32"),
])
def test_linear_backward_rejects(args, kwargs, err, match):
    with pytest.raises(err, match=match):
        fc.linear_backward(*args, **kwargs)
