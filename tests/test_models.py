"""DeepConvNet / SimpleConvNet: the book's published accuracy, equality with the book's
unfused layers, gradients by finite differences, parameter files, a short training run."""
import os

import numpy as np
import pytest

import fastconv
from fastconv.reference import layers as L
from fastconv import params_io
from fastconv.datasets import load_mnist
from fastconv.layers import Convolution, Dropout
from fastconv.models import DeepConvNet, SimpleConvNet
from fastconv.optim import Adam

from _support import BACKENDS, TINY_DEEPCONVNET as TINY, centered_difference, shared_data_path

PRETRAINED = ("pretrained", "deep_convnet_params.pkl")


@pytest.fixture(scope="module")
def mnist_test():
    data = shared_data_path("mnist")
    shared_data_path(*PRETRAINED)
    _, (x, t) = load_mnist(data, flatten=False, download=False)
    return x, t


# --------------------------------------------------------------------------- conformance


@pytest.mark.slow  # the whole MNIST test set, per backend
@pytest.mark.parametrize("backend", BACKENDS)
def test_pretrained_accuracy_float64_is_the_books(mnist_test, backend):
    if backend == "numpy" and not os.environ.get("FASTCONV_SLOW_TESTS"):
        pytest.skip("the NumPy reference takes minutes on the 10,000 images on 2 cores; "
                    "set FASTCONV_SLOW_TESTS=1 to run it")
    x, t = mnist_test
    net = DeepConvNet()
    net.load_params(shared_data_path(*PRETRAINED))
    assert net.params["W1"].dtype == np.float64
    with fastconv.use_backend(backend):
        assert net.accuracy(x, t, batch_size=100) == 0.9935


@pytest.mark.slow  # the whole MNIST test set
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_pretrained_accuracy_low_precision(mnist_test, dtype):
    """float32: native. float16: weights and images rounded to float16, computed in
    float32 (the book's float16 figure is 0.9935 too)."""
    x, t = mnist_test
    net = DeepConvNet(dtype=dtype)
    net.load_params(shared_data_path(*PRETRAINED))
    assert net.params["W7"].dtype == dtype
    assert abs(net.accuracy(x.astype(dtype), t, batch_size=100) - 0.9935) <= 0.001


# --------------------------------------------------------------------------- the book's layers


def book_deepconvnet(net):
    """The book's unfused DeepConvNet layer list in plain NumPy (fastconv.reference.layers),
    sharing net's params."""
    p = net.params
    conv = [lay for lay in net.layers if isinstance(lay, Convolution)]
    seq = []
    for i in range(6):
        seq += [L.Convolution(p[f"W{i + 1}"], p[f"b{i + 1}"], conv[i].stride, conv[i].pad), L.Relu()]
        if i % 2 == 1:
            seq.append(L.Pooling(2, 2, stride=2))
    seq += [L.Affine(p["W7"], p["b7"]), L.Relu(), L.Dropout(0.5),
            L.Affine(p["W8"], p["b8"]), L.Dropout(0.5)]
    return seq, (0, 2, 5, 7, 10, 12, 15, 18)


def book_simpleconvnet(net):
    p, c = net.params, net.layers["Conv1"]
    seq = [L.Convolution(p["W1"], p["b1"], c.stride, c.pad), L.Relu(), L.Pooling(2, 2, stride=2),
           L.Affine(p["W2"], p["b2"]), L.Relu(), L.Affine(p["W3"], p["b3"])]
    return seq, (0, 3, 5)


