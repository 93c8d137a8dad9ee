"""fastconv.layers against fastconv.reference.layers (the book's layers in NumPy), on every
backend x float32/float64; gradients by centered differences; book-style nets trained
on both giving the same losses."""
import numpy as np
import pytest

import fastconv as fc
from fastconv import layers as L
from fastconv import optim
from fastconv.functional import elementwise as ew
from fastconv.reference import layers as R
from fastconv.testing import assert_close

from _support import BACKENDS, TOL, numeric_grad

DTYPES = [np.float32, np.float64]


@pytest.fixture(params=BACKENDS)
def backend(request):
    with fc.use_backend(request.param):
        yield request.param


def _rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------------------ ReLU

# 40000 elements: above the kernels' PARALLEL_MIN, so the parallel loops run too.
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4, 5), (4, 10, 1000)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_matches_reference(backend, shape, dtype):
    rng = np.random.default_rng(0)
    x = _rand(rng, shape, dtype)
    x.flat[0] = 0.0
    dout = _rand(rng, shape, dtype)
    dout_copy = dout.copy()
    ours, ref = L.Relu(), R.Relu()
    out = ours.forward(x)
    assert out.dtype == dtype and out.shape == shape
    np.testing.assert_array_equal(out, ref.forward(x))
    np.testing.assert_array_equal(ours.mask, ref.mask)
    dx = ours.backward(dout)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, ref.backward(dout))
    np.testing.assert_array_equal(dout, dout_copy)  # dout is not modified


def test_relu_nan_and_inf_follow_the_book(backend):
    x = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, -1.0, 2.0], dtype=np.float32)
    ours, ref = L.Relu(), R.Relu()
    np.testing.assert_array_equal(ours.forward(x), ref.forward(x))
    np.testing.assert_array_equal(ours.mask, ref.mask)
    dout = np.array([np.inf, np.nan, 1, 2, 3, np.nan, 5], dtype=np.float32)
    np.testing.assert_array_equal(ours.backward(dout), ref.backward(dout))


def test_relu_non_contiguous_input(backend):
    rng = np.random.default_rng(1)
    x = _rand(rng, (6, 8), np.float32)[:, ::2].T
    ours = L.Relu()
    np.testing.assert_array_equal(ours.forward(x), np.maximum(x, 0))
    np.testing.assert_array_equal(ours.backward(x), np.where(x <= 0, 0, x))


# --------------------------------------------------------------------------- Sigmoid

@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_matches_reference(backend, dtype):
    rng = np.random.default_rng(2)
    x, dout = _rand(rng, (5, 7), dtype), _rand(rng, (5, 7), dtype)
    ours, ref = L.Sigmoid(), R.Sigmoid()
    out = ours.forward(x)
    assert out.dtype == dtype
    assert_close(out, ref.forward(x))
    assert_close(ours.backward(dout), ref.backward(dout))


# ---------------------------------------------------------------------------- Affine

@pytest.mark.parametrize("dtype", DTYPES)
def test_affine_matches_reference_with_4d_input(backend, dtype):
    rng = np.random.default_rng(3)
    x = _rand(rng, (4, 2, 3, 5), dtype)
    W, b = _rand(rng, (30, 6), dtype), _rand(rng, (6,), dtype)
    dout = _rand(rng, (4, 6), dtype)
    ours, ref = L.Affine(W, b), R.Affine(W, b)
    out = ours.forward(x)
    assert out.dtype == dtype
    assert_close(out, ref.forward(x))
    assert ours.original_x_shape == x.shape and ours.x.shape == (4, 30)
    dx = ours.backward(dout)
    assert dx.shape == x.shape and dx.dtype == dtype
    assert_close(dx, ref.backward(dout))
    assert_close(ours.dW, ref.dW)
    assert_close(ours.db, ref.db)


# ------------------------------------------------------------------- SoftmaxWithLoss

