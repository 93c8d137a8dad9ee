"""max_pool2d / avg_pool2d and their backward passes."""
import fastconv as fc
from fastconv._validation import out_size

from .common import (BACKENDS, COMPARED, DTYPES, PEAKMEM_DTYPES, POOL_SHAPES, TRACK_DTYPES,
                     max_abs_error, randn, require, speedup, Timed, Tracked)


class _Pool:
    """Callables of one backend on one preset: ``max_fwd()`` -> (out, argmax),
    ``max_bwd()``, ``avg_fwd()``, ``avg_bwd()`` -> dx. For torch, ``max_fwd`` returns the
    pooled values only (its indices count positions in the whole plane)."""

    def __init__(self, backend, shape, dtype, kind):
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


class MaxPool2d(Timed):
    params = (BACKENDS, list(POOL_SHAPES), DTYPES)
    param_names = ("backend", "shape", "dtype")

    def setup(self, backend, shape, dtype):
        self.k = _Pool(backend, shape, dtype, "max")
        self.k.fwd()
        self.k.bwd()

    def time_max_pool2d(self, backend, shape, dtype):
        self.k.fwd()

    def time_max_pool2d_backward(self, backend, shape, dtype):
        self.k.bwd()


class MaxPool2dMemory(Timed):
    params = (BACKENDS, list(POOL_SHAPES), PEAKMEM_DTYPES)
    param_names = ("backend", "shape", "dtype")
    setup = MaxPool2d.setup

    def peakmem_max_pool2d(self, backend, shape, dtype):
        self.k.fwd()

    def peakmem_max_pool2d_backward(self, backend, shape, dtype):
        self.k.bwd()


class AvgPool2d(Timed):
    params = (BACKENDS, list(POOL_SHAPES), DTYPES)
    param_names = ("backend", "shape", "dtype")

    def setup(self, backend, shape, dtype):
        self.k = _Pool(backend, shape, dtype, "avg")
        self.k.fwd()
        self.k.bwd()

    def time_avg_pool2d(self, backend, shape, dtype):
        self.k.fwd()

    def time_avg_pool2d_backward(self, backend, shape, dtype):
        self.k.bwd()


class AvgPool2dMemory(Timed):
    params = (BACKENDS, list(POOL_SHAPES), PEAKMEM_DTYPES)
    param_names = ("backend", "shape", "dtype")
    setup = AvgPool2d.setup

    def peakmem_avg_pool2d(self, backend, shape, dtype):
        self.k.fwd()

    def peakmem_avg_pool2d_backward(self, backend, shape, dtype):
        self.k.bwd()


class _VsReference(Tracked):
    params = (COMPARED, list(POOL_SHAPES), TRACK_DTYPES)
    param_names = ("backend", "shape", "dtype")
    kind = None

    def setup(self, backend, shape, dtype):
        self.k = _Pool(backend, shape, dtype, self.kind)
        self.ref = _Pool("numpy", shape, dtype, self.kind)
        for f in (self.k.fwd, self.k.bwd, self.ref.fwd, self.ref.bwd):
            f()

    def _fwd_error(self):
        out, ref = self.k.fwd(), self.ref.fwd()
        if self.kind == "max":  # compare the pooled values (torch's indices differ)
            out, ref = (out[0] if isinstance(out, tuple) else out), ref[0]
        return max_abs_error(out, ref)


class MaxPool2dVsReference(_VsReference):
    """Speedup over the NumPy reference (measured alternately in one process) and the
    largest absolute error against it (forward: of the pooled values)."""

    kind = "max"

    def track_speedup_max_pool2d(self, backend, shape, dtype):
        return speedup(self.ref.fwd, self.k.fwd)

    def track_speedup_max_pool2d_backward(self, backend, shape, dtype):
        return speedup(self.ref.bwd, self.k.bwd)

    def track_error_max_pool2d(self, backend, shape, dtype):
        return self._fwd_error()

    def track_error_max_pool2d_backward(self, backend, shape, dtype):
        return max_abs_error(self.k.bwd(), self.ref.bwd())

    track_speedup_max_pool2d.unit = track_speedup_max_pool2d_backward.unit = "x"
    track_error_max_pool2d.unit = track_error_max_pool2d_backward.unit = "max abs error"


class AvgPool2dVsReference(_VsReference):
    """Speedup over the NumPy reference (measured alternately in one process) and the
    largest absolute error against it."""

    kind = "avg"

    def track_speedup_avg_pool2d(self, backend, shape, dtype):
        return speedup(self.ref.fwd, self.k.fwd)

    def track_speedup_avg_pool2d_backward(self, backend, shape, dtype):
        return speedup(self.ref.bwd, self.k.bwd)

    def track_error_avg_pool2d(self, backend, shape, dtype):
        return self._fwd_error()

    def track_error_avg_pool2d_backward(self, backend, shape, dtype):
        return max_abs_error(self.k.bwd(), self.ref.bwd())

    track_speedup_avg_pool2d.unit = track_speedup_avg_pool2d_backward.unit = "x"
    track_error_avg_pool2d.unit = track_error_avg_pool2d_backward.unit = "max abs error"
