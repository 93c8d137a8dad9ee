"""MNIST-format (IDX) datasets: MNIST and Fashion-MNIST.

:func:`load_mnist` returns the data the way "Deep Learning from Scratch" does
(``((x_train, t_train), (x_test, t_test))``), read straight from the IDX files
that MNIST and Fashion-MNIST are distributed as. :func:`read_idx` is the
lower-level reader of a single IDX file, gzip-compressed or not.
:func:`detect_kind` tells MNIST's test images from Fashion-MNIST's by checksum.

Where the data is looked for, in order (the first directory that holds the two
test files wins):

1. the ``path`` argument,
2. the ``FASTCONV_DATA`` environment variable,
3. the download cache ``$XDG_CACHE_HOME/fastconv/<kind>`` (default
   ``~/.cache/fastconv/<kind>``),
4. for Fashion-MNIST, Debian's ``dataset-fashion-mnist`` package
   (``/usr/share/datasets/fashion-mnist``),
5. a download from the public mirrors into the cache, unless ``download=False``
   or ``FASTCONV_NO_DOWNLOAD=1``.

For 1 and 2 the directory may hold the files itself or be a parent holding a
``mnist/`` or ``fashion-mnist/`` subfolder named after ``kind``.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import math
import os
import urllib.error
import urllib.request
import warnings
import zlib
from pathlib import Path

import numpy as np

from ._files import atomic_write

__all__ = ["KINDS", "detect_kind", "load_mnist", "read_idx"]

#: The dataset kinds :func:`load_mnist` knows.
KINDS = ("mnist", "fashion-mnist")

_TRAIN_IMAGES = "train-images-idx3-ubyte"
_TRAIN_LABELS = "train-labels-idx1-ubyte"
_TEST_IMAGES = "t10k-images-idx3-ubyte"
_TEST_LABELS = "t10k-labels-idx1-ubyte"
# Test files first: they are required, the training files are optional.
_FILE_NAMES = (_TEST_IMAGES, _TEST_LABELS, _TRAIN_IMAGES, _TRAIN_LABELS)

_N_CLASSES = 10

# md5 of the *uncompressed* IDX content (gzip headers differ between mirrors).
_RAW_MD5 = {
    "mnist": {
        _TEST_IMAGES: "2646ac647ad5339dbf082846283269ea",
        _TEST_LABELS: "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion-mnist": {
        _TRAIN_IMAGES: "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        _TRAIN_LABELS: "9018921c3c673c538a1fc5bad174d6f9",
        _TEST_IMAGES: "8181f5470baa50b63fa0f6fddb340f0a",
        _TEST_LABELS: "15d484375f8d13e6eb1aabb0c3f46965",
    },
}
# md5 of the .gz files exactly as served by yann.lecun.com and its ossci mirror,
# used only where the uncompressed md5 above is not known (the MNIST training
# files). A mirror that recompressed them is rejected and the next one tried.
_GZ_MD5 = {
    "mnist": {
        _TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        _TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
    },
    "fashion-mnist": {},
}
_EXPECTED_SHAPES = {
    _TRAIN_IMAGES: (60000, 28, 28),
    _TRAIN_LABELS: (60000,),
    _TEST_IMAGES: (10000, 28, 28),
    _TEST_LABELS: (10000,),
}
_MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
}
# Directories installed by system packages (Debian's dataset-fashion-mnist).
_SYSTEM_DIRS = {
    "mnist": (),
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}
# Seconds per blocking socket operation, so that a machine without network
# falls through quickly instead of hanging.
_DOWNLOAD_TIMEOUT = 5.0
# The largest MNIST file is 47,040,016 bytes uncompressed; anything much larger
# coming from a mirror is not one of ours.
_MAX_DOWNLOAD_BYTES = 64 * 2**20

# IDX type codes -> big-endian NumPy dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
# Deflate emits at most 258 bytes for 2 bits of input (zlib's FAQ: 1032:1 is its
# limit), so a gzip file of s bytes holds at most 1032*s. Also in params_io.py.
_DEFLATE_MAX_RATIO = 1032
# IDX data is read in chunks of this size, so memory follows what the file holds,
# not what its header claims (``read(n)`` allocates n bytes before reading).
_CHUNK = 1 << 20


# ---------------------------------------------------------------------------
# IDX reading
# ---------------------------------------------------------------------------


def read_idx(path):
    """Read one IDX file (as MNIST is distributed), gzip-compressed or raw.

    Parameters
    ----------
    path : str or os.PathLike
        The file. It is decompressed when its name ends in ``.gz`` or its
        content starts with the gzip magic bytes.

    Returns
    -------
    ndarray
        A fresh, writable, C-contiguous array in native byte order, of the
        shape and dtype the header declares: magic ``0x00000801`` gives 1-D
        uint8 (labels), ``0x00000803`` 3-D uint8 (images). The other IDX
        element types (``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D``
        float32, ``0x0E`` float64) and any number of dimensions are read too.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is not a valid IDX file: a bad magic number, a truncated
        header, a byte count that differs from what the header declares
        (truncated, or trailing bytes), a header declaring more data than the
        gzip file can expand to, or a corrupt gzip stream. The message names
        the file.

    Notes
    -----
    The file is untrusted: the header is read first, and the data after it
    in chunks up to the size it declares, so memory follows what the file
    holds. A gzip file expanding beyond its header's size (a gzip bomb) is
    refused after one chunk past it, and a header declaring more than deflate
    can expand the file to is refused before any data is read.
    """
    path = Path(os.fspath(path))
    with open(path, "rb") as f:
        if not (path.name.endswith(".gz") or f.read(2) == _GZIP_MAGIC):
            f.seek(0)
            return _parse_idx(f, str(path))
        f.seek(0)
        gz_size = os.fstat(f.fileno()).st_size
        try:
            with gzip.GzipFile(fileobj=f, mode="rb") as g:
                return _parse_idx(g, str(path), gz_size)
        except (OSError, EOFError, zlib.error) as exc:
            raise _gzip_error(path, exc) from exc


def _gzip_error(name, exc):
    return ValueError(
        f"{name}: not a valid gzip file ({exc}); the file is corrupt or "
        f"incomplete: delete it and fetch it again"
    )


def _gunzip(blob, name, limit):
    """Decompress gzip ``blob`` up to ``limit`` bytes; ValueError naming ``name`` when it
    is corrupt or larger."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(blob), mode="rb") as g:
            raw = g.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise _gzip_error(name, exc) from exc
    if len(raw) > limit:
        raise ValueError(f"{name}: decompresses to more than {limit} bytes")
    return raw


