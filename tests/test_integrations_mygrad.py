"""fastconv.integrations.mygrad: values and gradients of the operations against MyGrad's
own ``conv_nd`` / ``max_pool`` / ``matmul`` graphs, fastconv's reference backward and
centered differences; every backend, float32 and float64, MyGrad's graph rules (constants,
reuse, in-place edits, memory locks), bad input."""
import gc

import numpy as np
import pytest

mg = pytest.importorskip("mygrad", reason="MyGrad is not installed: pip install fastconv[mygrad]")

from mygrad.nnet.activations import relu as mg_relu  # noqa: E402
from mygrad.nnet.layers import conv_nd, max_pool  # noqa: E402
from mygrad.nnet.losses import softmax_crossentropy  # noqa: E402

import fastconv as fc  # noqa: E402
from fastconv import reference as ref  # noqa: E402
from fastconv.integrations import mygrad as fm  # noqa: E402
from fastconv.testing import assert_close, check_grad  # noqa: E402

from _support import BACKENDS, POOL_CASES, bad_op_calls, pair, randn  # noqa: E402

DTYPES = [np.float32, np.float64]

# (N, C, H, W), (FN, KH, KW), stride, pad: geometries whose windows tile, as MyGrad's
# conv_nd requires
CONV_CASES = [
    ((1, 1, 5, 5), (2, 3, 3), 1, 0),        # N=1, C=1
    ((2, 3, 7, 6), (4, 3, 3), 1, 1),        # odd W, pad 1
    ((2, 2, 9, 7), (3, 3, 3), 2, (1, 0)),   # stride 2, pad pair
]


def _grads(build, arrays, dout):
    """Gradients of sum(dout * build(*tensors)) for every array, through MyGrad."""
    tensors = [mg.tensor(a) for a in arrays]
    out = build(*tensors)
    (out * dout).sum().backward()
    return out.data, [t.grad for t in tensors]


