"""Tests for fastconv.datasets: the IDX reader and load_mnist's lookup rules."""

import gzip
import hashlib
import socket
from pathlib import Path

import numpy as np
import pytest
from _support import idx_bytes, shared_data_path, write_idx

from fastconv import datasets
from fastconv.datasets import load_mnist, read_idx

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# ---------------------------------------------------------------------------
# helpers: fake dataset directories (the IDX writer is _support.write_idx)
# ---------------------------------------------------------------------------


def make_split(n, rng, h=28, w=28):
    images = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    return images, labels


def make_dataset(directory, *, n_train=12, n_test=7, gz=True, train=True, seed=0):
    """Write a fake MNIST directory; return ((x_train, t_train), (x_test, t_test))."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    test = make_split(n_test, rng)
    write_idx(directory / (TEST_IMAGES + suffix), test[0])
    write_idx(directory / (TEST_LABELS + suffix), test[1])
    train_split = None
    if train:
        train_split = make_split(n_train, rng)
        write_idx(directory / (TRAIN_IMAGES + suffix), train_split[0])
        write_idx(directory / (TRAIN_LABELS + suffix), train_split[1])
    return train_split, test


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No real cache, home, system dataset or network for any test here."""
    monkeypatch.delenv("FASTCONV_DATA", raising=False)
    monkeypatch.setenv("FASTCONV_NO_DOWNLOAD", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(
        datasets,
        "_SYSTEM_DIRS",
        {"mnist": (), "fashion-mnist": (tmp_path / "usr-share-fashion-mnist",)},
    )


def assert_fresh(*arrays):
    for a in arrays:
        assert a.flags.c_contiguous
        assert a.flags.writeable
        assert a.flags.owndata or a.base is not None and a.base.flags.owndata


# ---------------------------------------------------------------------------
# read_idx
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize(
    "arr",
    [
        np.arange(10, dtype=np.uint8),
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.arange(-5, 5, dtype=np.int8),
        np.arange(-6, 6, dtype=np.int16).reshape(3, 4),
        np.arange(6, dtype=np.int32).reshape(1, 2, 3, 1),
        np.linspace(-1, 1, 5, dtype=np.float32),
        np.linspace(-1, 1, 6).reshape(2, 3),
        np.zeros((0, 28, 28), dtype=np.uint8),
    ],
    ids=["u8-1d", "u8-3d", "i8", "i16", "i32-4d", "f32", "f64", "empty"],
)
def test_read_idx_round_trip(tmp_path, arr, gz):
    path = write_idx(tmp_path / ("f.idx" + (".gz" if gz else "")), arr)
    out = read_idx(path)
    assert out.shape == arr.shape
    assert out.dtype == arr.dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)
    assert_fresh(out)