def _read_upto(stream, n):
    """Up to ``n`` bytes of ``stream``, read in chunks of ``_CHUNK``."""
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(min(n - len(buf), _CHUNK))
        if not chunk:
            break
        buf += chunk
    return buf


def _parse_idx(stream, name, gz_size=None):
    """Parse an IDX file read from the binary ``stream`` into a fresh native-order array.

    ``gz_size``: the size of the gzip file ``stream`` decompresses, which bounds the
    data it can hold; None for a raw file, where reading stops at its end anyway.
    """
    data = _read_upto(stream, 4)
    if len(data) < 4:
        raise ValueError(
            f"{name}: too short for an IDX file ({len(data)} bytes; the magic "
            f"number alone takes 4)"
        )
    magic = int.from_bytes(data, "big")
    code, ndim = data[2], data[3]
    if data[0] != 0 or data[1] != 0 or code not in _IDX_DTYPES or ndim == 0:
        codes = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise ValueError(
            f"{name}: bad IDX magic number 0x{magic:08X}; expected 0x0000TTDD "
            f"with type code TT in ({codes}) and DD >= 1 dimensions, e.g. "
            f"0x00000803 for images or 0x00000801 for labels. Is this an "
            f"MNIST-format file?"
        )
    header = 4 + 4 * ndim
    data += _read_upto(stream, header - 4)
    if len(data) < header:
        raise ValueError(
            f"{name}: truncated IDX header: {ndim} dimensions need a {header}-byte "
            f"header but the file holds {len(data)} bytes"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    count = math.prod(dims)
    expected = count * dtype.itemsize
    if gz_size is not None and header + expected > _DEFLATE_MAX_RATIO * gz_size:
        raise ValueError(
            f"{name}: the IDX header declares shape {dims} of {dtype.name}, i.e. "
            f"{expected} data bytes, more than a {gz_size}-byte gzip file can expand "
            f"to (deflate expands at most {_DEFLATE_MAX_RATIO}-fold); the file is "
            f"corrupt or crafted"
        )
    data = _read_upto(stream, expected)
    # Past the declared data, at most one more chunk is read to count trailing bytes.
    extra = len(stream.read(_CHUNK)) if len(data) == expected else 0
    if len(data) != expected or extra:
        what = "truncated" if extra == 0 else "trailing bytes after the data"
        actual = len(data) + extra
        held = f"at least {actual}" if extra == _CHUNK else f"{actual}"
        raise ValueError(
            f"{name}: size mismatch ({what}): the IDX header declares shape "
            f"{dims} of {dtype.name}, i.e. {expected} data bytes after the "
            f"{header}-byte header, but the file holds {held}; the file is "
            f"corrupt or incomplete: fetch it again"
        )
    try:
        arr = np.frombuffer(data, dtype=dtype, count=count).reshape(dims)
    except ValueError as exc:  # e.g. more dimensions than NumPy supports
        raise ValueError(f"{name}: cannot hold shape {dims} in an array: {exc}") from exc
    # astype copies: the result is fresh, writable, C-contiguous and native-order.
    return arr.astype(dtype.newbyteorder("="), order="C")


# ---------------------------------------------------------------------------
# Which dataset is it?
# ---------------------------------------------------------------------------

# md5 of the uncompressed test images -> kind. Both test sets are 10,000 28x28
# uint8 images, so their IDX files have the same header and size: only the
# content tells them apart.
_TEST_IMAGES_MD5 = {md5[_TEST_IMAGES]: kind for kind, md5 in _RAW_MD5.items()}
_TEST_IMAGES_SHAPE = _EXPECTED_SHAPES[_TEST_IMAGES]
_TEST_IMAGES_HEADER = bytes([0, 0, 0x08, len(_TEST_IMAGES_SHAPE)]) + b"".join(
    d.to_bytes(4, "big") for d in _TEST_IMAGES_SHAPE)


def detect_kind(source):
    """Which known test set ``source`` is: ``"mnist"``, ``"fashion-mnist"`` or None.

    The answer comes from the md5 of the uncompressed IDX content of the test
    images (the published checksums that downloads are verified against), so it
    does not depend on file or directory names.

    Parameters
    ----------
    source : str, os.PathLike or ndarray
        The test images, as one of

        - a directory holding ``t10k-images-idx3-ubyte[.gz]`` (raw preferred, as
          in :func:`load_mnist`; a parent with ``mnist/`` or ``fashion-mnist/``
          subfolders is not looked into: which folder to use is the caller's
          choice),
        - the IDX file itself, gzip-compressed or not,
        - the images as read: the uint8 array of :func:`read_idx` or of
          ``load_mnist(normalize=False)`` (any shape holding the 10,000 x 28 x 28
          pixels in order, e.g. ``(10000, 1, 28, 28)`` or ``(10000, 784)``).
          Nothing is read again then: this is how ``fastconv evaluate`` uses it.

    Returns
    -------
    str or None
        The kind, or None when the content is neither test set (another
        dataset, the training images, a subset, normalized float images, a
        directory without the file).

    Raises
    ------
    FileNotFoundError
        ``source`` is a path that does not exist.
    ValueError
        ``source`` is a gzip file that is corrupt.

    Examples
    --------
    >>> detect_kind("../shared/data/fashion-mnist")              # doctest: +SKIP
    'fashion-mnist'
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(os.fspath(source))
        if path.is_dir():
            path = _find_file(path, _TEST_IMAGES)
            if path is None:
                return None
        content = _read_head(path, len(_TEST_IMAGES_HEADER) + math.prod(_TEST_IMAGES_SHAPE))
    else:
        images = np.asarray(source)
        if images.dtype != np.uint8 or images.size != math.prod(_TEST_IMAGES_SHAPE):
            return None
        content = _TEST_IMAGES_HEADER + np.ascontiguousarray(images).tobytes()
    return _TEST_IMAGES_MD5.get(hashlib.md5(content).hexdigest())


def _read_head(path, size):
    """The (decompressed) content of ``path`` when it is ``size`` bytes long, else b"".

    Stops reading after ``size + 1`` bytes, so that a larger file (the training
    images) costs no more than the test images: hashing those, ~8 MB, takes a few
    tens of milliseconds.
    """
    with open(path, "rb") as f:
        gz = path.name.endswith(".gz") or f.read(2) == _GZIP_MAGIC
        f.seek(0)
        if not gz:
            data = f.read(size + 1)
        else:
            try:
                with gzip.GzipFile(fileobj=f, mode="rb") as g:
                    data = g.read(size + 1)
            except (OSError, EOFError, zlib.error) as exc:
                raise _gzip_error(path, exc) from exc
    return data if len(data) == size else b""


# ---------------------------------------------------------------------------
# Locating the files
# ---------------------------------------------------------------------------


def _find_file(directory, base):
    """Return ``directory/base`` or ``directory/base.gz`` (raw preferred), or None."""
    for candidate in (directory / base, directory / (base + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _scan_dir(directory, kind, subdir, own=False):
    """Look for the IDX files in ``directory`` (and ``directory/kind``).

    Returns ``(files, note)``: ``files`` maps each base name to its path or
    None and is None when the two test files are not there; ``note`` says
    what was missing, for the not-found message. Only one of the two
    training files is an error, except in our ``own`` cache, where it is an
    interrupted download for the caller to complete.
    """
    candidates = [directory] + ([directory / kind] if subdir else [])
    for d in candidates:
        if not d.is_dir():
            continue
        files = {base: _find_file(d, base) for base in _FILE_NAMES}
        if files[_TEST_IMAGES] is None or files[_TEST_LABELS] is None:
            continue
        if not own and (files[_TRAIN_IMAGES] is None) != (files[_TRAIN_LABELS] is None):
            have, lack = (_TRAIN_IMAGES, _TRAIN_LABELS)
            if files[_TRAIN_IMAGES] is None:
                have, lack = lack, have
            raise ValueError(
                f"{d} holds {have} but not {lack}[.gz]: add the missing file, or "
                f"remove {have} to use the directory for the test set only"
            )
        return files, ""
    where = " or ".join(str(d) for d in candidates)
    if not any(d.is_dir() for d in candidates):
        what = "not a directory" if directory.exists() else "no such directory"
        return None, f"{where}: {what}"
    return None, f"{where}: no {_TEST_IMAGES}[.gz] and {_TEST_LABELS}[.gz] there"


def _cache_dir(kind):
    """Return the download cache for ``kind``, or None when there is no home."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        base = Path(xdg)
    else:
        try:
            base = Path.home() / ".cache"
        except RuntimeError:  # no HOME and no passwd entry
            return None
    return base / "fastconv" / kind


def _download_disabled():
    value = os.environ.get("FASTCONV_NO_DOWNLOAD", "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def _fetch(url):
    request = urllib.request.Request(url, headers={"User-Agent": "fastconv"})
    with urllib.request.urlopen(request, timeout=_DOWNLOAD_TIMEOUT) as response:
        blob = response.read(_MAX_DOWNLOAD_BYTES + 1)
    if len(blob) > _MAX_DOWNLOAD_BYTES:
        raise ValueError(f"larger than {_MAX_DOWNLOAD_BYTES} bytes: not an MNIST file")
    return blob


def _verify_download(kind, base, blob, url):
    """Check a downloaded .gz: checksum where known, and a well-formed IDX file."""
    raw = _gunzip(blob, url, limit=_MAX_DOWNLOAD_BYTES)
    want = _RAW_MD5[kind].get(base)
    if want is not None:
        got = hashlib.md5(raw).hexdigest()
        if got != want:
            raise ValueError(f"md5 of the uncompressed content is {got}, expected {want}")
    else:
        want = _GZ_MD5[kind].get(base)
        if want is not None:
            got = hashlib.md5(blob).hexdigest()
            if got != want:
                raise ValueError(f"md5 of the .gz file is {got}, expected {want}")
    arr = _parse_idx(io.BytesIO(raw), url)
    if arr.shape != _EXPECTED_SHAPES[base] or arr.dtype != np.uint8:
        raise ValueError(
            f"holds {arr.dtype} {arr.shape}, expected uint8 {_EXPECTED_SHAPES[base]}"
        )


def _write_atomically(target, blob):
    """Write ``blob`` to ``target`` through a temporary file in the same directory."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target) as f:
        f.write(blob)


def _download(kind, dest, bases, notes):
    """Download ``bases`` (in order) into ``dest``; stop at the first failure.

    Returns the mapping of the bases obtained to their paths; every failure is
    appended to ``notes``.
    """
    got = {}
    for base in bases:
        target = dest / (base + ".gz")
        if target.is_file():  # verified when it was stored
            got[base] = target
            continue
        for mirror in _MIRRORS[kind]:
            url = mirror + base + ".gz"
            try:
                blob = _fetch(url)
                _verify_download(kind, base, blob, url)
            except (OSError, ValueError, EOFError, zlib.error, http.client.HTTPException) as exc:
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                notes.append(f"download {url}: failed ({reason})")
                continue
            try:
                _write_atomically(target, blob)
            except OSError as exc:
                notes.append(f"download: cannot write {target}: {exc}")
                return got
            got[base] = target
            break
        else:
            return got
    return got


def _locate(kind, path, download):
    """Return the file mapping of the first place holding the test files.

    Raises FileNotFoundError listing every place looked at when none does.
    """
    notes = []

    def scan(label, directory, subdir, own=False):
        files, note = _scan_dir(directory, kind, subdir, own)
        if files is None:
            notes.append(f"{label} {note}")
        return files

    if path is None:
        notes.append("path argument: not given")
    else:
        files = scan("path argument:", Path(os.fspath(path)).expanduser(), True)
        if files is not None:
            return files

    env = os.environ.get("FASTCONV_DATA", "")
    if not env:
        notes.append("$FASTCONV_DATA: not set")
    else:
        files = scan("$FASTCONV_DATA:", Path(env).expanduser(), True)
        if files is not None:
            return files

    may_download = bool(download) and not _download_disabled()
    cache = _cache_dir(kind)
    if cache is None:
        notes.append("cache: no home directory to hold ~/.cache")
    else:
        files = scan("cache:", cache, False, own=True)
        if files is not None:
            if files[_TRAIN_IMAGES] is None or files[_TRAIN_LABELS] is None:
                if may_download:
                    # The cache is ours: complete an earlier partial download.
                    train_notes = []
                    train = (_TRAIN_IMAGES, _TRAIN_LABELS)
                    files.update(_download(kind, cache, train, train_notes))
                    _warn_no_train(files, train_notes)
                else:
                    files[_TRAIN_IMAGES] = files[_TRAIN_LABELS] = None
            return files

    for system_dir in _SYSTEM_DIRS[kind]:
        files = scan("system package:", system_dir, True)
        if files is not None:
            return files

    if not bool(download):
        notes.append("download: disabled (download=False)")
    elif _download_disabled():
        value = os.environ["FASTCONV_NO_DOWNLOAD"]
        notes.append(f"download: disabled by FASTCONV_NO_DOWNLOAD={value}")
    elif cache is not None:
        got = _download(kind, cache, _FILE_NAMES, notes)
        if _TEST_IMAGES in got and _TEST_LABELS in got:
            files = {base: got.get(base) for base in _FILE_NAMES}
            if files[_TRAIN_LABELS] is None:
                files[_TRAIN_IMAGES] = None
            _warn_no_train(files, notes)
            return files

    raise FileNotFoundError(_not_found_message(kind, notes))


def _warn_no_train(files, notes):
    if files[_TRAIN_IMAGES] is None or files[_TRAIN_LABELS] is None:
        files[_TRAIN_IMAGES] = files[_TRAIN_LABELS] = None
        detail = "; ".join(notes[-2:]) if notes else "unknown reason"
        warnings.warn(
            f"could not download the training files ({detail}); "
            f"x_train and t_train are empty",
            RuntimeWarning,
            stacklevel=4,
        )


def _not_found_message(kind, notes):
    names = ", ".join(n + ".gz" for n in (_TRAIN_IMAGES, _TRAIN_LABELS, _TEST_IMAGES, _TEST_LABELS))
    cache = _cache_dir(kind)
    lines = [
        f"{kind} data not found: no place holds {_TEST_IMAGES}[.gz] and "
        f"{_TEST_LABELS}[.gz]. Looked at:",
        *(f"  - {note}" for note in notes),
        "To get the files: download the IDX files",
        f"  {names}",
        f"  (e.g. from {(_MIRRORS.get(kind) or ('a public mirror',))[0]}) into a "
        f"directory DIR, then call",
        f"  load_mnist(path=DIR, kind={kind!r}) or set FASTCONV_DATA=DIR (DIR may",
        f"  also be a parent holding a {kind}/ subfolder), or put them in the cache",
        f"  {cache if cache is not None else '~/.cache/fastconv/' + kind}.",
        "  The two t10k files alone are enough for evaluation.",
    ]
    if kind == "fashion-mnist":
        lines.append("  On Debian/Ubuntu: apt install dataset-fashion-mnist.")
    lines.append(
        "  With network access, load_mnist(download=True) (the default) fetches "
        "them unless FASTCONV_NO_DOWNLOAD is set."
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# The public loader
# ---------------------------------------------------------------------------


def _check_pair(images, labels, image_file, label_file):
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(
            f"{image_file}: holds {images.ndim}-D {images.dtype} data; MNIST images "
            f"are 3-D uint8 (N, H, W) (magic 0x00000803)"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(
            f"{label_file}: holds {labels.ndim}-D {labels.dtype} data; MNIST labels "
            f"are 1-D uint8 (N,) (magic 0x00000801)"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"count mismatch: {image_file} holds {images.shape[0]} images but "
            f"{label_file} holds {labels.shape[0]} labels"
        )
    if labels.size and int(labels.max()) >= _N_CLASSES:
        raise ValueError(
            f"{label_file}: label {int(labels.max())} out of range; MNIST labels are "
            f"0..{_N_CLASSES - 1}"
        )


def _convert_images(x, normalize, flatten):
    n, h, w = x.shape
    if normalize:
        x = x.astype(np.float32)
        x /= np.float32(255.0)
    x = x.reshape((n, h * w) if flatten else (n, 1, h, w))
    return np.ascontiguousarray(x)


def _convert_labels(t, one_hot_label):
    if not one_hot_label:
        return t
    out = np.zeros((t.shape[0], _N_CLASSES), dtype=np.float32)
    out[np.arange(t.shape[0]), t] = 1.0
    return out


def load_mnist(path=None, normalize=True, flatten=True, one_hot_label=False, kind="mnist",
               download=True):
    """Load MNIST or Fashion-MNIST as in "Deep Learning from Scratch".

    Parameters
    ----------
    path : str or os.PathLike, optional
        A directory holding the IDX files ``train-images-idx3-ubyte``,
        ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
        ``t10k-labels-idx1-ubyte`` (each raw or ``.gz``; raw is preferred when
        both exist), or a parent directory with a subfolder named after
        ``kind``. When it does not hold them, the search goes on (see the
        module docstring for the full lookup order).
    normalize : bool, default True
        Images as float32 ``pixels / 255.0`` in [0, 1]; otherwise the raw uint8
        pixels.
    flatten : bool, default True
        Images of shape ``(N, 784)``; otherwise ``(N, 1, 28, 28)``.
    one_hot_label : bool, default False
        Labels as one-hot float32 arrays of shape ``(N, 10)`` holding 0.0 and
        1.0 (the book builds them as float64; float32 matches the images and
        halves the memory); otherwise uint8 class indices of shape ``(N,)``.
    kind : {"mnist", "fashion-mnist"}, default "mnist"
        Which dataset.
    download : bool, default True
        Whether to download the files into the cache when no other place holds
        them. The environment variable ``FASTCONV_NO_DOWNLOAD=1`` also
        disables downloading. Downloads are checked against the md5 of their
        uncompressed content where it is known (all files but the MNIST
        training files, which are checked against the md5 of the original
        ``.gz`` files instead) and must be well-formed IDX files of the
        expected shape.

    Returns
    -------
    (x_train, t_train), (x_test, t_test) : tuple of tuples of ndarray
        Fresh, writable, C-contiguous arrays: images of shape ``(N, 784)`` or
        ``(N, 1, 28, 28)``, labels of shape ``(N,)`` or ``(N, 10)``. When the
        place found holds only the two ``t10k`` files, ``x_train`` and
        ``t_train`` are empty (``N = 0``) with the same trailing shape and
        dtype as the test arrays, so that evaluation-only code runs.

    Raises
    ------
    ValueError
        An unknown ``kind``; a corrupt or inconsistent IDX file (bad magic,
        wrong size, corrupt gzip, image and label counts that differ, labels
        outside 0..9, images that are not 3-D uint8); a directory holding only
        one of the two training files.
    TypeError
        ``path`` is a bool (the book's ``load_mnist(normalize, ...)`` order:
        pass those by keyword).
    FileNotFoundError
        No place holds the test files; the message lists every place looked at
        and how to get the files.

    Examples
    --------
    >>> (x_train, t_train), (x_test, t_test) = load_mnist(
    ...     "../shared/data", flatten=False)                     # doctest: +SKIP
    >>> x_test.shape, x_test.dtype, t_test.dtype                 # doctest: +SKIP
    ((10000, 1, 28, 28), dtype('float32'), dtype('uint8'))
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not a known dataset; use one of {KINDS}")
    if isinstance(path, bool):
        raise TypeError(
            f"path={path!r}: load_mnist's first argument is the data directory; "
            f"pass normalize=, flatten= and one_hot_label= by keyword"
        )
    files = _locate(kind, path, download)

    x_test = read_idx(files[_TEST_IMAGES])
    t_test = read_idx(files[_TEST_LABELS])
    _check_pair(x_test, t_test, files[_TEST_IMAGES], files[_TEST_LABELS])
    if files[_TRAIN_IMAGES] is not None:
        x_train = read_idx(files[_TRAIN_IMAGES])
        t_train = read_idx(files[_TRAIN_LABELS])
        _check_pair(x_train, t_train, files[_TRAIN_IMAGES], files[_TRAIN_LABELS])
        if x_train.shape[1:] != x_test.shape[1:]:
            raise ValueError(
                f"image size mismatch: {files[_TRAIN_IMAGES]} holds "
                f"{x_train.shape[1]}x{x_train.shape[2]} images but "
                f"{files[_TEST_IMAGES]} holds {x_test.shape[1]}x{x_test.shape[2]}"
            )
    else:
        x_train = np.empty((0,) + x_test.shape[1:], dtype=np.uint8)
        t_train = np.empty((0,), dtype=np.uint8)

    return (
        (_convert_images(x_train, normalize, flatten), _convert_labels(t_train, one_hot_label)),
        (_convert_images(x_test, normalize, flatten), _convert_labels(t_test, one_hot_label)),
    )