def book_loss_and_grads(seq, weight_idx, masks, x, t):
    """The book's gradient(): forward in training mode with the given dropout masks,
    then backward through the reversed layer list."""
    masks = iter(masks)
    for layer in seq:
        if isinstance(layer, L.Dropout):
            layer.mask = next(masks)
            x = x * layer.mask
        else:
            x = layer.forward(x)
    last = L.SoftmaxWithLoss()
    loss = last.forward(x, t)
    dout = last.backward(1)
    for layer in reversed(seq):
        dout = layer.backward(dout)
    grads = {}
    for i, k in enumerate(weight_idx):
        grads[f"W{i + 1}"], grads[f"b{i + 1}"] = seq[k].dW, seq[k].db
    return loss, grads


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("which", ["deep", "simple"])
def test_fused_net_matches_book_layers(backend, dtype, which):
    rng = np.random.default_rng(3)
    if which == "deep":
        net = DeepConvNet(dtype=dtype, rng=1)
        seq, idx = book_deepconvnet(net)
    else:
        net = SimpleConvNet(dtype=dtype, rng=1, weight_init_std=0.1)
        seq, idx = book_simpleconvnet(net)
    x = rng.random((6, 1, 28, 28)).astype(dtype)
    t = rng.integers(0, 10, size=6)
    with fastconv.use_backend(backend):
        loss, grads = net.loss_and_gradient(x, t)
        masks = [lay.mask for lay in net.layers if isinstance(lay, Dropout)]
        ref_loss, ref_grads = book_loss_and_grads(seq, idx, masks, x, t)
        pred_fused = net.predict(x)
        pred_book = x
        for layer in seq:
            pred_book = (layer.forward(pred_book, train_flg=False)
                         if isinstance(layer, L.Dropout) else layer.forward(pred_book))
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(loss, ref_loss, **tol)
    np.testing.assert_allclose(pred_fused, pred_book, **tol)
    assert grads.keys() == ref_grads.keys() == net.params.keys()
    for key in grads:
        assert grads[key].dtype == dtype
        np.testing.assert_allclose(grads[key], ref_grads[key], err_msg=key, **tol)


# --------------------------------------------------------------------------- gradients


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(7)
    net = DeepConvNet(**TINY, rng=2)
    for key in net.params:
        if key.startswith("b"):
            # nonzero biases: with the initial zeros, outputs whose receptive field is all
            # padding or ReLU zeros sit exactly on ReLU's kink, where differences fail
            net.params[key][...] = rng.normal(0.0, 0.1, size=net.params[key].shape)
    x = rng.random((4, 1, 10, 10))
    t = rng.integers(0, 3, size=4)
    dropouts = [lay for lay in net.layers if isinstance(lay, Dropout)]

    def reseed():  # the same dropout masks at every evaluation
        for i, d in enumerate(dropouts):
            d.rng = np.random.default_rng(100 + i)

    def loss():
        reseed()
        return net.loss(x, t)

    reseed()
    grads = net.gradient(x, t)
    for key, p in net.params.items():
        for flat in rng.choice(p.size, size=min(4, p.size), replace=False):
            i = np.unravel_index(flat, p.shape)
            np.testing.assert_allclose(grads[key][i], centered_difference(loss, p, i, 1e-6),
                                       rtol=1e-4, atol=1e-8, err_msg=f"{key}{i}")


# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize("suffix", [".npz", ".pkl"])
def test_save_load_round_trip(tmp_path, suffix):
    a = DeepConvNet(**TINY, rng=4)
    b = DeepConvNet(**TINY, rng=5, dtype=np.float32)
    path = tmp_path / f"params{suffix}"
    a.save_params(path)
    b.load_params(path)
    x = np.random.default_rng(0).random((3, 1, 10, 10))
    for key, val in a.params.items():
        assert b.params[key].dtype == np.float32
        np.testing.assert_array_equal(b.params[key], val.astype(np.float32))
    np.testing.assert_allclose(b.predict(x), a.predict(x), rtol=1e-4, atol=1e-6)
    c = DeepConvNet(**TINY, rng=6)
    c.load_params(path)
    np.testing.assert_array_equal(c.predict(x), a.predict(x))