def test_read_idx_accepts_str_and_sniffs_gzip_without_suffix(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(1, 3, 4)
    path = tmp_path / "images-no-suffix"
    path.write_bytes(gzip.compress(idx_bytes(arr)))
    np.testing.assert_array_equal(read_idx(str(path)), arr)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


@pytest.mark.parametrize(
    "header",
    [
        b"\x01\x00\x08\x01",  # nonzero first byte
        b"\x00\x00\x07\x01",  # unknown type code
        b"\x00\x00\x08\x00",  # zero dimensions
        b"PK\x03\x04",  # a zip file
    ],
    ids=["first-byte", "type-code", "ndim0", "zip"],
)
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_read_idx_bad_magic(tmp_path, header, gz):
    path = write_idx(tmp_path / ("bad" + (".gz" if gz else "")), raw=header + bytes(8))
    with pytest.raises(ValueError, match="magic number") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_too_short(tmp_path):
    path = write_idx(tmp_path / "short", raw=b"\x00\x00")
    with pytest.raises(ValueError, match="too short") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_truncated_header(tmp_path):
    path = write_idx(tmp_path / "hdr", raw=b"\x00\x00\x08\x03" + (5).to_bytes(4, "big"))
    with pytest.raises(ValueError, match="truncated IDX header"):
        read_idx(path)


def _assert_wrong_size(path, match, declared, held):
    """read_idx(path) fails with ``match``, naming the file, the data size its header
    declares and the size it holds."""
    with pytest.raises(ValueError, match=match) as info:
        read_idx(path)
    msg = str(info.value)
    assert str(path) in msg
    assert declared in msg and held in msg


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_read_idx_truncated_data(tmp_path, gz):
    data = idx_bytes(np.zeros((3, 4, 5), dtype=np.uint8))[:-7]
    path = write_idx(tmp_path / ("trunc" + (".gz" if gz else "")), raw=data)
    _assert_wrong_size(path, "truncated", "60 data bytes", "holds 53")


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_read_idx_trailing_bytes(tmp_path, gz):
    data = idx_bytes(np.zeros(10, dtype=np.uint8)) + b"garbage"
    path = write_idx(tmp_path / ("trail" + (".gz" if gz else "")), raw=data)
    _assert_wrong_size(path, "trailing bytes", "10 data bytes", "holds 17")


def _gz_payload():
    rng = np.random.default_rng(1)
    return gzip.compress(idx_bytes(rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)))


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda blob: b"this is not gzip at all",
        lambda blob: blob[: len(blob) // 2],
        lambda blob: blob[:-4] + bytes(4),  # wrong ISIZE trailer
        lambda blob: blob[:40] + bytes(b ^ 0xFF for b in blob[40:80]) + blob[80:],
    ],
    ids=["not-gzip", "half", "bad-trailer", "flipped"],
)
def test_read_idx_corrupt_gzip(tmp_path, corrupt):
    path = tmp_path / (TEST_IMAGES + ".gz")
    path.write_bytes(corrupt(_gz_payload()))
    with pytest.raises(ValueError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------
# load_mnist: conversions
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_load_mnist_defaults_match_the_book(tmp_path, gz):
    (xtr, ttr), (xte, tte) = make_dataset(tmp_path / "d", gz=gz)
    (x_train, t_train), (x_test, t_test) = load_mnist(tmp_path / "d")
    assert x_train.shape == (12, 784) and x_test.shape == (7, 784)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert t_train.dtype == np.uint8 and t_train.shape == (12,)
    expected = xtr.reshape(12, 784).astype(np.float32)
    expected /= 255.0  # the book's exact float32 arithmetic
    np.testing.assert_array_equal(x_train, expected)
    np.testing.assert_array_equal(x_test, xte.reshape(7, 784).astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(t_train, ttr)
    np.testing.assert_array_equal(t_test, tte)
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    assert_fresh(x_train, t_train, x_test, t_test)


def test_load_mnist_no_normalize_no_flatten(tmp_path):
    (xtr, _), (xte, _) = make_dataset(tmp_path)
    (x_train, _), (x_test, _) = load_mnist(tmp_path, normalize=False, flatten=False)
    assert x_train.dtype == np.uint8 and x_train.shape == (12, 1, 28, 28)
    np.testing.assert_array_equal(x_train[:, 0], xtr)
    np.testing.assert_array_equal(x_test[:, 0], xte)
    assert_fresh(x_train, x_test)


def test_load_mnist_normalize_unflattened(tmp_path):
    (xtr, _), _ = make_dataset(tmp_path)
    (x_train, _), _ = load_mnist(tmp_path, flatten=False)
    assert x_train.shape == (12, 1, 28, 28) and x_train.dtype == np.float32
    np.testing.assert_allclose(x_train[:, 0], xtr / 255.0, rtol=1e-6)


def test_load_mnist_one_hot(tmp_path):
    (_, ttr), (_, tte) = make_dataset(tmp_path)
    (_, t_train), (_, t_test) = load_mnist(tmp_path, one_hot_label=True)
    assert t_train.shape == (12, 10) and t_train.dtype == np.float32
    assert t_test.shape == (7, 10)
    np.testing.assert_array_equal(t_train.argmax(axis=1), ttr)
    np.testing.assert_array_equal(t_train.sum(axis=1), np.ones(12))
    assert set(np.unique(t_train)) <= {0.0, 1.0}
    np.testing.assert_array_equal(t_test.argmax(axis=1), tte)
    assert_fresh(t_train, t_test)


def test_load_mnist_returns_fresh_arrays_each_call(tmp_path):
    make_dataset(tmp_path)
    first = load_mnist(tmp_path, normalize=False)
    first[1][0][...] = 0
    second = load_mnist(tmp_path, normalize=False)
    assert second[1][0].any()
    assert not np.shares_memory(first[1][0], second[1][0])


def test_raw_file_preferred_over_gz(tmp_path):
    make_dataset(tmp_path, gz=True, seed=1)
    (_, _), (xte, tte) = make_dataset(tmp_path, gz=False, seed=2)
    (_, _), (x_test, t_test) = load_mnist(tmp_path, normalize=False, flatten=False)
    np.testing.assert_array_equal(x_test[:, 0], xte)
    np.testing.assert_array_equal(t_test, tte)


def test_mixed_gz_and_raw_files(tmp_path):
    (xtr, ttr), (xte, tte) = make_dataset(tmp_path, gz=True)
    (tmp_path / (TEST_LABELS + ".gz")).unlink()
    write_idx(tmp_path / TEST_LABELS, tte)
    (_, t_train), (_, t_test) = load_mnist(tmp_path)
    np.testing.assert_array_equal(t_test, tte)
    np.testing.assert_array_equal(t_train, ttr)


# ---------------------------------------------------------------------------
# load_mnist: argument and content errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["MNIST", "fashion_mnist", "emnist", "", None])
def test_unknown_kind(tmp_path, kind):
    make_dataset(tmp_path)
    with pytest.raises(ValueError, match="kind"):
        load_mnist(tmp_path, kind=kind)


def test_book_positional_order_is_refused(tmp_path):
    with pytest.raises(TypeError, match="keyword"):
        load_mnist(True, True, False)


def test_count_mismatch(tmp_path):
    make_dataset(tmp_path)
    write_idx(tmp_path / (TEST_LABELS + ".gz"), np.zeros(6, dtype=np.uint8))
    with pytest.raises(ValueError, match="count mismatch") as info:
        load_mnist(tmp_path)
    msg = str(info.value)
    assert "7 images" in msg and "6 labels" in msg and TEST_LABELS in msg


@pytest.mark.parametrize(
    "name, array, match",
    [
        (TRAIN_IMAGES, np.zeros((5, 28, 28), dtype=np.uint8), "5 images but .* 12 labels"),
        (TEST_LABELS, np.full(7, 10, dtype=np.uint8), "out of range"),
        (TEST_IMAGES, np.zeros((7, 784), dtype=np.uint8), "3-D uint8"),
        (TEST_IMAGES, np.zeros((7, 28, 28), dtype=np.float32), "3-D uint8"),
        (TRAIN_IMAGES, np.zeros((12, 14, 14), dtype=np.uint8), "image size mismatch"),
    ],
    ids=["train_count_mismatch", "labels_out_of_range", "images_2d", "images_float32",
         "train_and_test_image_sizes_differ"],
)
def test_bad_file_content(tmp_path, name, array, match):
    make_dataset(tmp_path)
    write_idx(tmp_path / (name + ".gz"), array)
    with pytest.raises(ValueError, match=match):
        load_mnist(tmp_path)


def test_corrupt_file_in_dataset_names_it(tmp_path):
    make_dataset(tmp_path)
    bad = tmp_path / (TRAIN_IMAGES + ".gz")
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(ValueError, match="gzip") as info:
        load_mnist(tmp_path)
    assert str(bad) in str(info.value)


# ---------------------------------------------------------------------------
# load_mnist: test-only directories
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, x_shape, x_dtype, t_shape, t_dtype",
    [
        ({}, (0, 784), np.float32, (0,), np.uint8),
        ({"flatten": False}, (0, 1, 28, 28), np.float32, (0,), np.uint8),
        ({"normalize": False}, (0, 784), np.uint8, (0,), np.uint8),
        ({"one_hot_label": True}, (0, 784), np.float32, (0, 10), np.float32),
    ],
)
def test_test_only_directory(tmp_path, kwargs, x_shape, x_dtype, t_shape, t_dtype):
    _, (xte, tte) = make_dataset(tmp_path, train=False)
    (x_train, t_train), (x_test, t_test) = load_mnist(tmp_path, **kwargs)
    assert x_train.shape == x_shape and x_train.dtype == x_dtype
    assert t_train.shape == t_shape and t_train.dtype == t_dtype
    assert x_test.shape == (7,) + x_shape[1:] and x_test.dtype == x_dtype
    assert t_test.shape == (7,) + t_shape[1:] and t_test.dtype == t_dtype
    assert_fresh(x_train, t_train, x_test, t_test)


def test_half_training_pair_is_an_error(tmp_path):
    make_dataset(tmp_path)
    (tmp_path / (TRAIN_LABELS + ".gz")).unlink()
    with pytest.raises(ValueError, match=TRAIN_LABELS):
        load_mnist(tmp_path)


def test_training_files_alone_are_not_enough(tmp_path):
    make_dataset(tmp_path)
    (tmp_path / (TEST_IMAGES + ".gz")).unlink()
    with pytest.raises(FileNotFoundError, match=TEST_IMAGES):
        load_mnist(tmp_path)


# ---------------------------------------------------------------------------
# load_mnist: where the files are looked for
# ---------------------------------------------------------------------------


def test_parent_directory_with_kind_subfolder(tmp_path):
    _, (mnist_x, _) = make_dataset(tmp_path / "mnist", seed=3)
    _, (fashion_x, _) = make_dataset(tmp_path / "fashion-mnist", seed=4)
    _, (x_m, _) = load_mnist(tmp_path, normalize=False, flatten=False)
    _, (x_f, _) = load_mnist(tmp_path, normalize=False, flatten=False, kind="fashion-mnist")
    np.testing.assert_array_equal(x_m[:, 0], mnist_x)
    np.testing.assert_array_equal(x_f[:, 0], fashion_x)


def test_fastconv_data_env(tmp_path, monkeypatch):
    _, (xte, _) = make_dataset(tmp_path / "envdata" / "mnist")
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path / "envdata"))
    _, (x_test, _) = load_mnist(normalize=False, flatten=False)
    np.testing.assert_array_equal(x_test[:, 0], xte)


