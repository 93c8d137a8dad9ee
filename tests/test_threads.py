"""The parallel work split of conv, pool and im2col at thread counts other than the
default: one thread, an odd count, and more threads than images (threads with no share).
Numba runs at most the threads it launched with (``NUMBA_NUM_THREADS``, the core count),
so above that only the Cython (OpenMP) kernels run the larger counts."""
import numpy as np
import pytest

import fastconv as fc
from fastconv import reference as ref

from conftest import COMPILED, assert_close, assert_sum_close

THREADS = [1, 3, 8]


@pytest.fixture
def threads():
    before = fc.get_num_threads()
    yield fc.set_num_threads
    fc.set_num_threads(before)


def _assert_running_at(backend, n_threads):
    """The count reached the backend's pool (Numba's is clipped at its launch count)."""
    if backend == "cython":
        from fastconv._kernels.cython_backend import _runtime

        assert _runtime.get_num_threads() == n_threads
    else:
        import numba

        assert numba.get_num_threads() == min(n_threads, numba.config.NUMBA_NUM_THREADS)


def _data(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("stride,pad", [(1, 1), (2, 1)])  # direct and gemm by the rule
def test_conv_at_thread_counts(threads, backend, n_threads, stride, pad):
    threads(n_threads)
    x, W, b = _data((5, 3, 9, 8), 0), _data((6, 3, 3, 3), 1), _data((6,), 2)
    out = fc.conv2d(x, W, b, stride, pad, relu=True, backend=backend)
    _assert_running_at(backend, n_threads)
    assert_sum_close(out, ref.conv2d(x, W, b, stride, pad, relu=True), 5 * 9 * 8)
    dout = _data(out.shape, 3)
    got = fc.conv2d_backward(dout, x, W, stride, pad, backend=backend)
    for g, e in zip(got, ref.conv2d_backward(dout, x, W, stride, pad)):
        assert_sum_close(g, e, 5 * 9 * 8)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("n_threads", THREADS)
def test_pool_at_thread_counts(threads, backend, n_threads):
    threads(n_threads)
    x = _data((3, 5, 7, 6), 4)
    out, arg = fc.max_pool2d(x, 2, 2, backend=backend)
    _assert_running_at(backend, n_threads)
    want, want_arg = ref.max_pool2d(x, 2, 2)
    assert_close(out, want)
    np.testing.assert_array_equal(arg, want_arg)
    dout = _data(out.shape, 5)
    assert_close(fc.max_pool2d_backward(dout, arg, x.shape, 2, 2, backend=backend),
                 ref.max_pool2d_backward(dout, want_arg, x.shape, 2, 2))
    assert_close(fc.avg_pool2d(x, 3, 3, 2, 1, backend=backend), ref.avg_pool2d(x, 3, 3, 2, 1))
    assert_close(fc.avg_pool2d_backward(dout, x.shape, 2, 2, backend=backend),
                 ref.avg_pool2d_backward(dout, x.shape, 2, 2))


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("n_threads", THREADS)
def test_col2im_at_thread_counts(threads, backend, n_threads):
    threads(n_threads)
    x = _data((2, 3, 6, 5), 6)
    col = fc.im2col(x, 3, 3, 1, 1, backend=backend)
    assert_close(col, ref.im2col(x, 3, 3, 1, 1))
    assert_close(fc.col2im(col, x.shape, 3, 3, 1, 1, backend=backend),
                 ref.col2im(col, x.shape, 3, 3, 1, 1))
