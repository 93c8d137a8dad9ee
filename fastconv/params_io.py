"""Load and save network parameters: a dict of NumPy arrays.

Two formats:

- ``.npz`` (NumPy's zip of ``.npy`` files), read with ``allow_pickle=False``;
- ``.pkl`` / ``.pickle``, the format of "Deep Learning from Scratch" (a pickled
  ``dict`` of arrays, e.g. the book's ``deep_convnet_params.pkl``).

Unpickling normally runs whatever code the file names. :func:`load_params`
uses an unpickler that resolves only the few NumPy names needed to rebuild
plain arrays and refuses every other global with :class:`UnsafePickleError`
before it can be called.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import pickletools
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["UnsafePickleError", "load_params", "save_params"]

_NPZ_SUFFIXES = (".npz",)
_PICKLE_SUFFIXES = (".pkl", ".pickle")
# Protocol 4: the default of Python 3.8-3.13, readable by every Python 3 still
# in use. Protocol 5 would pickle arrays through numpy's ``_frombuffer``.
_PICKLE_PROTOCOL = 4


class UnsafePickleError(ValueError):
    """A pickle names a global that a parameter file has no need for."""


def _resolve(qualified):
    """Import ``module.attr``; the modules tried are NumPy's own."""
    module, _, attr = qualified.rpartition(".")
    return getattr(importlib.import_module(module), attr)


# (module, name) as written in the pickle -> where it lives in this NumPy.
# numpy 1.x pickles say ``numpy.core``, numpy 2.x ones ``numpy._core``; both are
# served from ``numpy._core`` so that numpy 2 does not warn about ``numpy.core``.
# ``_reconstruct``/``ndarray``/``dtype`` rebuild arrays for protocols 2-4 (the
# book's file uses exactly these three); ``_frombuffer`` is what NumPy emits for
# protocol 5, the default of ``pickle.dump`` from Python 3.14 on.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray._reconstruct",
                                               "numpy.core.multiarray._reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray._reconstruct",
                                                "numpy.core.multiarray._reconstruct"),
    ("numpy.core.numeric", "_frombuffer"): ("numpy._core.numeric._frombuffer",
                                            "numpy.core.numeric._frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): ("numpy._core.numeric._frombuffer",
                                             "numpy.core.numeric._frombuffer"),
    ("numpy", "ndarray"): ("numpy.ndarray",),
    ("numpy", "dtype"): ("numpy.dtype",),
}


def _refuse(module, name, source):
    allowed = ", ".join(sorted(f"{m}.{n}" for m, n in _ALLOWED))
    return UnsafePickleError(
        f"{source}: refused to load: the pickle references the global "
        f"{module}.{name}, which is not needed to rebuild a dict of NumPy arrays "
        f"(allowed: {allowed}). The file may be malicious; if you trust it, "
        f"convert it to .npz in a sandbox."
    )


class _ArrayDictUnpickler(pickle.Unpickler):
    """An unpickler that can build NumPy arrays, dicts and literals only."""

    def __init__(self, file, source):
        super().__init__(file)
        self._source = source

    def find_class(self, module, name):
        targets = _ALLOWED.get((module, name))
        if targets is None:
            raise _refuse(module, name, self._source)
        for i, target in enumerate(targets):
            try:
                return _resolve(target)
            except (ImportError, AttributeError):
                if i == len(targets) - 1:
                    raise

    def persistent_load(self, pid):
        raise UnsafePickleError(
            f"{self._source}: refused to load: the pickle uses a persistent id "
            f"({pid!r}); parameter files never do"
        )


def _prescan(data, source):
    """Refuse disallowed GLOBAL/INST opcodes before unpickling anything.

    ``STACK_GLOBAL`` (protocol 4+) takes its names from the stack and is
    checked by ``find_class`` instead, which also runs before the global can
    be called.
    """
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name in ("GLOBAL", "INST"):
                module, _, name = str(arg).partition(" ")
                if (module, name) not in _ALLOWED:
                    raise _refuse(module, name, source)
    except UnsafePickleError:
        raise
    except Exception as exc:  # malformed opcode stream
        raise ValueError(f"{source}: not a valid pickle file: {exc}") from exc


def _check_params(obj, source):
    """Check that ``obj`` is a dict of str -> plain ndarray."""
    if not isinstance(obj, dict):
        raise ValueError(
            f"{source}: holds a {type(obj).__name__}; a parameter file must hold a "
            f"dict mapping names (str) to NumPy arrays"
        )
    for key, value in obj.items():
        if not isinstance(key, str):
            raise ValueError(
                f"{source}: has a key {key!r} of type {type(key).__name__}; "
                f"parameter names must be str"
            )
        if type(value) is not np.ndarray:
            raise ValueError(
                f"{source}: parameter {key!r} is a {type(value).__name__}, not a "
                f"NumPy array"
            )
        if value.dtype.hasobject:
            raise ValueError(
                f"{source}: parameter {key!r} has dtype {value.dtype}, which holds "
                f"Python objects; parameters must be plain numeric arrays"
            )
    return obj


def _kind(path):
    suffix = path.suffix.lower()
    if suffix in _NPZ_SUFFIXES:
        return "npz"
    if suffix in _PICKLE_SUFFIXES:
        return "pickle"
    raise ValueError(
        f"{path}: unknown parameter file type {suffix or '(no suffix)'!r}; use "
        f"one of {_NPZ_SUFFIXES + _PICKLE_SUFFIXES}"
    )


_EXPECTED = ("a parameter file: the book's pickled dict of arrays (.pkl, e.g. "
             "deep_convnet_params.pkl) or an .npz written by fastconv's save_params")


