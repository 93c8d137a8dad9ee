"""The parallel work split of conv, pool, im2col, linear and the optimizers at thread
counts other than the default: one thread, two, an odd count, and more threads than
chunks of work (threads with no share); concurrent calls from many Python threads while
the count changes; and the BLAS pools left at the count ``set_num_threads`` set.
Numba runs at most the threads it launched with (``NUMBA_NUM_THREADS``, the core count),
so above that only the Cython (OpenMP) kernels run the larger counts."""
import itertools
import threading

import numpy as np
import pytest

import fastconv as fc
from fastconv import optim
from fastconv import reference as ref
from fastconv.testing import assert_close

from _support import BACKENDS, COMPILED, randn

#: 8 is more than the images of every conv, pool and im2col case here (5 at most), the
#: rows of the small linear cases and the optimizers' chunks (Cython's: 8192 elements
#: each, 5 here).
THREADS = [1, 2, 3, 8]


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



def _blas_threads():
    """{library file: thread count} of every BLAS pool loaded (NumPy's and SciPy's)."""
    from threadpoolctl import threadpool_info

    return {p["filepath"]: p["num_threads"] for p in threadpool_info()
            if p["user_api"] == "blas"}


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("stride,pad", [(1, 1), (2, 1)])  # direct and gemm by the rule
def test_conv_at_thread_counts(threads, backend, n_threads, stride, pad):
    threads(n_threads)
    x = randn((5, 3, 9, 8), np.float32, 0)
    W = randn((6, 3, 3, 3), np.float32, 1)
    b = randn((6,), np.float32, 2)
    out = fc.conv2d(x, W, b, stride, pad, relu=True, backend=backend)
    _assert_running_at(backend, n_threads)
    assert_close(out, ref.conv2d(x, W, b, stride, pad, relu=True), 5 * 9 * 8)
    dout = randn(out.shape, np.float32, 3)
    got = fc.conv2d_backward(dout, x, W, stride, pad, backend=backend)
    for g, e in zip(got, ref.conv2d_backward(dout, x, W, stride, pad)):
        assert_close(g, e, 5 * 9 * 8)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("n_threads", THREADS)
def test_pool_at_thread_counts(threads, backend, n_threads):
    threads(n_threads)
    x = randn((3, 5, 7, 6), np.float32, 4)
    out, arg = fc.max_pool2d(x, 2, 2, backend=backend)
    _assert_running_at(backend, n_threads)
    want, want_arg = ref.max_pool2d(x, 2, 2)
    assert_close(out, want)
    np.testing.assert_array_equal(arg, want_arg)
    dout = randn(out.shape, np.float32, 5)
    assert_close(fc.max_pool2d_backward(dout, arg, x.shape, 2, 2, backend=backend),
                 ref.max_pool2d_backward(dout, want_arg, x.shape, 2, 2))
    assert_close(fc.avg_pool2d(x, 3, 3, 2, 1, backend=backend), ref.avg_pool2d(x, 3, 3, 2, 1))
    assert_close(fc.avg_pool2d_backward(dout, x.shape, 2, 2, backend=backend),
                 ref.avg_pool2d_backward(dout, x.shape, 2, 2))
    assert_close(fc.adaptive_avg_pool2d(x, (3, 4), backend=backend),
                 ref.adaptive_avg_pool2d(x, (3, 4)), 9)
    assert_close(fc.adaptive_avg_pool2d_backward(dout, x.shape, (3, 3), backend=backend),
                 ref.adaptive_avg_pool2d_backward(dout, x.shape, (3, 3)), 4)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("n_threads", THREADS)
def test_col2im_at_thread_counts(threads, backend, n_threads):
    threads(n_threads)
    x = randn((2, 3, 6, 5), np.float32, 6)
    col = fc.im2col(x, 3, 3, 1, 1, backend=backend)
    assert_close(col, ref.im2col(x, 3, 3, 1, 1))
    assert_close(fc.col2im(col, x.shape, 3, 3, 1, 1, backend=backend),
                 ref.col2im(col, x.shape, 3, 3, 1, 1))


