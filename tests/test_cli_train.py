"""``fastconv train`` / ``fastconv evaluate`` end to end on a tiny synthetic IDX dataset."""
import json
import struct
import subprocess
import sys

import numpy as np
import pytest

from fastconv import cli
from fastconv.models import DeepConvNet


def write_idx(path, array):
    """Write a uint8 array as an IDX file (magic 0x08 = unsigned byte)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    """300 training and 100 test images: a bright square whose corner gives the class."""
    d = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)

    def make(n):
        t = rng.integers(0, 4, size=n).astype(np.uint8)
        x = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(t):
            r, q = divmod(int(c), 2)
            x[i, 4 + 14 * r:10 + 14 * r, 4 + 14 * q:10 + 14 * q] = 255
        return x, t

    (x, t), (xt, tt) = make(300), make(100)
    write_idx(d / "train-images-idx3-ubyte", x)
    write_idx(d / "train-labels-idx1-ubyte", t)
    write_idx(d / "t10k-images-idx3-ubyte", xt)
    write_idx(d / "t10k-labels-idx1-ubyte", tt)
    return d


def train(idx_dir, out, *extra):
    argv = ["train", "--data", str(idx_dir), "--epochs", "1", "--limit", "200",
            "--batch-size", "50", "--out", str(out), *extra]  # a later --limit wins
    assert cli.main(argv) == 0


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_help(command):
    res = subprocess.run([sys.executable, "-m", "fastconv", command, "--help"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--data" in res.stdout and "--kind" in res.stdout and "--backend" in res.stdout
    if command == "train":
        for opt in ("--epochs", "--batch-size", "--lr", "--dtype", "--augment", "--seed",
                    "--out", "--limit", "--threads"):
            assert opt in res.stdout
    else:
        assert "--params" in res.stdout and "float16" in res.stdout


def test_train_then_evaluate(idx_dir, tmp_path, capsys):
    out = tmp_path / "run"
    train(idx_dir, out, "--augment", "--seed", "3")
    assert (out / "params.npz").is_file()
    history = json.loads((out / "history.json").read_text())
    assert len(history["step_loss"]) == 4  # 200 images in batches of 50
    assert history["epochs"][0]["epoch"] == 1
    assert 0.0 <= history["epochs"][0]["test_acc"] <= 1.0
    for png in ("curves.png", "misclassified.png"):
        pytest.importorskip("matplotlib")
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    net = DeepConvNet(dtype=np.float32)
    net.load_params(out / "params.npz")
    capsys.readouterr()

    assert cli.main(["evaluate", "--params", str(out / "params.npz"), "--data", str(idx_dir),
                     "--dtype", "float32"]) == 0
    text = capsys.readouterr().out
    acc = float(text.split("accuracy ")[1].split()[0])
    assert f"({round(acc * 100)}/100)" in text
    assert text.count("\n  ") == 4  # one per-class line for each of the 4 classes present
    assert history["epochs"][0]["test_acc"] == pytest.approx(acc)


def test_same_seed_same_result(idx_dir, tmp_path, capsys):
    runs = {}
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        train(idx_dir, tmp_path / name, "--augment", "--seed", seed, "--dtype", "float64",
              "--no-plots", "--limit", "100")
        with np.load(tmp_path / name / "params.npz") as f:
            runs[name] = {k: f[k] for k in f.files}
    for key in runs["a"]:
        np.testing.assert_array_equal(runs["a"][key], runs["b"][key])
    assert not np.array_equal(runs["a"]["W1"], runs["c"]["W1"])
    assert "plots skipped: --no-plots" in capsys.readouterr().err
    assert not list((tmp_path / "a").glob("*.png"))


def test_train_without_matplotlib(idx_dir, tmp_path, capsys, monkeypatch):
    from fastconv import _plots

    monkeypatch.setattr(_plots, "matplotlib_missing", lambda: "matplotlib is not installed")
    train(idx_dir, tmp_path, "--limit", "50")
    assert "plots skipped: matplotlib is not installed" in capsys.readouterr().err
    assert (tmp_path / "params.npz").is_file() and not list(tmp_path.glob("*.png"))


def test_missing_data_and_bad_arguments(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    env_free = ["train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASTCONV_NO_DOWNLOAD", "1")
        mp.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        mp.delenv("FASTCONV_DATA", raising=False)
        assert cli.main(env_free) == 1
    assert "cannot load mnist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--epochs", "0"])
    assert "expected a positive integer, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["evaluate", "--data", str(tmp_path)])  # --params is required