def test_path_argument_takes_precedence_then_env(tmp_path, monkeypatch):
    _, (x_arg, _) = make_dataset(tmp_path / "arg", seed=5)
    _, (x_env, _) = make_dataset(tmp_path / "env", seed=6)
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path / "env"))
    _, (x, _) = load_mnist(tmp_path / "arg", normalize=False, flatten=False)
    np.testing.assert_array_equal(x[:, 0], x_arg)
    # a path without the files falls through to $FASTCONV_DATA
    (tmp_path / "empty").mkdir()
    _, (x, _) = load_mnist(tmp_path / "empty", normalize=False, flatten=False)
    np.testing.assert_array_equal(x[:, 0], x_env)


def test_xdg_cache_dir(tmp_path):
    _, (xte, _) = make_dataset(tmp_path / "xdg" / "fastconv" / "fashion-mnist")
    _, (x_test, _) = load_mnist(kind="fashion-mnist", normalize=False, flatten=False)
    np.testing.assert_array_equal(x_test[:, 0], xte)


def test_home_cache_dir_without_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    _, (xte, _) = make_dataset(tmp_path / "home" / ".cache" / "fastconv" / "mnist")
    _, (x_test, _) = load_mnist(normalize=False, flatten=False)
    np.testing.assert_array_equal(x_test[:, 0], xte)


