"""Instruction-set levels: the level in force, refusals, the compiled block shapes, the
conv tests at every level the host runs (a subprocess per level), and a Numba cache
that never serves kernels compiled for another level."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
from fastconv._kernels import _conv_plan, _isa

from _support import COMPILED

pytestmark = pytest.mark.slow  # per-level runs in child processes

ROOT = Path(__file__).resolve().parents[1]
HOST = _isa.host_levels()


# The children run in this run's directory, not the checkout's root, where `python -c`
# would import the checkout's fastconv/ instead of the installed package under test.
def _run(code, env=None):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def test_host_levels_are_ordered_and_include_the_baseline():
    assert HOST[0] == "sse"
    assert list(HOST) == [lvl for lvl in _isa.LEVELS if lvl in HOST]
    assert _isa.level() in HOST


@pytest.mark.parametrize("value,match", [
    ("avx9", r"FASTCONV_ISA='avx9' is not a level; use one of sse, avx2, avx512"),
    ("avx512", r"this CPU does not run avx512 instructions \(it runs sse\)"),
])
def test_bad_level_is_a_clear_error(monkeypatch, value, match):
    monkeypatch.setattr(_isa, "_level", None)
    monkeypatch.setattr(_isa, "host_levels", lambda: ("sse",))
    monkeypatch.setenv(_isa.ENV, value)
    with pytest.raises(ValueError, match=match):
        _isa.level()


def test_bad_level_stops_a_process_before_any_kernel_runs():
    res = _run("import numpy as np, fastconv as fc\n"
               "fc.conv2d(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3)), backend='numba')",
               env={_isa.ENV: "avx1024"})
    assert res.returncode != 0
    assert "FASTCONV_ISA='avx1024' is not a level" in res.stderr


@pytest.mark.skipif("cython" not in COMPILED, reason="the Cython extension is not built")
def test_compiled_block_shapes_are_the_plan_table():
    from fastconv._kernels.cython_backend import conv

    level, *shape = conv.block_shapes()
    assert level == _isa.level()
    assert tuple(shape) == tuple(_conv_plan.BLOCKS[level])


@pytest.mark.skipif("numba" not in COMPILED, reason="Numba is not installed")
def test_numba_blocks_are_the_plan_table():
    from fastconv._kernels.numba_backend import _simd

    b = _conv_plan.BLOCKS[_isa.level()]
    assert (_simd.VBYTES, _simd.WIDE_F, _simd.WIDE_V, _simd.DW_F, _simd.DW_C, _simd.DW3_C,
            _simd.FV_F, _simd.FV_P, _simd.ONE_V) == b


def test_info_shows_the_level():
    res = subprocess.run([sys.executable, "-m", "fastconv", "info"], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"isa: {_isa.level()}" in res.stdout and ", ".join(HOST) in res.stdout


#: Levels below the host's own: the main run already covers the host's.
LOWER = HOST[:-1]


@pytest.mark.parametrize("level", LOWER)
def test_conv_suite_at_every_lower_level(level):
    """tests/test_conv.py (both algorithms, both backends, float32 and float64 against
    the reference) with the kernels of ``level``."""
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(ROOT / "tests" / "test_conv.py"), str(Path(__file__)) + "::"
                          "test_compiled_block_shapes_are_the_plan_table",
                          str(Path(__file__)) + "::test_numba_blocks_are_the_plan_table"],
                         capture_output=True, text=True, timeout=1800,
                         env={**os.environ, _isa.ENV: level})
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert " passed" in res.stdout and " failed" not in res.stdout


_LANES = """
import numpy as np, fastconv as fc
from fastconv._kernels.numba_backend import conv
x = np.random.default_rng(0).standard_normal((2, 3, 6, 5)).astype(np.float32)
W = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32)
y = fc.conv2d(x, W, None, 1, 1, backend="numba")
assert np.allclose(y, fc.reference.conv2d(x, W, None, 1, 1), rtol=1e-4, atol=1e-4)
asm = conv._wide.inspect_asm(conv._wide.signatures[0])
print(conv._lanes_of(x), "zmm" in asm, "ymm" in asm)
"""


@pytest.mark.skipif("numba" not in COMPILED, reason="Numba is not installed")
@pytest.mark.skipif(len(HOST) < 2, reason="the host runs one level only")
def test_numba_cache_never_serves_another_levels_kernels(tmp_path):
    """The host's level fills a fresh cache first; a lower level reading the same cache
    must compile its own kernels (lanes and registers of its level)."""
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    top = _run(_LANES, {**env, _isa.ENV: HOST[-1]})
    assert top.returncode == 0, top.stderr
    assert top.stdout.split()[0] == str(_conv_plan.BLOCKS[HOST[-1]].vbytes // 4)
    for level in LOWER:
        res = _run(_LANES, {**env, _isa.ENV: level})
        assert res.returncode == 0, res.stderr
        lanes, zmm, ymm = res.stdout.split()
        assert int(lanes) == _conv_plan.BLOCKS[level].vbytes // 4
        assert zmm == "False"
        assert ymm == ("False" if level == "sse" else "True")


def test_numba_level_refused_after_numba_compiled_for_the_host():
    """A forced level cannot take effect once Numba's CPU target was made for the host:
    refused with a clear error, never run at the wrong width."""
    if len(HOST) < 2:
        pytest.skip("the host runs one level only")
    res = _run("import numba\n"
               "numba.njit(lambda a: a + 1)(1)\n"
               "import fastconv._kernels.numba_backend\n", {_isa.ENV: HOST[0]})
    assert res.returncode != 0
    assert "Numba compiled code in this process before" in res.stderr


def test_forced_level_runs_the_same_numbers():
    """float64 results at the host's level and at the baseline agree to rounding."""
    if len(HOST) < 2:
        pytest.skip("the host runs one level only")
    code = ("import numpy as np, fastconv as fc\n"
            "x = np.random.default_rng(0).standard_normal((3, 5, 9, 8))\n"
            "W = np.random.default_rng(1).standard_normal((7, 5, 3, 3))\n"
            "y = fc.conv2d(x, W, None, 1, 1, backend='cython')\n"
            "print(repr(float(y.sum())))\n")
    if "cython" not in COMPILED:
        pytest.skip("the Cython extension is not built")
    sums = [float(_run(code, {_isa.ENV: lvl}).stdout) for lvl in (HOST[0], HOST[-1])]
    assert np.isclose(sums[0], sums[1], rtol=1e-12)
