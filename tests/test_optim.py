"""fastconv.optim against the book's update rules written out by hand, on every backend
x float32/float64: three steps, in place, state in the parameter's dtype."""
import math

import numpy as np
import pytest

import fastconv as fc
from fastconv import optim

from _support import BACKENDS, COMPILED

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-6, atol=1e-7), np.float64: dict(rtol=1e-12, atol=1e-14)}


@pytest.fixture(params=BACKENDS)
def backend(request):
    with fc.use_backend(request.param):
        yield request.param


def _problem(dtype, seed=0):
    rng = np.random.default_rng(seed)
    # 'big' has 40000 elements: above the kernels' PARALLEL_MIN, so the parallel loops run.
    shapes = {"W1": (4, 3, 3, 3), "b1": (4,), "W2": (7, 5), "big": (200, 200)}
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    grads = [{k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
             for _ in range(3)]
    return params, grads


# The book's rules, in float64, one step per call; state dicts updated in place.

def _sgd(p, g, s, lr=0.05):
    return p - lr * g


def _momentum(p, g, s, lr=0.05, mom=0.8):
    s["v"] = mom * s.get("v", 0) - lr * g
    return p + s["v"]


def _nesterov(p, g, s, lr=0.05, mom=0.8):
    v = s.get("v", 0) * mom
    v = v - lr * g
    s["v"] = v
    return p + mom * mom * v - (1 + mom) * lr * g


def _adagrad(p, g, s, lr=0.05):
    s["h"] = s.get("h", 0) + g * g
    return p - lr * g / (np.sqrt(s["h"]) + 1e-7)


def _rmsprop(p, g, s, lr=0.05, decay=0.9):
    s["h"] = s.get("h", 0) * decay + (1 - decay) * g * g
    return p - lr * g / (np.sqrt(s["h"]) + 1e-7)


def _adam(p, g, s, lr=0.05, b1=0.8, b2=0.95):
    s["iter"] = s.get("iter", 0) + 1
    it = s["iter"]
    lr_t = lr * math.sqrt(1.0 - b2 ** it) / (1.0 - b1 ** it)
    m = s.get("m", 0)
    v = s.get("v", 0)
    s["m"] = m + (1 - b1) * (g - m)
    s["v"] = v + (1 - b2) * (g ** 2 - v)
    return p - lr_t * s["m"] / (np.sqrt(s["v"]) + 1e-7)


CASES = [
    (lambda: optim.SGD(lr=0.05), _sgd, ()),
    (lambda: optim.Momentum(lr=0.05, momentum=0.8), _momentum, ("v",)),
    (lambda: optim.Nesterov(lr=0.05, momentum=0.8), _nesterov, ("v",)),
    (lambda: optim.AdaGrad(lr=0.05), _adagrad, ("h",)),
    (lambda: optim.RMSprop(lr=0.05, decay_rate=0.9), _rmsprop, ("h",)),
    (lambda: optim.Adam(lr=0.05, beta1=0.8, beta2=0.95), _adam, ("m", "v")),
]
IDS = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]


@pytest.mark.parametrize("make,rule,state", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_three_steps_follow_the_written_rule_in_place(backend, dtype, make, rule, state):
    params, grads = _problem(dtype)
    objects = {k: p for k, p in params.items()}
    expected = {k: p.astype(np.float64) for k, p in params.items()}
    states = {k: {} for k in params}
    opt = make()
    for name in state:
        assert getattr(opt, name) is None  # the book's attributes, None before the first step
    for g in grads:
        opt.update(params, g)
        for k in params:
            expected[k] = rule(expected[k], g[k].astype(np.float64), states[k])
        for k, p in params.items():
            assert p is objects[k] and p.dtype == dtype  # same arrays, updated in place
            np.testing.assert_allclose(p, expected[k], **TOL[dtype])
    for name in state:
        for k, s in getattr(opt, name).items():
            assert s.dtype == dtype and s.shape == params[k].shape
            np.testing.assert_allclose(s, states[k][name], **TOL[dtype])
    if isinstance(opt, optim.Adam):
        assert opt.iter == 3


@pytest.mark.parametrize("make,rule,state", CASES, ids=IDS)
def test_non_contiguous_and_float16_params(backend, make, rule, state):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((6, 8))
    params = {"T": base.T, "h": rng.standard_normal((3, 4)).astype(np.float16)}
    expected = {k: p.astype(np.float64) for k, p in params.items()}
    states = {k: {} for k in params}
    opt = make()
    for _ in range(2):
        g = {"T": rng.standard_normal((8, 6)),
             "h": rng.standard_normal((3, 4)).astype(np.float16)}
        opt.update(params, g)
        for k in params:
            expected[k] = rule(expected[k], g[k].astype(np.float64), states[k])
    assert params["T"].base is base  # the view itself was written
    np.testing.assert_allclose(params["T"], expected["T"], rtol=1e-12)
    assert params["h"].dtype == np.float16
    np.testing.assert_allclose(params["h"], expected["h"], rtol=1e-2, atol=1e-2)


def test_grads_of_another_dtype_are_cast(backend):
    params = {"W": np.ones(5, np.float32)}
    optim.SGD(lr=0.5).update(params, {"W": np.full(5, 2.0)})
    assert params["W"].dtype == np.float32
    np.testing.assert_array_equal(params["W"], np.zeros(5, np.float32))


def test_validation_messages():
    opt = optim.Adam()
    W = np.zeros((2, 3))
    with pytest.raises(TypeError, match="dict"):
        opt.update([W], [W])
    with pytest.raises(ValueError, match="same keys"):
        opt.update({"W": W}, {"V": W})
    with pytest.raises(ValueError, match="shape"):
        opt.update({"W": W}, {"W": np.zeros((3, 2))})
    with pytest.raises(TypeError, match="float16/32/64"):
        opt.update({"W": np.zeros(3, int)}, {"W": np.zeros(3)})
    with pytest.raises(TypeError, match="float16/32/64"):
        opt.update({"W": [0.0, 1.0]}, {"W": np.zeros(2)})
    with pytest.raises(TypeError, match="grads"):
        opt.update({"W": W}, {"W": np.zeros((2, 3), int)})
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        opt.update({"W": ro}, {"W": np.zeros(3)})
    assert opt.iter == 0 and opt.m is None  # failed calls changed nothing
    opt.update({"W": W}, {"W": np.ones((2, 3))})
    with pytest.raises(ValueError, match="optimizer state"):
        opt.update({"W": np.zeros(4)}, {"W": np.ones(4)})
    assert opt.iter == 1


@pytest.mark.parametrize("cls,kw", [(optim.SGD, {"lr": -1}), (optim.Adam, {"beta1": 1.0}),
                                    (optim.Momentum, {"momentum": float("nan")})])
def test_bad_hyperparameters(cls, kw):
    with pytest.raises(ValueError):
        cls(**kw)
    with pytest.raises(TypeError):
        cls(lr="0.1")


# --------------------------------------------------------------------------- schedules


def test_step_decay_values():
    s = optim.StepDecay(0.1, step_size=3, gamma=0.5)
    assert [s(t) for t in range(7)] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025])