def test_system_dir_for_fashion_mnist(tmp_path):
    _, (xte, _) = make_dataset(tmp_path / "usr-share-fashion-mnist")
    _, (x_test, _) = load_mnist(kind="fashion-mnist", normalize=False, flatten=False)
    np.testing.assert_array_equal(x_test[:, 0], xte)
    with pytest.raises(FileNotFoundError):
        load_mnist(kind="mnist")


def test_not_found_lists_every_place(tmp_path, monkeypatch):
    (tmp_path / "given").mkdir()
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path / "given", kind="fashion-mnist")
    msg = str(info.value)
    assert TEST_IMAGES in msg and TEST_LABELS in msg
    assert str(tmp_path / "given") in msg
    assert str(tmp_path / "given" / "fashion-mnist") in msg
    assert "$FASTCONV_DATA" in msg and str(tmp_path / "nowhere") in msg
    assert str(tmp_path / "xdg" / "fastconv" / "fashion-mnist") in msg
    assert str(tmp_path / "usr-share-fashion-mnist") in msg
    assert "FASTCONV_NO_DOWNLOAD=1" in msg
    assert "apt install dataset-fashion-mnist" in msg
    assert "load_mnist(path=DIR" in msg and "FASTCONV_DATA=DIR" in msg


def test_not_found_without_path_or_env(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(download=False)
    msg = str(info.value)
    assert "path argument: not given" in msg
    assert "$FASTCONV_DATA: not set" in msg
    assert "download=False" in msg
    assert "apt install" not in msg  # only for fashion-mnist


# ---------------------------------------------------------------------------
# downloads (no network here: a fake fetcher, and a refused local connection)
# ---------------------------------------------------------------------------


@pytest.fixture
def fake_mirror(monkeypatch):
    """Enable downloads and serve tiny IDX files from a dict instead of the network."""
    monkeypatch.delenv("FASTCONV_NO_DOWNLOAD")
    rng = np.random.default_rng(7)
    (xtr, ttr), (xte, tte) = make_split(5, rng), make_split(3, rng)
    raw = {
        TRAIN_IMAGES: idx_bytes(xtr),
        TRAIN_LABELS: idx_bytes(ttr),
        TEST_IMAGES: idx_bytes(xte),
        TEST_LABELS: idx_bytes(tte),
    }
    monkeypatch.setattr(
        datasets,
        "_MIRRORS",
        {"mnist": ("https://bad.example/", "https://good.example/"), "fashion-mnist": ()},
    )
    monkeypatch.setattr(
        datasets,
        "_EXPECTED_SHAPES",
        {
            TRAIN_IMAGES: xtr.shape,
            TRAIN_LABELS: ttr.shape,
            TEST_IMAGES: xte.shape,
            TEST_LABELS: tte.shape,
        },
    )
    monkeypatch.setattr(
        datasets,
        "_RAW_MD5",
        {"mnist": {k: hashlib.md5(v).hexdigest() for k, v in raw.items()}, "fashion-mnist": {}},
    )
    served = {"available": set(raw), "urls": []}

    def fetch(url):
        served["urls"].append(url)
        name = url.rsplit("/", 1)[1][: -len(".gz")]
        if url.startswith("https://bad.example/"):
            # a mirror serving the wrong content: rejected by the checksum
            return gzip.compress(raw[name][:-1] + bytes([raw[name][-1] ^ 0xFF]))
        if name not in served["available"]:
            raise OSError("404 Not Found")
        return gzip.compress(raw[name])

    monkeypatch.setattr(datasets, "_fetch", fetch)
    served.update(train=(xtr, ttr), test=(xte, tte))
    return served


def test_download_into_cache(tmp_path, fake_mirror):
    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=False, flatten=False)
    np.testing.assert_array_equal(x_train[:, 0], fake_mirror["train"][0])
    np.testing.assert_array_equal(t_test, fake_mirror["test"][1])
    cache = tmp_path / "xdg" / "fastconv" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        n + ".gz" for n in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
    )
    # every file was first tried on the bad mirror, then taken from the good one
    assert len(fake_mirror["urls"]) == 8
    # the second call reads the cache and downloads nothing
    fake_mirror["urls"].clear()
    load_mnist()
    assert fake_mirror["urls"] == []


