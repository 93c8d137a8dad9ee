"""conv2d and conv2d_backward (3x3 convolutions of the presets in common.py)."""
import math

import fastconv as fc
from fastconv._validation import out_size

from .common import CONV_SHAPES, kernel_benchmarks, randn, require


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


Conv2d, Conv2dMemory, Conv2dVsReference = kernel_benchmarks(
    "Conv2d", _Conv, CONV_SHAPES, {"conv2d": "fwd", "conv2d_backward": "bwd"})