@pytest.mark.parametrize("labels", ["int", "onehot"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_with_loss_matches_reference(backend, dtype, labels):
    rng = np.random.default_rng(4)
    x = _rand(rng, (9, 6), dtype) * 3
    t = rng.integers(0, 6, 9)
    if labels == "onehot":
        t = np.eye(6, dtype=dtype)[t]
    ours, ref = L.SoftmaxWithLoss(), R.SoftmaxWithLoss()
    loss = ours.forward(x, t)
    assert isinstance(loss, np.generic) and loss.dtype == dtype
    assert_close(np.asarray(loss), np.asarray(ref.forward(x, t)))
    assert ours.y.dtype == dtype
    assert_close(ours.y, ref.y)
    dx = ours.backward()
    assert dx.dtype == dtype
    assert_close(dx, ref.backward())
    assert_close(ours.backward(2.5), ref.backward(2.5))


@pytest.mark.parametrize("labels", ["int", "onehot"])
def test_softmax_with_loss_gradient_by_differences(backend, labels):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 5))
    t = rng.integers(0, 5, 4)
    if labels == "onehot":
        t = np.eye(5)[t]
    layer = L.SoftmaxWithLoss()
    layer.forward(x, t)
    dx = layer.backward()
    num = numeric_grad(lambda: float(L.SoftmaxWithLoss().forward(x, t)), x)
    # y - t is the gradient of the loss without the book's +1e-7 inside the log; the
    # two differ by about 1e-7 / y_t relative.
    np.testing.assert_allclose(dx, num, rtol=1e-5, atol=1e-7)


def test_softmax_with_loss_rejects_bad_labels(backend):
    x = np.zeros((3, 4), np.float32)
    layer = L.SoftmaxWithLoss()
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        layer.forward(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="shape"):
        layer.forward(x, np.array([0, 1]))
    with pytest.raises(TypeError, match="integers"):
        layer.forward(x, np.array([0, 1, 2], np.complex64))
    with pytest.raises(ValueError, match="whole numbers"):  # whole-number floats are taken
        layer.forward(x, np.array([0.0, 1.5, 2.0]))
    with pytest.raises(ValueError, match="2 dimensions"):  # one sample (K,) is taken
        layer.forward(np.zeros((1, 3, 4), np.float32), np.array([1]))
    with pytest.raises(RuntimeError, match="before forward"):
        L.SoftmaxWithLoss().backward()


# --------------------------------------------------------------------------- Dropout

@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_train_and_inference_match_the_book(backend, dtype):
    rng = np.random.default_rng(6)
    x, dout = _rand(rng, (8, 50, 100), dtype), _rand(rng, (8, 50, 100), dtype)
    ours, ref = L.Dropout(0.3), R.Dropout(0.3)
    np.random.seed(123)
    out = ours.forward(x)
    np.random.seed(123)
    expected = ref.forward(x)
    assert out.dtype == dtype
    np.testing.assert_array_equal(ours.mask, ref.mask)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(ours.backward(dout), ref.backward(dout))
    kept = ours.mask.mean()
    assert 0.65 < kept < 0.75
    inf = ours.forward(x, train_flg=False)
    assert inf.dtype == dtype
    np.testing.assert_array_equal(inf, ref.forward(x, train_flg=False))
    assert_close(inf, x * dtype(0.7))


def test_dropout_validates_ratio():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        L.Dropout(1.5)
    with pytest.raises(TypeError):
        L.Dropout("0.5")
    with pytest.raises(RuntimeError, match="before forward"):
        L.Dropout().backward(np.ones(3))


# ---------------------------------------------------------------- BatchNormalization

