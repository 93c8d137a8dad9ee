"""The book's own usage ("Deep Learning from Scratch", oreilly-japan/deep-learning-from-scratch)
run on fastconv: ch07/gradient_check.py on SimpleConvNet with its (1, 1) label, every
label form that SoftmaxWithLoss takes, and the input forms the book's other layers take.
Each on every backend."""
from collections import OrderedDict

import numpy as np
import pytest

import fastconv as fc
from fastconv import layers as L
from fastconv.models import SimpleConvNet
from fastconv.reference import layers as R
from fastconv.testing import assert_close

from _support import BACKENDS, TOL

DTYPES = [np.float32, np.float64]
#: The book's constant inside the log of cross_entropy_error.
LOG_EPS = 1e-7
#: The step of the book's numerical_gradient (common/gradient.py).
STEP = 1e-4


@pytest.fixture(params=BACKENDS)
def backend(request):
    with fc.use_backend(request.param):
        yield request.param


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _expected(x, idx):
    """Loss and dx of softmax + cross-entropy for class indices ``idx``, written out."""
    y = _softmax(x.astype(np.float64))
    N = x.shape[0]
    loss = -np.mean(np.log(y[np.arange(N), idx] + LOG_EPS))
    dx = (y - np.eye(x.shape[1])[idx]) / N
    return loss, dx.astype(x.dtype)


# ------------------------------------------------------------------- SoftmaxWithLoss

#: Each label form the book's code passes, made from class indices ``idx`` of K classes.
LABEL_FORMS = {
    "indices (N,) int64": lambda idx, K: idx,
    "indices (N,) uint8": lambda idx, K: idx.astype(np.uint8),  # load_mnist's labels
    "indices (N,) float64": lambda idx, K: idx.astype(np.float64),
    "indices (N,) float32": lambda idx, K: idx.astype(np.float32),
    "column (N, 1) int64": lambda idx, K: idx.reshape(-1, 1),  # ch07/gradient_check.py
    "column (N, 1) float64": lambda idx, K: idx.reshape(-1, 1).astype(np.float64),
    "one-hot (N, K) float64": lambda idx, K: np.eye(K)[idx],  # load_mnist(one_hot_label=True)
    "one-hot (N, K) int64": lambda idx, K: np.eye(K, dtype=np.int64)[idx],
}


@pytest.mark.parametrize("form", LABEL_FORMS)
@pytest.mark.parametrize("N", [1, 3])
@pytest.mark.parametrize("K", [4, 40])  # 40: above FUSED_SOFTMAX_MAX_K, NumPy's path
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_label_form_gives_the_one_hot_loss_and_dx(backend, form, N, K, dtype):
    rng = np.random.default_rng(N * K)
    x = (rng.standard_normal((N, K)) * 3).astype(dtype)
    idx = rng.integers(0, K, N)
    idx[0] = 1  # the book's T = np.array([1]).reshape((1, 1)) at N = 1
    t = LABEL_FORMS[form](idx, K)
    loss, dx = _expected(x, idx)

    ours = L.SoftmaxWithLoss()
    got = ours.forward(x, t)
    assert got.dtype == dtype
    assert_close(np.asarray(got), np.asarray(loss, dtype))
    got_dx = ours.backward()
    assert got_dx.shape == (N, K) and got_dx.dtype == dtype
    assert_close(got_dx, dx)

    onehot = L.SoftmaxWithLoss()
    assert_close(np.asarray(onehot.forward(x, np.eye(K)[idx])), np.asarray(got))
    assert_close(onehot.backward(2.5), ours.backward(2.5))

    ref = R.SoftmaxWithLoss()  # the ground truth reads every form alike too
    assert_close(np.asarray(ref.forward(x, t)), np.asarray(got))
    assert_close(ref.backward(), got_dx)


