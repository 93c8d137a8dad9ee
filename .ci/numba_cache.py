"""Let the installed wheel's test run and the checkout's test run share Numba's cache.

Numba caches compiled kernels beside their module (``__pycache__/*.nbi``, ``*.nbc``) and
serves an entry only while the module's size and modification time are those it was
compiled from (and for the same Numba version and CPU). The wheel installs the same
modules under another path with new times, so each run would compile every kernel again.

``stamp``: give each installed module the modification time of its checkout file (run
before the wheel's tests, so the caches they write hold the checkout's stamp).
``copy``: copy the modules' caches into the checkout's ``__pycache__`` folders, where the
editable install's run finds them.

Both do nothing unless every installed module is byte for byte its checkout file: a
cached kernel holds the constants it read from other modules, which Numba's stamp does
not cover.

Run with the virtual environment's Python: ``python .ci/numba_cache.py stamp|copy CHECKOUT``.
"""
import filecmp
import importlib.util
import os
import shutil
import sys
from pathlib import Path


def pairs(checkout):
    """(installed module, checkout file) for every module of the installed package
    (``fastconv._kernels`` is the checkout's ``kernels/``), or None when one differs."""
    installed = Path(importlib.util.find_spec("fastconv").submodule_search_locations[0])
    found = []
    for path in sorted(installed.rglob("*.py")):
        rel = path.relative_to(installed)
        if rel.parts[0] == "_kernels":
            source = checkout / "kernels" / Path(*rel.parts[1:])
        else:
            source = checkout / "fastconv" / rel
        if not (source.is_file() and filecmp.cmp(path, source, shallow=False)):
            print(f"numba_cache: {path} is not {source}; the caches are not shared")
            return None
        found.append((path, source))
    return found


def stamp(checkout):
    for path, source in pairs(checkout) or ():
        st = source.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def copy(checkout):
    found = pairs(checkout)
    if found is None:
        return
    copied = 0
    for path, source in found:
        caches = sorted(path.parent.glob(f"__pycache__/{path.stem}.*.nb[ic]"))
        if caches:
            (source.parent / "__pycache__").mkdir(exist_ok=True)
        for cache in caches:
            shutil.copy2(cache, source.parent / "__pycache__" / cache.name)
            copied += 1
    print(f"numba_cache: {copied} cache files copied into {checkout}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("stamp", "copy"):
        sys.exit("usage: python .ci/numba_cache.py stamp|copy CHECKOUT")
    {"stamp": stamp, "copy": copy}[sys.argv[1]](Path(sys.argv[2]).resolve())
