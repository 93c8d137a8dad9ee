"""``fastconv train`` / ``fastconv evaluate`` end to end on a tiny synthetic IDX dataset."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from fastconv import cli
from fastconv.models import DeepConvNet

from _support import shared_data_path, write_idx



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


@pytest.mark.slow
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
    assert len(history["step_loss"]) == 4  # 180 images (200 less a tenth) in batches of 50
    assert history["epochs"][0]["epoch"] == 1
    assert 0.0 <= history["epochs"][0]["test_acc"] <= 1.0
    from fastconv import _plots

    if _plots.matplotlib_missing() is None:
        for png in ("curves.png", "misclassified.png"):
            assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:  # the rest of the test (evaluate) still runs
        assert not list(out.glob("*.png"))
    net = DeepConvNet(dtype=np.float32)
    net.load_params(out / "params.npz")
    capsys.readouterr()

    assert cli.main(["evaluate", "--params", str(out / "params.npz"), "--data", str(idx_dir),
                     "--dtype", "float32"]) == 0
    text = capsys.readouterr().out
    acc = float(text.split("accuracy ")[1].split()[0])
    assert f"({round(acc * 100)}/100)" in text
    assert "\n  class  accuracy  correct/images\n" in text  # the table's header
    assert text.count("\n  ") == 5  # header + one line for each of the 4 classes present
    assert history["epochs"][0]["test_acc"] == pytest.approx(acc)


def test_same_seed_same_result(idx_dir, tmp_path, capsys):
    runs = {}
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        # every random draw of the recipe: split, order, crops, flips, erasing, dropout
        train(idx_dir, tmp_path / name, "--augment", "shift-flip-erase", "--seed", seed,
              "--dtype", "float64", "--no-plots", "--limit", "100", "--epochs", "2",
              "--val-split", "0.2", "--lr-schedule", "cosine", "--weight-decay", "1e-3")
        with np.load(tmp_path / name / "params.npz") as f:
            runs[name] = {k: f[k] for k in f.files}
        runs[name]["history"] = json.loads((tmp_path / name / "history.json").read_text())
    assert runs["a"].pop("history")["step_loss"] == runs["b"].pop("history")["step_loss"]
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
    assert "expected a positive integer, got '0'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--dropout", "1"])
    assert "expected a number in [0, 1), got '1'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["evaluate", "--data", str(tmp_path)])  # --params is required


# ----------------------------------------------------------- evaluate: kind, table

def evaluate(*argv):
    return cli.main(["evaluate", *argv])


@pytest.fixture(scope="module")
def params_file(idx_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("params")
    train(idx_dir, out, "--no-plots", "--limit", "50")
    return out / "params.npz"


def table(text):
    """The per-class table of evaluate's output: header and rows, split in columns."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  class "))
    return lines[start], [line.split() for line in lines[start + 1:]]


def test_evaluate_table_has_aligned_headers(idx_dir, params_file, capsys):
    assert evaluate("--params", str(params_file), "--data", str(idx_dir)) == 0
    out = capsys.readouterr().out
    header, rows = table(out)
    assert header.split() == ["class", "accuracy", "correct/images"]
    assert [r[0] for r in rows] == ["0", "1", "2", "3"]
    total = 0
    for line, (_, acc, counts) in zip(out.splitlines()[-4:], rows):
        hit, n = map(int, counts.split("/"))
        assert float(acc) == pytest.approx(hit / n, abs=5e-5)
        # the accuracy ends under the end of its header, the counts start under theirs
        assert line.index(acc) + len(acc) == header.index("accuracy") + len("accuracy")
        assert line.index(counts) == header.index("correct/images")
        total += n
    assert total == 100


def test_evaluate_unknown_files_keep_the_kind_without_warning(idx_dir, params_file, capsys):
    """The synthetic test images are neither MNIST nor Fashion-MNIST."""
    assert evaluate("--params", str(params_file), "--data", str(idx_dir)) == 0
    res = capsys.readouterr()
    assert " on mnist test set (100 images), " in res.out
    assert res.err == ""
    assert evaluate("--params", str(params_file), "--data", str(idx_dir),
                    "--kind", "fashion-mnist") == 0
    res = capsys.readouterr()
    assert " on fashion-mnist test set (100 images), " in res.out
    assert "0 T-shirt/top" in res.out
    assert res.err == ""


