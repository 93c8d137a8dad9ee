"""Load and save network parameters: a dict of NumPy arrays.

Two formats:

- ``.npz`` (NumPy's zip of ``.npy`` files), read with ``allow_pickle=False``;
- ``.pkl`` / ``.pickle``, the format of "Deep Learning from Scratch" (a pickled
  ``dict`` of arrays, e.g. the book's ``deep_convnet_params.pkl``).

Unpickling normally runs whatever code the file names. :func:`load_params`
uses an unpickler that resolves only the few NumPy names needed to rebuild
plain arrays and refuses every other global with :class:`UnsafePickleError`
before it can be called. Even those names never reach NumPy with the file's
arguments unchecked: they are served by stand-ins that accept only what NumPy's
own pickles pass (NumPy trusts pickled state: through ``ndarray.__setstate__`` a
100-byte file can crash the interpreter or make it allocate gigabytes).
"""

from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
import reprlib
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ._files import atomic_write

__all__ = ["UnsafePickleError", "load_params", "save_params"]

_NPZ_SUFFIXES = (".npz",)
_PICKLE_SUFFIXES = (".pkl", ".pickle")
# Protocol 4: the default of Python 3.8-3.13, readable by every Python 3 still
# in use. Protocol 5 would pickle arrays through numpy's ``_frombuffer``.
_PICKLE_PROTOCOL = 4


class UnsafePickleError(ValueError):
    """A pickle names a global that a parameter file has no need for."""


# Plain numeric dtype kinds: bool, signed and unsigned int, float, complex.
_NUMERIC_KINDS = "biufc"
# Deflate emits at most 258 bytes for 2 bits of input (zlib's FAQ: 1032:1 is its
# limit), so c deflated bytes decompress to at most 1032*c bytes. Also in datasets.py.
_DEFLATE_MAX_RATIO = 1032


def _check_dtype(dtype, what):
    """``dtype`` if it is a plain numeric NumPy dtype, else ValueError naming ``what``."""
    if dtype.hasobject:
        raise ValueError(
            f"{what} has dtype {dtype}, which holds Python objects; parameters must be "
            f"plain numeric arrays"
        )
    if dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(
            f"{what} has dtype {dtype}; parameters must be plain numeric arrays (bool, "
            f"int, float or complex)"
        )
    return dtype


# Stand-ins for the allowed NumPy names while unpickling. NumPy pickles an array
# (protocols 2-4) as ``_reconstruct(ndarray, (0,), b'b')`` followed by BUILD with the
# state ``(1, shape, dtype, fortran_order, data)``, a dtype as ``dtype('f8', False,
# True)`` followed by BUILD with ``(3, byte order, None, None, None, -1, -1, 0)``, and
# (protocol 5) an array as ``_frombuffer(data, dtype, shape, order)``. The stand-ins
# take exactly these calls and states and build the arrays from checked parts; no
# ndarray exists before the whole file is read, so BUILD never reaches NumPy's
# ``ndarray.__setstate__`` with the file's state. Measured with NumPy 2.4:
# ``ndarray.__setstate__`` with an object dtype and a list shorter than the shape
# segfaults, ``dtype.__setstate__`` sets any flags (a float64 dtype "holding objects"),
# and ``ndarray(shape)`` or ``_reconstruct`` with a large shape allocates it from a few
# bytes of pickle.


