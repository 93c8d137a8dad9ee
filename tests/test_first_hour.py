"""What a new user meets in the first hour (issue #31): the version, the CLI's messages
(closed pipes, help texts, environment variables, parameter files of another net, a
missing --data folder), get_backend(resolved=True) and the reprs of nets and layers."""
import argparse
import os
import struct
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
from fastconv import _backend, cli, layers
from fastconv.models import DeepConvNet, SimpleConvNet

ROOT = Path(__file__).resolve().parents[1]


def _fastconv(*argv, **env):
    """``python -m fastconv argv`` with ``env`` added; the finished process."""
    return subprocess.run([sys.executable, "-m", "fastconv", *argv], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})


# ------------------------------------------------------------------------- version

def test_the_version_has_one_source(capsys):
    from fastconv._version import __version__

    assert fc.__version__ == __version__
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "fastconv._version.__version__"}
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"fastconv {__version__}\n"


# --------------------------------------------------------------------- help, pipes

def _subcommands():
    for name in cli._COMMANDS:
        parser = cli.build_parser(name)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        yield name, sub.choices[name]


def test_every_option_has_help():
    missing = [(name, action.option_strings) for name, parser in _subcommands()
               for action in parser._actions if not action.help]
    assert missing == []


@pytest.mark.slow
def test_a_closed_pipe_ends_quietly():
    """``fastconv info | head -3``: the reader goes away before the output is written."""
    proc = subprocess.Popen([sys.executable, "-m", "fastconv", "info"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 141  # 128 + SIGPIPE, as a process SIGPIPE ended
    assert err == ""


# ------------------------------------------------------------ environment variables

@pytest.fixture
def fresh_env(monkeypatch):
    """Run ``_init_from_env`` under ``monkeypatch``'s variables; the backend choice and
    the recorded errors are restored afterwards."""
    monkeypatch.setattr(_backend, "_global_backend", _backend._global_backend)
    monkeypatch.setattr(_backend, "_env_errors", {})
    for var in ("FASTCONV_BACKEND", "FASTCONV_NUM_THREADS", "FASTCONV_ISA",
                "FASTCONV_THREAD_POOL"):
        monkeypatch.delenv(var, raising=False)

    def init(**env):
        for var, value in env.items():
            monkeypatch.setenv(var, value)
        _backend._init_from_env()
        return _backend.environment_errors()
    return init


def test_backend_names_take_any_case(fresh_env):
    assert fresh_env(FASTCONV_BACKEND=" NumPy ") == {}
    assert fc.get_backend() == "numpy"
    with fc.use_backend("Auto"):
        assert fc.get_backend() == "auto"
    fc.set_backend("NUMPY")
    assert fc.get_backend() == "numpy"


def test_a_bad_backend_variable_is_raised_by_every_op_until_set_in_code(fresh_env):
    errors = fresh_env(FASTCONV_BACKEND="bogus")
    message = ("FASTCONV_BACKEND='bogus' is not a backend; set it to one of auto, numpy, "
               "numba, cython (any case) or unset it")
    assert errors == {"FASTCONV_BACKEND": message}
    x, W = np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))
    for call in (lambda: fc.conv2d(x, W), fc.get_backend,
                 lambda: fc.get_backend(resolved=True)):
        with pytest.raises(ValueError) as err:
            call()
        assert str(err.value) == message
    fc.set_backend("numpy")  # the code's choice replaces the variable's
    assert _backend.environment_errors() == {}
    assert fc.conv2d(x, W).shape == (1, 1, 2, 2)


