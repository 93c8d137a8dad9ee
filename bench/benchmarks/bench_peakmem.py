"""The memory one kernel call needs, for every kernel family and backend (the reference
and PyTorch included), and the optimizers' peak memory.

asv's ``peakmem_*`` (the ``*Memory`` classes of each family's module, and
``OptimizerMemory`` here) reports the benchmark process's lifetime maximum: the
forkserver's imports (PyTorch's alone is about 300 MB), the inputs built in ``setup``
and the call together, where a kernel's own buffers are a few MB. The
``track_peak_<op>`` benchmarks here take the call alone: the peak of the resident
memory during one call above the resident memory just before it, in bytes (Linux's
VmHWM, reset through ``/proc/self/clear_refs`` before the call; skipped elsewhere).
Memory the allocator kept from earlier calls is handed back first (glibc's
``malloc_trim``): without that, a call that allocates and frees 5 MB measured 4.7 MB
twice, then 0, served from the heap the earlier calls left resident.
"""
import numpy as np

import fastconv as fc
from fastconv import models, optim
from fastconv._bench import memory

from .bench_augment import _ShiftFlip
from .bench_conv import _Conv
from .bench_linear import _Linear
from .bench_im2col import _Im2col
from .bench_pool import _AvgPool, _MaxPool
from .common import (AUGMENT_SHAPES, BACKENDS, CONV_SHAPES, IM2COL_SHAPES, LINEAR_SHAPES,
                     PEAKMEM_DTYPES, POOL_SHAPES, SEED, Timed, Tracked, require)

def require_peak():
    """Raise NotImplementedError (asv: skipped) where the peak cannot be measured."""
    try:
        memory.reset_peak()
        memory.status("VmHWM")
    except (OSError, AttributeError) as err:
        raise NotImplementedError(f"peak memory needs Linux's /proc/self: {err}") from None
    if not memory.CAN_TRIM:
        raise NotImplementedError("the C library has no malloc_trim (not glibc)")


def peak_increase(fn):
    """Bytes by which the resident memory peaks during ``fn()`` above its level before."""
    memory.trim()
    before = memory.status("VmRSS")
    memory.reset_peak()
    fn()
    return memory.status("VmHWM") - before


def peak_benchmarks(name, kernel, presets, ops, backends=BACKENDS):
    """asv class ``name + "PeakIncrease"``: ``track_peak_<op>`` on ``backends`` x
    ``presets`` x ``PEAKMEM_DTYPES``, for a family's ``kernel`` holder and ``ops`` (op ->
    attribute), as ``common.kernel_benchmarks`` takes them. Setup calls every op once
    (JIT compilation, first touch)."""
    calls = tuple(ops.values())

    def setup(self, backend, shape, dtype):
        require_peak()
        self.k = kernel(backend, shape, dtype)
        for attr in calls:
            getattr(self.k, attr)()

    def track(attr):
        def method(self, *params):
            return peak_increase(getattr(self.k, attr))
        method.unit = "bytes"
        return method

    cls_name = name + "PeakIncrease"
    return type(cls_name, (Tracked,), {
        "__module__": __name__, "__qualname__": cls_name,
        "params": (backends, list(presets), PEAKMEM_DTYPES),
        "param_names": ("backend", "shape", "dtype"), "setup": setup,
        **{f"track_peak_{op}": track(attr) for op, attr in ops.items()}})


Conv2dPeakIncrease = peak_benchmarks(
    "Conv2d", _Conv, CONV_SHAPES, {"conv2d": "fwd", "conv2d_backward": "bwd"})
Im2colPeakIncrease = peak_benchmarks(
    "Im2col", _Im2col, IM2COL_SHAPES, {"im2col": "im2col", "col2im": "col2im"})
MaxPool2dPeakIncrease = peak_benchmarks(
    "MaxPool2d", _MaxPool, POOL_SHAPES, {"max_pool2d": "fwd", "max_pool2d_backward": "bwd"})
AvgPool2dPeakIncrease = peak_benchmarks(
    "AvgPool2d", _AvgPool, POOL_SHAPES, {"avg_pool2d": "fwd", "avg_pool2d_backward": "bwd"})
LinearPeakIncrease = peak_benchmarks(
    "Linear", _Linear, LINEAR_SHAPES, {"linear": "fwd", "linear_backward": "bwd"})
ShiftFlipPeakIncrease = peak_benchmarks(
    "ShiftFlip", _ShiftFlip, AUGMENT_SHAPES, {"shift_flip": "fwd"},
    backends=["numpy", "numba", "cython"])


# --------------------------------------------------------------------------- optimizers

#: rule -> (fastconv.optim class, PyTorch's optimizer of the same state, its arguments).
RULES = {
    "SGD": (optim.SGD, "SGD", {"lr": 0.01}),
    "Momentum": (optim.Momentum, "SGD", {"lr": 0.01, "momentum": 0.9}),
    "AdaGrad": (optim.AdaGrad, "Adagrad", {"lr": 0.01}),
    "RMSprop": (optim.RMSprop, "RMSprop", {"lr": 0.01}),
    "Adam": (optim.Adam, "Adam", {"lr": 0.001}),
}


class _Update:
    """``update()``: one step of ``rule`` over DeepConvNet's parameters (0.14M values in
    16 arrays) with fixed gradients."""

    def __init__(self, backend, rule, dtype):
        torch = require(backend)
        params = models.DeepConvNet(dtype=np.dtype(dtype).type, rng=SEED).params
        rng = np.random.default_rng(SEED)
        grads = {k: (0.01 * rng.standard_normal(p.shape)).astype(dtype)
                 for k, p in params.items()}
        cls, torch_name, kwargs = RULES[rule]
        if torch is None:
            opt = cls()

            def update():
                with fc.use_backend(backend):
                    opt.update(params, grads)

            self.update = update
            return
        tensors = []
        for k, p in params.items():
            t = torch.from_numpy(p).requires_grad_(True)
            t.grad = torch.from_numpy(grads[k])
            tensors.append(t)
        self.update = getattr(torch.optim, torch_name)(tensors, **kwargs).step


class OptimizerMemory(Timed):
    params = (BACKENDS, list(RULES), PEAKMEM_DTYPES)
    param_names = ("backend", "rule", "dtype")

    def setup(self, backend, rule, dtype):
        self.k = _Update(backend, rule, dtype)
        self.k.update()

    def peakmem_update(self, backend, rule, dtype):
        self.k.update()


class OptimizerPeakIncrease(Tracked):
    params = OptimizerMemory.params
    param_names = OptimizerMemory.param_names

    def setup(self, backend, rule, dtype):
        require_peak()
        OptimizerMemory.setup(self, backend, rule, dtype)

    def track_peak_update(self, backend, rule, dtype):
        return peak_increase(self.k.update)

    track_peak_update.unit = "bytes"
