"""The book's DeepConvNet at batch 100: one training step (gradient + Adam update) and
inference, with fastconv's backends and an equivalent PyTorch network."""
import numpy as np

import fastconv as fc

from .common import PEAKMEM_DTYPES, SEED, TRACK_DTYPES, Timed, Tracked, require, speedup, warm

BATCH = 100
#: (C, FN, pad) of the six 3x3 convolutions; a 2x2 max pool follows every second one.
CONVS = [(1, 16, 1), (16, 16, 1), (16, 32, 1), (32, 32, 2), (32, 64, 1), (64, 64, 1)]


def _torch_net(torch, dtype):
    """PyTorch DeepConvNet of the same architecture and loss as the book's."""
    nn = torch.nn
    layers = []
    for i, (C, FN, pad) in enumerate(CONVS):
        layers += [nn.Conv2d(C, FN, 3, 1, pad), nn.ReLU()]
        if i % 2 == 1:
            layers.append(nn.MaxPool2d(2, 2))
    layers += [nn.Flatten(), nn.Linear(64 * 4 * 4, 50), nn.ReLU(), nn.Dropout(0.5),
               nn.Linear(50, 10), nn.Dropout(0.5)]
    return nn.Sequential(*layers).to(getattr(torch, dtype))


class _Net:
    """``step()`` (gradient + Adam update) and ``predict()`` of one backend's net."""

    def __init__(self, backend, dtype):
        torch = require(backend)
        rng = np.random.default_rng(SEED)
        x = rng.random((BATCH, 1, 28, 28)).astype(dtype)
        t = rng.integers(0, 10, BATCH)
        if torch is None:
            try:
                from fastconv import models, optim
            except ImportError:
                models = optim = None
            if not hasattr(models, "DeepConvNet") or not hasattr(optim, "Adam"):
                raise NotImplementedError("fc.models.DeepConvNet / fc.optim.Adam missing")
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
            net = _torch_net(torch, dtype)
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
        warm(self.net.step)
        warm(self.net.predict)

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


class DeepConvNetVsTorch(Tracked):
    """fastconv time / PyTorch time, both measured alternately in this one process
    (below 1: fastconv is faster). The reference is included for scale."""

    params = (["numpy", "numba", "cython"], TRACK_DTYPES)
    param_names = ("backend", "dtype")

    def setup(self, backend, dtype):
        self.net = _Net(backend, dtype)
        self.torch = _Net("torch", dtype)
        for f in (self.net.step, self.net.predict, self.torch.step, self.torch.predict):
            warm(f)

    def track_train_step_vs_torch(self, backend, dtype):
        return 1.0 / speedup(self.torch.step, self.net.step, rounds=3)

    def track_predict_vs_torch(self, backend, dtype):
        return 1.0 / speedup(self.torch.predict, self.net.predict, rounds=3)

    track_train_step_vs_torch.unit = track_predict_vs_torch.unit = "fastconv/torch"


class DeepConvNetVsReference(Tracked):
    """Speedup over the NumPy reference net (measured alternately in one process)."""

    params = (["numba", "cython", "torch"], TRACK_DTYPES)
    param_names = ("backend", "dtype")

    def setup(self, backend, dtype):
        self.net = _Net(backend, dtype)
        self.ref = _Net("numpy", dtype)
        for f in (self.net.step, self.net.predict, self.ref.step, self.ref.predict):
            warm(f)

    def track_speedup_train_step(self, backend, dtype):
        return speedup(self.ref.step, self.net.step, rounds=3)

    def track_speedup_predict(self, backend, dtype):
        return speedup(self.ref.predict, self.net.predict, rounds=3)

    track_speedup_train_step.unit = track_speedup_predict.unit = "x"
