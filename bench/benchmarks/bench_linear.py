"""linear (fused multiply-accumulate: x @ W + b [, ReLU]) and linear_backward."""
import math

import numpy as np

import fastconv as fc

from .common import LINEAR_SHAPES, kernel_benchmarks, randn, require


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


Linear, LinearMemory, LinearVsReference = kernel_benchmarks(
    "Linear", _Linear, LINEAR_SHAPES, {"linear": "fwd", "linear_backward": "bwd"})
