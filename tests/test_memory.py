"""No memory leaks: thousands of forward and backward calls of every kernel family, and
training steps of a tiny DeepConvNet, on each compiled backend, after a warm-up.

Two measures, taken after the warm-up has filled the allocator's pools, Numba's and the
dispatch caches: the Python objects alive (``sys.getallocatedblocks``, exact: a kernel
that keeps one reference too many to an array or a memoryview adds a block per call)
and the process's resident memory (``/proc/self/statm``: a buffer allocated in C and
never freed, which holds no Python object, shows there only). Checked by injecting
leaks into the Cython kernel calls: keeping the smallest output of each call (1.1 KiB)
added 3.9 MiB and 6027 blocks, a 4.5 KiB malloc never freed per call 6.7 MiB; the
bounds (``RSS_BOUND``, ``BLOCKS_PER_CALL``, ``BLOCKS_PER_STEP``) are 2 MiB, 500 blocks
over the calls and 500 over the steps, above the noise measured without a leak.

The calls run on one thread: a leak does not depend on the count (the kernels allocate
their per-thread buffers on every call, one or many), and on the shared 2-core machine
each parallel region of these small calls waited 16-24 ms for a second core (2200
iterations: 190 s on Numba at 2 threads, 0.9 s at one).
"""
import gc
import os
import sys

import numpy as np
import pytest

import fastconv as fc
from fastconv import models, optim

from _support import COMPILED, TINY_DEEPCONVNET, randn

#: Iterations before measuring (allocator pools, caches) and measured.
WARMUP, CALLS = 300, 2000
STEPS_WARMUP, STEPS = 100, 1000
#: Resident memory growth allowed over the measured iterations. Measured, four rounds
#: in a row after the warm-up: at most 0.5 MiB (Numba's first round), then 0-0.02 MiB.
RSS_BOUND = 2 << 20
#: Python memory blocks allowed to appear, per measured iteration. Measured: -62 to
#: +139 blocks over a round of 2000 calls or 500 steps, not growing from round to
#: round; a leaked object per call adds at least one.
BLOCKS_PER_CALL = 0.25
#: The same per training step. Measured over 1000 steps of the tiny DeepConvNet: -29 to
#: +48 in six rounds in a row on Numba (-103 to +31 on Cython), +266 once on Numba
#: inside the whole suite; a step makes over 20 kernel calls, so a leaked object per
#: call adds over 20 blocks a step.
BLOCKS_PER_STEP = 0.5

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/self/statm"),
    reason="resident memory is read from /proc/self/statm (Linux only)",
)


@pytest.fixture(autouse=True)
def one_thread():
    before = fc.get_num_threads()
    fc.set_num_threads(1)
    yield
    fc.set_num_threads(before)


def _rss():
    """Resident memory of this process in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _growth(step, warmup, calls):
    """(resident bytes, Python blocks) that ``calls`` more calls of ``step`` add after
    ``warmup`` calls."""
    for _ in range(warmup):
        step()
    gc.collect()
    rss, blocks = _rss(), sys.getallocatedblocks()
    for _ in range(calls):
        step()
    gc.collect()
    return _rss() - rss, sys.getallocatedblocks() - blocks



def _kernel_calls(backend):
    """One call of every kernel family's forward and backward, as a training step
    makes them: conv (direct and im2col+GEMM, with the fused ReLU), max and average
    pooling, linear, im2col/col2im."""
    x = randn((4, 3, 12, 12), np.float32, 0)
    W = randn((8, 3, 3, 3), np.float32, 1)
    b = randn((8,), np.float32, 2)
    xl = randn((4, 72), np.float32, 3)
    Wl = randn((72, 10), np.float32, 4)
    bl = randn((10,), np.float32, 5)
    dl = randn((4, 10), np.float32, 6)

    def step():
        with fc.use_backend(backend):
            for stride in (1, 2):  # the direct kernels, then im2col + GEMM
                out = fc.conv2d(x, W, b, stride, 1, relu=True)
                fc.conv2d_backward(out, x, W, stride, 1, relu_out=out)
            pooled, arg = fc.max_pool2d(out, 2, 2)
            fc.max_pool2d_backward(pooled, arg, out.shape, 2, 2)
            fc.avg_pool2d_backward(fc.avg_pool2d(out, 2, 2), out.shape, 2, 2)
            y = fc.linear(xl, Wl, bl, relu=True)
            fc.linear_backward(dl, xl, Wl, relu_out=y)
            fc.col2im(fc.im2col(x, 3, 3, 1, 1), x.shape, 3, 3, 1, 1)

    return step


def _train_steps(backend):
    """One training step (gradient and Adam update) of a tiny DeepConvNet."""
    rng = np.random.default_rng(7)
    with fc.use_backend(backend):
        net = models.DeepConvNet(**TINY_DEEPCONVNET, dtype=np.float32, rng=0)
    x = rng.random((8, 1, 10, 10)).astype(np.float32)
    t = rng.integers(0, TINY_DEEPCONVNET["output_size"], 8)
    opt = optim.Adam()

    def step():
        with fc.use_backend(backend):
            opt.update(net.params, net.gradient(x, t))

    return step


@pytest.mark.parametrize("backend", COMPILED)
def test_kernel_calls_do_not_leak(backend):
    rss, blocks = _growth(_kernel_calls(backend), WARMUP, CALLS)
    assert rss < RSS_BOUND, f"{rss / 2**20:.2f} MiB more resident after {CALLS} calls"
    assert blocks < BLOCKS_PER_CALL * CALLS, f"{blocks} more Python blocks after {CALLS} calls"


@pytest.mark.parametrize("backend", COMPILED)
def test_training_steps_do_not_leak(backend):
    rss, blocks = _growth(_train_steps(backend), STEPS_WARMUP, STEPS)
    assert rss < RSS_BOUND, f"{rss / 2**20:.2f} MiB more resident after {STEPS} steps"
    assert blocks < BLOCKS_PER_STEP * STEPS, f"{blocks} more Python blocks after {STEPS} steps"
