"""Shared pieces of the asv suite: backends, shape presets, fixed-seed inputs, the helper
that turns an unavailable backend into a skipped benchmark, and the factory of a kernel
family's three benchmark classes (``kernel_benchmarks``).

Every benchmark class takes ``backend`` as its first parameter. ``'numpy'`` is
fastconv's pure-NumPy reference; a backend that does not import here (Cython not built,
PyTorch not installed) raises ``NotImplementedError`` in ``setup``, which asv records as
skipped. The suite takes DeepConvNet's shapes and output sizes from fastconv itself
(``fastconv._bench.deepconvnet``, ``fastconv._validation.out_size``), so it runs on
commits that have them.
"""
import math
import statistics
import time

import numpy as np

from . import THREADS
import fastconv as fc
from fastconv._bench.deepconvnet import shapes

THREADS = int(THREADS)
fc.set_num_threads(THREADS)

# Imported here, once, so that with `asv run --launch-method forkserver` every forked
# benchmark process inherits them: importing torch and numba cost 2-10 s per process on
# the shared 2-core machine, more than most benchmarks. Nothing here starts a thread
# pool (Numba's and OpenMP's start at the first parallel call, after the fork).
try:
    import torch as _torch
except ImportError:
    _torch = None
try:
    import numba  # noqa: F401
except ImportError:
    pass

#: The backend parameter: the reference first, then the compiled backends, then the peer.
BACKENDS = ["numpy", "numba", "cython", "torch"]
#: Backends compared with the reference in the ``track_*`` benchmarks: fastconv's own.
#: PyTorch's times sit on the same graphs as the others' (``time_*``), and its ratio to
#: fastconv is tracked where it matters, for the whole DeepConvNet step (bench_model).
COMPARED = ["numba", "cython"]
#: float32 is the training dtype; float64 is what the book's code computes in.
DTYPES = ["float32", "float64"]
#: asv runs every parameter combination of every method in its own process (about 1 s
#: each on the shared 2-core machine), so the peakmem_* and track_* classes run float32
#: only: float64 doubles every buffer (no new memory information) and float32 is the
#: training workload the speedups are quoted for.
PEAKMEM_DTYPES = TRACK_DTYPES = ["float32"]

SEED = 20240501

# --------------------------------------------------------------------------- presets
# Every family uses the same three groups of shapes:
#   dcn_*   the book's DeepConvNet ("Deep Learning from Scratch", ch. 8) at batch 100:
#           the workload that matters first (~5.2 GFLOP per step), its layers taken from
#           fastconv._bench.deepconvnet (the table fastconv bench uses);
#   cifar_* a CIFAR-like 3x32x32 net at batch 100: 3 input channels and 32x32 images,
#           the other common teaching data set (different channel and spatial mix);
#   large_* one shape far beyond the caches (ResNet stage 1, 64 channels at 56x56),
#           where memory traffic, not call overhead, decides.
# The dcn names are asv's keys of past results: they spell the shapes as they always did.

BATCH = 100
DCN = shapes(BATCH)
_CONV, _POOL, _FC = DCN.convs, DCN.pools, DCN.linears


def _dims(shape):
    return "x".join(str(d) for d in shape)


def _conv_name(i):
    c = _CONV[i]
    same = c.pad == c.k // 2  # the output keeps the input's size
    return f"dcn_conv{i + 1}_{_dims(c.x_shape)}" + ("" if same else f"_p{c.pad}")


def _fc_name(i):
    f = _FC[i]
    return f"dcn_fc{i + 1}_{f.N}x{f.D}x{f.M}" + ("_relu" if f.relu else "")


#: name -> (N, C, H, W, FN, k, stride, pad) of a convolution.
CONV_SHAPES = {
    # DeepConvNet conv1: one input channel, the GEMM is thin (K = 9);
    # conv2: the largest activations of the net (100x16x28x28);
    # conv4: the net's pad=2 layer (output grows 14 -> 16);
    # conv6: deepest layer, small 8x8 images, 64 channels (K = 576)
    **{_conv_name(i): _CONV[i] for i in (0, 1, 3, 5)},
    # CIFAR net first layer: 3 channels, 32x32
    "cifar_conv1_100x3x32x32": (100, 3, 32, 32, 32, 3, 1, 1),
    # ResNet stage-1 layer: 58 MB of im2col rows in float32
    "large_8x64x56x56": (8, 64, 56, 56, 64, 3, 1, 1),
}