#: One sample of K scores, as the book's cross_entropy_error takes it, and its label.
ONE_SAMPLE_FORMS = {
    "scalar index": lambda i, K: np.array(i),
    "index (1,)": lambda i, K: np.array([i]),
    "index (1, 1)": lambda i, K: np.array([[i]]),
    "float index (1,)": lambda i, K: np.array([float(i)]),
    "one-hot (K,)": lambda i, K: np.eye(K)[i],
    "one-hot (1, K)": lambda i, K: np.eye(K)[[i]],
}


@pytest.mark.parametrize("form", ONE_SAMPLE_FORMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_one_sample_scores_are_a_batch_of_one(backend, form, dtype):
    K = 5
    x = (np.random.default_rng(1).standard_normal(K) * 3).astype(dtype)
    loss, dx = _expected(x[np.newaxis], np.array([2]))
    t = ONE_SAMPLE_FORMS[form](2, K)
    layer = L.SoftmaxWithLoss()
    assert_close(np.asarray(layer.forward(x, t)), np.asarray(loss, dtype))
    assert layer.y.shape == (K,)
    got = layer.backward()
    assert got.shape == (K,) and got.dtype == dtype
    assert_close(got, dx[0])  # divided by N = 1 (the book divides a one-hot row's by K)
    ref = R.SoftmaxWithLoss()
    assert_close(np.asarray(ref.forward(x, t)), np.asarray(loss, dtype))
    assert_close(ref.backward(), dx[0])


@pytest.mark.parametrize("t", [np.zeros((3, 1), np.int64), np.zeros(3, np.int64),
                               np.zeros((3, 1)), np.zeros((1, 1), np.int64)],
                         ids=["(N, 1) int", "(N,) int", "(N, 1) float", "(1, 1) int"])
def test_one_class_labels_are_indices_so_zero(backend, t):
    """K == 1: an (N, 1) label has the scores' shape and is read as class indices (all 0),
    not as one-hot; the loss is the constant -log(1 + 1e-7) and its derivative is 0."""
    x = np.random.default_rng(2).standard_normal((t.shape[0], 1))
    for layer in (L.SoftmaxWithLoss(), R.SoftmaxWithLoss()):
        assert layer.forward(x, t) == pytest.approx(-np.log1p(LOG_EPS), rel=1e-12)
        np.testing.assert_array_equal(layer.backward(), np.zeros_like(x))
    with pytest.raises(ValueError, match=r"\[0, 1\) for 1 class, got values in \[1, 1\]; "
                                         r"with one class.*must all be 0"):
        L.SoftmaxWithLoss().forward(x, np.ones_like(t))


#: (label, message pattern): each says what was expected, what came and how to fix it.
BAD_LABELS = {
    "index == K": (np.array([0, 4, 1]), r"must lie in \[0, 4\) for 4 classes, got values in "
                                        r"\[0, 4\]; count classes from 0"),
    "negative column index": (np.array([[0], [-1], [1]]),
                              r"must lie in \[0, 4\).*got values in \[-1, 1\]; count classes"),
    "float index == K": (np.array([0.0, 4.0, 1.0]), r"must lie in \[0, 4\).*\[0, 4\]"),
    "too few indices": (np.array([0, 1]),
                        r"t has shape \(2,\); expected class indices of shape \(3,\) or "
                        r"\(3, 1\), or one-hot rows of shape \(3, 4\),.*one label per sample"),
    "column of the wrong N": (np.array([[0], [1]]), r"t has shape \(2, 1\); expected class "
                                                    r"indices of shape \(3,\) or \(3, 1\)"),
    "one-hot of the wrong N": (np.eye(4)[[0, 1]], r"one-hot t has shape \(2, 4\), expected "
                                                  r"\(3, 4\): one row per sample"),
    "one-hot of the wrong K": (np.eye(5)[[0, 1, 2]], r"one-hot t has shape \(3, 5\), expected "
                                                     r"\(3, 4\).*one column per class"),
    "3-D": (np.zeros((3, 1, 1), np.int64), r"t has shape \(3, 1, 1\); expected"),
    "non-integral float": (np.array([0.0, 1.5, 2.0]),
                           r"must be whole numbers in \[0, 4\), got 1.5 at position 1; pass "
                           r"integer class indices"),
    "NaN index": (np.array([[0.0], [1.0], [np.nan]]), r"whole numbers.*got nan at position 2"),
    "inf index": (np.array([np.inf, 1.0, 2.0]), r"whole numbers.*got inf at position 0"),
}


@pytest.mark.parametrize("case", BAD_LABELS)
def test_bad_labels_are_value_errors_that_say_how_to_fix_them(backend, case):
    t, pattern = BAD_LABELS[case]
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"^softmax_cross_entropy: .*" + pattern):
        L.SoftmaxWithLoss().forward(x, t)


