"""Backend selection, dispatch and the thread knob."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastconv as fc


def test_available_backends_lists_reference_first():
    backends = fc.available_backends()
    assert backends[0] == "numpy"
    assert set(backends) <= {"numpy", "numba", "cython"}


def test_set_and_get_backend():
    old = fc.get_backend()
    try:
        for name in fc.available_backends() + ("auto",):
            fc.set_backend(name)
            assert fc.get_backend() == name
    finally:
        fc.set_backend(old)


def test_unknown_backend_is_value_error():
    with pytest.raises(ValueError, match="backend must be one of"):
        fc.set_backend("cuda")
    with pytest.raises(ValueError, match="backend must be one of"):
        fc.im2col(np.zeros((1, 1, 3, 3)), 3, 3, backend="fortran")


def test_use_backend_is_scoped_and_nested():
    old = fc.get_backend()
    with fc.use_backend("numpy"):
        assert fc.get_backend() == "numpy"
        with fc.use_backend("auto"):
            assert fc.get_backend() == "auto"
        assert fc.get_backend() == "numpy"
    assert fc.get_backend() == old


def test_use_backend_is_thread_local():
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def worker():
        with fc.use_backend("numpy"):
            inside.set()
            release.wait(5)
            seen["worker"] = fc.get_backend()

    old = fc.get_backend()
    fc.set_backend("auto")
    try:
        t = threading.Thread(target=worker)
        t.start()
        inside.wait(5)
        seen["main"] = fc.get_backend()
        release.set()
        t.join()
    finally:
        fc.set_backend(old)
    assert seen == {"worker": "numpy", "main": "auto"}


def test_auto_prefers_cython_then_numba():
    expected = next((b for b in ("cython", "numba") if b in fc.available_backends()), "numpy")
    assert fc._backend.resolve("auto") == expected


def test_num_threads_round_trip():
    old = fc.get_num_threads()
    try:
        fc.set_num_threads(1)
        assert fc.get_num_threads() == 1
        from threadpoolctl import threadpool_info

        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
        if "numba" in fc.available_backends():
            import numba

            fc.im2col(np.zeros((1, 1, 3, 3)), 3, 3, backend="numba")
            assert numba.get_num_threads() == 1
    finally:
        fc.set_num_threads(old)


def test_num_threads_applies_to_other_threads():
    """OpenMP and Numba keep per-thread counts; a worker thread must see the knob too."""
    compiled = [b for b in ("numba", "cython") if b in fc.available_backends()]
    old = fc.get_num_threads()
    seen = {}

    def worker():
        for backend in compiled:
            fc.im2col(np.ones((1, 1, 3, 3)), 3, 3, backend=backend)
        if "cython" in compiled:
            from fastconv._kernels.cython_backend import _runtime

            seen["cython"] = _runtime.get_num_threads()
        if "numba" in compiled:
            import numba

            seen["numba"] = numba.get_num_threads()

    try:
        fc.set_num_threads(1)
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    finally:
        fc.set_num_threads(old)
    assert seen == {b: 1 for b in compiled}


@pytest.mark.parametrize("bad,exc", [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                     ("2", TypeError), (2**31, ValueError)])
def test_bad_num_threads(bad, exc):
    with pytest.raises(exc):
        fc.set_num_threads(bad)


def _run(code, **env):
    full_env = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env)


@pytest.mark.slow
def test_environment_variables():
    r = _run("import fastconv as fc; print(fc.get_backend(), fc.get_num_threads())",
             FASTCONV_BACKEND="numpy", FASTCONV_NUM_THREADS="1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["numpy", "1"]


@pytest.mark.slow
def test_bad_environment_variable_is_explained():
    r = _run("import fastconv as fc; fc.get_backend()", FASTCONV_BACKEND="gpu")
    assert r.returncode != 0 and "FASTCONV_BACKEND" in r.stderr


@pytest.mark.slow
def test_missing_cython_extension_leaves_numba_working():
    """With the compiled extension unimportable, 'cython' disappears and says how to rebuild."""
    code = """
import sys, numpy as np
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.startswith("fastconv._kernels.cython_backend."):
            raise ImportError("blocked for the test")
sys.meta_path.insert(0, Block())
import fastconv as fc
assert "cython" not in fc.available_backends(), fc.available_backends()
try:
    fc.set_backend("cython")
except fc.BackendUnavailableError as e:
    assert "pip install -e ." in str(e), e
else:
    raise SystemExit("no error")
col = fc.im2col(np.ones((1, 1, 4, 4)), 3, 3)
print(fc._backend.resolve("auto"), col.shape)
"""
    r = _run(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] in ("numba", "numpy")


@pytest.mark.slow
def test_unbuilt_source_tree_fails_at_import_with_the_fix(tmp_path):
    """A fastconv/ without its kernels (a checkout that was never installed, shadowing
    the installed package) fails at `import fastconv`, saying what to run."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np

    shutil.copytree(Path(__file__).resolve().parents[1] / "fastconv", tmp_path / "fastconv")
    deps = str(Path(np.__file__).resolve().parents[1])
    code = f"import sys; sys.path[:0] = ['', {deps!r}]; import fastconv"
    # -S: no .pth files, so no editable-install finder resolves the kernels elsewhere
    res = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert "a source tree that is not installed there" in res.stderr
    assert "python -m pip install -e ." in res.stderr