#: name -> ((N, C, H, W), k, stride, pad) for im2col/col2im.
IM2COL_SHAPES = {
    # DeepConvNet conv2's unfold: the shape of issue 2's >= 10x target
    f"dcn_{_dims(_CONV[1].x_shape)}": (_CONV[1].x_shape, _CONV[1].k, _CONV[1].stride,
                                       _CONV[1].pad),
    "cifar_100x3x32x32": ((100, 3, 32, 32), 3, 1, 1),
    "large_8x64x56x56": ((8, 64, 56, 56), 3, 1, 1),
}

#: name -> ((N, C, H, W), k, stride) for pooling (no padding, as in the nets).
POOL_SHAPES = {
    # the inputs of DeepConvNet's first and last 2x2 stride-2 max pools
    **{f"dcn_pool{i + 1}_{_dims(_POOL[i].x_shape)}": (_POOL[i].x_shape, _POOL[i].k,
                                                      _POOL[i].stride) for i in (0, 2)},
    # CIFAR net after its first conv block
    "cifar_100x32x32x32": ((100, 32, 32, 32), 2, 2),
    # ResNet's 3x3 stride-2 pool on 112x112: overlapping windows
    "large_8x64x112x112_3x3s2": ((8, 64, 112, 112), 3, 2),
}

#: name -> (N, D, M, relu) for linear: x (N, D) @ W (D, M) + b.
LINEAR_SHAPES = {
    # DeepConvNet's two affine layers
    **{_fc_name(i): _FC[i] for i in range(len(_FC))},
    # CIFAR net classifier head on a 64x4x4 feature map
    "cifar_fc_100x1024x256_relu": (100, 1024, 256, True),
    # a VGG-sized fully connected layer: 67 MB of float32 weights
    "large_256x4096x4096": (256, 4096, 4096, False),
}

#: name -> (N, C, H, W) for shift_flip (data augmentation of a training batch).
AUGMENT_SHAPES = {
    # one MNIST training batch of the DeepConvNet runs
    f"dcn_{_dims(DCN.x)}": DCN.x,
    "cifar_100x3x32x32": (100, 3, 32, 32),
    # ImageNet-sized batch: 38 MB in float32
    "large_64x3x224x224": (64, 3, 224, 224),
}


# --------------------------------------------------------------------------- helpers

def randn(shape, dtype, seed=0, scale=1.0):
    """Standard normal array from a fixed seed (same input on every run and backend)."""
    rng = np.random.default_rng(SEED + seed)
    return (scale * rng.standard_normal(shape)).astype(dtype)


def require(backend):
    """Raise NotImplementedError (asv: skipped) when ``backend`` cannot run here."""
    if backend == "torch":
        return torch()
    if backend not in fc.available_backends():
        raise NotImplementedError(f"backend {backend!r} is not available here")
    return None


def torch():
    """The torch module with fastconv's thread count, or NotImplementedError."""
    if _torch is None:
        raise NotImplementedError("torch is not installed in this environment")
    _torch.set_num_threads(THREADS)
    return _torch


def to_numpy(a):
    """ndarray of a result (torch tensors detached), or a tuple of them."""
    if isinstance(a, (tuple, list)):
        return tuple(to_numpy(x) for x in a)
    if hasattr(a, "detach"):
        return a.detach().numpy()
    return np.asarray(a)


def max_abs_error(result, expected):
    """Largest absolute difference over every output array, in float64."""
    result, expected = to_numpy(result), to_numpy(expected)
    if not isinstance(expected, tuple):
        result, expected = (result,), (expected,)
    return max(float(np.max(np.abs(r.astype(np.float64) - e.astype(np.float64))))
               for r, e in zip(result, expected) if e is not None)