def test_bad_label_types_and_one_sample_shapes(backend):
    x = np.zeros((3, 4))
    for t in (np.array([True, False, True]), np.array([0j, 1j, 2j]), [0, 1, 2]):
        with pytest.raises(TypeError, match=r"^softmax_cross_entropy: (t must|class indices t)"):
            L.SoftmaxWithLoss().forward(x, t)
    with pytest.raises(ValueError, match=r"^SoftmaxWithLoss\.forward: x is one sample of 4 "
                                         r"scores.*got shape \(3,\); for a batch"):
        L.SoftmaxWithLoss().forward(np.zeros(4), np.array([0, 1, 2]))


# ------------------------------------------------------------ the book's other layers

@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (2, 3, 4, 5)])
@pytest.mark.parametrize("name", ["Relu", "Sigmoid", "Dropout"])
def test_elementwise_layers_take_any_shape(backend, name, shape):
    rng = np.random.default_rng(3)
    x, dout = rng.standard_normal(shape), rng.standard_normal(shape)
    ours, ref = getattr(L, name)(), getattr(R, name)()
    np.random.seed(4)  # the book's Dropout draws from the global state
    out = ours.forward(x)
    np.random.seed(4)
    assert out.shape == shape
    assert_close(out, ref.forward(x))
    assert_close(ours.backward(dout), ref.backward(dout))


@pytest.mark.parametrize("shape", [(3, 60), (3, 12, 5), (3, 3, 4, 5), (1, 3, 4, 5)])
def test_affine_takes_any_batch_shape_and_reshapes_back(backend, shape):
    rng = np.random.default_rng(5)
    W, b = rng.standard_normal((60, 4)), rng.standard_normal(4)
    x, dout = rng.standard_normal(shape), rng.standard_normal((shape[0], 4))
    ours, ref = L.Affine(W, b), R.Affine(W, b)
    assert_close(ours.forward(x), ref.forward(x))
    dx = ours.backward(dout)
    assert dx.shape == shape
    assert_close(dx, ref.backward(dout))
    assert_close(ours.dW, ref.dW)


@pytest.mark.parametrize("shape", [(6, 5), (4, 2, 3, 3), (1, 2, 2, 2)])
def test_batchnorm_takes_2d_and_4d_input_and_flattened_dout(backend, shape):
    """The book's backward reshapes a dout that is not 2-D, so it takes the gradient of
    a 4-D output flattened to (N, C*H*W) as well."""
    rng = np.random.default_rng(6)
    D = int(np.prod(shape[1:]))
    gamma, beta = rng.standard_normal(D) + 1, rng.standard_normal(D)
    x, dout = rng.standard_normal(shape), rng.standard_normal(shape)
    ours, ref = L.BatchNormalization(gamma, beta), R.BatchNormalization(gamma, beta)
    assert_close(ours.forward(x), ref.forward(x))
    expected = ref.backward(dout)
    assert_close(ours.backward(dout), expected)
    dx = ours.backward(dout.reshape(shape[0], -1))
    assert dx.shape == shape
    assert_close(dx, expected)
    with pytest.raises(ValueError, match=r"dout has shape .*or that flattened to"):
        ours.backward(np.ones((shape[0] + 1, D)))