@pytest.fixture
def files_say(monkeypatch):
    """Make detect_kind answer ``kind`` for the images evaluate loaded; records them."""
    from fastconv import datasets

    seen = []

    def use(kind):
        def fake(images):
            seen.append(images)
            return kind
        monkeypatch.setattr(datasets, "detect_kind", fake)
        return seen
    return use


def test_evaluate_takes_the_kind_from_the_files(idx_dir, params_file, capsys, files_say):
    seen = files_say("fashion-mnist")
    assert evaluate("--params", str(params_file), "--data", str(idx_dir)) == 0
    res = capsys.readouterr()
    # detect_kind saw the raw pixels evaluate loaded, not a second read
    assert len(seen) == 1 and seen[0].dtype == np.uint8 and seen[0].shape == (100, 1, 28, 28)
    assert " on fashion-mnist test set (100 images, recognised from the files), " in res.out
    header, rows = table(res.out)
    assert [" ".join(r[:-2]) for r in rows] == ["0 T-shirt/top", "1 Trouser", "2 Pullover",
                                                "3 Dress"]
    assert res.err == ""


def test_evaluate_warns_when_kind_disagrees(idx_dir, params_file, capsys, files_say):
    files_say("fashion-mnist")
    assert evaluate("--params", str(params_file), "--data", str(idx_dir),
                    "--kind", "mnist") == 0
    res = capsys.readouterr()
    warning = res.err.strip()
    assert "\n" not in warning  # one line
    assert warning.startswith("fastconv evaluate: warning: --kind mnist, but the test images in "
                              f"{idx_dir} are the fashion-mnist test set")
    assert "--kind fashion-mnist" in warning
    assert " on mnist test set (100 images), " in res.out  # the explicit --kind is kept

    capsys.readouterr()
    assert evaluate("--params", str(params_file), "--data", str(idx_dir),
                    "--kind", "fashion-mnist") == 0
    assert capsys.readouterr().err == ""  # agreeing: no warning


def test_evaluate_accuracy_does_not_depend_on_detection(idx_dir, params_file, capsys):
    """evaluate normalizes the raw pixels itself: same predictions as load_mnist's images."""
    from fastconv.datasets import load_mnist
    from fastconv._train import predict_labels

    assert evaluate("--params", str(params_file), "--data", str(idx_dir),
                    "--dtype", "float32") == 0
    acc = float(capsys.readouterr().out.split("accuracy ")[1].split()[0])
    _, (x, t) = load_mnist(idx_dir, flatten=False)
    net = DeepConvNet(dtype=np.float32)
    net.load_params(params_file)
    assert acc == pytest.approx(float(np.mean(predict_labels(net, x) == t)), abs=1e-4)


@pytest.mark.slow  # the whole Fashion-MNIST test set
def test_evaluate_real_fashion_mnist_without_kind(capsys):
    params = shared_data_path("pretrained", "deep_convnet_params.pkl")
    data = shared_data_path("fashion-mnist", "t10k-images-idx3-ubyte.gz").parent
    assert evaluate("--params", str(params), "--data", str(data), "--dtype", "float32") == 0
    res = capsys.readouterr()
    assert " on fashion-mnist test set (10000 images, recognised from the files), " in res.out
    header, rows = table(res.out)
    assert header.split() == ["class", "accuracy", "correct/images"]
    assert [" ".join(r[:-2]) for r in rows][::9] == ["0 T-shirt/top", "9 Ankle boot"]
    assert [r[-1] for r in rows] == [f"{r[-1].split('/')[0]}/1000" for r in rows]
    assert res.err == ""


# ------------------------------------------------------------- train: messages

def test_plural():
    from fastconv._train import plural

    assert [plural(n, "epoch") for n in (0, 1, 2)] == ["0 epochs", "1 epoch", "2 epochs"]