@pytest.mark.parametrize("value,message", [
    ("0", "FASTCONV_NUM_THREADS='0': set_num_threads needs 1 <= n <= "),
    ("two", "FASTCONV_NUM_THREADS='two' is not a whole number; "),
])
def test_a_bad_thread_count_variable_names_it_and_the_fix(fresh_env, value, message):
    errors = fresh_env(FASTCONV_NUM_THREADS=value)
    assert errors["FASTCONV_NUM_THREADS"].startswith(message)
    assert errors["FASTCONV_NUM_THREADS"].endswith(
        f"set it to a whole number from 1 to {4 * os.cpu_count()} or unset it")
    with pytest.raises(ValueError, match="^FASTCONV_NUM_THREADS="):
        fc.im2col(np.ones((1, 1, 3, 3)), 2, 2)
    assert fc.get_backend() == "auto"  # only the backend's own variable stops get_backend()


@pytest.mark.slow
@pytest.mark.parametrize("var,value,message", [
    ("FASTCONV_BACKEND", "bogus", "FASTCONV_BACKEND='bogus' is not a backend"),
    ("FASTCONV_NUM_THREADS", "0", "FASTCONV_NUM_THREADS='0': set_num_threads needs"),
    ("FASTCONV_ISA", "avx9", "FASTCONV_ISA='avx9' is not a level"),
    ("FASTCONV_THREAD_POOL", "bogus", "FASTCONV_THREAD_POOL='bogus' is not one of"),
])
def test_info_reports_a_bad_variable(var, value, message):
    res = _fastconv("info", **{var: value})
    assert res.returncode == 1 and res.stderr == ""
    lines = res.stdout.splitlines()
    assert lines[0].startswith("fastconv ") and lines[1].startswith(f"error: {message}")
    # the rest is still reported; a part the variable stops says so, naming it
    assert len(lines) > 5
    assert all(var in line for line in lines if "cannot tell" in line)


@pytest.mark.slow
def test_info_takes_a_backend_name_in_any_case():
    res = _fastconv("info", FASTCONV_BACKEND="Numba")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "current backend: numba -> numba" in res.stdout


# -------------------------------------------------------------------- get_backend

def test_get_backend_resolved_tells_what_auto_runs():
    with fc.use_backend("auto"):
        assert fc.get_backend() == "auto"
        runs = fc.get_backend(resolved=True)
        assert runs == ("cython" if "cython" in fc.available_backends() else
                        "numba" if "numba" in fc.available_backends() else "numpy")
    with fc.use_backend("numpy"):
        assert fc.get_backend(resolved=True) == "numpy"


# ----------------------------------------------------------------------- evaluate

def _write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                     *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


@pytest.fixture(scope="module")
def test_set(tmp_path_factory):
    """Ten test images (no training set: evaluate needs none)."""
    d = tmp_path_factory.mktemp("t10k")
    rng = np.random.default_rng(0)
    _write_idx(d / "t10k-images-idx3-ubyte", rng.integers(0, 256, (10, 28, 28)))
    _write_idx(d / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 10))
    return d


_DEEP_LAYERS = ("W1 (16, 1, 3, 3), W2 (16, 16, 3, 3), W3 (32, 16, 3, 3), W4 (32, 32, 3, 3), "
                "W5 (64, 32, 3, 3), W6 (64, 64, 3, 3), W7 (1024, 50), W8 (50, 10)")


@pytest.mark.parametrize("make,holds", [
    (lambda: SimpleConvNet(rng=0).params,
     "the book's SimpleConvNet (W1 (30, 1, 5, 5), W2 (4320, 100), W3 (100, 10)): build "
     "fastconv.models.SimpleConvNet() in Python, then call its load_params(FILE) and "
     "accuracy(x, t)"),
    (lambda: DeepConvNet(hidden_size=20, rng=0).params,
     "a DeepConvNet with other layer sizes (W1 (16, 1, 3, 3), W2 (16, 16, 3, 3), "
     "W3 (32, 16, 3, 3), W4 (32, 32, 3, 3), W5 (64, 32, 3, 3), W6 (64, 64, 3, 3), "
     "W7 (1024, 20), W8 (20, 10)): build DeepConvNet with the arguments it was trained "
     "with in Python"),
    (lambda: SimpleConvNet(hidden_size=7, rng=0).params,
     "a SimpleConvNet with other layer sizes (W1 (30, 1, 5, 5), W2 (4320, 7), W3 (7, 10))"),
    (lambda: dict(W1=np.zeros((784, 50)), b1=np.zeros(50), W2=np.zeros((50, 10))),
     "a net that fastconv.models does not build (W1 (784, 50), W2 (50, 10))"),
])
def test_evaluate_says_which_net_a_parameter_file_is_for(test_set, tmp_path, capsys, make,
                                                          holds):
    path = tmp_path / "params.npz"
    np.savez(path, **make())
    assert cli.main(["evaluate", "--params", str(path), "--data", str(test_set)]) == 1
    res = capsys.readouterr()
    assert res.out == ""
    assert res.err.startswith(
        f"fastconv evaluate: {path} is not a parameter file of the net evaluate runs, the "
        f"book's DeepConvNet with its default layers ({_DEEP_LAYERS}); it holds {holds}")
    assert "constructor arguments" not in res.err  # the CLI has none to pass