def test_download_respects_switches(tmp_path, fake_mirror, monkeypatch):
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_mnist(download=False)
    monkeypatch.setenv("FASTCONV_NO_DOWNLOAD", "1")
    with pytest.raises(FileNotFoundError, match="FASTCONV_NO_DOWNLOAD"):
        load_mnist()
    assert fake_mirror["urls"] == []


def test_download_failure_is_listed(tmp_path, fake_mirror):
    fake_mirror["available"].clear()
    with pytest.raises(FileNotFoundError) as info:
        load_mnist()
    msg = str(info.value)
    assert "https://bad.example/" + TEST_IMAGES + ".gz" in msg and "md5" in msg
    assert "https://good.example/" + TEST_IMAGES + ".gz" in msg and "404" in msg
    # gives up after the first required file
    assert len(fake_mirror["urls"]) == 2


def test_download_without_training_files_warns(tmp_path, fake_mirror):
    fake_mirror["available"] -= {TRAIN_LABELS}
    with pytest.warns(RuntimeWarning, match="x_train and t_train are empty"):
        (x_train, t_train), (x_test, _) = load_mnist()
    assert x_train.shape == (0, 784) and t_train.shape == (0,)
    assert x_test.shape == (3, 784)


def test_interrupted_download_in_cache_is_completed(tmp_path, fake_mirror):
    cache = tmp_path / "xdg" / "fastconv" / "mnist"
    cache.mkdir(parents=True)
    xtr, ttr = fake_mirror["train"]
    xte, tte = fake_mirror["test"]
    write_idx(cache / (TEST_IMAGES + ".gz"), xte)
    write_idx(cache / (TEST_LABELS + ".gz"), tte)
    write_idx(cache / (TRAIN_IMAGES + ".gz"), xtr)
    (x_train, t_train), _ = load_mnist(normalize=False)
    assert [u.rsplit("/", 1)[1] for u in fake_mirror["urls"]] == [TRAIN_LABELS + ".gz"] * 2
    np.testing.assert_array_equal(t_train, ttr)
    assert x_train.shape == (5, 784)