@pytest.mark.parametrize("epochs", [1, 2])
def test_train_summary_plural(idx_dir, tmp_path, capsys, epochs):
    train(idx_dir, tmp_path, "--no-plots", "--limit", "1", "--batch-size", "1",
          "--epochs", str(epochs), "--val-split", "0")
    res = capsys.readouterr()
    word = "epoch" if epochs == 1 else "epochs"
    assert res.out.rstrip().endswith(f" after {epochs} {word}")
    assert f", {epochs} {word}" in res.err  # the banner
    assert "(1 image)" in res.err  # the training sample scored: one image
    # whole numbers only: a throughput such as "261 images/s" is no plural of 1
    assert not re.search(r"(?<![\d.])1 (epochs|images)\b", res.out + res.err)


def test_train_says_before_training_that_plots_will_be_missing(idx_dir, tmp_path, capsys,
                                                               monkeypatch):
    """matplotlib's absence is known at the start: said before the first epoch, and
    again at the end. (sys.modules[name] = None makes the import fail.)"""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    train(idx_dir, tmp_path, "--limit", "50")
    err = capsys.readouterr().err
    early = err.index("fastconv train: curves.png and misclassified.png will not be drawn: "
                      "matplotlib is not installed")
    assert early < err.index("epoch 1/1: loss")
    assert "pip install 'fastconv[plot]'" in err[early:].splitlines()[0]
    assert err.index("plots skipped: matplotlib is not installed") > err.index("epoch 1/1: loss")
    assert not list(tmp_path.glob("*.png"))