class _NdarrayName:
    """``numpy.ndarray`` in a pickle: only ever an argument of ``_reconstruct``."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        raise ValueError(
            "the pickle calls numpy.ndarray, which NumPy's pickles never do (it would "
            "allocate an array of any size the file names)"
        )


_NDARRAY = _NdarrayName()


class _PickledDtype:
    """A dtype being unpickled: plain numeric, in the byte order its BUILD gives."""

    __slots__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = dtype

    def __setstate__(self, state):
        # (version, byte order, subarray, names, fields, elsize, alignment, flags[, metadata])
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)
                and state[1] in ("<", ">", "|", "=")
                and all(part is None for part in state[2:5])):
            raise ValueError(
                f"unexpected dtype state {reprlib.repr(state)}; a plain numeric dtype "
                f"pickles as (3, byte order, None, None, None, ...)"
            )
        self.dtype = self.dtype.newbyteorder(state[1])


def _pickled_dtype(spec, align=False, copy=False):
    if not isinstance(spec, str):
        raise ValueError(
            f"a dtype is given as a {type(spec).__name__}; NumPy pickles name it with a "
            f"str such as 'f8'"
        )
    return _PickledDtype(_check_dtype(np.dtype(spec), "an array"))


def _dtype_of(dtype):
    if not isinstance(dtype, _PickledDtype):
        raise ValueError(f"an array's dtype is a {_type_name(dtype)}, not a NumPy dtype")
    return dtype.dtype


class _PickledArray:
    """An array being unpickled; ``array`` is None until BUILD has given it its data."""

    __slots__ = ("array",)

    def __init__(self, array=None):
        self.array = array

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) in (4, 5)):
            raise ValueError(
                f"unexpected array state {reprlib.repr(state)}; NumPy pickles "
                f"(version, shape, dtype, fortran_order, data)"
            )
        shape, dtype, fortran, data = state[-4:]
        dtype = _dtype_of(dtype)
        if not (isinstance(shape, tuple) and all(type(d) is int and d >= 0 for d in shape)):
            raise ValueError(f"an array's shape is {reprlib.repr(shape)}, not a tuple of sizes")
        if type(fortran) is not bool or not isinstance(data, (bytes, bytearray)):
            raise ValueError(
                f"an array's state holds a {type(fortran).__name__} order flag and "
                f"{type(data).__name__} data; NumPy pickles a bool and bytes"
            )
        need = math.prod(shape) * dtype.itemsize
        if len(data) != need:
            raise ValueError(
                f"an array of shape {shape} and dtype {dtype} needs {need} bytes of data, "
                f"the file holds {len(data)}"
            )
        array = np.ndarray((0,), np.int8)
        array.__setstate__((1, shape, dtype, fortran, data))
        self.array = array


def _type_name(obj):
    """The type of ``obj`` for messages, a stand-in named as what it stands for."""
    if isinstance(obj, _PickledArray):
        return "ndarray"
    if isinstance(obj, _PickledDtype):
        return "dtype"
    return type(obj).__name__


def _reconstruct(subtype, shape, dtype):
    if subtype is not _NDARRAY or shape != (0,):
        raise ValueError(
            "the pickle calls numpy's _reconstruct with other arguments than NumPy's "
            "pickles, (ndarray, (0,), b'b')"
        )
    return _PickledArray()


def _frombuffer(buf, dtype, shape, order, axis_order=None):
    """NumPy's ``_frombuffer`` (protocol 5), on a checked dtype and in-band bytes."""
    dtype = _dtype_of(dtype)
    if not isinstance(buf, (bytes, bytearray)):
        raise ValueError(f"an array's data is a {_type_name(buf)}, not bytes")
    array = np.frombuffer(buf, dtype=dtype)
    if order == "K" and axis_order is not None:
        return _PickledArray(array.reshape(shape, order="C").transpose(axis_order))
    return _PickledArray(array.reshape(shape, order=order))


# (module, name) as written in the pickle -> its stand-in. numpy 1.x pickles say
# ``numpy.core``, numpy 2.x ones ``numpy._core``. ``_reconstruct``/``ndarray``/``dtype``
# rebuild arrays for protocols 2-4 (the book's file uses exactly these three);
# ``_frombuffer`` is what NumPy emits for protocol 5, the default of ``pickle.dump``
# from Python 3.14 on.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _pickled_dtype,
}


def _refuse(module, name, source):
    allowed = ", ".join(sorted(f"{m}.{n}" for m, n in _ALLOWED))
    return UnsafePickleError(
        f"{source}: refused to load: the pickle references the global "
        f"{module}.{name}, which is not needed to rebuild a dict of NumPy arrays "
        f"(allowed: {allowed}). The file may be malicious; if you trust it, "
        f"convert it to .npz in a sandbox."
    )


