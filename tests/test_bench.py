"""Benchmark coverage (every public kernel is benchmarked in asv and in ``fastconv bench``),
the ``fastconv bench`` command end to end, and the DeepConvNet the benchmarks share."""
import functools
import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastconv
import fastconv.functional
from fastconv import _bench
from fastconv._bench import deepconvnet
from fastconv.cli import main

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


@functools.lru_cache(maxsize=None)
def asv_methods():
    """Names of the methods of the classes in bench/benchmarks, as asv discovers them:
    by importing the modules (common.kernel_benchmarks makes most classes), in a child
    process because importing the suite fixes thread counts in the importing process."""
    script = "\n".join([
        "import importlib, inspect, pkgutil, sys",
        "sys.path.insert(0, sys.argv[1])",
        "import benchmarks",
        "for info in pkgutil.iter_modules(benchmarks.__path__):",
        "    module = importlib.import_module('benchmarks.' + info.name)",
        "    for cls in vars(module).values():",
        "        if inspect.isclass(cls):",
        "            print(*dir(cls), sep='\\n')",
    ])
    child = subprocess.run([sys.executable, "-c", script, str(BENCHMARKS.parent)],
                           capture_output=True, text=True, check=True)
    return frozenset(child.stdout.split())


def test_public_kernels_found():
    # the enumeration itself must see the foundation's ops, or the tests below prove nothing
    assert {"im2col", "col2im"} <= set(public_kernels())


@pytest.mark.slow
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
    assert main(["bench", "--kernel", "no_such_kernel"]) == 2
    assert "no row matches" in capsys.readouterr().err


@pytest.mark.slow
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


def _case(kernel, fail_on, error):
    """A row computing ``x + 1`` that raises ``error`` for the backends in ``fail_on``."""
    def inputs(dtype, rng):
        return dict(x=rng.standard_normal((4, 4)).astype(dtype))

    def make(backend, a):
        if backend in fail_on:
            raise error
        return lambda: a["x"] + 1

    return _bench.Case(kernel, "test", (kernel,), "4x4", inputs, make)


def test_a_kernel_that_raises_fails_the_run_and_is_named(monkeypatch, capsys):
    broken = fastconv.available_backends()[-1]
    cases = [_case("boom", {broken}, RuntimeError("kernel exploded")),
             _case("hosted", set(fastconv.available_backends()),
                   _bench.Unavailable("hostlib is not installed"))]
    monkeypatch.setattr(_bench.cli, "build_cases", lambda N: cases)
    assert main(["bench", "--quick", "--no-torch"]) == 1
    out, err = capsys.readouterr()
    failed = out[out.index("failed"):]
    assert f"boom [{broken}] (1 row): RuntimeError: kernel exploded" in failed
    assert "hosted" not in failed  # unavailable is a note, not a failure
    assert "hosted (1 row): hostlib is not installed" in out[:out.index("failed")]
    assert f"boom 4x4 [{broken}] raised:" in err and "Traceback" in err
    if broken != "numpy":  # the other backends of the row were still timed
        assert "boom" in out[:out.index("skipped / notes")]


