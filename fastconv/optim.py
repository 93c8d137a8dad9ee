"""The book's optimizers ("Deep Learning from Scratch", common/optimizer.py) with fused
update kernels.

Each ``update(params, grads)`` changes the arrays of ``params`` in place, following the
book's rules to the letter (constants included: ``1e-7`` in AdaGrad, RMSprop and Adam).
State arrays (``v``, ``h``, ``m``) are created on the first update, one per key, in the
parameter's dtype and shape, and keep the book's attribute names (``None`` before the
first update).

Backends: the update of one parameter is one fused pass over ``p``, ``g`` and the state:
the current backend's optim kernel (see :func:`fastconv.use_backend`), the reference's
in-place NumPy rule (:mod:`fastconv.reference.optim`) on ``'numpy'``, for float16
parameters and for parameters that are not C-contiguous. Every rule runs fused on both
compiled backends, so that one backend runs one code path, although Cython's loses to
NumPy for AdaGrad and RMSprop (see docs/tuning.md, "Optimizer updates").

The fused kernels carry the arithmetic in float64 and round once on store; the NumPy
path computes in the parameter's dtype (as the book's code does for float32 params), so
float32 results of the two agree to float32 rounding, not bit for bit.
"""
import math
from collections.abc import Mapping

import numpy as np

from . import _backend
from .reference import optim as _reference
from ._validation import FLOAT_DTYPES

__all__ = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam", "StepDecay",
           "CosineDecay", "WeightDecay"]

EPS = 1e-7


def _check_hyper(name, value, cls, lo=None, hi=None, lo_open=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.floating,
                                                                      np.integer)):
        raise TypeError(f"{cls}: {name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{cls}: {name} must be finite, got {value}")
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise ValueError(f"{cls}: {name} must be {'>' if lo_open else '>='} {lo}, got {value}")
    if hi is not None and value >= hi:
        raise ValueError(f"{cls}: {name} must be < {hi}, got {value}")
    return value


class _Optimizer:
    """Validation and dispatch shared by the optimizers."""

    #: names of the per-parameter state dicts, e.g. ``("v",)``
    _state = ()
    #: the update rule's entry point in every backend's optim family, e.g. ``"sgd_update"``
    _rule = None

    def _items(self, params, grads):
        """``[(key, p, g)]`` with ``g`` as a C-contiguous array of ``p``'s dtype; raises on
        anything the in-place update cannot handle."""
        cls = type(self).__name__
        for name, d in (("params", params), ("grads", grads)):
            if not isinstance(d, Mapping):
                raise TypeError(
                    f"{cls}.update: {name} must be a dict of arrays keyed by parameter name "
                    f"(e.g. {{'W1': ..., 'b1': ...}}), got {type(d).__name__}"
                )
        if params.keys() != grads.keys():
            missing = sorted(map(str, params.keys() - grads.keys()))
            extra = sorted(map(str, grads.keys() - params.keys()))
            raise ValueError(
                f"{cls}.update: params and grads need the same keys; grads lacks {missing} "
                f"and has extra {extra}"
            )
        items = []
        for key, p in params.items():
            g = grads[key]
            if not isinstance(p, np.ndarray) or p.dtype not in FLOAT_DTYPES:
                what = type(p).__name__ if not isinstance(p, np.ndarray) else f"dtype {p.dtype}"
                raise TypeError(
                    f"{cls}.update: params[{key!r}] must be a float16/32/64 ndarray updated in "
                    f"place, got {what}; store parameters as float arrays"
                )
            if not p.flags.writeable:
                raise ValueError(
                    f"{cls}.update: params[{key!r}] is read-only; the update writes it in "
                    f"place, pass a writable array (e.g. params[{key!r}] = params[{key!r}].copy())"
                )
            if not isinstance(g, np.ndarray) or g.dtype not in FLOAT_DTYPES:
                what = type(g).__name__ if not isinstance(g, np.ndarray) else f"dtype {g.dtype}"
                raise TypeError(
                    f"{cls}.update: grads[{key!r}] must be a float16/32/64 ndarray, got {what}"
                )
            if g.shape != p.shape:
                raise ValueError(
                    f"{cls}.update: grads[{key!r}] has shape {g.shape}, params[{key!r}] has "
                    f"shape {p.shape}; they must match"
                )
            items.append((key, p, np.ascontiguousarray(g, dtype=p.dtype)))
        return items

    def _states(self, key, p):
        """The state arrays of ``key``, created as zeros in ``p``'s dtype when missing."""
        out = []
        for name in self._state:
            store = getattr(self, name)
            if store is None:
                store = {}
                setattr(self, name, store)
            s = store.get(key)
            if s is None:
                s = store[key] = np.zeros(p.shape, dtype=p.dtype)
            elif s.shape != p.shape or s.dtype != p.dtype:
                raise ValueError(
                    f"{type(self).__name__}.update: params[{key!r}] is {p.dtype} {p.shape} but "
                    f"its optimizer state is {s.dtype} {s.shape}; use a new optimizer for a "
                    f"new set of parameters"
                )
            out.append(s)
        return out

    def update(self, params, grads):
        """Update every array of ``params`` in place from ``grads``.

        Parameters
        ----------
        params : dict of str -> ndarray
            Writable float arrays; each is modified in place (the same objects).
        grads : dict of str -> ndarray
            Same keys and shapes as ``params``; other float dtypes are cast to the
            parameter's dtype first.
        """
        self._apply(self._items(params, grads))

    def _apply(self, items):
        """The update of checked ``(key, p, g)`` items (see ``_items``)."""
        states = [self._states(key, p) for key, p, _ in items]
        self._step()
        kern = _backend.kernels(_backend.resolve(None), "optim")
        for (key, p, g), states in zip(items, states):
            if p.dtype != np.float16 and p.flags.c_contiguous:
                flat = [a.reshape(-1) for a in (p, g, *states)]
                getattr(kern, self._rule)(*flat, *self._scalars())
            else:
                getattr(_reference, self._rule)(p, g, *states, *self._scalars())

    def _step(self):
        """Per-update bookkeeping before the parameters are touched (Adam's ``iter``)."""


