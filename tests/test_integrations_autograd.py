"""fastconv.integrations.autograd: values and gradients of the primitives against autograd
differentiating plain ``autograd.numpy`` versions of the same ops (written here), and
against centered differences; every backend, float32 and float64, bad input."""
import numpy as np
import pytest

autograd = pytest.importorskip(
    "autograd", reason="autograd is not installed: pip install fastconv[autograd]")

import autograd.numpy as anp  # noqa: E402
from autograd import grad, hessian, make_vjp  # noqa: E402

import fastconv as fc  # noqa: E402
from fastconv.integrations import autograd as fa  # noqa: E402
from fastconv.testing import assert_close, check_grad  # noqa: E402

from _support import BACKENDS, POOL_CASES, bad_op_calls, pair, randn  # noqa: E402

DTYPES = [np.float32, np.float64]

# (N, C, H, W), (FN, KH, KW), stride, pad
CONV_CASES = [
    ((1, 1, 5, 5), (2, 3, 3), 1, 0),            # N=1, C=1
    ((2, 3, 7, 6), (4, 3, 3), 1, 1),            # odd W, pad 1
    ((2, 2, 9, 7), (3, 3, 2), (2, 1), (1, 0)),  # stride and pad pairs, windows that do not tile
]


# --------------------------------------------------------------------------- references
# How autograd users write these ops: shifted slices of the padded input.

def _windows(x, kh, kw, stride, pad, fill=0.0):
    """(N, C, kh*kw, OH, OW): the window cells of every output position, by slicing."""
    (sh, sw), (ph, pw) = pair(stride), pair(pad)
    xp = anp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="constant",
                 constant_values=fill)
    OH = (x.shape[2] + 2 * ph - kh) // sh + 1
    OW = (x.shape[3] + 2 * pw - kw) // sw + 1
    return anp.stack([xp[:, :, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw]
                      for i in range(kh) for j in range(kw)], axis=2)


def conv2d_ref(x, W, b=None, stride=1, pad=0, relu=False):
    FN, C, KH, KW = W.shape
    cols = _windows(x, KH, KW, stride, pad)
    out = anp.transpose(anp.tensordot(anp.reshape(W, (FN, C, KH * KW)), cols,
                                      axes=([1, 2], [1, 2])), (1, 0, 2, 3))
    if b is not None:
        out = out + anp.reshape(b, (1, FN, 1, 1))
    return anp.maximum(out, 0) if relu else out


def max_pool2d_ref(x, pool_h, pool_w, stride=None, pad=0):
    stride = (pool_h, pool_w) if stride is None else stride
    return anp.max(_windows(x, pool_h, pool_w, stride, pad, fill=-np.inf), axis=2)


def avg_pool2d_ref(x, pool_h, pool_w, stride=None, pad=0):
    stride = (pool_h, pool_w) if stride is None else stride
    return anp.mean(_windows(x, pool_h, pool_w, stride, pad), axis=2)


def linear_ref(x, W, b=None, relu=False):
    out = anp.dot(anp.reshape(x, (x.shape[0], -1)), W)
    if b is not None:
        out = out + b
    return anp.maximum(out, 0) if relu else out


def _compare(op, ref, args, kwargs, terms, backend):
    """Value and every gradient of sum(dout * op(*args)) against the reference's."""
    out_ref = ref(*args, **kwargs)
    dout = randn(out_ref.shape, out_ref.dtype, 99)
    argnums = tuple(i for i, a in enumerate(args) if isinstance(a, np.ndarray))
    loss = lambda f: lambda *a: anp.sum(f(*a, **kwargs) * dout)  # noqa: E731
    got = grad(loss(lambda *a, **k: op(*a, **k, backend=backend)), argnums)(*args)
    want = grad(loss(ref), argnums)(*args)
    assert_close(op(*args, **kwargs, backend=backend), out_ref, terms[0], what="out")
    for i, g, w, t in zip(argnums, got, want, terms[1:]):
        assert g.dtype == args[i].dtype, f"gradient {i} has dtype {g.dtype}"
        assert_close(g, w.astype(g.dtype), t, what=f"gradient of argument {i}")