# (N, D, M): one row (fewer rows than threads for every count but 1), DeepConvNet's
# affine layers at batch 5, and a GEMM above SMALL_GEMM_MACS, which keeps BLAS's threads.
LINEAR_CASES = [(1, 12, 5), (5, 1024, 50), (5, 50, 10), (64, 1024, 600)]


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("N,D,M", LINEAR_CASES)
def test_linear_at_thread_counts(threads, backend, n_threads, N, D, M):
    threads(n_threads)
    x = randn((N, D), np.float32, 10)
    W = randn((D, M), np.float32, 11) / np.sqrt(D)
    b = randn((M,), np.float32, 12)
    for relu in (False, True):
        out = fc.linear(x, W, b, relu=relu, backend=backend)
        _assert_running_at(backend, n_threads)
        want = ref.linear(x, W, b, relu=relu)
        assert_close(out, want, D)
        dout = randn(out.shape, np.float32, 13)
        relu_out = out if relu else None
        got = fc.linear_backward(dout, x, W, relu_out=relu_out, backend=backend)
        # Masked like the kernel, by the kernel's own forward output.
        for g, e, terms in zip(got, ref.linear_backward(dout, x, W, relu_out=relu_out),
                               (M, N, N)):
            assert_close(g, e, terms)
    # The kernels' single-threaded BLAS blocks are over: every pool is back at the count.
    assert set(_blas_threads().values()) == {n_threads}


#: (optimizer factory, its state attributes); every rule of fastconv.optim.
RULES = {
    "SGD": (lambda: optim.SGD(lr=0.05), ()),
    "Momentum": (lambda: optim.Momentum(lr=0.05, momentum=0.8), ("v",)),
    "Nesterov": (lambda: optim.Nesterov(lr=0.05, momentum=0.8), ("v",)),
    "AdaGrad": (lambda: optim.AdaGrad(lr=0.05), ("h",)),
    "RMSprop": (lambda: optim.RMSprop(lr=0.05, decay_rate=0.9), ("h",)),
    "Adam": (lambda: optim.Adam(lr=0.05, beta1=0.8, beta2=0.95), ("m", "v")),
}
#: Elementwise float32 results of the fused kernels (float64 arithmetic, one rounding)
#: against the NumPy path (float32 arithmetic): a few roundings apart after three steps.
OPTIM_TOL = {np.float32: dict(rtol=2e-6, atol=1e-7), np.float64: dict(rtol=1e-12, atol=1e-14)}


def _optim_problem(dtype):
    # 'big' has 40000 elements: parallel from optim's PARALLEL_MIN (32768) on, 5 chunks of
    # Cython's 8192; the others run serially.
    shapes = {"W1": (4, 3, 3, 3), "b1": (4,), "big": (200, 200)}
    params = {k: randn(s, dtype, i) for i, (k, s) in enumerate(shapes.items())}
    grads = [{k: randn(s, dtype, 10 * step + i) for i, (k, s) in enumerate(shapes.items())}
             for step in range(3)]
    return params, grads


def _three_steps(rule, backend, dtype):
    make, state = RULES[rule]
    opt = make()
    params, grads = _optim_problem(dtype)
    with fc.use_backend(backend):
        for g in grads:
            opt.update(params, g)
    return params, {name: getattr(opt, name) for name in state}


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", list(RULES))
def test_optimizers_at_thread_counts(threads, backend, n_threads, dtype, rule):
    want_params, want_state = _three_steps(rule, "numpy", dtype)
    threads(n_threads)
    params, state = _three_steps(rule, backend, dtype)
    _assert_running_at(backend, n_threads)
    for key, p in params.items():
        assert p.dtype == dtype
        np.testing.assert_allclose(p, want_params[key], **OPTIM_TOL[dtype])
    for name, per_key in state.items():
        for key, s in per_key.items():
            np.testing.assert_allclose(s, want_state[name][key], **OPTIM_TOL[dtype])


def test_set_num_threads_is_not_undone_by_a_kernel_in_flight(threads):
    """A kernel's single-threaded BLAS block open while set_num_threads runs: SciPy's
    pool stays at one thread until the block closes, then takes the new count (before
    #13 the block restored the count it found on entering, undoing the call)."""
    from fastconv._kernels import _blas

    threads(2)
    scipy_pools = {c.filepath for c in _blas._blas_controllers()}
    with _blas.single_threaded_blas():
        threads(3)
        inside = _blas_threads()
    assert all(n == (1 if path in scipy_pools else 3) for path, n in inside.items())
    assert set(_blas_threads().values()) == {3}


