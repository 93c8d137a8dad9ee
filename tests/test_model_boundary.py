"""DeepConvNet / SimpleConvNet check their input at their own boundary: each error is
raised before any kernel runs, names the net and the method, and says how to fix it."""
import re

import numpy as np
import pytest

from fastconv.models import DeepConvNet, SimpleConvNet

# Not 28x28, so the messages are seen to use the net's own input_dim.
from _support import TINY_DEEPCONVNET as SMALL_DEEP

SMALL_SIMPLE = dict(conv_param={'filter_num': 2, 'filter_size': 5, 'pad': 0, 'stride': 1},
                    hidden_size=4)


@pytest.fixture(scope="module")
def deep():
    return DeepConvNet(dtype=np.float32, rng=0)


def entry_points(net, x, t):
    """Every public method that takes images, as (name, call)."""
    return [
        ("predict", lambda: net.predict(x)),
        ("loss", lambda: net.loss(x, t)),
        ("accuracy", lambda: net.accuracy(x, t)),
        ("gradient", lambda: net.gradient(x, t)),
        ("loss_and_gradient", lambda: net.loss_and_gradient(x, t)),
    ]


def call_all(net, x, t, exc):
    """Each entry point raises ``exc``; returns {method: message}."""
    messages = {}
    for method, call in entry_points(net, x, t):
        with pytest.raises(exc) as info:
            call()
        msg = str(info.value)
        assert msg.startswith(f"{type(net).__name__}.{method}: "), msg
        messages[method] = msg
    return messages


# --------------------------------------------------------------------------- x


@pytest.mark.parametrize("cls", [DeepConvNet, SimpleConvNet])
def test_flattened_input_says_how_to_reshape(cls):
    net = cls(dtype=np.float32, rng=0)
    x = np.zeros((100, 784), np.float32)
    t = np.zeros(100, np.int64)
    for msg in call_all(net, x, t, ValueError).values():
        assert "x has shape (100, 784)" in msg
        assert "(N, 1, 28, 28)" in msg
        assert "x.reshape(-1, 1, 28, 28)" in msg
        assert "load_mnist(..., flatten=False)" in msg
        assert "conv2d" not in msg  # raised at the model, not inside a kernel


def test_flattened_input_uses_the_nets_input_dim():
    net = DeepConvNet(**SMALL_DEEP, rng=0)
    with pytest.raises(ValueError) as info:
        net.predict(np.zeros((4, 100)))
    msg = str(info.value)
    assert "(N, 1, 10, 10)" in msg and "x.reshape(-1, 1, 10, 10)" in msg
    assert "28" not in msg and "load_mnist" not in msg  # the MNIST hint only for 28x28 nets


@pytest.mark.parametrize("shape, fix", [
    ((1, 28, 28), "x[np.newaxis]"),
    ((5, 28, 28), "x[:, np.newaxis]"),
    ((5, 32, 32, 1), "input_dim=(32, 32, 1)"),
    ((5, 1, 32, 32), "input_dim=(1, 32, 32)"),
    ((5, 783), "4-dimensional"),
])
def test_other_shapes_name_the_expected_one(deep, shape, fix):
    with pytest.raises(ValueError) as info:
        deep.predict(np.zeros(shape, np.float32))
    msg = str(info.value)
    assert msg.startswith("DeepConvNet.predict: ")
    assert f"x has shape {shape}" in msg and "(N, 1, 28, 28)" in msg and fix in msg


def test_channels_last_input_is_recognised():
    net = SimpleConvNet(input_dim=(3, 8, 8), **SMALL_SIMPLE, rng=0)
    with pytest.raises(ValueError, match=re.escape("x.transpose(0, 3, 1, 2)")):
        net.predict(np.zeros((2, 8, 8, 3)))


def test_empty_batch(deep):
    with pytest.raises(ValueError, match=r"DeepConvNet\.accuracy: .*no images"):
        deep.accuracy(np.zeros((0, 1, 28, 28), np.float32), np.zeros(0, np.int64))


@pytest.mark.parametrize("make, shown", [
    (lambda: np.zeros((2, 1, 28, 28)).tolist(), "got list"),
    (lambda: ((0.0,) * 28,) * 28, "got tuple"),
    (lambda: 0.5, "got float"),
])
def test_non_ndarray_is_a_type_error(deep, make, shown):
    t = np.zeros(2, np.int64)
    for msg in call_all(deep, make(), t, TypeError).values():
        assert "x must be a NumPy ndarray" in msg and shown in msg
        assert "np.asarray(x, dtype=np.float32)" in msg


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.int32])
def test_integer_pixels_are_a_type_error(deep, dtype):
    x = np.random.default_rng(0).integers(0, 256, (2, 1, 28, 28)).astype(dtype)
    t = np.zeros(2, np.int64)
    for msg in call_all(deep, x, t, TypeError).values():
        assert f"integer dtype {np.dtype(dtype)}" in msg
        assert "x.astype(np.float32) / 255" in msg and "[0, 1]" in msg