def test_cosine_decay_values():
    s = optim.CosineDecay(1.0, total_steps=5, min_lr=0.0)
    # t = step / 4: cos from 0 to pi
    assert [s(t) for t in range(5)] == pytest.approx([1.0, 0.8535534, 0.5, 0.1464466, 0.0])
    assert s(10) == pytest.approx(0.0)
    w = optim.CosineDecay(1.0, total_steps=6, warmup_steps=2, min_lr=0.1)
    assert [w(t) for t in range(6)] == pytest.approx(
        [0.5, 1.0, 1.0, 0.1 + 0.9 * 0.75, 0.1 + 0.9 * 0.25, 0.1])


@pytest.mark.parametrize("bad", [dict(total_steps=0), dict(total_steps=3, warmup_steps=3),
                                 dict(total_steps=3, min_lr=-1)])
def test_cosine_decay_refuses_bad_arguments(bad):
    with pytest.raises(ValueError, match="CosineDecay"):
        optim.CosineDecay(0.1, **bad)


def _one_param_set(dtype=np.float64):
    rng = np.random.default_rng(5)
    params = {"W1": rng.standard_normal((3, 4)).astype(dtype), "b1": rng.standard_normal(4).astype(dtype)}
    grads = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()}
    return params, grads


@pytest.mark.parametrize("backend", ["numpy", *COMPILED])
def test_decoupled_weight_decay_by_hand(backend):
    """AdamW's rule with SGD: W <- W * (1 - lr*rate) - lr*g; biases do not decay."""
    params, grads = _one_param_set()
    W0, b0 = params["W1"].copy(), params["b1"].copy()
    opt = optim.WeightDecay(optim.SGD(lr=0.1), rate=0.5)
    with fc.use_backend(backend):
        opt.update(params, grads)
    np.testing.assert_allclose(params["W1"], W0 * (1 - 0.1 * 0.5) - 0.1 * grads["W1"], rtol=1e-12)
    np.testing.assert_allclose(params["b1"], b0 - 0.1 * grads["b1"], rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", *COMPILED])
def test_l2_weight_decay_by_hand(backend):
    """The book's L2 with Momentum: the gradient gains rate * W (weights only)."""
    params, grads = _one_param_set()
    W0, b0 = params["W1"].copy(), params["b1"].copy()
    opt = optim.WeightDecay(optim.Momentum(lr=0.1, momentum=0.9), rate=0.5, decoupled=False)
    with fc.use_backend(backend):
        opt.update(params, grads)
    # first step: v = -lr * g', p += v
    np.testing.assert_allclose(params["W1"], W0 - 0.1 * (grads["W1"] + 0.5 * W0), rtol=1e-12)
    np.testing.assert_allclose(params["b1"], b0 - 0.1 * grads["b1"], rtol=1e-12)


def test_weight_decay_follows_a_schedule_through_lr():
    params, grads = _one_param_set()
    opt = optim.WeightDecay(optim.Adam(lr=0.01), rate=0.1)
    opt.lr = optim.StepDecay(0.01, 1, 0.5)(1)
    assert opt.optimizer.lr == pytest.approx(0.005)
    with pytest.raises(TypeError, match="WeightDecay: optimizer must be"):
        optim.WeightDecay(object(), 0.1)
