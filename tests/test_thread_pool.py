"""What fastconv does to the process's threads (kernels/_pool.py): NumPy's and SciPy's
OpenBLAS run their parallel jobs on OpenMP's team, libgomp's idle spin is shortened
unless the user set it, ``FASTCONV_THREAD_POOL=separate`` leaves everything alone, and
a forked child gets its BLAS threads back. Settings that apply at process start are
checked in child processes."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastconv as fc
from fastconv._kernels import _pool

from _support import COMPILED

needs_cython = pytest.mark.skipif("cython" not in COMPILED, reason="the callback is in the "
                                  "Cython extension, which is not built here")


def _child(code, **env):
    full = {k: v for k, v in os.environ.items()
            if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", _pool.ENV)}
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full, timeout=120)


@needs_cython
def test_blas_pools_share_openmps_team_in_this_process():
    fc.available_backends()
    assert _pool.mode() == "shared"
    assert _pool._shared, "no OpenBLAS took the callback"
    assert any("run on OpenMP's team" in line for line in _pool.status())


@needs_cython
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(64, 8192, 100), (300, 200, 500), (1, 5000, 3), (513, 257, 129)])
def test_matmul_on_the_shared_pool_equals_a_serial_sum(dtype, m, k, n):
    """Multi-threaded GEMMs (NumPy's and SciPy's) through the callback against float64
    sums; the bound: k terms of float32/float64 rounding."""
    import scipy.linalg.blas as sb

    fc.available_backends()
    fc.set_num_threads(2)
    rng = np.random.default_rng(m + k + n)
    A, B = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    exact = A.astype(np.float64) @ B.astype(np.float64)
    tol = 4 * np.finfo(dtype).eps * np.sqrt(k) * (np.abs(A) @ np.abs(B)).max()
    assert np.abs(A @ B - exact).max() <= tol
    gemm = sb.sgemm if dtype == np.float32 else sb.dgemm
    assert np.abs(gemm(1.0, A, B) - exact).max() <= tol


@needs_cython
def test_concurrent_matmuls_from_python_threads():
    fc.available_backends()
    rng = np.random.default_rng(0)
    mats = [rng.standard_normal((400, 400)) for _ in range(4)]
    want = [m @ m for m in mats]
    got, errors = [None] * 4, []

    def work(i):
        try:
            for _ in range(5):
                got[i] = mats[i] @ mats[i]
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors and all(not t.is_alive() for t in ts)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-9)


@pytest.mark.slow
@needs_cython
def test_forked_child_gets_its_blas_threads_back():
    """After the parent ran BLAS on OpenMP's team, a forked child's matmul runs on
    OpenBLAS's own threads (libgomp's team does not survive fork: it would hang)."""
    code = (
        "import multiprocessing as mp, numpy as np, fastconv as fc\n"
        "fc.available_backends(); fc.set_num_threads(2)\n"
        "A = np.random.default_rng(0).standard_normal((600, 600)); A @ A\n"
        "def f(_):\n"
        "    from fastconv._kernels import _pool\n"
        "    return (not _pool._shared, float((A @ A).sum()))\n"
        "with mp.get_context('fork').Pool(2) as p: r = p.map(f, range(2))\n"
        "assert all(u for u, _ in r) and abs(r[0][1] - float((A @ A).sum())) < 1e-6, r\n"
        "print('ok')\n")
    proc = _child(code)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


@pytest.mark.slow
def test_spin_count_set_before_libgomp_loads():
    proc = _child("import os, fastconv as fc; from fastconv._kernels import _pool\n"
                  "print(os.environ.get('GOMP_SPINCOUNT')); print(_pool.status()[0])")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == str(_pool.SPIN_COUNT)
    assert "set by fastconv" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("var,value", [("OMP_WAIT_POLICY", "active"), ("GOMP_SPINCOUNT", "5")])
def test_the_users_openmp_setting_wins(var, value):
    proc = _child("import os, fastconv as fc; from fastconv._kernels import _pool\n"
                  f"print(os.environ.get('GOMP_SPINCOUNT')); print(_pool.status()[0])",
                  **{var: value})
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()[:2]
    assert first == (value if var == "GOMP_SPINCOUNT" else "None")
    assert f"set by the user: {var}={value}" in second


@pytest.mark.slow
def test_separate_leaves_the_pools_alone():
    proc = _child("import os, fastconv as fc; fc.available_backends()\n"
                  "from fastconv._kernels import _pool\n"
                  "print(os.environ.get('GOMP_SPINCOUNT'), bool(_pool._shared))\n"
                  "print('|'.join(_pool.status()))", FASTCONV_THREAD_POOL="Separate")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "None False"
    assert "FASTCONV_THREAD_POOL=separate" in proc.stdout


@pytest.mark.slow
def test_a_bad_mode_names_the_variable():
    proc = _child("import fastconv as fc; fc.get_backend(resolved=True)",
                  FASTCONV_THREAD_POOL="bogus")
    assert proc.returncode != 0
    assert "FASTCONV_THREAD_POOL='bogus' is not one of ('shared', 'separate')" in proc.stderr


@pytest.mark.slow
def test_info_says_what_was_done_to_the_threads():
    proc = _child("from fastconv._info import describe; print('\\n'.join(describe()))")
    assert proc.returncode == 0, proc.stderr
    assert "idle OpenMP workers: GOMP_SPINCOUNT=" in proc.stdout
    assert "BLAS threads:" in proc.stdout


@pytest.mark.slow
@needs_cython
def test_blas_called_inside_a_parallel_region_gets_threads_of_its_own():
    """A multi-threaded GEMM started inside an OpenMP region (here a Numba prange, on
    libgomp) cannot have a team there; its jobs, which wait on one another, each get a
    pthread instead of running in turn (which would deadlock)."""
    numba = pytest.importorskip("numba")
    from threadpoolctl import threadpool_limits

    fc.available_backends()

    @numba.njit(parallel=True)
    def products(a, b, out):
        for i in numba.prange(out.shape[0]):
            out[i] = np.dot(a[i], b[i])

    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 300, 300))
    b = rng.standard_normal((2, 300, 300))
    out = np.empty_like(a)
    with threadpool_limits(2, user_api="blas"):
        products(a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-10)
