"""linear (fused multiply-accumulate: x @ W + b [, ReLU]) and linear_backward."""
import math

import numpy as np

import fastconv as fc

from .common import (BACKENDS, COMPARED, DTYPES, LINEAR_SHAPES, PEAKMEM_DTYPES, TRACK_DTYPES,
                     max_abs_error, randn, require, speedup, Timed, Tracked)


class _Linear:
    """Callables of one backend on one preset: ``fwd()`` -> out,
    ``bwd()`` -> (dx, dW, db) with dW of shape (D, M) for every backend."""

    def __init__(self, backend, shape, dtype):
        torch = require(backend)
        N, D, M, relu = LINEAR_SHAPES[shape]
        x = randn((N, D), dtype, seed=1)
        w = randn((D, M), dtype, seed=2, scale=math.sqrt(2.0 / D))
        b = randn((M,), dtype, seed=3, scale=0.1)
        dout = randn((N, M), dtype, seed=4)
        if torch is None:
            self.fwd = lambda: fc.linear(x, w, b, relu, backend=backend)
            kw = dict(relu_out=self.fwd()) if relu else {}
            self.bwd = lambda: fc.linear_backward(dout, x, w, backend=backend, **kw)
            return
        F = torch.nn.functional
        xt, bt = (torch.from_numpy(a).requires_grad_(True) for a in (x, b))
        wt = torch.from_numpy(np.ascontiguousarray(w.T)).requires_grad_(True)  # torch: (M, D)
        doutt = torch.from_numpy(dout)

        def forward():
            out = F.linear(xt, wt, bt)
            return F.relu(out) if relu else out

        def fwd():
            with torch.inference_mode():
                return forward()

        graph = forward()

        def bwd():
            dx, dwt, db = torch.autograd.grad(graph, (xt, wt, bt), doutt, retain_graph=True)
            return dx, dwt.T, db

        self.fwd, self.bwd = fwd, bwd


class Linear(Timed):
    params = (BACKENDS, list(LINEAR_SHAPES), DTYPES)
    param_names = ("backend", "shape", "dtype")

    def setup(self, backend, shape, dtype):
        self.k = _Linear(backend, shape, dtype)
        self.k.fwd()
        self.k.bwd()

    def time_linear(self, backend, shape, dtype):
        self.k.fwd()

    def time_linear_backward(self, backend, shape, dtype):
        self.k.bwd()


class LinearMemory(Timed):
    params = (BACKENDS, list(LINEAR_SHAPES), PEAKMEM_DTYPES)
    param_names = ("backend", "shape", "dtype")
    setup = Linear.setup

    def peakmem_linear(self, backend, shape, dtype):
        self.k.fwd()

    def peakmem_linear_backward(self, backend, shape, dtype):
        self.k.bwd()


class LinearVsReference(Tracked):
    """Speedup over the NumPy reference (measured alternately in one process) and the
    largest absolute error against it."""

    params = (COMPARED, list(LINEAR_SHAPES), TRACK_DTYPES)
    param_names = ("backend", "shape", "dtype")

    def setup(self, backend, shape, dtype):
        self.k = _Linear(backend, shape, dtype)
        self.ref = _Linear("numpy", shape, dtype)
        for f in (self.k.fwd, self.k.bwd, self.ref.fwd, self.ref.bwd):
            f()

    def track_speedup_linear(self, backend, shape, dtype):
        return speedup(self.ref.fwd, self.k.fwd)

    def track_speedup_linear_backward(self, backend, shape, dtype):
        return speedup(self.ref.bwd, self.k.bwd)

    def track_error_linear(self, backend, shape, dtype):
        return max_abs_error(self.k.fwd(), self.ref.fwd())

    def track_error_linear_backward(self, backend, shape, dtype):
        return max_abs_error(self.k.bwd(), self.ref.bwd())

    track_speedup_linear.unit = track_speedup_linear_backward.unit = "x"
    track_error_linear.unit = track_error_linear_backward.unit = "max abs error"