def _sample(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def speedup(reference, fn, rounds=5, sample_time=0.02):
    """Reference time / ``fn`` time, both medians of ``rounds`` samples taken
    alternately in this process (so machine noise hits both alike).

    Returns
    -------
    float
        Above 1: ``fn`` is faster than ``reference``.
    """
    numbers = []
    for f in (reference, fn):
        t = _sample(f, 1)
        numbers.append(max(1, math.ceil(sample_time / max(t, 1e-7))))
    ref_t, fn_t = [], []
    for _ in range(rounds):
        ref_t.append(_sample(reference, numbers[0]))
        fn_t.append(_sample(fn, numbers[1]))
    return statistics.median(ref_t) / statistics.median(fn_t)


class Timed:
    """asv timing attributes shared by the ``time_*``/``peakmem_*`` classes: samples of
    at least 20 ms, 2 to 7 of them within 8 s, so a full run of the suite stays short;
    JIT compilation is done in ``setup`` and warm-up only refills caches."""

    sample_time = 0.02
    repeat = (2, 7, 8.0)
    warmup_time = 0.05
    timeout = 180


class Tracked:
    """Attributes of the ``track_*`` classes (they time internally: a longer timeout)."""

    timeout = 300


def _calls(attr):
    """A benchmark method that calls ``self.k.<attr>()`` (inputs are built in ``setup``)."""
    def method(self, *params):
        getattr(self.k, attr)()
    return method


def _tracks_speedup(attr):
    def method(self, *params):
        return speedup(getattr(self.ref, attr), getattr(self.k, attr))
    method.unit = "x"
    return method


def _tracks_error(attr, pick):
    def method(self, *params):
        out, ref = getattr(self.k, attr)(), getattr(self.ref, attr)()
        return max_abs_error(pick(out), pick(ref))
    method.unit = "max abs error"
    return method


def _same(result):
    return result


def kernel_benchmarks(name, kernel, presets, ops, backends=BACKENDS, compared=COMPARED,
                      compare=None):
    """The three asv classes of one kernel family, each over ``(backend, shape, dtype)``:

    * ``name`` (:class:`Timed`): ``time_<op>`` on ``backends`` x ``presets`` x ``DTYPES``;
    * ``name + "Memory"`` (:class:`Timed`): ``peakmem_<op>``, the same on ``PEAKMEM_DTYPES``;
    * ``name + "VsReference"`` (:class:`Tracked`): ``track_speedup_<op>`` (reference time
      / this backend's time, measured alternately in one process) and ``track_error_<op>``
      (largest absolute error against the ``'numpy'`` reference) on ``compared`` x
      ``presets`` x ``TRACK_DTYPES``.

    ``presets`` is one of the ``*_SHAPES`` tables. ``kernel(backend, shape, dtype)`` builds
    the inputs of one preset, raising NotImplementedError for a backend that cannot run
    here (asv records it as skipped), and holds one callable per op: ``ops`` maps each op,
    the methods' suffix, to that callable's attribute name. Setup calls every callable
    once (JIT compilation, first touch of the buffers). ``compare`` maps an op to a
    function applied to both its result and the reference's before the error is taken.

    Bind the classes to module-level names equal to their own: asv names a benchmark
    ``module.Class.method``, and those names key the results of past runs.
    """
    calls = tuple(ops.values())
    compare = compare or {}

    def setup(self, backend, shape, dtype):
        self.k = kernel(backend, shape, dtype)
        for attr in calls:
            getattr(self.k, attr)()

    def setup_pair(self, backend, shape, dtype):
        self.k = kernel(backend, shape, dtype)
        self.ref = kernel("numpy", shape, dtype)
        for k in (self.k, self.ref):
            for attr in calls:
                getattr(k, attr)()

    def make(suffix, base, backends, dtypes, methods):
        cls_name = name + suffix
        return type(cls_name, (base,), {
            "__module__": kernel.__module__, "__qualname__": cls_name,
            "params": (backends, list(presets), dtypes),
            "param_names": ("backend", "shape", "dtype"), **methods})

    timed = make("", Timed, backends, DTYPES, {
        "setup": setup, **{f"time_{op}": _calls(attr) for op, attr in ops.items()}})
    memory = make("Memory", Timed, backends, PEAKMEM_DTYPES, {
        "setup": setup, **{f"peakmem_{op}": _calls(attr) for op, attr in ops.items()}})
    tracked = make("VsReference", Tracked, compared, TRACK_DTYPES, {
        "setup": setup_pair,
        **{f"track_speedup_{op}": _tracks_speedup(attr) for op, attr in ops.items()},
        **{f"track_error_{op}": _tracks_error(attr, compare.get(op, _same))
           for op, attr in ops.items()}})
    return timed, memory, tracked
