"""The book's DeepConvNet at batch 100: one training step (gradient + Adam update) and
inference, with fastconv's backends and an equivalent PyTorch network."""
import numpy as np

import fastconv as fc
from fastconv import models, optim
from fastconv._bench.deepconvnet import torch_net

from .common import (DCN, PEAKMEM_DTYPES, SEED, TRACK_DTYPES, Timed, Tracked, require,
                     speedup)


class _Net:
    """``step()`` (gradient + Adam update) and ``predict()`` of one backend's net."""

    def __init__(self, backend, dtype):
        torch = require(backend)
        rng = np.random.default_rng(SEED)
        x = rng.random(DCN.x).astype(dtype)
        t = rng.integers(0, DCN.linears[-1].M, DCN.x[0])
        if torch is None:
            with fc.use_backend(backend):
                net = models.DeepConvNet(dtype=np.dtype(dtype).type, rng=SEED)
            opt = optim.Adam()

            def step():
                with fc.use_backend(backend):
                    opt.update(net.params, net.gradient(x, t))

            def predict():
                with fc.use_backend(backend):
                    return net.predict(x)
        else:
            torch.manual_seed(SEED)
            net = torch_net(torch, dtype)
            opt = torch.optim.Adam(net.parameters())
            xt, tt = torch.from_numpy(x), torch.from_numpy(t)

            def step():
                net.train()
                opt.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(net(xt), tt).backward()
                opt.step()

            def predict():
                net.eval()
                with torch.inference_mode():
                    return net(xt)

        self.step, self.predict = step, predict


class DeepConvNet(Timed):
    params = (["numpy", "numba", "cython", "torch"], ["float32", "float64"])
    param_names = ("backend", "dtype")
    repeat = (2, 5, 10.0)

    def setup(self, backend, dtype):
        self.net = _Net(backend, dtype)
        self.net.step()
        self.net.predict()

    def time_train_step(self, backend, dtype):
        self.net.step()

    def time_predict(self, backend, dtype):
        self.net.predict()


class DeepConvNetMemory(Timed):
    params = (["numpy", "numba", "cython", "torch"], PEAKMEM_DTYPES)
    param_names = ("backend", "dtype")
    setup = DeepConvNet.setup

    def peakmem_train_step(self, backend, dtype):
        self.net.step()

    def peakmem_predict(self, backend, dtype):
        self.net.predict()


class _Versus(Tracked):
    """Setup of the ``track_*`` classes: this backend's net and the ``other`` backend's,
    each run once; ``_speedup`` is the other's time / this one's."""

    param_names = ("backend", "dtype")
    other = None

    def setup(self, backend, dtype):
        self.net, self.other_net = _Net(backend, dtype), _Net(self.other, dtype)
        for f in (self.net.step, self.net.predict, self.other_net.step, self.other_net.predict):
            f()

    def _speedup(self, method):
        return speedup(getattr(self.other_net, method), getattr(self.net, method), rounds=3)


class DeepConvNetVsTorch(_Versus):
    """fastconv time / PyTorch time, both measured alternately in this one process
    (below 1: fastconv is faster). The reference is included for scale."""

    params = (["numpy", "numba", "cython"], TRACK_DTYPES)
    other = "torch"

    def track_train_step_vs_torch(self, backend, dtype):
        return 1.0 / self._speedup("step")

    def track_predict_vs_torch(self, backend, dtype):
        return 1.0 / self._speedup("predict")

    track_train_step_vs_torch.unit = track_predict_vs_torch.unit = "fastconv/torch"


class DeepConvNetVsReference(_Versus):
    """Speedup over the NumPy reference net (measured alternately in one process)."""

    params = (["numba", "cython", "torch"], TRACK_DTYPES)
    other = "numpy"

    def track_speedup_train_step(self, backend, dtype):
        return self._speedup("step")

    def track_speedup_predict(self, backend, dtype):
        return self._speedup("predict")

    track_speedup_train_step.unit = track_speedup_predict.unit = "x"