@pytest.mark.parametrize("dtype", [np.bool_, np.complex64, object])
def test_other_dtypes_are_a_type_error(deep, dtype):
    with pytest.raises(TypeError, match=r"DeepConvNet\.predict: x has dtype .*x\.astype\(np\.float32\)"):
        deep.predict(np.zeros((2, 1, 28, 28), dtype))


def test_float_pixels_in_0_255_are_accepted(deep):
    """Documented judgement call: float input is not range-checked."""
    x = np.full((2, 1, 28, 28), 255.0, np.float32)
    assert deep.predict(x).shape == (2, 10)


# --------------------------------------------------------------------------- t


@pytest.mark.parametrize("t, exc, match", [
    (np.zeros(3, np.int64), ValueError, "t holds 3 labels for the 2 images"),
    (np.array([0, 10]), ValueError, r"lie in \[0, 10\).*\[0, 10\]"),
    (np.array([-1, 0]), ValueError, r"lie in \[0, 10\)"),
    (np.array([0.0, 1.0]), TypeError, r"t\.astype\(np\.int64\)"),
    (np.zeros((2, 9)), ValueError, r"one-hot t has shape \(2, 9\); expected \(2, 10\)"),
    (np.zeros((2, 10, 1)), ValueError, r"t has shape \(2, 10, 1\)"),
])
def test_bad_labels(deep, t, exc, match):
    x = np.zeros((2, 1, 28, 28), np.float32)
    for method, call in entry_points(deep, x, t)[1:]:  # all but predict take t
        with pytest.raises(exc, match=match) as info:
            call()
        assert str(info.value).startswith(f"DeepConvNet.{method}: ")


def test_float16_net_refuses_training_naming_the_method():
    net = DeepConvNet(**SMALL_DEEP, rng=0, dtype=np.float16)
    x, t = np.zeros((2, 1, 10, 10), np.float32), np.zeros(2, np.int64)
    with pytest.raises(TypeError, match=r"^DeepConvNet\.gradient: .*inference only"):
        net.gradient(x, t)
    with pytest.raises(TypeError, match=r"^DeepConvNet\.loss_and_gradient: .*inference only"):
        net.loss_and_gradient(x, t)


# --------------------------------------------------------------------------- valid input


@pytest.mark.parametrize("cls, kw, shape", [
    (DeepConvNet, {}, (3, 1, 28, 28)),
    (SimpleConvNet, SMALL_SIMPLE, (3, 1, 28, 28)),
    (DeepConvNet, SMALL_DEEP, (3, 1, 10, 10)),
])
def test_valid_float32_input_still_works(cls, kw, shape):
    net = cls(**kw, dtype=np.float32, rng=0)
    rng = np.random.default_rng(0)
    x = rng.random(shape, dtype=np.float32)
    K = net.output_size
    t = np.array([0, 1, K - 1], np.uint8)  # load_mnist's label dtype
    y = net.predict(x)
    assert y.shape == (3, K) and y.dtype == np.float32 and np.isfinite(y).all()
    assert np.isfinite(net.loss(x, t))
    assert np.isfinite(net.loss(x, list(t)))  # labels stay array_like
    assert 0.0 <= net.accuracy(x, t, batch_size=2) <= 1.0
    assert net.accuracy(x, np.eye(K, dtype=np.float32)[t]) == net.accuracy(x, t)
    loss, grads = net.loss_and_gradient(x, t)
    assert np.isfinite(loss) and grads.keys() == net.params.keys()
    assert net.gradient(x, t).keys() == net.params.keys()
    # float64 input to a float32 net is cast, as before
    np.testing.assert_allclose(net.predict(x.astype(np.float64)), y, rtol=1e-6)


# --------------------------------------------------------------------------- parameter files


@pytest.mark.parametrize("name", ["missing.npz", "missing.pkl"])
def test_load_params_missing_file_names_the_net_and_the_path(tmp_path, name):
    net = DeepConvNet(**SMALL_DEEP, rng=0)
    path = tmp_path / name
    with pytest.raises(FileNotFoundError) as info:
        net.load_params(path)
    msg = str(info.value)
    assert msg.startswith("DeepConvNet.load_params: ")
    assert str(path) in msg and "no such file" in msg
    assert "deep_convnet_params.pkl" in msg and ".npz written by fastconv" in msg
    assert "Errno" not in msg