def _overlaps(kh, kw, stride):
    sh, sw = pair(stride)
    return -(-kh // sh) * -(-kw // sw)


# --------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CONV_CASES)
def test_conv2d_matches_mygrad_conv_nd(x_shape, w_shape, stride, pad, relu, dtype, backend):
    x = randn(x_shape, dtype, 0)
    W = randn((w_shape[0], x_shape[1]) + w_shape[1:], dtype, 1)
    b = randn(w_shape[:1], dtype, 2)

    def mygrad_conv(x, W, b):
        out = conv_nd(x, W, stride=stride, padding=pad) + b.reshape(1, -1, 1, 1)
        return mg_relu(out) if relu else out

    out_ref = mygrad_conv(*map(mg.tensor, (x, W, b))).data
    dout = randn(out_ref.shape, dtype, 3)
    want_out, want = _grads(mygrad_conv, (x, W, b), dout)
    got_out, got = _grads(lambda x, W, b: fm.conv2d(x, W, b, stride, pad, relu,
                                                    backend=backend), (x, W, b), dout)
    n_out = out_ref.shape[0] * out_ref.shape[2] * out_ref.shape[3]
    terms = (W[0].size + 1, W.shape[0] * _overlaps(*W.shape[2:], stride), n_out, n_out)
    assert_close(got_out, want_out, terms[0], what="out")
    for name, g, w, t in zip(("dx", "dW", "db"), got, want, terms[1:]):
        assert g.dtype == dtype
        assert_close(g, w, t, what=name)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_matches_mygrad_max_pool(dtype, backend):
    x = randn((2, 3, 8, 8), dtype, 0)
    dout = randn((2, 3, 4, 4), dtype, 1)
    want_out, (want,) = _grads(lambda x: max_pool(x, (2, 2), 2), (x,), dout)
    got_out, (got,) = _grads(lambda x: fm.max_pool2d(x, 2, 2, backend=backend), (x,), dout)
    assert_close(got_out, want_out, what="out")
    assert_close(got, want, what="dx")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("x_shape, window, stride, pad", POOL_CASES)
def test_pool2d_matches_the_reference(x_shape, window, stride, pad, kind, dtype, backend):
    """Pooling geometries MyGrad has no op for (padding, strides other than the window):
    against fastconv.reference's forward and backward."""
    x = randn(x_shape, dtype, 0)
    op = fm.max_pool2d if kind == "max" else fm.avg_pool2d
    got_out, (got,) = _grads(lambda x: op(x, *window, stride, pad, backend=backend), (x,),
                             dout := randn(op(x, *window, stride, pad).shape, dtype, 1))
    if kind == "max":
        want_out, argmax = ref.max_pool2d(x, *window, stride, pad)
        want = ref.max_pool2d_backward(dout, argmax, x.shape, *window, stride, pad)
    else:
        want_out = ref.avg_pool2d(x, *window, stride, pad)
        want = ref.avg_pool2d_backward(dout, x.shape, *window, stride, pad)
    s = window if stride is None else stride
    assert_close(got_out, want_out, None if kind == "max" else window[0] * window[1],
                 what="out")
    assert_close(got, want, _overlaps(*window, s), what="dx")


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("x_shape, window, stride, pad", POOL_CASES)
def test_pool2d_backward_matches_centered_differences(x_shape, window, stride, pad, kind):
    x = randn(x_shape, np.float64, 0)
    op = fm.max_pool2d if kind == "max" else fm.avg_pool2d

    def backward(dout, x, *window, **kwargs):
        return _grads(lambda x: op(x, *window, **kwargs), (x,), dout)[1]

    check_grad(op, x, *window, backward=backward, stride=stride, pad=pad)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("relu", [False, True])
def test_linear_matches_mygrad_matmul(relu, dtype, backend):
    x, W, b = randn((5, 3, 4, 2), dtype, 0), randn((24, 7), dtype, 1), randn((7,), dtype, 2)

    def mygrad_linear(x, W, b):
        out = mg.matmul(x.reshape(5, -1), W) + b
        return mg_relu(out) if relu else out

    dout = randn((5, 7), dtype, 3)
    want_out, want = _grads(mygrad_linear, (x, W, b), dout)
    got_out, got = _grads(lambda x, W, b: fm.linear(x, W, b, relu, backend=backend),
                          (x, W, b), dout)
    assert_close(got_out, want_out, 25, what="out")
    for name, g, w, t in zip(("dx", "dW", "db"), got, want, (7, 5, 5)):
        assert g.dtype == dtype
        assert_close(g, w, t, what=name)


# --------------------------------------------------------------------------- graphs

def test_constant_inputs_get_no_gradient_and_arrays_are_constants():
    x = randn((2, 3, 6, 6), np.float64, 0)
    W = mg.tensor(randn((4, 3, 3, 3), np.float64, 1))
    b = mg.tensor(randn((4,), np.float64, 2), constant=True)
    out = fm.conv2d(x, W, b, pad=1)  # x: an ndarray, hence a constant
    out.sum().backward()
    assert b.grad is None
    _, dW, _ = ref.conv2d_backward(np.ones(out.shape), x, W.data, 1, 1)
    assert_close(W.grad, dW, terms=72)
    assert fm.conv2d(x, W.data, pad=1).constant
    assert fm.conv2d(x, W, pad=1, constant=True).constant


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_output_used_twice_accumulates_its_gradients(backend):
    x = mg.tensor(randn((2, 3, 6, 6), np.float64, 0))
    W = mg.tensor(randn((4, 3, 3, 3), np.float64, 1))
    y = fm.conv2d(x, W, pad=1, relu=True, backend=backend)
    (y * y + 3 * y).sum().backward()
    dout = 2 * y.data + 3
    dx, dW, _ = ref.conv2d_backward(dout, x.data, W.data, 1, 1, relu_out=y.data)
    assert_close(x.grad, dx, terms=36)
    assert_close(W.grad, dW, terms=72)


def test_editing_an_output_in_place_keeps_the_relu_mask():
    x = mg.tensor(randn((2, 3, 6, 6), np.float64, 0))
    W = mg.tensor(randn((4, 3, 3, 3), np.float64, 1))
    y = fm.conv2d(x, W, pad=1, relu=True)
    kept = y.data.copy()
    z = y * 1
    y[...] = 5.0  # MyGrad rewrites the graph; the op's saved output must not change
    z.sum().backward()
    _, dW, _ = ref.conv2d_backward(np.ones(kept.shape), x.data, W.data, 1, 1, relu_out=kept)
    assert_close(W.grad, dW, terms=72)


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("backend", BACKENDS)
def test_outputs_of_every_backend_enter_and_leave_mygrad_graphs(backend):
    """MyGrad locks (and later unlocks) each output and its base; an output Numba
    allocated has a Numba MemInfo for a base, which MyGrad cannot lock."""
    x = randn((4, 3, 6, 6), np.float32, 0)
    W1, W2 = mg.tensor(randn((2, 3, 3, 3), np.float32, 1)), mg.tensor(randn((18, 3), np.float32, 2))
    h = fm.avg_pool2d(fm.max_pool2d(fm.conv2d(x, W1, pad=1, backend=backend), 2, 2,
                                    backend=backend), 1, 1, backend=backend)
    loss = softmax_crossentropy(fm.linear(h, W2, relu=True, backend=backend), np.arange(4) % 3)
    loss.backward()
    del loss, h
    gc.collect()
    assert W1.grad.shape == W1.shape and W2.grad.shape == W2.shape


def test_a_small_cnn_trains():
    """A conv-relu-pool net with MyGrad's softmax loss: the loss falls over SGD steps."""
    rng = np.random.default_rng(0)
    x = rng.random((16, 1, 8, 8)).astype(np.float32)
    t = (x[:, 0, :4].mean(axis=(1, 2)) > x[:, 0, 4:].mean(axis=(1, 2))).astype(int)
    params = [mg.tensor(a) for a in (randn((4, 1, 3, 3), np.float32, 1) * 0.5,
                                     np.zeros(4, np.float32),
                                     randn((64, 2), np.float32, 2) * 0.1,
                                     np.zeros(2, np.float32))]
    losses = []
    for _ in range(30):
        h = fm.max_pool2d(fm.conv2d(x, params[0], params[1], pad=1, relu=True), 2, 2)
        loss = softmax_crossentropy(fm.linear(h, params[2], params[3]), t)
        loss.backward()
        losses.append(loss.item())
        for p in params:
            p.data -= 0.5 * p.grad
    assert losses[-1] < 0.8 * losses[0], losses


# --------------------------------------------------------------------------- bad input

X, W = randn((2, 3, 6, 6), np.float32, 0), randn((4, 3, 3, 3), np.float32, 1)


@pytest.mark.parametrize("name, args, kwargs", bad_op_calls(X, W))
@pytest.mark.parametrize("as_tensor", [False, True])
def test_bad_input_raises_what_fastconv_raises(name, args, kwargs, as_tensor):
    with pytest.raises((TypeError, ValueError)) as expected:
        getattr(fc, name)(*args, **kwargs)
    if as_tensor:
        args = (mg.tensor(args[0]),) + args[1:]
    with pytest.raises(type(expected.value)) as info:
        getattr(fm, name)(*args, **kwargs)
    assert str(info.value) == str(expected.value)


@pytest.mark.parametrize("name, args", [
    ("conv2d", (X.tolist(), W)),
    ("conv2d", (X, W, 0.5)),
    ("max_pool2d", ([1.0, 2.0], 2, 2)),
    ("linear", (X, "W")),
])
def test_non_arrays_are_refused_with_the_fix(name, args):
    with pytest.raises(TypeError, match=rf"{name}: \w+ must be a mygrad Tensor or a NumPy "
                                        r"ndarray, got \w+; convert it with mygrad.tensor"):
        getattr(fm, name)(*args)
