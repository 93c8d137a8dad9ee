"""Benchmark coverage (every public kernel is benchmarked in asv and in ``fastconv bench``),
the ``fastconv bench`` command end to end, and the progress bar."""
import ast
import inspect
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import fastconv
import fastconv.functional
from fastconv import _bench
from fastconv._progress import Progress, progress

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "bench" / "benchmarks"


def public_kernels():
    """Every public op: the functions of ``fastconv.functional`` exported by it or by
    ``fastconv`` itself."""
    names = set(fastconv.functional.__all__)
    for name in fastconv.__all__:
        obj = getattr(fastconv, name)
        if inspect.isfunction(obj) and obj.__module__.startswith("fastconv.functional"):
            names.add(name)
    return sorted(names)


def asv_methods():
    """Names of the benchmark methods defined in classes of bench/benchmarks/*.py."""
    names = set()
    for path in BENCHMARKS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                names.update(f.name for f in node.body if isinstance(f, ast.FunctionDef))
    return names


def test_public_kernels_found():
    # the enumeration itself must see the foundation's ops, or the tests below prove nothing
    assert {"im2col", "col2im"} <= set(public_kernels())


@pytest.mark.parametrize("kind", ["time", "peakmem", "track_speedup", "track_error"])
def test_every_public_kernel_has_asv_benchmarks(kind):
    have = asv_methods()
    missing = [op for op in public_kernels() if f"{kind}_{op}" not in have]
    assert not missing, (
        f"public ops without a `{kind}_<op>` benchmark in bench/benchmarks: {missing}; "
        f"add them to the family's bench_<family>.py"
    )


def test_every_public_kernel_is_in_fastconv_bench():
    missing = sorted(set(public_kernels()) - set(_bench.covered_ops()))
    assert not missing, f"public ops without a row in fastconv bench (_bench.build_cases): {missing}"


def test_select_matches_kernel_family_and_op():
    cases = _bench.build_cases()
    assert {c.kernel for c in _bench.select(cases, ["im2col"])} == {"im2col", "col2im"}
    conv = _bench.select(cases, ["conv2d_backward"])
    assert conv and all(c.kernel == "conv2d+bwd" for c in conv)
    assert len(_bench.select(cases, ["conv"])) == 12
    assert _bench.select(cases, []) == cases


def test_unknown_kernel_is_an_error(capsys):
    from fastconv.cli import main

    assert main(["bench", "--kernel", "no_such_kernel"]) == 2
    assert "no row matches" in capsys.readouterr().err


def test_bench_quick_im2col_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "fastconv", "bench", "--quick", "--kernel", "im2col",
         "--json", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "im2col" in proc.stdout and "ref ms" in proc.stdout
    doc = json.loads(out.read_text())
    backends = fastconv.available_backends()
    assert doc["machine"]["backends"][: len(backends)] == list(backends)
    assert doc["machine"]["threads"] >= 1 and doc["config"]["mode"] == "quick"
    rows = {r["kernel"]: r for r in doc["rows"]}
    assert set(rows) == {"im2col", "col2im"}
    for row in rows.values():
        assert set(backends) <= set(row["time_s"]), row["skipped"]
        assert all(t > 0 for t in row["time_s"].values())
        for b in backends:
            if b != "numpy":
                assert row["speedup_vs_reference"][b] == pytest.approx(
                    row["time_s"]["numpy"] / row["time_s"][b])
                assert row["max_rel_err"][b] <= 1e-5  # float32 copies and 9-term sums
    # stdout is a pipe here: one line per finished row, before the table
    lines = proc.stdout.splitlines()
    done = [i for i, line in enumerate(lines) if line.startswith("[")]
    assert [lines[i].split()[:2] for i in done] == [["[1/2]", "im2col"], ["[2/2]", "col2im"]]
    assert done[-1] < next(i for i, line in enumerate(lines) if line.startswith("kernel"))
    assert "ms" in lines[done[0]]
    # the im2col rows come with the memory floor, saved in the JSON too
    assert "against the memory floor" in proc.stdout
    assert doc["im2col_floor"]["np.copyto"] > 0


@pytest.mark.parametrize("backends,has_torch", [(["numpy", "cython"], False),
                                                (["numpy", "cython", "torch"], True)])
def test_legend_describes_only_printed_columns(backends, has_torch):
    text = _bench.legend(backends)
    assert ("torch" in text) == has_torch
    assert "'<b> x'" in text


# --------------------------------------------------------------------------- progress


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self._tty = tty

    def isatty(self):
        return self._tty


def test_progress_draws_nothing_when_not_a_tty():
    stream = _Stream(tty=False)
    with Progress(total=3, desc="x", stream=stream) as bar:
        bar.update(1)
        bar.write("a log line")
        bar.update(2, loss=0.5)
    assert stream.getvalue() == "a log line\n"


def test_progress_bar_on_a_tty():
    stream = _Stream(tty=True)
    items = list(progress(range(4), desc="job", stream=stream, min_interval=0,
                          postfix_fn=lambda i: f"item {i}"))
    assert items == [0, 1, 2, 3]
    text = stream.getvalue()
    assert "\r" in text and text.endswith("\n")
    assert "job: 100% |" in text and "4/4" in text and "item 3" in text


def test_progress_without_total():
    bar = Progress(desc="n", enabled=False)
    bar.update(5, loss="0.1")
    assert bar.format(80).startswith("n: 5 ") and "loss=0.1" in bar.format(80)
