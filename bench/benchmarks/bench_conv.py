"""conv2d and conv2d_backward (3x3 convolutions of the presets in common.py)."""
import math

import fastconv as fc
from fastconv._validation import out_size

from .common import (BACKENDS, COMPARED, CONV_SHAPES, DTYPES, PEAKMEM_DTYPES, TRACK_DTYPES,
                     max_abs_error, randn, require, speedup, Timed, Tracked)


class _Conv:
    """Callables of one backend on one preset: ``fwd()`` -> out, ``bwd()`` -> (dx, dW, db)."""

    def __init__(self, backend, shape, dtype):
        torch = require(backend)
        N, C, H, W, FN, k, s, p = CONV_SHAPES[shape]
        OH, OW = out_size(H, k, s, p), out_size(W, k, s, p)
        x = randn((N, C, H, W), dtype, seed=1)
        w = randn((FN, C, k, k), dtype, seed=2, scale=math.sqrt(2.0 / (C * k * k)))
        b = randn((FN,), dtype, seed=3, scale=0.1)
        dout = randn((N, FN, OH, OW), dtype, seed=4)
        if torch is None:
            self.fwd = lambda: fc.conv2d(x, w, b, s, p, backend=backend)
            self.bwd = lambda: fc.conv2d_backward(dout, x, w, s, p, backend=backend)
            return
        F = torch.nn.functional
        xt, wt, bt = (torch.from_numpy(a).requires_grad_(True) for a in (x, w, b))
        doutt = torch.from_numpy(dout)

        def fwd():
            with torch.inference_mode():
                return F.conv2d(xt, wt, bt, stride=s, padding=p)

        # the backward pass alone: one recorded forward graph, replayed
        graph = F.conv2d(xt, wt, bt, stride=s, padding=p)
        self.fwd = fwd
        self.bwd = lambda: torch.autograd.grad(graph, (xt, wt, bt), doutt, retain_graph=True)


class Conv2d(Timed):
    params = (BACKENDS, list(CONV_SHAPES), DTYPES)
    param_names = ("backend", "shape", "dtype")

    def setup(self, backend, shape, dtype):
        self.k = _Conv(backend, shape, dtype)
        self.k.fwd()
        self.k.bwd()

    def time_conv2d(self, backend, shape, dtype):
        self.k.fwd()

    def time_conv2d_backward(self, backend, shape, dtype):
        self.k.bwd()


class Conv2dMemory(Timed):
    params = (BACKENDS, list(CONV_SHAPES), PEAKMEM_DTYPES)
    param_names = ("backend", "shape", "dtype")
    setup = Conv2d.setup

    def peakmem_conv2d(self, backend, shape, dtype):
        self.k.fwd()

    def peakmem_conv2d_backward(self, backend, shape, dtype):
        self.k.bwd()


class Conv2dVsReference(Tracked):
    """Speedup over the NumPy reference (measured alternately in one process) and the
    largest absolute error against it."""

    params = (COMPARED, list(CONV_SHAPES), TRACK_DTYPES)
    param_names = ("backend", "shape", "dtype")

    def setup(self, backend, shape, dtype):
        self.k = _Conv(backend, shape, dtype)
        self.ref = _Conv("numpy", shape, dtype)
        for f in (self.k.fwd, self.k.bwd, self.ref.fwd, self.ref.bwd):
            f()

    def track_speedup_conv2d(self, backend, shape, dtype):
        return speedup(self.ref.fwd, self.k.fwd)

    def track_speedup_conv2d_backward(self, backend, shape, dtype):
        return speedup(self.ref.bwd, self.k.bwd)

    def track_error_conv2d(self, backend, shape, dtype):
        return max_abs_error(self.k.fwd(), self.ref.fwd())

    def track_error_conv2d_backward(self, backend, shape, dtype):
        return max_abs_error(self.k.bwd(), self.ref.bwd())

    track_speedup_conv2d.unit = track_speedup_conv2d_backward.unit = "x"
    track_error_conv2d.unit = track_error_conv2d_backward.unit = "max abs error"