def _open(path):
    """``open(path, "rb")``; an OSError is raised again, same type, with a message naming
    the path and the file that was expected instead of a bare ``[Errno 2]``."""
    try:
        return open(path, "rb")
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            what = "no such file"
            if not path.is_absolute():
                what += f" (relative to the working directory {os.getcwd()})"
        elif isinstance(exc, IsADirectoryError):
            what = "is a directory, not a file"
        elif isinstance(exc, PermissionError):
            what = "cannot be read: permission denied"
        else:
            what = f"cannot be read: {exc.strerror or exc}"
        raise type(exc)(
            f"{path}: {what}; load_params expects {_EXPECTED}. Check the path"
        ) from exc


def load_params(path):
    """Load a dict of parameter arrays from ``.npz`` or the book's ``.pkl``.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npz`` file, or a ``.pkl``/``.pickle`` file holding a pickled
        ``dict`` of NumPy arrays (the format of "Deep Learning from Scratch",
        e.g. ``deep_convnet_params.pkl`` with ``W1..W8``, ``b1..b8``).

    Returns
    -------
    dict of str to ndarray
        The parameters, in the file's order, with the dtypes stored (the
        book's file holds float64).

    Raises
    ------
    UnsafePickleError
        The pickle references any global other than the NumPy names needed to
        rebuild plain arrays (``numpy[._]core.multiarray._reconstruct``,
        ``numpy[._]core.numeric._frombuffer``, ``numpy.ndarray``,
        ``numpy.dtype``). Nothing the file names is called. A subclass of
        ``ValueError``.
    ValueError
        An unknown suffix; a corrupt file; content that is not a dict of
        ``str`` to plain (non-object) NumPy arrays.
    FileNotFoundError
        ``path`` does not exist. Other ``OSError`` subclasses (``IsADirectoryError``,
        ``PermissionError``, ...) when it cannot be opened; each message names the
        path and the kind of file expected.

    Notes
    -----
    A pickle is read with an unpickler whose ``find_class`` serves only the
    names above, after a scan of its ``GLOBAL``/``INST`` opcodes, so a
    hostile file is refused before anything it names runs. Pickles written
    with protocol 0-2 encode array bytes through ``_codecs.encode`` and are
    refused too: re-save them with protocol 3 or later. ``.npz`` files are
    read with ``allow_pickle=False``.
    """
    path = Path(os.fspath(path))
    kind = _kind(path)
    if kind == "npz":
        # np.load is given an open file: given a path, it leaks the handle when
        # the archive is corrupt.
        f = _open(path)
        try:
            with f:
                loaded = np.load(f, allow_pickle=False)
                if not isinstance(loaded, np.lib.npyio.NpzFile):
                    raise ValueError("it holds a single array, not an .npz archive")
                with loaded as npz:
                    params = {key: npz[key] for key in npz.files}
        except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path}: not a valid .npz parameter file: {exc}") from exc
        return _check_params(params, path)

    with _open(path) as f:
        data = f.read()
    _prescan(data, path)
    try:
        obj = _ArrayDictUnpickler(io.BytesIO(data), path).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # anything a malformed pickle can raise
        raise ValueError(f"{path}: not a valid parameter pickle: {exc}") from exc
    return _check_params(obj, path)


def _validated_arrays(params):
    if not isinstance(params, Mapping):
        raise TypeError(
            f"params is a {type(params).__name__}; save_params needs a mapping of "
            f"names (str) to arrays, e.g. net.params"
        )
    arrays = {}
    for key, value in params.items():
        if not isinstance(key, str):
            raise TypeError(
                f"params has a key {key!r} of type {type(key).__name__}; parameter "
                f"names must be str"
            )
        try:
            arr = np.asarray(value)
        except Exception as exc:
            raise TypeError(f"params[{key!r}] cannot be converted to an array: {exc}") from exc
        if arr.dtype.hasobject:
            raise TypeError(
                f"params[{key!r}] converts to an array of dtype object (from a "
                f"{type(value).__name__}); parameters must be numeric array-likes"
            )
        arrays[key] = arr
    return arrays


def save_params(params, path):
    """Save a dict of parameter arrays as ``.npz`` or the book's ``.pkl``.

    Parameters
    ----------
    params : Mapping of str to array_like
        The parameters (e.g. a network's ``params`` dict). Each value is
        converted with ``np.asarray``; object arrays are refused.
    path : str or os.PathLike
        The file to write; its suffix picks the format: ``.npz`` writes
        ``np.savez`` (uncompressed), ``.pkl``/``.pickle`` a pickled ``dict``
        of ndarrays (protocol 4), as the book's ``save_params`` does. The
        file is written to a temporary name and moved into place, so a
        failed save leaves an existing file intact.

    Raises
    ------
    TypeError
        ``params`` is not a mapping of ``str`` to numeric array-likes.
    ValueError
        An unknown suffix, or (for ``.npz``) a parameter named ``file`` or
        ``allow_pickle``, which ``np.savez`` reserves.
    """
    path = Path(os.fspath(path))
    kind = _kind(path)
    arrays = _validated_arrays(params)
    if kind == "npz":
        reserved = sorted({"file", "allow_pickle"} & arrays.keys())
        if reserved:
            raise ValueError(
                f"parameter name(s) {reserved} are reserved by np.savez; rename "
                f"them or save as .pkl"
            )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        # mkstemp creates 0600; give the file the mode a plain open() would (0666 & ~umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            if kind == "npz":
                np.savez(f, **arrays)
            else:
                pickle.dump(arrays, f, protocol=_PICKLE_PROTOCOL)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