def test_load_params_refuses_other_shapes_and_missing_keys(tmp_path):
    net = DeepConvNet(**TINY, rng=0)
    params = dict(net.params)
    params["W8"] = np.zeros((6, 4))
    params_io.save_params(params, tmp_path / "shape.npz")
    with pytest.raises(ValueError, match=r"'W8' has shape \(6, 4\).*needs \(6, 3\)"):
        net.load_params(tmp_path / "shape.npz")
    del params["W8"]
    params_io.save_params(params, tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="has no parameter 'W8'"):
        net.load_params(tmp_path / "missing.npz")


def test_astype_and_float16_is_inference_only():
    net = DeepConvNet(**TINY, rng=0)
    w = net.params["W1"].copy()
    assert net.astype(np.float32) is net
    assert all(p.dtype == np.float32 for p in net.params.values())
    net.astype(np.float16)
    np.testing.assert_array_equal(net.params["W1"], w.astype(np.float16))
    assert net.predict(np.zeros((2, 1, 10, 10))).dtype == np.float32
    with pytest.raises(TypeError, match="inference only"):
        net.gradient(np.zeros((2, 1, 10, 10)), np.zeros(2, dtype=int))
    with pytest.raises(TypeError, match="float16, float32 or float64"):
        DeepConvNet(dtype=np.int32)


def test_dropout_ratio_reaches_both_dropout_layers():
    from fastconv.layers import Dropout

    ratios = [lay.dropout_ratio for lay in DeepConvNet(**TINY, dropout_ratio=0.3).layers
              if isinstance(lay, Dropout)]
    assert ratios == [0.3, 0.3]
    assert [lay.dropout_ratio for lay in DeepConvNet(**TINY).layers
            if isinstance(lay, Dropout)] == [0.5, 0.5]  # the book's
    with pytest.raises(ValueError, match=r"dropout_ratio must lie in \[0, 1\]"):
        DeepConvNet(**TINY, dropout_ratio=1.5)


def test_same_rng_seed_same_net():
    a, b = DeepConvNet(**TINY, rng=9), DeepConvNet(**TINY, rng=9)
    x = np.random.default_rng(0).random((4, 1, 10, 10))
    t = np.array([0, 1, 2, 0])
    ga, gb = a.gradient(x, t), b.gradient(x, t)
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])
        np.testing.assert_array_equal(ga[key], gb[key])


def test_accuracy_counts_the_partial_batch():
    net = DeepConvNet(**TINY, rng=0)
    x = np.random.default_rng(0).random((7, 1, 10, 10))
    pred = np.argmax(net.predict(x), axis=1)
    t = pred.copy()
    t[-1] = (t[-1] + 1) % 3  # only the last image, in the partial batch, is wrong
    assert net.accuracy(x, t, batch_size=3) == pytest.approx(6 / 7)
    assert net.accuracy(x, np.eye(3)[t], batch_size=3) == pytest.approx(6 / 7)


# --------------------------------------------------------------------------- training


def test_short_training_run_learns():
    """200 Adam steps of a narrow SimpleConvNet on 2,000 Fashion-MNIST images (float32)."""
    (x, t), (xt, tt) = load_mnist(shared_data_path("fashion-mnist"), flatten=False,
                                  kind="fashion-mnist", download=False)
    x, t, xt, tt = x[:2000], t[:2000].astype(np.int64), xt[:1000], tt[:1000].astype(np.int64)
    net = SimpleConvNet(conv_param={'filter_num': 8, 'filter_size': 5, 'pad': 0, 'stride': 1},
                        hidden_size=32, weight_init_std=0.05, dtype=np.float32, rng=0)
    opt = Adam(lr=0.003)
    rng = np.random.default_rng(0)
    losses = []
    for step in range(200):
        idx = rng.choice(x.shape[0], 32, replace=False)
        loss, grads = net.loss_and_gradient(x[idx], t[idx])
        opt.update(net.params, grads)
        losses.append(loss)
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    assert net.accuracy(xt, tt) > 0.6  # chance is 0.1
