"""Tests for fastconv.params_io: .npz / book-pickle parameter files, safely loaded."""

import hashlib
import os
import pickle
import pickletools
from pathlib import Path

import numpy as np
import pytest

from fastconv.params_io import UnsafePickleError, load_params, save_params

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PRETRAINED = SHARED_DATA / "pretrained" / "deep_convnet_params.pkl"

# From ../shared/data/README.md.
PRETRAINED_SHAPES = {
    "W1": (16, 1, 3, 3),
    "W2": (16, 16, 3, 3),
    "W3": (32, 16, 3, 3),
    "W4": (32, 32, 3, 3),
    "W5": (64, 32, 3, 3),
    "W6": (64, 64, 3, 3),
    "W7": (1024, 50),
    "W8": (50, 10),
    "b1": (16,),
    "b2": (16,),
    "b3": (32,),
    "b4": (32,),
    "b5": (64,),
    "b6": (64,),
    "b7": (50,),
    "b8": (10,),
}


def sample_params():
    rng = np.random.default_rng(0)
    return {
        "W1": rng.standard_normal((4, 1, 3, 3)),
        "b1": np.zeros(4, dtype=np.float32),
        "W2": rng.standard_normal((36, 5)).astype(np.float32),
        "counts": np.arange(6, dtype=np.int64).reshape(2, 3),
        "scalar": np.array(2.5),
        "empty": np.empty((0, 3)),
        "mask": np.array([True, False]),
    }


def assert_same(loaded, expected):
    assert list(loaded) == list(expected)
    for key, value in expected.items():
        got = loaded[key]
        assert type(got) is np.ndarray
        assert got.dtype == value.dtype and got.shape == value.shape
        np.testing.assert_array_equal(got, value)


# ---------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["p.npz", "p.pkl", "p.pickle", "P.NPZ"])
def test_round_trip(tmp_path, name):
    params = sample_params()
    path = tmp_path / name
    save_params(params, path)
    loaded = load_params(path)
    assert_same(loaded, params)
    assert all(v.flags.writeable for v in loaded.values())
    assert os.listdir(tmp_path) == [name]  # no temporary file left behind


def test_round_trip_str_path_and_array_likes(tmp_path):
    path = str(tmp_path / "p.npz")
    save_params({"a": [[1.0, 2.0]], "b": 3, "c": np.float32(1.5)}, path)
    loaded = load_params(path)
    np.testing.assert_array_equal(loaded["a"], [[1.0, 2.0]])
    assert loaded["b"].shape == () and loaded["c"].dtype == np.float32


def test_save_overwrites(tmp_path):
    path = tmp_path / "p.pkl"
    save_params({"a": np.ones(2)}, path)
    save_params({"b": np.zeros(3)}, path)
    assert list(load_params(path)) == ["b"]


def test_saved_pickle_is_the_books_format(tmp_path):
    """A plain pickle.load gives a dict of ndarrays, with only allowed globals."""
    params = sample_params()
    path = tmp_path / "p.pkl"
    save_params(params, path)
    with open(path, "rb") as f:
        plain = pickle.load(f)
    assert type(plain) is dict
    assert_same(plain, params)
    names = {arg for op, arg, _ in pickletools.genops(path.read_bytes()) if "UNICODE" in op.name}
    assert "_reconstruct" in names


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_loads_pickles_written_by_the_books_save_params(tmp_path, protocol):
    """The book writes ``pickle.dump(params, f)``; any protocol from 3 on loads."""
    params = sample_params()
    path = tmp_path / "book.pkl"
    with open(path, "wb") as f:
        pickle.dump(params, f, protocol=protocol)
    assert_same(load_params(path), params)


def test_empty_params(tmp_path):
    for name in ("e.npz", "e.pkl"):
        save_params({}, tmp_path / name)
        assert load_params(tmp_path / name) == {}


# ---------------------------------------------------------------------------
# save_params validation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("params", [[np.ones(2)], np.ones(3), "W1", None])
def test_save_refuses_non_mappings(tmp_path, params):
    with pytest.raises(TypeError, match="mapping"):
        save_params(params, tmp_path / "p.npz")


def test_save_refuses_non_str_keys(tmp_path):
    with pytest.raises(TypeError, match="must be str"):
        save_params({1: np.ones(2)}, tmp_path / "p.pkl")