class SGD(_Optimizer):
    """Stochastic gradient descent: ``p -= lr * g``.

    Parameters
    ----------
    lr : float
        Learning rate.
    """

    _rule = "sgd_update"

    def __init__(self, lr=0.01):
        self.lr = _check_hyper("lr", lr, "SGD", lo=0)

    def _scalars(self):
        return (self.lr,)


#: The docstring sections of Momentum and Nesterov.
_VELOCITY_SECTIONS = """
    Parameters
    ----------
    lr : float
    momentum : float

    Attributes
    ----------
    v : dict of str -> ndarray, or None before the first update
    """


class _VelocityOptimizer(_Optimizer):
    """Hyperparameters and state shared by Momentum and Nesterov."""

    _state = ("v",)

    def __init__(self, lr=0.01, momentum=0.9):
        cls = type(self).__name__
        self.lr = _check_hyper("lr", lr, cls, lo=0)
        self.momentum = _check_hyper("momentum", momentum, cls, lo=0)
        self.v = None

    def _scalars(self):
        return self.lr, self.momentum


class Momentum(_VelocityOptimizer):
    __doc__ = """Momentum SGD: ``v = momentum*v - lr*g; p += v``.
""" + _VELOCITY_SECTIONS

    _rule = "momentum_update"


class Nesterov(_VelocityOptimizer):
    __doc__ = """Nesterov's accelerated gradient as the book writes it:
    ``v = momentum*v - lr*g; p += momentum**2 * v - (1 + momentum)*lr*g``.
""" + _VELOCITY_SECTIONS

    _rule = "nesterov_update"


class AdaGrad(_Optimizer):
    """AdaGrad: ``h += g*g; p -= lr*g / (sqrt(h) + 1e-7)``.

    Parameters
    ----------
    lr : float

    Attributes
    ----------
    h : dict of str -> ndarray, or None before the first update
    """

    _state = ("h",)
    _rule = "adagrad_update"

    def __init__(self, lr=0.01):
        self.lr = _check_hyper("lr", lr, "AdaGrad", lo=0)
        self.h = None

    def _scalars(self):
        return self.lr, EPS


class RMSprop(_Optimizer):
    """RMSprop: ``h = decay_rate*h + (1 - decay_rate)*g*g; p -= lr*g / (sqrt(h) + 1e-7)``.

    Parameters
    ----------
    lr : float
    decay_rate : float

    Attributes
    ----------
    h : dict of str -> ndarray, or None before the first update
    """

    _state = ("h",)
    _rule = "rmsprop_update"

    def __init__(self, lr=0.01, decay_rate=0.99):
        self.lr = _check_hyper("lr", lr, "RMSprop", lo=0)
        self.decay_rate = _check_hyper("decay_rate", decay_rate, "RMSprop", lo=0)
        self.h = None

    def _scalars(self):
        return self.lr, self.decay_rate, EPS