@pytest.mark.parametrize("shape", [(6, 5), (4, 2, 3, 3)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnorm_matches_reference(backend, dtype, shape):
    rng = np.random.default_rng(7)
    D = int(np.prod(shape[1:]))
    gamma, beta = _rand(rng, (D,), dtype) + 1, _rand(rng, (D,), dtype)
    ours, ref = L.BatchNormalization(gamma, beta), R.BatchNormalization(gamma, beta)
    for step in range(3):
        x = _rand(rng, shape, dtype) * 2 + 1
        out = ours.forward(x, train_flg=True)
        assert out.dtype == dtype and out.shape == shape
        assert_close(out, ref.forward(x, train_flg=True))
        assert ours.running_mean.dtype == dtype and ours.running_var.dtype == dtype
        assert_close(ours.running_mean, ref.running_mean)
        assert_close(ours.running_var, ref.running_var)
        dout = _rand(rng, shape, dtype)
        dx = ours.backward(dout)
        assert dx.dtype == dtype and dx.shape == shape
        assert_close(dx, ref.backward(dout))
        assert_close(ours.dgamma, ref.dgamma)
        assert_close(ours.dbeta, ref.dbeta)
    x = _rand(rng, shape, dtype)
    out = ours.forward(x, train_flg=False)
    assert_close(out, ref.forward(x, train_flg=False))
    # inference uses the running statistics
    expected = gamma * (x.reshape(shape[0], -1) - ours.running_mean) / np.sqrt(
        ours.running_var + dtype(10e-7)) + beta
    assert_close(out, expected.reshape(shape).astype(dtype))


def test_batchnorm_running_stats_follow_momentum(backend):
    rng = np.random.default_rng(8)
    bn = L.BatchNormalization(np.ones(3), np.zeros(3), momentum=0.8)
    x = rng.standard_normal((10, 3))
    bn.forward(x)
    np.testing.assert_allclose(bn.running_mean, 0.2 * x.mean(axis=0))
    np.testing.assert_allclose(bn.running_var, 0.2 * x.var(axis=0))


@pytest.mark.parametrize("shape", [(5, 4), (3, 2, 2, 2)])
def test_batchnorm_gradients_by_differences(backend, shape):
    rng = np.random.default_rng(9)
    D = int(np.prod(shape[1:]))
    x = rng.standard_normal(shape)
    gamma, beta = rng.standard_normal(D) + 1, rng.standard_normal(D)
    w = rng.standard_normal(shape)  # loss = sum(w * out)

    def loss():
        return float(np.sum(w * L.BatchNormalization(gamma, beta).forward(x)))

    bn = L.BatchNormalization(gamma, beta)
    bn.forward(x)
    dx = bn.backward(w.copy())
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bn.dgamma, numeric_grad(loss, gamma), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bn.dbeta, numeric_grad(loss, beta), rtol=1e-5, atol=1e-7)


def test_batchnorm_validates():
    bn = L.BatchNormalization(np.ones(4), np.zeros(4))
    with pytest.raises(ValueError, match="gamma has 4 entries"):
        bn.forward(np.ones((2, 5)))
    with pytest.raises(ValueError, match="dimensional"):
        bn.forward(np.ones((2, 2, 2)))
    with pytest.raises(RuntimeError, match="running statistics"):
        bn.forward(np.ones((2, 4)), train_flg=False)
    with pytest.raises(RuntimeError, match="before forward"):
        bn.backward(np.ones((2, 4)))
    bn.forward(np.arange(8.0).reshape(2, 4))
    with pytest.raises(ValueError, match="dout has shape"):
        bn.backward(np.ones((3, 4)))


# ----------------------------------------------------------- Convolution and Pooling

@pytest.mark.parametrize("stride,pad", [(1, 0), (1, 1), (2, 1)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_convolution_matches_reference(backend, dtype, stride, pad):
    rng = np.random.default_rng(10)
    x = _rand(rng, (2, 3, 7, 6), dtype)
    W, b = _rand(rng, (4, 3, 3, 3), dtype), _rand(rng, (4,), dtype)
    ours, ref = L.Convolution(W, b, stride, pad), R.Convolution(W, b, stride, pad)
    out = ours.forward(x)
    assert out.dtype == dtype
    assert_close(out, ref.forward(x))
    dout = _rand(rng, out.shape, dtype)
    dx = ours.backward(dout)
    assert dx.dtype == dtype and ours.dW.dtype == dtype
    assert_close(dx, ref.backward(dout))
    assert_close(ours.dW, ref.dW)
    assert_close(ours.db, ref.db)


@pytest.mark.parametrize("pool,stride,pad", [(2, 2, 0), (3, 2, 1), (3, 1, 0)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_pooling_matches_reference(backend, dtype, pool, stride, pad):
    rng = np.random.default_rng(11)
    x = _rand(rng, (2, 3, 7, 8), dtype)
    ours, ref = L.Pooling(pool, pool, stride, pad), R.Pooling(pool, pool, stride, pad)
    out = ours.forward(x)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, ref.forward(x))
    np.testing.assert_array_equal(ours.arg_max, ref.arg_max)
    dout = _rand(rng, out.shape, dtype)
    dx = ours.backward(dout)
    assert dx.dtype == dtype
    assert_close(dx, ref.backward(dout))


def test_pooling_default_stride_is_the_books():
    assert L.Pooling(2, 2).stride == 2


@pytest.mark.parametrize("layer", [L.Relu(), L.Convolution(np.ones((1, 1, 1, 1)), np.ones(1)),
                                   L.Pooling(2, 2), L.Affine(np.ones((2, 2)), np.ones(2)),
                                   L.Sigmoid()])
def test_backward_before_forward_is_an_error(layer):
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((1, 1, 2, 2)))


def test_bad_input_raises_at_the_layer():
    with pytest.raises(TypeError, match="dtype"):
        L.Relu().forward(np.arange(4))
    with pytest.raises(TypeError, match="ndarray"):
        L.Relu().forward([1.0, -1.0])
    relu = L.Relu()
    relu.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match="mask"):
        relu.backward(np.ones((3, 2)))
    with pytest.raises(ValueError):
        L.Affine(np.ones((5, 2)), np.ones(2)).forward(np.ones((2, 4)))


# ---------------------------------------------------------- the elementwise functions

@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_elementwise_keep_dtype_including_float16(backend, dtype):
    rng = np.random.default_rng(12)
    x = _rand(rng, (5, 4), dtype)
    out, mask = ew.relu_forward(x)
    assert out.dtype == dtype
    assert ew.relu_backward(x, mask).dtype == dtype
    assert ew.dropout_apply(x, mask).dtype == dtype
    loss, y = ew.softmax_cross_entropy(x, np.array([0, 1, 2, 3, 0]))
    assert loss.dtype == dtype and y.dtype == dtype
    assert ew.softmax_cross_entropy_backward(y, np.array([0, 1, 2, 3, 0])).dtype == dtype


# ---------------------------------------------------------------- book-style networks

class _TwoLayerNet:
    """The book's TwoLayerNet (ch. 5) written against a layers module."""

    def __init__(self, mod, params):
        self.params = params
        self.layers = [mod.Affine(params["W1"], params["b1"]), mod.Relu(),
                       mod.Affine(params["W2"], params["b2"])]
        self.last = mod.SoftmaxWithLoss()

    def loss(self, x, t):
        for layer in self.layers:
            x = layer.forward(x)
        return self.last.forward(x, t)

    def gradient(self, x, t):
        loss = self.loss(x, t)
        dout = self.last.backward(1)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        first, last = self.layers[0], self.layers[-1]
        return loss, {"W1": first.dW, "b1": first.db, "W2": last.dW, "b2": last.db}


class _ConvNet(_TwoLayerNet):
    """Convolution-Relu-Pooling-Affine-SoftmaxWithLoss, the book's SimpleConvNet shape."""

    def __init__(self, mod, params):
        self.params = params
        self.layers = [mod.Convolution(params["W1"], params["b1"], 1, 1), mod.Relu(),
                       mod.Pooling(2, 2, 2), mod.Affine(params["W2"], params["b2"])]
        self.last = mod.SoftmaxWithLoss()


def _train(net_cls, mod, params, x, t, steps):
    params = {k: p.copy() for k, p in params.items()}
    net = net_cls(mod, params)
    opt = optim.SGD(lr=0.1)
    losses = []
    for _ in range(steps):
        loss, grads = net.gradient(x, t)
        losses.append(float(loss))
        opt.update(params, grads)
    return np.array(losses), params


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("net", ["two_layer", "conv"])
def test_book_nets_train_like_the_reference(backend, dtype, net):
    rng = np.random.default_rng(13)
    if net == "two_layer":
        x = _rand(rng, (16, 20), dtype)
        params = {"W1": _rand(rng, (20, 12), dtype) * 0.3, "b1": np.zeros(12, dtype),
                  "W2": _rand(rng, (12, 4), dtype) * 0.3, "b2": np.zeros(4, dtype)}
        cls = _TwoLayerNet
    else:
        x = _rand(rng, (8, 2, 6, 6), dtype)
        params = {"W1": _rand(rng, (3, 2, 3, 3), dtype) * 0.3, "b1": np.zeros(3, dtype),
                  "W2": _rand(rng, (27, 4), dtype) * 0.3, "b2": np.zeros(4, dtype)}
        cls = _ConvNet
    t = rng.integers(0, 4, x.shape[0])
    ours, p_ours = _train(cls, L, params, x, t, 5)
    with fc.use_backend("numpy"):
        ref, p_ref = _train(cls, R, params, x, t, 5)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else TOL[np.dtype(dtype)]
    np.testing.assert_allclose(ours, ref, **tol)
    assert ours[-1] < ours[0]  # it learns
    for k in params:
        assert p_ours[k].dtype == dtype
        np.testing.assert_allclose(p_ours[k], p_ref[k], **tol)