def test_convolution_and_pooling_take_the_books_gradient_check_input(backend):
    rng = np.random.default_rng(7)
    x = rng.random(100).reshape((1, 1, 10, 10))
    W, b = rng.standard_normal((10, 1, 3, 3)) * 0.01, np.zeros(10)
    conv, ref_conv = L.Convolution(W, b, 1, 0), R.Convolution(W, b, 1, 0)
    pool, ref_pool = L.Pooling(pool_h=2, pool_w=2, stride=2), R.Pooling(2, 2, 2)
    out = pool.forward(conv.forward(x))
    assert out.shape == (1, 10, 4, 4)
    assert_close(out, ref_pool.forward(ref_conv.forward(x)))
    dout = rng.standard_normal(out.shape)
    assert_close(conv.backward(pool.backward(dout)), ref_conv.backward(ref_pool.backward(dout)))
    assert_close(conv.dW, ref_conv.dW)


# --------------------------------------------------- ch07/gradient_check.py on SimpleConvNet

#: The book's gradient_check.py network, and one on (1, 1, 28, 28) input small enough for
#: numerical_gradient's two forward passes per parameter (1,775 parameters).
NETS = {
    "book (1, 10, 10)": dict(input_dim=(1, 10, 10),
                             conv_param={'filter_num': 10, 'filter_size': 3, 'pad': 0,
                                         'stride': 1},
                             hidden_size=10, output_size=10, weight_init_std=0.01),
    "(1, 28, 28)": dict(input_dim=(1, 28, 28),
                        conv_param={'filter_num': 2, 'filter_size': 3, 'pad': 0,
                                    'stride': 1},
                        hidden_size=5, output_size=10, weight_init_std=0.01),
}
#: Seeds of the weights and of X at which no ReLU or max-pool decision is within one step
#: of flipping, as assert_smooth_within asserts: the first such seed of each net. Of the
#: first 300 seeds about 1 in 10 (book) and 1 in 40 (28x28) qualify: at weight_init_std
#: 0.01 the convolution outputs lie within about 0.02 of each other and of 0.
SEEDS = {"book (1, 10, 10)": 9, "(1, 28, 28)": 31}