def test_unavailable_is_a_note_and_exits_zero(monkeypatch, capsys):
    cases = [_case("hosted", set(fastconv.available_backends()),
                   _bench.Unavailable("hostlib is not installed")),
             _case("fine", set(), None)]
    monkeypatch.setattr(_bench.cli, "build_cases", lambda N: cases)
    assert main(["bench", "--quick", "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "hosted (1 row): hostlib is not installed" in out and "failed" not in out


def test_deepconvnet_table_matches_the_model():
    dcn = deepconvnet.shapes(3)
    net = fastconv.models.DeepConvNet(rng=0)
    weights = [(c.FN, c.C, c.k, c.k) for c in dcn.convs] + [(f.D, f.M) for f in dcn.linears]
    assert [net.params[f"W{i + 1}"].shape for i in range(len(weights))] == weights
    assert len(net.params) == 2 * len(weights)
    assert dcn.x == (3,) + net.input_dim
    scores = net.predict(np.random.default_rng(0).random(dcn.x))
    assert scores.shape == (3, dcn.linears[-1].M)
    # the book's figure: about 5.2 GFLOP per training step at batch 100
    assert 5.0e9 < deepconvnet.shapes(100).flops(train=True) < 5.4e9


def test_torch_twin_has_the_models_parameters():
    torch = pytest.importorskip("torch")
    twin = deepconvnet.torch_net(torch, "float32")
    net = fastconv.models.DeepConvNet(rng=0)
    weights = [p.shape for name, p in twin.named_parameters() if name.endswith("weight")]
    ours = [net.params[f"W{i + 1}"].shape for i in range(len(weights))]
    # torch's Linear keeps W as (M, D), the book's Affine as (D, M)
    assert [tuple(w) if len(w) == 4 else tuple(w)[::-1] for w in weights] == ours
    twin.eval()
    x = torch.from_numpy(np.random.default_rng(0).random((2, *net.input_dim), np.float32))
    assert tuple(twin(x).shape) == (2, net.output_size)


def test_integration_rows_run_one_step():
    """Each integration row's step runs on the host alone and through fastconv (rows whose
    host library is missing are Unavailable, as in the bench)."""
    from fastconv._bench import Unavailable
    from fastconv._bench.integrations import integration_cases

    ran = 0
    for case in integration_cases(4):
        inputs = case.inputs(np.float32, np.random.default_rng(0))
        for backend in fastconv.available_backends():
            try:
                step = case.make(backend, inputs)
            except Unavailable:
                continue
            step()
            ran += 1
    assert ran >= len(fastconv.available_backends())  # CS231n's needs no host library


def test_three_layer_convnet_row_matches_the_fast_layers():
    """CS231n's ThreeLayerConvNet through the integration gives the assignment's
    fast-layer loss and gradients (float64: the same sums in another order)."""
    from fastconv._bench.integrations import three_layer_case

    case = three_layer_case(3)
    inputs = case.inputs(np.float64, np.random.default_rng(1))
    want = case.make("numpy", inputs)()
    for backend in fastconv.available_backends():
        for got, ref in zip(case.make(backend, inputs)(), want):
            np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max())


def test_nets_rows_cover_the_issues_layers_and_run():
    """The nets suite: every layer named by its net; each row's conv + backward equals
    the reference on a batch cut to one image (the full rows are for timing)."""
    from fastconv._bench import nets

    names = " ".join(n for n, _ in nets.LAYERS)
    for net in ("LeNet-5", "CS231n", "VGG", "ResNet-18 stem", "1x1", "s2"):
        assert net in names
    for name, conv in nets.LAYERS:
        case = nets.conv_case(conv._replace(N=1), backward=True)
        inputs = case.inputs(np.float32, np.random.default_rng(0))
        want = case.make("numpy", inputs)()
        for backend in fastconv.available_backends():
            for got, ref in zip(case.make(backend, inputs)(), want):
                scale = np.abs(ref).max()
                assert np.abs(got - ref).max() <= 1e-4 * scale, (name, backend)


def test_nets_summary_reports_geometric_mean_and_largest():
    from fastconv._bench import nets

    rows = [dict(shape="a", time_ratio_vs_torch={"cython": 0.5, "numba": 0.8}),
            dict(shape="b", time_ratio_vs_torch={"cython": 2.0})]
    (line,) = nets.summary(rows)
    assert "geometric mean 1.00" in line and "largest 2.00 (b)" in line
    assert "no PyTorch" in nets.summary([dict(shape="a")])[0]


@pytest.mark.slow
def test_neighbours_rows_measure_every_pair():
    """One worker process's rows (2 pairs each): every op x neighbour x order, with
    positive times, and the table derives the ratio from them."""
    from fastconv._bench import neighbours

    backend = fastconv.available_backends()[-1]
    proc = subprocess.run([sys.executable, "-c", neighbours.WORKER, backend, "2", "2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(rows) == len(neighbours.OPS) * len(neighbours.NEIGHBOURS) * len(neighbours.ORDERS)
    assert all(min(t) > 0 for t in rows.values())
    lines = neighbours.table({backend: {k: [v] for k, v in rows.items()}})
    a, n, p = next(iter(rows.values()))
    assert f"{p / (a + n):6.2f}" in lines[1]
