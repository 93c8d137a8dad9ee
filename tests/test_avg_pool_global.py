"""global_avg_pool2d / adaptive_avg_pool2d and their backward passes (#30): every backend
against fastconv.reference, PyTorch's bins, gradients by centered differences, the layer,
and the bad inputs particular to them (tests/test_malformed.py runs the general battery)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv import reference as ref
from fastconv.testing import assert_close, assert_matches_reference

from _support import BACKENDS, numeric_grad, randn

DTYPES = [np.float16, np.float32, np.float64]

# (N, C, H, W), output_size
CASES = [
    ((1, 1, 1, 1), 1),            # a 1x1 image, batch 1
    ((1, 3, 1, 1), (4, 3)),       # 1x1 image to a larger output: every bin is the cell
    ((2, 3, 7, 7), 7),            # output size equal to the input: the identity
    ((2, 3, 7, 5), (3, 2)),       # bins that do not tile and overlap
    ((2, 2, 5, 9), (9, 12)),      # output larger than the input along both axes
    ((3, 4, 8, 8), (4, 2)),       # bins that tile
    ((1, 2, 6, 11), (1, 5)),      # one row of bins
    ((4, 16, 14, 14), 1),         # global, as adaptive
]
GLOBAL_SHAPES = [(1, 1, 1, 1), (1, 3, 5, 1), (2, 3, 7, 9), (4, 16, 28, 28), (2, 2, 1, 13)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,size", CASES)
def test_adaptive_matches_reference(dtype, shape, size):
    x = randn(shape, dtype)
    out = fc.adaptive_avg_pool2d(x, size)
    assert out.dtype == dtype
    oh, ow = (size, size) if np.isscalar(size) else size
    assert out.shape == shape[:2] + (oh, ow)
    assert_matches_reference(fc.adaptive_avg_pool2d, x, size)
    d = randn(out.shape, dtype, seed=1)
    assert_matches_reference(fc.adaptive_avg_pool2d_backward, d, shape, size)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", GLOBAL_SHAPES)
def test_global_matches_reference(dtype, shape):
    x = randn(shape, dtype)
    out = fc.global_avg_pool2d(x)
    assert out.dtype == dtype and out.shape == shape[:2] + (1, 1)
    assert_matches_reference(fc.global_avg_pool2d, x)
    d = randn(out.shape, dtype, seed=1)
    assert_matches_reference(fc.global_avg_pool2d_backward, d, shape)


@pytest.mark.parametrize("backend", BACKENDS)
def test_global_is_the_plane_mean_and_adaptive_of_one(backend):
    x = randn((3, 4, 6, 5), np.float64, seed=2)
    out = fc.global_avg_pool2d(x, backend=backend)
    np.testing.assert_allclose(out[:, :, 0, 0], x.mean(axis=(2, 3)), rtol=1e-14)
    np.testing.assert_allclose(out, fc.adaptive_avg_pool2d(x, 1, backend=backend), rtol=1e-14)
    d = randn(out.shape, np.float64, seed=3)
    dx = fc.global_avg_pool2d_backward(d, x.shape, backend=backend)
    np.testing.assert_allclose(dx, np.broadcast_to(d / 30, x.shape), rtol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_adaptive_bins_are_pytorchs(backend):
    """Bin i spans [floor(i*H/OH), ceil((i+1)*H/OH)): for H = 5 and OH = 3 the rows
    [0, 2), [1, 4), [3, 5), overlapping; with OH = 2H each row makes two bins."""
    x = np.arange(5.0)[None, None, :, None] * np.ones((1, 1, 5, 2))
    out = fc.adaptive_avg_pool2d(x, (3, 1), backend=backend)
    np.testing.assert_allclose(out[0, 0, :, 0], [0.5, 2.0, 3.5])
    dx = fc.adaptive_avg_pool2d_backward(np.ones((1, 1, 3, 1)), x.shape, (3, 1),
                                         backend=backend)
    # row 1 lies in two bins of 2x2 and 3x2 cells, row 2 in the 3x2 one only
    np.testing.assert_allclose(dx[0, 0, :, 0], [1 / 4, 1 / 4 + 1 / 6, 1 / 6, 1 / 6 + 1 / 4, 1 / 4])
    up = fc.adaptive_avg_pool2d(x, (10, 2), backend=backend)
    np.testing.assert_array_equal(up[0, 0, :, 0], np.repeat(np.arange(5.0), 2))


@pytest.mark.parametrize("backend", BACKENDS)
def test_adaptive_to_the_input_size_is_the_identity(backend):
    x = randn((2, 3, 5, 7), np.float32)
    np.testing.assert_array_equal(fc.adaptive_avg_pool2d(x, (5, 7), backend=backend), x)
    np.testing.assert_array_equal(
        fc.adaptive_avg_pool2d_backward(x, x.shape, (5, 7), backend=backend), x)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape,size", [((2, 2, 5, 6), (3, 4)), ((1, 2, 3, 2), (5, 3)),
                                        ((2, 1, 4, 4), 2)])
def test_adaptive_gradient_by_finite_differences(backend, shape, size):
    x = randn(shape, np.float64, seed=4)
    r = randn(ref.adaptive_avg_pool2d(x, size).shape, np.float64, seed=5)

    def loss():
        return float(np.sum(fc.adaptive_avg_pool2d(x, size, backend=backend) * r))

    dx = fc.adaptive_avg_pool2d_backward(r, shape, size, backend=backend)
    np.testing.assert_allclose(dx, numeric_grad(loss, x, 1e-5), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_global_gradient_by_finite_differences(backend):
    x = randn((2, 3, 4, 5), np.float64, seed=6)
    r = randn((2, 3, 1, 1), np.float64, seed=7)

    def loss():
        return float(np.sum(fc.global_avg_pool2d(x, backend=backend) * r))

    dx = fc.global_avg_pool2d_backward(r, x.shape, backend=backend)
    np.testing.assert_allclose(dx, numeric_grad(loss, x, 1e-5), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_contiguous_input(backend):
    base = randn((3, 4, 10, 12), np.float64)
    for x in (base[:, ::2, ::-1, 1::2], np.asfortranarray(base)):
        assert not x.flags.c_contiguous
        want = ref.adaptive_avg_pool2d(np.ascontiguousarray(x), (3, 4))
        assert_close(fc.adaptive_avg_pool2d(x, (3, 4), backend=backend), want, 12)
        d = np.asfortranarray(randn(want.shape, np.float64, seed=1))
        assert_close(fc.adaptive_avg_pool2d_backward(d, x.shape, (3, 4), backend=backend),
                     ref.adaptive_avg_pool2d_backward(np.ascontiguousarray(d), x.shape, (3, 4)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,size", CASES)
def test_against_pytorch(dtype, shape, size):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: "
                                "F.adaptive_avg_pool2d is the semantics compared with")
    x = randn(shape, dtype)
    xt = torch.from_numpy(x).requires_grad_(True)
    out_t = torch.nn.functional.adaptive_avg_pool2d(xt, size)
    d = randn(tuple(out_t.shape), dtype, seed=1)
    (dx_t,) = torch.autograd.grad(out_t, (xt,), torch.from_numpy(d))
    # upper bounds of the cells in a bin and of the bins over a cell
    area, bins = shape[2] * shape[3], d.shape[2] * d.shape[3]
    for backend in BACKENDS:
        assert_close(fc.adaptive_avg_pool2d(x, size, backend=backend),
                     out_t.detach().numpy(), area)
        assert_close(fc.adaptive_avg_pool2d_backward(d, shape, size, backend=backend),
                     dx_t.numpy(), bins)
        if size == 1:
            assert_close(fc.global_avg_pool2d(x, backend=backend), out_t.detach().numpy(),
                         area)


@settings(max_examples=25, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 9),
                       st.integers(1, 9)),
       size=st.tuples(st.integers(1, 12), st.integers(1, 12)),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_property_every_backend_matches_reference(shape, size, dtype, seed):
    x = randn(shape, dtype, seed)
    assert_matches_reference(fc.adaptive_avg_pool2d, x, size)
    d = randn(shape[:2] + size, dtype, seed + 1)
    assert_matches_reference(fc.adaptive_avg_pool2d_backward, d, shape, size)


@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_global_avg_pool(backend):
    x = randn((4, 8, 5, 5), np.float32)
    d = randn((4, 8, 1, 1), np.float32, seed=1)
    layer = fc.layers.GlobalAvgPool()
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(d)
    with fc.use_backend(backend):
        out = layer.forward(x)
        dx = layer.backward(d)
    assert out.dtype == dx.dtype == np.float32
    assert_close(out, ref.global_avg_pool2d(x), 25)
    assert_close(dx, ref.global_avg_pool2d_backward(d, x.shape))
    assert repr(layer) == "GlobalAvgPool()"


X = np.zeros((2, 3, 6, 6), dtype=np.float32)


@pytest.mark.parametrize("call,err,match", [
    (lambda: fc.adaptive_avg_pool2d(X, 0), ValueError, "output_size must be positive, got 0"),
    (lambda: fc.adaptive_avg_pool2d(X, (2, 0)), ValueError, r"output_size\[1\] must be positive"),
    (lambda: fc.adaptive_avg_pool2d(X, (2, 2, 2)), ValueError, r"an int or an \(h, w\) pair"),
    (lambda: fc.adaptive_avg_pool2d(X, None), TypeError, "output_size must be an int"),
    (lambda: fc.adaptive_avg_pool2d(X, 2.0), TypeError, "output_size must be an int"),
    (lambda: fc.adaptive_avg_pool2d(X[0], 2), ValueError, "needs 4 dimensions"),
    (lambda: fc.global_avg_pool2d(X.astype(np.int32)), TypeError, "dtype int32"),
    (lambda: fc.global_avg_pool2d(X[:0]), ValueError, "no elements"),
    (lambda: fc.global_avg_pool2d_backward(X, X.shape), ValueError,
     r"dout has shape \(2, 3, 6, 6\), expected \(2, 3, 1, 1\)"),
    (lambda: fc.adaptive_avg_pool2d_backward(X[:, :, :3, :3], X.shape, (3, 2)), ValueError,
     r"dout has shape \(2, 3, 3, 3\), expected \(2, 3, 3, 2\).*output_size \(3, 2\)"),
    (lambda: fc.adaptive_avg_pool2d_backward(X[:, :, :3, :2], (2, 3, 6), (3, 2)), ValueError,
     "x_shape must be a tuple of 4 ints"),
])
def test_rejects(call, err, match):
    with pytest.raises(err, match=match):
        call()