class BookSimpleConvNet:
    """The book's ch07 SimpleConvNet layer list, with its separate Relu layers, on
    fastconv.layers, sharing ``params`` with a fastconv SimpleConvNet."""

    def __init__(self, params, conv):
        self.layers = OrderedDict()
        self.layers['Conv1'] = L.Convolution(params['W1'], params['b1'], conv.stride, conv.pad)
        self.layers['Relu1'] = L.Relu()
        self.layers['Pool1'] = L.Pooling(pool_h=2, pool_w=2, stride=2)
        self.layers['Affine1'] = L.Affine(params['W2'], params['b2'])
        self.layers['Relu2'] = L.Relu()
        self.layers['Affine2'] = L.Affine(params['W3'], params['b3'])
        self.last_layer = L.SoftmaxWithLoss()

    def gradient(self, x, t):
        for layer in self.layers.values():
            x = layer.forward(x)
        loss = self.last_layer.forward(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        grads = {}
        for i, name in enumerate(('Conv1', 'Affine1', 'Affine2')):
            grads[f'W{i + 1}'], grads[f'b{i + 1}'] = self.layers[name].dW, self.layers[name].db
        return loss, grads


def assert_smooth_within(net, x, h):
    """Assert that moving any one parameter of ``net`` (a SimpleConvNet) by +-h flips no
    ReLU and no max-pool winner at ``x``: the loss is then smooth along every stencil of
    the centered differences. At a kink the difference averages two one-sided slopes and
    reads 1e-6 to 1e-5 off, which no tolerance derived from the arithmetic covers."""
    p, stride, pad = net.params, net.layers['Conv1'].stride, net.layers['Conv1'].pad
    pre = fc.reference.conv2d(x, p['W1'], p['b1'], stride, pad)
    # A W1 step moves each output of its filter by h * (its input), a b1 step by h: the
    # winner by at most d1, and its lead over another output of its window by at most lead.
    d1, lead = h * max(1.0, np.abs(x).max()), h * np.ptp(x)
    N, F, OH, OW = pre.shape
    PH, PW = OH // 2, OW // 2
    windows = (pre[:, :, :2 * PH, :2 * PW].reshape(N, F, PH, 2, PW, 2)
               .transpose(0, 1, 2, 4, 3, 5).reshape(N, F, PH, PW, 4))
    top = np.sort(windows, axis=-1)
    # a positive winner that stays ahead and positive, or a window that stays negative
    clear = ((top[..., -1] - top[..., -2] > lead) & (top[..., -1] > d1)) | (top[..., -1] < -d1)
    assert clear.all(), f"{np.sum(~clear)} pooling windows within a step of a kink"
    pooled = np.maximum(top[..., -1], 0).reshape(N, -1)
    z = pooled @ p['W2'] + p['b2']
    # a W2 or b2 step moves z by h * pooled or h; a W1 or b1 step moves its filter's
    # pooled outputs by at most d1 each
    per_filter = np.abs(p['W2']).reshape(F, PH * PW, -1).sum(axis=1).max()
    dz = max(h * max(1.0, pooled.max()), d1 * per_filter)
    assert np.abs(z).min() > dz, f"a hidden unit within {dz:.1e} of ReLU's kink"


def gradient_tolerance(net, x, label, grad):
    """Bound on mean|numerical - backprop| of one parameter, away from kinks, in float64.

    * The loss is ``-log(y_t + 1e-7)``; backprop differentiates ``-log(y_t)``, so the
      numerical gradient is the backprop one times ``y_t / (y_t + 1e-7)``: a relative
      ``1e-7 / y_t`` (1e-6 at the book's near-uniform y_t of 0.1), doubled for margin.
    * Truncation, ``h**2 / 6 * |L'''|``: between kinks the scores are affine in each
      parameter, with slope at most 1 (b3), and softmax cross-entropy's third derivative
      along one score, ``y (1 - y) (1 - 2 y)``, is below 0.1: under 2e-10.
    * Rounding: a few ulp of the loss (~2.3) over ``2h``: about 1e-11.

    The absolute 1e-9 covers the last two five times over.
    """
    y_t = _softmax(net.predict(x))[0, label]
    return 2 * LOG_EPS / y_t * np.abs(grad).mean() + 1e-9


@pytest.mark.parametrize("which", NETS)
def test_gradient_check_of_the_book(backend, which):
    """ch07/gradient_check.py: numerical_gradient(X, T) against gradient(X, T), T of
    shape (1, 1), each parameter's mean absolute difference (what the book prints)."""
    seed = SEEDS[which]
    net = SimpleConvNet(**NETS[which], rng=seed)
    C, H, W = NETS[which]['input_dim']
    X = np.random.default_rng(seed).random(C * H * W).reshape((1, C, H, W))
    T = np.array([1]).reshape((1, 1))
    assert_smooth_within(net, X, STEP)

    grad_num = net.numerical_gradient(X, T)
    grad = net.gradient(X, T)
    assert grad_num.keys() == grad.keys() == net.params.keys()
    for key, val in grad_num.items():
        assert val.shape == net.params[key].shape and val.dtype == np.float64
        diff = np.abs(val - grad[key]).mean()
        assert diff <= gradient_tolerance(net, X, 1, grad[key]), f"{key}: {diff:.2e}"

    # the check can fail: the gradient for another label is far outside the tolerance
    wrong = net.gradient(X, np.array([[2]]))
    assert any(np.abs(grad_num[k] - wrong[k]).mean() > 100 * gradient_tolerance(net, X, 1, wrong[k])
               for k in grad)

    # every other label form of class 1 gives the same gradient
    for t in (np.array([1]), np.array([1], np.uint8), np.eye(10)[[1]]):
        for key, val in net.gradient(X, t).items():
            np.testing.assert_array_equal(val, grad[key])

    # the book's unfused layer list on fastconv.layers, float labels included
    book = BookSimpleConvNet(net.params, net.layers['Conv1'])
    for t in (T, np.array([[1.0]]), np.array([1]), np.eye(10)[[1]]):
        loss, grads = book.gradient(X, t)
        np.testing.assert_allclose(loss, net.loss(X, T), **TOL[np.dtype(np.float64)])
        for key in grad:
            np.testing.assert_allclose(grads[key], grad[key], err_msg=key,
                                       **TOL[np.dtype(np.float64)])


def test_the_books_exact_calls_run():
    """gradient_check.py as written: no rng (the book's global one), its X and T."""
    network = SimpleConvNet(input_dim=(1, 10, 10),
                            conv_param={'filter_num': 10, 'filter_size': 3, 'pad': 0,
                                        'stride': 1},
                            hidden_size=10, output_size=10, weight_init_std=0.01)
    X = np.random.rand(100).reshape((1, 1, 10, 10))
    T = np.array([1]).reshape((1, 1))
    grad = network.gradient(X, T)
    assert {k: v.shape for k, v in grad.items()} == {
        'W1': (10, 1, 3, 3), 'b1': (10,), 'W2': (160, 10), 'b2': (10,), 'W3': (10, 10),
        'b3': (10,)}
    assert np.isfinite(network.loss(X, T))
    assert network.accuracy(X, T) in (0.0, 1.0)


# ------------------------------------------------------------------ the nets' labels

def test_net_loss_gradient_and_accuracy_take_every_label_form(backend):
    net = SimpleConvNet(input_dim=(1, 10, 10),
                        conv_param={'filter_num': 3, 'filter_size': 3, 'pad': 0, 'stride': 1},
                        hidden_size=8, output_size=4, weight_init_std=0.3, rng=8)
    x = np.random.default_rng(8).random((7, 1, 10, 10))
    t = np.argmax(net.predict(x), axis=1)
    t[-1] = (t[-1] + 1) % 4  # the last image, in the partial batch, is wrong
    forms = [t, t.astype(np.uint8), t.reshape(-1, 1), np.eye(4)[t], t.reshape(-1, 1).tolist()]
    loss, grads = net.loss_and_gradient(x, t)
    for form in forms:
        assert net.accuracy(x, form, batch_size=3) == pytest.approx(6 / 7)
        assert net.loss(x, form) == loss
        for key, val in net.gradient(x, form).items():
            np.testing.assert_array_equal(val, grads[key])
    with pytest.raises(ValueError, match=r"t holds 6 labels for the 7 images"):
        net.loss(x, t[:6].reshape(-1, 1))
    with pytest.raises(TypeError, match=r"\(N,\) or \(N, 1\).*t\.astype\(np\.int64\)"):
        net.loss(x, t.reshape(-1, 1).astype(np.float64))


def test_one_output_net_reads_a_column_as_class_indices():
    net = SimpleConvNet(input_dim=(1, 6, 6),
                        conv_param={'filter_num': 2, 'filter_size': 3, 'pad': 0, 'stride': 1},
                        hidden_size=3, output_size=1, rng=9)
    x = np.random.default_rng(9).random((3, 1, 6, 6))
    assert net.loss(x, np.zeros((3, 1), np.int64)) == pytest.approx(-np.log1p(LOG_EPS))
    assert all(np.all(g == 0) for g in net.gradient(x, np.zeros((3, 1), np.int64)).values())
    with pytest.raises(ValueError, match=r"lie in \[0, 1\).*got values in \[1, 1\]"):
        net.loss(x, np.ones((3, 1), np.int64))