def test_evaluate_takes_a_deepconvnet_file(test_set, tmp_path, capsys):
    path = tmp_path / "params.npz"
    DeepConvNet(rng=0).save_params(path)
    assert cli.main(["evaluate", "--params", str(path), "--data", str(test_set)]) == 0
    assert "accuracy " in capsys.readouterr().out


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_a_missing_data_folder_is_an_error_at_once(tmp_path, capsys, monkeypatch, command):
    from fastconv import datasets

    def no_search(*args, **kwargs):
        raise AssertionError("load_mnist looked elsewhere (cache, system folder, download)")

    monkeypatch.setattr(datasets, "load_mnist", no_search)
    extra = (["--params", str(tmp_path / "p.npz")] if command == "evaluate" else
             ["--out", str(tmp_path / "out")])
    file = tmp_path / "a-file"
    file.write_text("")
    for data, what in ((tmp_path / "missing", "does not exist"), (file, "is not a folder")):
        assert cli.main([command, "--data", str(data), *extra]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"fastconv: --data {data} {what}; pass the folder that holds "
                              f"the IDX files")
        assert err.count("\n") == 1


# -------------------------------------------------------------------------- reprs

def test_layer_reprs_show_shapes_and_settings():
    W, b = np.zeros((16, 1, 3, 3), np.float32), np.zeros(16, np.float32)
    assert repr(layers.Convolution(W, b, 2, (1, 0), relu=True)) == (
        "Convolution(W: float32 (16, 1, 3, 3), b: float32 (16,), stride=2, pad=(1, 0), "
        "relu=True, need_dx=True)")
    assert repr(layers.Affine(np.zeros((4, 3)), None)) == (
        "Affine(W: float64 (4, 3), b=None, relu=False)")
    assert repr(layers.Pooling(3, 2, stride=1)) == "Pooling(pool_h=3, pool_w=2, stride=1, pad=0)"
    assert repr(layers.Dropout(0.25)) == "Dropout(dropout_ratio=0.25)"
    assert [repr(c()) for c in (layers.Relu, layers.Sigmoid, layers.SoftmaxWithLoss)] == [
        "Relu()", "Sigmoid()", "SoftmaxWithLoss()"]
    assert repr(layers.BatchNormalization(np.ones(5), np.zeros(5))) == (
        "BatchNormalization(gamma: float64 (5,), beta: float64 (5,), momentum=0.9, "
        "running_mean=None, running_var=None)")