def test_blas_counts_are_set_from_any_python_thread(threads):
    """set_num_threads and the kernels' single-threaded BLAS block work from a thread
    other than the first that set a count (threadpoolctl 3.8 ignores the others' calls
    to a pthreads OpenBLAS unless control is handed back)."""
    from fastconv._kernels import _blas

    threads(2)  # this thread sets the pools first
    scipy_pools = {c.filepath for c in _blas._blas_controllers()}
    seen = {}

    def other():
        fc.set_num_threads(3)
        seen["set"] = _blas_threads()
        with _blas.single_threaded_blas():
            seen["inside"] = _blas_threads()

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert set(seen["set"].values()) == {3}
    assert all(n == (1 if path in scipy_pools else 3) for path, n in seen["inside"].items())
    assert set(_blas_threads().values()) == {3}


def _concurrent_cases(n):
    """Per worker: its backend (in turn over every backend), inputs and the reference's
    results for them."""
    cases = []
    for i in range(n):
        x = randn((3, 3, 8, 7), np.float32, 100 + i)
        W = randn((4, 3, 3, 3), np.float32, 200 + i)
        b = randn((4,), np.float32, i)
        xl = randn((5, 40), np.float32, 300 + i)
        Wl = randn((40, 6), np.float32, 400 + i)
        bl = randn((6,), np.float32, 500 + i)
        conv = ref.conv2d(x, W, b, 1, 1, relu=True)
        dconv = randn(conv.shape, np.float32, 600 + i)
        pool, arg = ref.max_pool2d(conv, 2, 2)
        lin = ref.linear(xl, Wl, bl, relu=True)
        dlin = randn(lin.shape, np.float32, 700 + i)
        cases.append(dict(
            backend=BACKENDS[i % len(BACKENDS)], x=x, W=W, b=b, dconv=dconv, xl=xl, Wl=Wl,
            bl=bl, dlin=dlin, conv=conv, conv_grads=ref.conv2d_backward(
                dconv, x, W, 1, 1, relu_out=conv), pool=pool, arg=arg, lin=lin,
            lin_grads=ref.linear_backward(dlin, xl, Wl, relu_out=lin)))
    return cases


def _work(case, rounds):
    """conv, pool and linear forward and backward under the worker's own backend scope,
    checked against the reference every round. The backward passes and the pooling take
    the reference's forward outputs, so a ReLU mask or a tie is never decided by a
    rounding difference."""
    c = case
    with fc.use_backend(c["backend"]):
        for _ in range(rounds):
            assert fc.get_backend() == c["backend"]
            out = fc.conv2d(c["x"], c["W"], c["b"], 1, 1, relu=True)
            assert_close(out, c["conv"], 3 * 3 * 3)
            grads = fc.conv2d_backward(c["dconv"], c["x"], c["W"], 1, 1, relu_out=c["conv"])
            for g, e in zip(grads, c["conv_grads"]):
                assert_close(g, e, 3 * 8 * 7)
            pooled, arg = fc.max_pool2d(c["conv"], 2, 2)
            assert_close(pooled, c["pool"])
            np.testing.assert_array_equal(arg, c["arg"])
            assert_close(fc.linear(c["xl"], c["Wl"], c["bl"], relu=True), c["lin"], 40)
            grads = fc.linear_backward(c["dlin"], c["xl"], c["Wl"], relu_out=c["lin"])
            for g, e in zip(grads, c["lin_grads"]):
                assert_close(g, e, 40)


def test_concurrent_calls_while_the_thread_count_changes(threads):
    """8 Python threads, each with its own data and its own use_backend scope, call conv,
    pool and linear while a ninth calls set_num_threads over and over (from before the
    first starts to after the last ends); every result matches the reference, each
    thread sees its own backend, and the BLAS pools end at the count set last."""
    cases = _concurrent_cases(8)
    for c in cases:
        _work(c, 1)  # compile Numba's kernels before the threads start
    errors, set_last = [], []
    started, done = threading.Event(), threading.Event()

    def worker(case):
        try:
            started.wait()
            _work(case, 10)
        except BaseException as err:  # reported below, with the worker's backend
            errors.append((case["backend"], err))

    def setter():
        for n in itertools.cycle([1, 3, 2, 8]):
            fc.set_num_threads(n)
            set_last[:] = [n]
            started.set()
            if done.is_set():
                return

    workers = [threading.Thread(target=worker, args=(c,)) for c in cases]
    changer = threading.Thread(target=setter)
    changer.start()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    done.set()
    changer.join()
    assert not errors, errors
    assert fc.get_num_threads() == set_last[0]
    assert set(_blas_threads().values()) == {set_last[0]}