#: Dict keys and set items whose hash costs no more than their size. A tuple's hash is
#: not cached: a 600-byte pickle of tuples that share their items 10 times over 50 levels
#: would hash 10**50 leaves (a hang).
_ATOMS = (str, bytes, int, float, bool, type(None))


class _ArrayDictUnpickler(pickle._Unpickler):
    """An unpickler that can build NumPy arrays, dicts and literals only.

    NumPy's names resolve to the stand-ins of ``_ALLOWED``; BUILD sets the state of the
    arrays and dtypes being unpickled only (on a stand-in function it would set its
    attributes, such as ``__defaults__``, for the rest of the process); the opcodes that
    hash a key or a set item check it first. That needs the pure-Python unpickler: the C
    one cannot be hooked there. The book's file has about 500 opcodes, so the speed does
    not matter.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, source):
        super().__init__(file)
        self._source = source

    @staticmethod
    def _check_hashed(items):
        for item in items:
            if type(item) not in _ATOMS:
                raise ValueError(
                    f"a dict key or set item is a {_type_name(item)}; parameter names are str"
                )

    def load_build(self):
        target = self.stack[-2] if len(self.stack) > 1 else None
        if not isinstance(target, (_PickledArray, _PickledDtype)):
            raise ValueError(
                f"the pickle sets the state of a {_type_name(target)}; NumPy's pickles set "
                f"the state of arrays and dtypes only"
            )
        super().load_build()

    # Within a MARK, ``self.stack`` holds the items since the mark.
    def load_setitem(self):
        self._check_hashed(self.stack[-2:-1])
        super().load_setitem()

    def load_setitems(self):
        self._check_hashed(self.stack[0::2])
        super().load_setitems()

    def load_dict(self):
        self._check_hashed(self.stack[0::2])
        super().load_dict()

    def load_additems(self):
        self._check_hashed(self.stack)
        super().load_additems()

    def load_frozenset(self):
        self._check_hashed(self.stack)
        super().load_frozenset()

    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems
    dispatch[pickle.DICT[0]] = load_dict
    dispatch[pickle.ADDITEMS[0]] = load_additems
    dispatch[pickle.FROZENSET[0]] = load_frozenset

    def find_class(self, module, name):
        stand_in = _ALLOWED.get((module, name))
        if stand_in is None:
            raise _refuse(module, name, self._source)
        return stand_in

    def persistent_load(self, pid):
        raise UnsafePickleError(
            f"{self._source}: refused to load: the pickle uses a persistent id "
            f"({pid!r}); parameter files never do"
        )


def _prescan(data, source):
    """Refuse disallowed GLOBAL/INST opcodes and extension codes before unpickling
    anything.

    ``STACK_GLOBAL`` (protocol 4+) takes its names from the stack and is
    checked by ``find_class`` instead, which also runs before the global can
    be called. The extension registry (EXT1/2/4) is served from a process-wide
    cache that bypasses ``find_class``.
    """
    try:
        for opcode, arg, pos in pickletools.genops(data):
            if opcode.name in ("GLOBAL", "INST"):
                module, _, name = str(arg).partition(" ")
                if (module, name) not in _ALLOWED:
                    raise _refuse(module, name, source)
            elif opcode.name in ("EXT1", "EXT2", "EXT4"):
                raise UnsafePickleError(
                    f"{source}: refused to load: the pickle uses the extension registry "
                    f"(code {arg} at byte {pos}); parameter files never do"
                )
    except UnsafePickleError:
        raise
    except Exception as exc:  # malformed opcode stream
        raise ValueError(f"{source}: not a valid pickle file: {exc}") from exc


def _check_params(obj, source):
    """``obj`` as a dict of str -> plain numeric ndarray (unpickled arrays unwrapped)."""
    if not isinstance(obj, dict):
        raise ValueError(
            f"{source}: holds a {_type_name(obj)}; a parameter file must hold a "
            f"dict mapping names (str) to NumPy arrays"
        )
    params = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            # reprlib: the key may be megabytes of bytes
            raise ValueError(
                f"{source}: has a key {reprlib.repr(key)} of type {type(key).__name__}; "
                f"parameter names must be str"
            )
        if isinstance(value, _PickledArray):
            if value.array is None:
                raise ValueError(f"{source}: parameter {key!r} is an array without its data")
            value = value.array
        if type(value) is not np.ndarray:
            raise ValueError(
                f"{source}: parameter {key!r} is a {_type_name(value)}, not a "
                f"NumPy array"
            )
        _check_dtype(value.dtype, f"{source}: parameter {key!r}")
        params[key] = value
    return params


def _check_npz_sizes(archive, archive_size):
    """Refuse members whose ``.npy`` header declares more data than the file can hold.

    ``np.load`` allocates what a member's header declares before reading it. A stored
    member holds at most the archive's bytes, a deflated one ``_DEFLATE_MAX_RATIO``
    times its compressed size, and all of them together (members may overlap) at most
    ``_DEFLATE_MAX_RATIO`` times the archive.
    """
    total = 0
    most = _DEFLATE_MAX_RATIO * archive_size
    for info in archive.infolist():
        if info.compress_type == zipfile.ZIP_STORED:
            capacity = archive_size
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            capacity = _DEFLATE_MAX_RATIO * min(info.compress_size, archive_size)
        else:
            raise ValueError(
                f"member {info.filename!r} uses compression method {info.compress_type}; "
                f"np.savez stores members and np.savez_compressed deflates them"
            )
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(
                    f"member {info.filename!r} is .npy format {version[0]}.{version[1]}; "
                    f"numeric arrays are saved as 1.0 or 2.0"
                )
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(member)
            declared = math.prod(shape) * dtype.itemsize
            held = min(info.file_size, capacity) - member.tell()
        if declared > held:
            raise ValueError(
                f"member {info.filename!r} declares shape {shape} of {dtype}, "
                f"{declared} bytes, more than the archive's {archive_size} bytes can hold "
                f"there; the file is corrupt or crafted"
            )
        total += declared
        if total > most:
            raise ValueError(
                f"the members up to {info.filename!r} declare {total} bytes, more than "
                f"an archive of {archive_size} bytes can expand to; the file is corrupt "
                f"or crafted"
            )


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
        ``numpy.dtype``), or the extension registry. Nothing the file names is
        called. A subclass of ``ValueError``.
    ValueError
        An unknown suffix; a corrupt file; content that is not a dict of
        ``str`` to plain numeric (bool, int, float, complex) NumPy arrays;
        NumPy's names called otherwise than NumPy's pickles call them; a dict
        key or set item that is a container; an ``.npz`` member declaring more
        data than the file can hold.
    FileNotFoundError
        ``path`` does not exist. Other ``OSError`` subclasses (``IsADirectoryError``,
        ``PermissionError``, ...) when it cannot be opened; each message names the
        path and the kind of file expected.

    Notes
    -----
    A pickle is read with an unpickler whose ``find_class`` serves only the
    names above, after a scan of its ``GLOBAL``/``INST``/``EXT`` opcodes, so a
    hostile file is refused before anything it names runs. The names are
    served by stand-ins that build each array from a checked shape, plain
    numeric dtype and byte string of the matching length, so the file's state
    never reaches NumPy's unpickling methods; dict keys and set items must be
    str, bytes, numbers or None before they are hashed. Memory then stays
    within a small multiple of the file's size. Pickles written with protocol
    0-2 encode array bytes through ``_codecs.encode`` and are refused too:
    re-save them with protocol 3 or later. ``.npz`` files are read with
    ``allow_pickle=False``, after checking that each member's ``.npy`` header
    declares no more data than the file can hold (deflate expands at most
    1032-fold), since NumPy allocates what the header declares before
    reading.
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
                    _check_npz_sizes(npz.zip, os.fstat(f.fileno()).st_size)
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
    with atomic_write(path) as f:
        if kind == "npz":
            np.savez(f, **arrays)
        else:
            pickle.dump(arrays, f, protocol=_PICKLE_PROTOCOL)