class Adam(_Optimizer):
    """Adam as the book writes it: ``iter += 1``,
    ``lr_t = lr * sqrt(1 - beta2**iter) / (1 - beta1**iter)``,
    ``m += (1 - beta1)*(g - m)``, ``v += (1 - beta2)*(g*g - v)``,
    ``p -= lr_t * m / (sqrt(v) + 1e-7)``.

    Parameters
    ----------
    lr : float
    beta1, beta2 : float
        In [0, 1).

    Attributes
    ----------
    iter : int
        Updates done so far.
    m, v : dict of str -> ndarray, or None before the first update
    """

    _state = ("m", "v")
    _rule = "adam_update"

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr = _check_hyper("lr", lr, "Adam", lo=0)
        self.beta1 = _check_hyper("beta1", beta1, "Adam", lo=0, hi=1)
        self.beta2 = _check_hyper("beta2", beta2, "Adam", lo=0, hi=1)
        self.iter = 0
        self.m = None
        self.v = None

    def _step(self):
        self.iter += 1
        self._lr_t = (self.lr * math.sqrt(1.0 - self.beta2 ** self.iter)
                      / (1.0 - self.beta1 ** self.iter))

    def _scalars(self):
        return self._lr_t, self.beta1, self.beta2, EPS



# --------------------------------------------------------------------------- schedules


class StepDecay:
    """Step decay: ``lr * gamma ** (step // step_size)`` at update ``step`` (0-based).

    A schedule is a callable ``step -> lr``; set ``optimizer.lr = schedule(step)`` before
    each ``update`` (``fastconv train --lr-schedule`` does). Works with every optimizer.
    """

    def __init__(self, lr, step_size, gamma=0.1):
        self.lr = _check_hyper("lr", lr, "StepDecay", lo=0)
        self.step_size = int(_check_hyper("step_size", step_size, "StepDecay", lo=1))
        self.gamma = _check_hyper("gamma", gamma, "StepDecay", lo=0)

    def __call__(self, step):
        return self.lr * self.gamma ** (int(step) // self.step_size)


class CosineDecay:
    """Cosine decay from ``lr`` to ``min_lr`` over ``total_steps`` updates, after a linear
    warm-up from ``lr / warmup_steps`` to ``lr`` over the first ``warmup_steps``.

    At update ``step`` (0-based): ``lr * (step + 1) / warmup_steps`` during the warm-up,
    then ``min_lr + (lr - min_lr) * (1 + cos(pi * t)) / 2`` with ``t`` going from 0 (the
    first step after the warm-up) to 1 (the last step, ``total_steps - 1``); ``min_lr``
    beyond it.
    """

    def __init__(self, lr, total_steps, warmup_steps=0, min_lr=0.0):
        cls = "CosineDecay"
        self.lr = _check_hyper("lr", lr, cls, lo=0)
        self.total_steps = int(_check_hyper("total_steps", total_steps, cls, lo=1))
        self.warmup_steps = int(_check_hyper("warmup_steps", warmup_steps, cls, lo=0))
        if self.warmup_steps >= self.total_steps:
            raise ValueError(f"{cls}: warmup_steps ({self.warmup_steps}) must be less than "
                             f"total_steps ({self.total_steps})")
        self.min_lr = _check_hyper("min_lr", min_lr, cls, lo=0)

    def __call__(self, step):
        step = int(step)
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = self.total_steps - 1 - self.warmup_steps
        t = 1.0 if span <= 0 else min(1.0, (step - self.warmup_steps) / span)
        return self.min_lr + (self.lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


# --------------------------------------------------------------------------- weight decay


class WeightDecay:
    """Weight decay around any optimizer: ``WeightDecay(Adam(), 5e-4).update(params, grads)``.

    Only weights decay (arrays of 2 or more dimensions: ``W1``... of the book's nets),
    not biases.

    Parameters
    ----------
    optimizer : one of this module's optimizers
    rate : float
        ``decoupled=True`` (AdamW's rule): ``W -= lr * rate * W`` with the optimizer's
        current ``lr``, from the weights before the step (``W_new = W * (1 - lr * rate) -
        step(g)``). ``decoupled=False`` (L2, as the book's
        ``weight_decay_lambda``): ``rate * W`` is added to the gradient before the step,
        the gradient of ``0.5 * rate * sum(W**2)`` added to the loss (the reported loss
        is not changed).
    """

    def __init__(self, optimizer, rate, decoupled=True):
        if not isinstance(optimizer, _Optimizer):
            raise TypeError(f"WeightDecay: optimizer must be one of fastconv.optim's "
                            f"optimizers, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.rate = _check_hyper("rate", rate, "WeightDecay", lo=0)
        self.decoupled = bool(decoupled)

    @property
    def lr(self):
        return self.optimizer.lr

    @lr.setter
    def lr(self, value):
        self.optimizer.lr = _check_hyper("lr", value, type(self.optimizer).__name__, lo=0)

    def update(self, params, grads):
        """Decay the weights and update every array of ``params`` in place."""
        items = self.optimizer._items(params, grads)  # checked before anything changes
        if self.rate:
            for i, (key, p, g) in enumerate(items):
                if p.ndim < 2:
                    continue
                if self.decoupled:
                    p -= p.dtype.type(self.lr * self.rate) * p
                else:
                    items[i] = (key, p, g + p.dtype.type(self.rate) * p)
        self.optimizer._apply(items)