def test_net_reprs_show_the_architecture():
    lines = repr(DeepConvNet(dtype=np.float32)).splitlines()
    assert lines[0] == ("DeepConvNet(input_dim=(1, 28, 28), output_size=10, dtype=float32, "
                        "123,552 parameters)")
    assert lines[1] == ("  0: Convolution(W: float32 (16, 1, 3, 3), b: float32 (16,), stride=1, "
                        "pad=1, relu=True, need_dx=False) -> (16, 28, 28)")
    assert [line.rsplit(" -> ", 1)[1] for line in lines[2:-1]] == [
        "(16, 28, 28)", "(16, 14, 14)", "(32, 14, 14)", "(32, 16, 16)", "(32, 8, 8)",
        "(64, 8, 8)", "(64, 8, 8)", "(64, 4, 4)", "(50,)", "(50,)", "(10,)", "(10,)"]
    assert lines[-1] == "  last_layer: SoftmaxWithLoss()"
    simple = repr(SimpleConvNet(input_dim=(3, 10, 10), conv_param=dict(
        filter_num=4, filter_size=3, pad=1, stride=1), hidden_size=6, output_size=2))
    assert simple.splitlines()[1:5] == [
        "  Conv1: Convolution(W: float64 (4, 3, 3, 3), b: float64 (4,), stride=1, pad=1, "
        "relu=True, need_dx=False) -> (4, 10, 10)",
        "  Pool1: Pooling(pool_h=2, pool_w=2, stride=2, pad=0) -> (4, 5, 5)",
        "  Affine1: Affine(W: float64 (100, 6), b: float64 (6,), relu=True) -> (6,)",
        "  Affine2: Affine(W: float64 (6, 2), b: float64 (2,), relu=False) -> (2,)"]
    total = sum(p.size for p in DeepConvNet().params.values())
    assert f"{total:,} parameters" in repr(DeepConvNet())


# ------------------------------------------------------------- reference warnings

def test_the_reference_conv_gives_nan_for_inf_times_zero_without_a_warning():
    """inf * 0 in the reference's products: NaN where it belongs, no 'invalid value'
    RuntimeWarning (a BLAS also raises it for the zeros it pads its blocks with)."""
    from fastconv import reference as ref

    x = np.ones((1, 1, 4, 4))
    x[0, 0, 1, 1] = np.inf
    W = np.ones((2, 1, 2, 2))
    W[0, 0, 0, 0] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = ref.conv2d(x, W, np.zeros(2), pad=1)
        dx, dW, db = ref.conv2d_backward(-np.ones_like(out), x, W, pad=1)
    assert np.argwhere(np.isnan(out)).tolist() == [[0, 0, 2, 2]]  # inf meets the zero tap
    assert np.isfinite(dx).all() and np.isneginf(dW).all() and np.isfinite(db).all()


# ------------------------------------------------------------------------ imports

@pytest.mark.slow
@pytest.mark.skipif("cython" not in fc.available_backends(), reason="Cython not built")
def test_the_cython_path_does_not_import_numba():
    code = ("import sys, numpy as np, fastconv as fc\n"
            "fc.conv2d(np.ones((1, 1, 5, 5), np.float32), np.ones((1, 1, 3, 3), np.float32))\n"
            "print(fc.get_backend(resolved=True), 'numba' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "FASTCONV_BACKEND": "cython"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["cython", "False"]


# -------------------------------------------------------------------------- typing

def test_the_top_level_functions_are_annotated():
    """py.typed promises annotations: every parameter and return of ``fc.<function>``."""
    import inspect

    assert (Path(fc.__file__).parent / "py.typed").is_file()
    missing = []
    for name in fc.__all__:
        obj = getattr(fc, name)
        if inspect.isfunction(obj):
            sig = inspect.signature(obj)
            missing += [f"{name}({p})" for p, par in sig.parameters.items()
                        if par.annotation is inspect.Parameter.empty]
            if sig.return_annotation is inspect.Signature.empty:
                missing.append(f"{name} -> ?")
    assert missing == []


@pytest.mark.parametrize("command", ["info", "train", "evaluate", "bench"])
@pytest.mark.parametrize("value,reason", [("0", "set_num_threads needs 1 <= n <= "),
                                          ("two", "not a whole number: 'two'")])
def test_a_bad_thread_count_is_refused_when_parsing(capsys, command, value, reason):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--threads", value])
    assert exit_.value.code == 2
    assert f"argument --threads: {reason}" in capsys.readouterr().err