@pytest.mark.parametrize("value", [{"x": 1}, object(), [np.ones(2), "a", None]])
def test_save_refuses_object_values(tmp_path, value):
    with pytest.raises(TypeError, match="params\\['W'\\]"):
        save_params({"W": value}, tmp_path / "p.pkl")
    assert not (tmp_path / "p.pkl").exists()


@pytest.mark.parametrize("name", ["p.npy", "p.json", "p", "p.pkl.gz"])
def test_unknown_suffix(tmp_path, name):
    with pytest.raises(ValueError, match="unknown parameter file type"):
        save_params({"a": np.ones(1)}, tmp_path / name)
    (tmp_path / name).write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown parameter file type"):
        load_params(tmp_path / name)


def test_npz_reserved_names(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        save_params({"allow_pickle": np.ones(1)}, tmp_path / "p.npz")
    save_params({"allow_pickle": np.ones(1)}, tmp_path / "p.pkl")  # fine as a pickle


# ---------------------------------------------------------------------------
# load_params: broken or wrong content
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["missing.npz", "missing.pkl"])
def test_missing_file(tmp_path, name):
    """Not a bare [Errno 2]: the path, and the kind of file expected."""
    path = tmp_path / name
    with pytest.raises(FileNotFoundError) as info:
        load_params(path)
    msg = str(info.value)
    assert str(path) in msg and "no such file" in msg
    assert ".pkl" in msg and ".npz written by fastconv" in msg
    assert "Errno" not in msg


def test_missing_file_relative_path_names_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=f"relative to the working directory {tmp_path}"):
        load_params("params.npz")


@pytest.mark.parametrize("name", ["dir.npz", "dir.pkl"])
def test_directory_is_not_a_parameter_file(tmp_path, name):
    path = tmp_path / name
    path.mkdir()
    with pytest.raises(IsADirectoryError) as info:
        load_params(path)
    msg = str(info.value)
    assert str(path) in msg and "is a directory" in msg and ".npz written by fastconv" in msg


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path):
    path = tmp_path / "locked.pkl"
    save_params({"a": np.ones(2)}, path)
    path.chmod(0)
    try:
        with pytest.raises(PermissionError, match="locked.pkl: cannot be read: permission denied"):
            load_params(path)
    finally:
        path.chmod(0o600)


def test_corrupt_npz(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        load_params(path)


def test_npy_named_npz(tmp_path):
    path = tmp_path / "single.npz"
    with open(path, "wb") as f:
        np.save(f, np.ones(3))
    with pytest.raises(ValueError, match="single array"):
        load_params(path)


def test_npz_with_object_array_is_refused(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="obj.npz"):
        load_params(path)


def _dump(tmp_path, obj, protocol=4, name="p.pkl"):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


@pytest.mark.parametrize(
    "obj, match",
    [
        ([np.ones(2), np.zeros(3)], "holds a list"),
        ((np.ones(2),), "holds a tuple"),
        (np.ones(3), "holds a ndarray"),
        ({"W1": np.ones(2), "lr": 0.01}, "'lr' is a float"),
        ({"W1": np.ones(2), "name": "net"}, "'name' is a str"),
        ({"W1": [1.0, 2.0]}, "'W1' is a list"),
        ({1: np.ones(2)}, "key 1 of type int"),
        ({"W1": np.array([None, 1], dtype=object)}, "holds Python objects"),
    ],
    ids=["list", "tuple", "array", "float", "str", "list-value", "int-key", "object-array"],
)
def test_pickle_of_wrong_structure_is_refused(tmp_path, obj, match):
    path = _dump(tmp_path, obj)
    with pytest.raises(ValueError, match=match) as info:
        load_params(path)
    assert not isinstance(info.value, UnsafePickleError)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage", pickle.dumps({"a": np.ones(3)}, protocol=4)[:-30]],
    ids=["empty", "garbage", "truncated"],
)
def test_corrupt_pickle(tmp_path, data):
    path = tmp_path / "bad.pkl"
    path.write_bytes(data)
    with pytest.raises(ValueError, match="bad.pkl") as info:
        load_params(path)
    assert not isinstance(info.value, UnsafePickleError)


# ---------------------------------------------------------------------------
# hostile pickles
# ---------------------------------------------------------------------------


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _RunsEval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


class _NeedsItsOwnClass:
    pass