def test_interrupted_download_in_cache_without_network(tmp_path, monkeypatch):
    cache = tmp_path / "xdg" / "fastconv" / "mnist"
    make_dataset(cache)
    (cache / (TRAIN_LABELS + ".gz")).unlink()
    (x_train, t_train), (x_test, _) = load_mnist()  # FASTCONV_NO_DOWNLOAD=1
    assert x_train.shape == (0, 784) and t_train.shape == (0,)
    assert x_test.shape == (7, 784)


def test_real_download_attempt_fails_fast(tmp_path, monkeypatch):
    """With no server listening, urllib's error is caught and reported."""
    monkeypatch.delenv("FASTCONV_NO_DOWNLOAD")
    with socket.socket() as s:  # a local port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(datasets, "_MIRRORS", {"mnist": (f"http://127.0.0.1:{port}/",)})
    with pytest.raises(FileNotFoundError) as info:
        load_mnist()
    assert f"download http://127.0.0.1:{port}/{TEST_IMAGES}.gz: failed" in str(info.value)


# ---------------------------------------------------------------------------
# the real data in ../shared/data
# ---------------------------------------------------------------------------


def _need(*parts):
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared/data absent: {path} not found (the real data is read from ../shared/data beside the checkout)")
    return path


def test_real_mnist_test_set():
    _need("mnist", TEST_IMAGES + ".gz")
    _need("mnist", TEST_LABELS + ".gz")
    (x_train, t_train), (x_test, t_test) = load_mnist(SHARED_DATA)  # via the mnist/ subfolder
    assert x_test.shape == (10000, 784) and x_test.dtype == np.float32
    assert t_test.shape == (10000,) and t_test.dtype == np.uint8
    assert 0.0 <= x_test.min() and x_test.max() == 1.0
    counts = np.bincount(t_test, minlength=10)
    assert counts.size == 10 and counts.sum() == 10000
    assert (counts > 850).all() and (counts < 1150).all()
    assert x_train.shape == (0, 784) and t_train.shape == (0,)


def test_real_mnist_matches_published_md5():
    images = _need("mnist", TEST_IMAGES + ".gz")
    raw = gzip.decompress(images.read_bytes())
    assert hashlib.md5(raw).hexdigest() == "2646ac647ad5339dbf082846283269ea"
    _, (x_test, _) = load_mnist(SHARED_DATA / "mnist", normalize=False, flatten=False)
    assert x_test.tobytes() == raw[16:]


def test_real_fashion_mnist_train_set():
    for name in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS):
        _need("fashion-mnist", name + ".gz")
    (x_train, t_train), (x_test, t_test) = load_mnist(
        SHARED_DATA, kind="fashion-mnist", flatten=False, one_hot_label=True
    )
    assert x_train.shape == (60000, 1, 28, 28) and x_train.dtype == np.float32
    assert t_train.shape == (60000, 10) and t_train.dtype == np.float32
    assert x_test.shape == (10000, 1, 28, 28) and t_test.shape == (10000, 10)
    # Fashion-MNIST is exactly balanced
    np.testing.assert_array_equal(t_train.sum(axis=0), np.full(10, 6000))
    np.testing.assert_array_equal(t_test.sum(axis=0), np.full(10, 1000))


# ---------------------------------------------------------------------------
# detect_kind: which test set, by checksum
# ---------------------------------------------------------------------------

FULL_TEST_SHAPE = (10000, 28, 28)