def test_train_no_plots_option_is_not_announced_as_missing(idx_dir, tmp_path, capsys,
                                                          monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    train(idx_dir, tmp_path, "--limit", "50", "--no-plots")
    err = capsys.readouterr().err
    assert "will not be drawn" not in err and "plots skipped: --no-plots" in err


def test_train_progress_bar_is_finished_before_the_epoch_summary(idx_dir, tmp_path, capsys,
                                                                 monkeypatch):
    """In a terminal, the bar's last (100%) line comes before the summary, not after."""
    from fastconv import _train

    class TerminalBar(_train.tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = False
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(_train, "tqdm", TerminalBar)
    train(idx_dir, tmp_path, "--no-plots", "--limit", "100", "--epochs", "2")
    err = capsys.readouterr().err
    for epoch in (1, 2):
        summary = err.index(f"epoch {epoch}/2: loss")
        bar_end = err.rindex(f"\repoch {epoch}/2: 100%|", 0, summary)
        assert "\n" in err[bar_end:summary]  # the bar's line ended before the summary
        after = err[summary:]
        assert f"epoch {epoch}/2: 100%" not in after  # never redrawn below it
    assert err.count("\r") >= 4


# ------------------------------------------------------------ curves.png

def test_accuracy_range():
    from fastconv._plots import accuracy_range

    assert accuracy_range([0.99, 0.99]) == (0.9, 1.0)  # not 0.96-1.04 around lone points
    assert accuracy_range([1.0]) == (0.9, 1.0)
    assert accuracy_range([0.0]) == (0.0, 0.1)
    lo, hi = accuracy_range([0.2364, 0.26])
    assert lo < 0.2364 and hi > 0.26 and hi - lo == pytest.approx(0.1)
    assert accuracy_range([0.1, 0.95]) == (0.0, 1.0)
    lo, hi = accuracy_range([0.80, 0.90])
    assert lo == pytest.approx(0.79) and hi == pytest.approx(0.91)


@pytest.mark.parametrize("epochs", [1, 2, 15])
def test_curves_accuracy_panel(tmp_path, epochs):
    pytest.importorskip("matplotlib")
    from fastconv import _plots

    train_acc = list(np.linspace(0.5, 1.0, epochs))
    test_acc = list(np.linspace(0.4, 0.9, epochs))
    fig = _plots.plot_curves(np.linspace(2.3, 0.1, 4 * epochs), 4, train_acc, test_acc,
                             tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = fig.axes[1]
    assert all(line.get_marker() not in (None, "", "None") for line in ax.get_lines())
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    if epochs <= 2:
        assert ticks == list(range(1, epochs + 1))
    lo, hi = ax.get_ylim()
    assert 0.0 <= lo < min(test_acc) and max(train_acc) <= hi <= 1.0
    assert hi - lo >= 0.1


def test_train_recipe_options(idx_dir, tmp_path, capsys):
    """Schedules, weight decay and the validation split reach the run: the header names
    them, the learning rate follows the schedule, the best epoch is chosen on the
    validation set and kept in best.npz."""
    out = tmp_path / "recipe"
    train(idx_dir, out, "--epochs", "3", "--limit", "200", "--no-plots", "--augment",
          "--lr-schedule", "step", "--lr-step-epochs", "1", "--weight-decay", "0.01",
          "--weight-decay-mode", "l2", "--val-split", "0.25", "--dropout", "0.3")
    err = capsys.readouterr().err
    assert "150 training / 50 validation / 100 test images" in err
    assert "(step schedule), weight decay 0.01 (l2), dropout 0.3," in err
    assert "augment shift (crop of a 2-pixel zero pad)" in err  # mnist: no flips
    assert "best epoch chosen on the validation set" in err
    history = json.loads((out / "history.json").read_text())
    assert history["selected_on"] == "validation"
    lrs = [e["lr"] for e in history["epochs"]]
    assert lrs == pytest.approx([0.001, 0.0001, 0.00001])
    best = max(history["epochs"], key=lambda e: (e["val_acc"], -e["epoch"]))
    assert history["best_epoch"] == best["epoch"]
    net = DeepConvNet(dtype=np.float32)
    net.load_params(out / "best.npz")


def test_train_refuses_an_empty_split(idx_dir, tmp_path, capsys):
    argv = ["train", "--data", str(idx_dir), "--limit", "2", "--out", str(tmp_path)]
    assert cli.main(argv) == 1  # the default split, a tenth of 2 images
    err = capsys.readouterr().err
    assert "--val-split 0.1 of 2 training images leaves 0 for validation" in err
    assert "or --val-split 0 to keep the last epoch" in err


def test_train_chooses_on_a_validation_split_by_default(idx_dir, tmp_path, capsys):
    """Without --val-split a tenth of the training images chooses the best epoch; the
    test set never does."""
    train(idx_dir, tmp_path, "--epochs", "2", "--no-plots")
    err = capsys.readouterr().err
    assert "180 training / 20 validation / 100 test images" in err
    assert "best epoch chosen on the validation set" in err
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["args"]["val_split"] == 0.1 and history["selected_on"] == "validation"
    best = max(history["epochs"], key=lambda e: (e["val_acc"], -e["epoch"]))
    assert history["best_epoch"] == best["epoch"]
    assert history["best_val_acc"] == best["val_acc"]
    assert history["best_test_acc"] == best["test_acc"]  # reported, not chosen on
    assert (f"best epoch {best['epoch']} (validation accuracy {best['val_acc']:.4f}): test "
            f"accuracy {best['test_acc']:.4f}, saved in {tmp_path / 'best.npz'}") in err
    assert (tmp_path / "best.npz").is_file()


def test_train_without_a_split_reports_the_last_epoch(idx_dir, tmp_path, capsys):
    (tmp_path / "best.npz").write_bytes(b"an earlier run's")
    train(idx_dir, tmp_path, "--epochs", "2", "--no-plots", "--val-split", "0")
    res = capsys.readouterr()
    assert "200 training / 100 test images" in res.err
    assert "no validation split (--val-split 0): the last epoch is kept" in res.err
    assert "best epoch" not in res.err and "val acc" not in res.err
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["selected_on"] is None
    assert not {"best_epoch", "best_val_acc", "best_test_acc"} & set(history)
    assert all(e["val_acc"] is None for e in history["epochs"])
    last = history["epochs"][-1]
    assert res.out.strip() == f"test accuracy {last['test_acc']:.4f} after 2 epochs"
    assert not (tmp_path / "best.npz").exists()  # not left to pass for this run's