@pytest.mark.parametrize("protocol", [0, 2, 3, 4, 5])
@pytest.mark.parametrize(
    "make, refused",
    [
        (lambda m: _RunsShell(m), "system"),
        (lambda m: _RunsEval(m), "builtins\\.eval"),
        (lambda m: {"W1": np.ones(2), "evil": _RunsShell(m)}, "system"),
        (lambda m: {"W1": np.ones(2), "evil": [_RunsEval(m)]}, "builtins\\.eval"),
        (lambda m: {"W1": _NeedsItsOwnClass()}, "_NeedsItsOwnClass"),
    ],
    ids=["os.system", "eval", "dict-with-system", "nested-eval", "custom-class"],
)
def test_hostile_pickle_is_refused_before_running(tmp_path, protocol, make, refused):
    marker = tmp_path / "pwned"
    path = _dump(tmp_path, make(marker), protocol=protocol, name="evil.pkl")
    if protocol < 3:
        # the first refused global may be another one (_codecs.encode for the
        # array bytes, copy_reg._reconstructor, __builtin__.eval)
        refused = "global"
    with pytest.raises(UnsafePickleError, match=refused) as info:
        load_params(path)
    assert not marker.exists()
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert str(path) in msg and "refused" in msg


def test_hostile_payload_is_real(tmp_path):
    """Control: the same file does run its payload under a plain pickle.load."""
    marker = tmp_path / "pwned"
    path = _dump(tmp_path, _RunsEval(marker), name="evil.pkl")
    with open(path, "rb") as f:
        pickle.load(f)
    assert marker.exists()


def test_hand_written_inst_opcode_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    # protocol 0: MARK, string arg, INST os system, STOP
    payload = b"(S'touch " + str(marker).encode() + b"'\nios\nsystem\n."
    path = tmp_path / "inst.pkl"
    path.write_bytes(payload)
    with pytest.raises(UnsafePickleError, match="os.system"):
        load_params(path)
    assert not marker.exists()


def test_hostile_global_after_valid_arrays(tmp_path):
    """A STACK_GLOBAL hidden after legitimate arrays is still refused before the call."""
    marker = tmp_path / "pwned"
    params = {f"W{i}": np.full(3, float(i)) for i in range(5)}
    params["zz"] = _RunsShell(marker)
    path = _dump(tmp_path, params, protocol=4, name="late.pkl")
    with pytest.raises(UnsafePickleError, match="system"):
        load_params(path)
    assert not marker.exists()


def test_persistent_id_is_refused(tmp_path):
    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return "ext" if isinstance(obj, str) and obj == "ref" else None

    path = tmp_path / "pid.pkl"
    with open(path, "wb") as f:
        Pickler(f, protocol=4).dump({"a": "ref"})
    with pytest.raises(UnsafePickleError, match="persistent id"):
        load_params(path)


def test_protocol_2_array_pickles_are_refused(tmp_path):
    """Protocol 0-2 encode array bytes through _codecs.encode, which is not allowed."""
    path = _dump(tmp_path, {"a": np.ones(2)}, protocol=2)
    with pytest.raises(UnsafePickleError, match="_codecs.encode"):
        load_params(path)


# ---------------------------------------------------------------------------
# the book's pretrained DeepConvNet weights
# ---------------------------------------------------------------------------


def _need_pretrained():
    if not PRETRAINED.is_file():
        pytest.skip(f"../shared/data absent: {PRETRAINED} not found (the real data is read from ../shared/data beside the checkout)")
    return PRETRAINED


def test_real_pretrained_pickle():
    params = load_params(_need_pretrained())
    assert sorted(params) == sorted(PRETRAINED_SHAPES)
    for key, shape in PRETRAINED_SHAPES.items():
        assert params[key].shape == shape, key
        assert params[key].dtype == np.float64, key
        assert np.isfinite(params[key]).all(), key


def test_real_pretrained_uses_only_numpy_globals():
    data = _need_pretrained().read_bytes()
    globals_ = {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
    assert globals_ == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}


def test_real_pretrained_round_trips(tmp_path):
    params = load_params(_need_pretrained())
    for name in ("w.npz", "w.pkl"):
        save_params(params, tmp_path / name)
        assert_same(load_params(tmp_path / name), params)


def test_real_pretrained_checksum():
    data = _need_pretrained().read_bytes()
    assert hashlib.sha256(data).hexdigest() == (
        "8c81d1d6ddedd08c8277c957f3af30a91e455a1d65474ec2b5a0e3527b7422cc"
    )


def test_saved_file_has_the_usual_permissions(tmp_path):
    """The atomic save goes through a temporary file but ends with open()'s mode."""
    import stat

    path = tmp_path / "p.npz"
    save_params({"W1": np.zeros(3)}, path)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