@pytest.mark.parametrize("name", [TEST_IMAGES, TEST_IMAGES + ".gz"])
def test_detect_kind_unknown_content_of_the_right_size(tmp_path, name):
    """A test-set-sized file that is neither set: hashed in full, recognised as nothing."""
    images = np.zeros(FULL_TEST_SHAPE, dtype=np.uint8)
    path = write_idx(tmp_path / name, images)
    assert datasets.detect_kind(path) is None
    assert datasets.detect_kind(str(tmp_path)) is None  # the directory holding it
    assert datasets.detect_kind(images) is None


def test_detect_kind_small_or_other_files_and_arrays(tmp_path):
    _, (x_test, t_test) = make_dataset(tmp_path / "small")
    assert datasets.detect_kind(tmp_path / "small") is None
    assert datasets.detect_kind(tmp_path / "small" / (TEST_LABELS + ".gz")) is None
    assert datasets.detect_kind(x_test) is None
    assert datasets.detect_kind(t_test) is None
    (tmp_path / "empty").mkdir()
    assert datasets.detect_kind(tmp_path / "empty") is None  # no t10k images there
    assert datasets.detect_kind(tmp_path) is None  # a parent is not looked into
    with pytest.raises(FileNotFoundError):
        datasets.detect_kind(tmp_path / "nowhere" / TEST_IMAGES)


def test_detect_kind_corrupt_gzip_names_the_file(tmp_path):
    path = tmp_path / (TEST_IMAGES + ".gz")
    path.write_bytes(gzip.compress(b"\0" * 1000)[:20])
    with pytest.raises(ValueError, match=TEST_IMAGES):
        datasets.detect_kind(path)


def test_detect_kind_matches_the_checksum_of_the_content(tmp_path, monkeypatch):
    """The md5 looked up is that of the whole uncompressed IDX file, from a file
    (raw or gz) or from the array that read_idx / load_mnist(normalize=False) gives."""
    images = np.random.default_rng(0).integers(0, 256, FULL_TEST_SHAPE, dtype=np.uint8)
    digest = hashlib.md5(idx_bytes(images)).hexdigest()
    monkeypatch.setitem(datasets._TEST_IMAGES_MD5, digest, "fashion-mnist")
    (tmp_path / "raw").mkdir()
    raw = write_idx(tmp_path / "raw" / TEST_IMAGES, images)
    gz = write_idx(tmp_path / (TEST_IMAGES + ".gz"), images)
    assert datasets.detect_kind(raw) == "fashion-mnist"
    assert datasets.detect_kind(gz) == "fashion-mnist"
    assert datasets.detect_kind(tmp_path) == "fashion-mnist"
    assert datasets.detect_kind(read_idx(gz)) == "fashion-mnist"
    assert datasets.detect_kind(images.reshape(10000, 1, 28, 28)) == "fashion-mnist"
    assert datasets.detect_kind(images.reshape(10000, 784)) == "fashion-mnist"
    assert datasets.detect_kind(images.astype(np.float32) / 255) is None  # normalized
    changed = images.copy()
    changed[-1, -1, -1] ^= 1  # one pixel off: another file
    assert datasets.detect_kind(changed) is None


def test_detect_kind_knows_the_published_checksums():
    assert datasets._TEST_IMAGES_MD5 == {
        "2646ac647ad5339dbf082846283269ea": "mnist",
        "8181f5470baa50b63fa0f6fddb340f0a": "fashion-mnist",
    }


@pytest.mark.parametrize("kind", ["mnist", "fashion-mnist"])
def test_detect_kind_real_test_sets(kind):
    directory = shared_data_path(kind)
    image_file = shared_data_path(kind, TEST_IMAGES + ".gz")
    assert datasets.detect_kind(directory) == kind
    assert datasets.detect_kind(image_file) == kind
    assert datasets.detect_kind(str(image_file)) == kind
    _, (x_test, _) = load_mnist(directory, kind=kind, normalize=False, flatten=False)
    assert datasets.detect_kind(x_test) == kind
    # the name asked for does not matter: the content decides
    other = "mnist" if kind == "fashion-mnist" else "fashion-mnist"
    _, (x_test, _) = load_mnist(directory, kind=other, normalize=False)
    assert datasets.detect_kind(x_test) == kind


def test_detect_kind_real_training_images_are_no_test_set():
    images = shared_data_path("fashion-mnist", TRAIN_IMAGES + ".gz")
    assert datasets.detect_kind(images) is None
