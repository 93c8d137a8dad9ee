"""max_pool2d / avg_pool2d, global_avg_pool2d / adaptive_avg_pool2d and their backward
passes."""
import fastconv as fc
from fastconv._validation import out_size

from .common import POOL_SHAPES, kernel_benchmarks, randn, require


class _Pool:
    """Callables of one backend on one preset of the ``kind`` ('max' or 'avg') pool:
    ``fwd()`` -> out (max: (out, argmax)), ``bwd()`` -> dx. For torch, the max pool's
    ``fwd`` returns the pooled values only (its indices count positions in the whole
    plane)."""

    kind = None

    def __init__(self, backend, shape, dtype):
        kind = self.kind
        torch = require(backend)
        x_shape, k, s = POOL_SHAPES[shape]
        N, C, H, W = x_shape
        OH, OW = out_size(H, k, s, 0), out_size(W, k, s, 0)
        x = randn(x_shape, dtype, seed=1)
        dout = randn((N, C, OH, OW), dtype, seed=2)
        if torch is None:
            if kind == "max":
                self.fwd = lambda: fc.max_pool2d(x, k, k, s, 0, backend=backend)
                _, argmax = self.fwd()
                self.bwd = lambda: fc.max_pool2d_backward(dout, argmax, x_shape, k, k, s, 0,
                                                          backend=backend)
            else:
                self.fwd = lambda: fc.avg_pool2d(x, k, k, s, 0, backend=backend)
                self.bwd = lambda: fc.avg_pool2d_backward(dout, x_shape, k, k, s, 0,
                                                          backend=backend)
            return
        F = torch.nn.functional
        xt, doutt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dout)
        pool = ((lambda: F.max_pool2d(xt, k, s, return_indices=True)) if kind == "max"
                else (lambda: F.avg_pool2d(xt, k, s)))

        def fwd():
            with torch.inference_mode():
                out = pool()
            return out[0] if kind == "max" else out

        graph = pool()
        graph = graph[0] if kind == "max" else graph
        self.fwd = fwd
        self.bwd = lambda: torch.autograd.grad(graph, (xt,), doutt, retain_graph=True)[0]


class _MaxPool(_Pool):
    kind = "max"


class _AvgPool(_Pool):
    kind = "avg"


def _pooled(out):
    """The pooled values of a max pool's result: the forward error compares those only
    (torch's indices differ)."""
    return out[0] if isinstance(out, tuple) else out


MaxPool2d, MaxPool2dMemory, MaxPool2dVsReference = kernel_benchmarks(
    "MaxPool2d", _MaxPool, POOL_SHAPES,
    {"max_pool2d": "fwd", "max_pool2d_backward": "bwd"}, compare={"max_pool2d": _pooled})
AvgPool2d, AvgPool2dMemory, AvgPool2dVsReference = kernel_benchmarks(
    "AvgPool2d", _AvgPool, POOL_SHAPES, {"avg_pool2d": "fwd", "avg_pool2d_backward": "bwd"})


#: Global and adaptive average pooling: input shape and output size (None: global).
ADAPTIVE_SHAPES = {
    # ResNet-50's head, and MobileNet-V1's at batch 8
    "resnet_head_32x2048x7x7": ((32, 2048, 7, 7), None),
    "mobilenet_head_8x1024x7x7": ((8, 1024, 7, 7), None),
    # a segmentation pyramid's bins that do not tile the input
    "psp_8x512x28x28_to_6x6": ((8, 512, 28, 28), (6, 6)),
}


class _Adaptive:
    """``fwd()`` -> out, ``bwd()`` -> dx of one backend on one ``ADAPTIVE_SHAPES`` preset;
    the global preset runs global_avg_pool2d, the others adaptive_avg_pool2d."""

    def __init__(self, backend, shape, dtype):
        torch = require(backend)
        x_shape, size = ADAPTIVE_SHAPES[shape]
        x = randn(x_shape, dtype, seed=1)
        dout = randn(x_shape[:2] + (size or (1, 1)), dtype, seed=2)
        if torch is None:
            if size is None:
                self.fwd = lambda: fc.global_avg_pool2d(x, backend=backend)
                self.bwd = lambda: fc.global_avg_pool2d_backward(dout, x_shape, backend=backend)
            else:
                self.fwd = lambda: fc.adaptive_avg_pool2d(x, size, backend=backend)
                self.bwd = lambda: fc.adaptive_avg_pool2d_backward(dout, x_shape, size,
                                                                   backend=backend)
            return
        F = torch.nn.functional
        xt, doutt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dout)

        def fwd():
            with torch.inference_mode():
                return F.adaptive_avg_pool2d(xt, size or 1)

        graph = F.adaptive_avg_pool2d(xt, size or 1)
        self.fwd = fwd
        self.bwd = lambda: torch.autograd.grad(graph, (xt,), doutt, retain_graph=True)[0]


def _only(kind):
    """The presets of one op: global (output size None) or adaptive."""
    return {k: v for k, v in ADAPTIVE_SHAPES.items() if (v[1] is None) == (kind == "global")}


GlobalAvgPool2d, GlobalAvgPool2dMemory, GlobalAvgPool2dVsReference = kernel_benchmarks(
    "GlobalAvgPool2d", _Adaptive, _only("global"),
    {"global_avg_pool2d": "fwd", "global_avg_pool2d_backward": "bwd"})
AdaptiveAvgPool2d, AdaptiveAvgPool2dMemory, AdaptiveAvgPool2dVsReference = kernel_benchmarks(
    "AdaptiveAvgPool2d", _Adaptive, _only("adaptive"),
    {"adaptive_avg_pool2d": "fwd", "adaptive_avg_pool2d_backward": "bwd"})