def _conv_terms(x_shape, W_shape, stride, pad):
    (sh, sw), (ph, pw) = pair(stride), pair(pad)
    OH = (x_shape[2] + 2 * ph - W_shape[2]) // sh + 1
    OW = (x_shape[3] + 2 * pw - W_shape[3]) // sw + 1
    n_out = x_shape[0] * OH * OW
    overlaps = -(-W_shape[2] // sh) * -(-W_shape[3] // sw)
    return (W_shape[1] * W_shape[2] * W_shape[3] + 1, W_shape[0] * overlaps, n_out, n_out)


# --------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CONV_CASES)
def test_conv2d_gradients_match_autograd_numpy(x_shape, w_shape, stride, pad, relu, dtype,
                                               backend):
    x = randn(x_shape, dtype, 0)
    W = randn((w_shape[0], x_shape[1]) + w_shape[1:], dtype, 1)
    b = randn(w_shape[:1], dtype, 2)
    _compare(fa.conv2d, conv2d_ref, (x, W, b), dict(stride=stride, pad=pad, relu=relu),
             _conv_terms(x.shape, W.shape, stride, pad), backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_without_bias_and_with_weights_only(backend):
    x, W = randn((2, 3, 6, 6), np.float64, 0), randn((4, 3, 3, 3), np.float64, 1)
    _compare(fa.conv2d, conv2d_ref, (x, W), dict(pad=1), _conv_terms(x.shape, W.shape, 1, 1),
             backend)
    # only W differentiated: the VJP skips dx (need_dx=False) and still gets dW right
    dout = randn((2, 4, 6, 6), np.float64, 2)
    got = grad(lambda W: anp.sum(fa.conv2d(x, W, pad=1, backend=backend) * dout))(W)
    want = grad(lambda W: anp.sum(conv2d_ref(x, W, pad=1) * dout))(W)
    assert_close(got, want, terms=2 * 36)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("x_shape, window, stride, pad", POOL_CASES)
def test_pool2d_gradients_match_autograd_numpy(x_shape, window, stride, pad, kind, dtype,
                                               backend):
    x = randn(x_shape, dtype, 0)
    op, ref = (fa.max_pool2d, max_pool2d_ref) if kind == "max" else (fa.avg_pool2d,
                                                                      avg_pool2d_ref)
    K = window[0] * window[1]
    s = pair(window if stride is None else stride)
    overlaps = -(-window[0] // s[0]) * -(-window[1] // s[1])
    terms = (None if kind == "max" else K, overlaps)
    _compare(op, ref, (x,) + window, dict(stride=stride, pad=pad), terms, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_linear_gradients_match_autograd_numpy(bias, relu, dtype, backend):
    x = randn((5, 3, 4, 2), dtype, 0)  # flattened to (5, 24), as the book's Affine does
    W = randn((24, 7), dtype, 1)
    args = (x, W, randn((7,), dtype, 2)) if bias else (x, W)
    _compare(fa.linear, linear_ref, args, dict(relu=relu), (25, 7, 5, 5), backend)


def test_mixed_dtypes_give_each_gradient_its_input_dtype():
    x = randn((2, 3, 6, 6), np.float32, 0)
    W, b = randn((4, 3, 3, 3), np.float64, 1), randn((4,), np.float32, 2)
    dx, dW, db = grad(lambda x, W, b: anp.sum(fa.conv2d(x, W, b, pad=1)), (0, 1, 2))(x, W, b)
    assert (dx.dtype, dW.dtype, db.dtype) == (np.float32, np.float64, np.float32)


@pytest.mark.parametrize("x_shape, window, stride, pad", POOL_CASES)
def test_max_pool2d_vjp_matches_centered_differences(x_shape, window, stride, pad):
    x = randn(x_shape, np.float64, 0)

    def backward(dout, x, *geometry, **kwargs):
        return make_vjp(lambda x: fa.max_pool2d(x, *geometry, **kwargs))(x)[0](dout)

    check_grad(fa.max_pool2d, x, *window, backward=backward, stride=stride, pad=pad)


def test_a_small_cnn_trains():
    """A conv-relu-pool net with a softmax loss: the loss falls over a few SGD steps."""
    rng = np.random.default_rng(0)
    x = rng.random((16, 1, 8, 8)).astype(np.float32)
    t = (x[:, 0, :4].mean(axis=(1, 2)) > x[:, 0, 4:].mean(axis=(1, 2))).astype(int)
    params = [randn((4, 1, 3, 3), np.float32, 1) * 0.5, np.zeros(4, np.float32),
              randn((64, 2), np.float32, 2) * 0.1, np.zeros(2, np.float32)]

    def loss(p):
        h = fa.max_pool2d(fa.conv2d(x, p[0], p[1], pad=1, relu=True), 2, 2)
        scores = fa.linear(h, p[2], p[3])
        log_p = scores - anp.log(anp.sum(anp.exp(scores), axis=1, keepdims=True))
        return -anp.mean(log_p[np.arange(len(t)), t])

    losses = []
    for _ in range(30):
        losses.append(loss(params))
        params = [p - 0.5 * g for p, g in zip(params, grad(loss)(params))]
    assert losses[-1] < 0.8 * losses[0], losses


def test_second_derivatives_are_refused():
    x, W = randn((1, 1, 4, 4), np.float64, 0), randn((1, 1, 3, 3), np.float64, 1)
    with pytest.raises(NotImplementedError, match="conv2d defines first derivatives only"):
        hessian(lambda x: anp.sum(fa.conv2d(x, W) ** 2))(x)
    with pytest.raises(NotImplementedError, match="max_pool2d defines first derivatives only"):
        hessian(lambda x: anp.sum(fa.max_pool2d(x, 2, 2) ** 2))(x)


# --------------------------------------------------------------------------- bad input

X, W = randn((2, 3, 6, 6), np.float32, 0), randn((4, 3, 3, 3), np.float32, 1)


BAD = bad_op_calls(X, W) + [("conv2d", (X.tolist(), W), {})]


# traced: inside autograd.grad, x reaching the op boxed (autograd itself refuses to trace
# a non-float x)
@pytest.mark.parametrize("name, args, kwargs, traced", [b + (False,) for b in BAD] + [
    b + (True,) for b in BAD if isinstance(b[1][0], np.ndarray) and b[1][0].dtype.kind == "f"])
def test_bad_input_raises_what_fastconv_raises(name, args, kwargs, traced):
    x = args[0]
    with pytest.raises((TypeError, ValueError)) as expected:
        getattr(fc, name)(*args, **kwargs)
    op = getattr(fa, name)
    with pytest.raises(type(expected.value)) as info:
        if traced:
            grad(lambda x: anp.sum(op(x, *args[1:], **kwargs)))(x)
        else:
            op(*args, **kwargs)
    assert str(info.value) == str(expected.value)
