"""Build the Cython kernels in kernels/cython_backend/ (OpenMP when the compiler has it).

The compiler probes and cythonize run when the extensions are built (``BuildExt``), so
making the sdist or reading the metadata needs no C compiler and writes no generated C.
"""
import importlib.util
import os
import shlex
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CYTHON_DIR = Path("kernels") / "cython_backend"

COMPILER_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "nonecheck": False,
    "embedsignature": True,
}

#: FASTCONV_BOUNDSCHECK selects the bounds-checked build that CI runs the kernel tests on
#: (unset or 0: the normal build, unchanged). 1: Cython's boundscheck and
#: initializedcheck on, and the C kernels' index checks (FC_CHECK in conv_simd.h) on.
#: asan: that and AddressSanitizer, which sees a read or write past any NumPy buffer from
#: the C code (Cython's pointer loops included; FC_CHECK sees only a kernel's geometry, not
#: its buffers' sizes); every process importing that build needs libasan first
#: (LD_PRELOAD=$(cc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0), checked
#: here with gcc 12: ASan reports a read one element past a NumPy array of 100, 1000 and
#: 100000 floats. wraparound stays off in both modes: turned on it would wrap an index of
#: -1 to the last element where the normal build reads before the buffer, hiding the bug
#: (with it off, boundscheck reports a negative index). The generated C goes to its own
#: directory, so neither build reuses the other's (cythonize compares timestamps, not
#: directives); pip's editable build recompiles every extension from it.
BOUNDSCHECK = os.environ.get("FASTCONV_BOUNDSCHECK", "0").strip() or "0"
if BOUNDSCHECK not in ("0", "1", "asan"):
    raise SystemExit(
        f"FASTCONV_BOUNDSCHECK must be 0, 1 or asan, got {BOUNDSCHECK!r}; unset it for "
        "the normal build"
    )
if BOUNDSCHECK != "0":
    COMPILER_DIRECTIVES = {**COMPILER_DIRECTIVES, "boundscheck": True, "initializedcheck": True}


def _compiles(flags, src="int main(void){return 0;}\n"):
    """True when the C compiler setuptools will use compiles and links ``src`` with ``flags``."""
    cc = shlex.split(os.environ.get("CC", "")) or [shutil.which("cc") or shutil.which("gcc")]
    if cc[0] is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        c_file = Path(tmp) / "probe.c"
        c_file.write_text(src)
        result = subprocess.run(
            [*cc, *flags, str(c_file), "-o", str(Path(tmp) / "probe")], capture_output=True
        )
    return result.returncode == 0


def _compiler_has_openmp():
    if os.environ.get("FASTCONV_NO_OPENMP"):
        return False
    return _compiles(
        ["-fopenmp"], "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
    )


def _load(name):
    """kernels/<name>.py as a module, without importing the package it ships in."""
    spec = importlib.util.spec_from_file_location(name, Path("kernels") / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: Where setup.py writes the C side of kernels/_isa.TABLE (``_isa.write_c_units``).
SIMD_DIR = Path("build") / "fastconv_simd"


def simd_units():
    """One C translation unit per instruction-set level for conv's direct kernels, and the
    header of levels and their run-time check, written under build/ from the table the
    Python side uses (``kernels/_isa.TABLE``), so the C side cannot drift from it."""
    return _load("_isa").write_c_units(SIMD_DIR)


def extensions():
    """One extension per .pyx, listing what the sdist ships: the .pyx and the headers."""
    headers = [str(h) for h in sorted([*CYTHON_DIR.glob("*.h"), *CYTHON_DIR.glob("*.pxd")])]
    return [Extension(f"fastconv._kernels.cython_backend.{pyx.stem}", [str(pyx)],
                      depends=headers)
            for pyx in sorted(CYTHON_DIR.glob("*.pyx"))]


class BuildExt(build_ext):
    """Probes the compiler, adds the per-level units and the flags, and cythonizes, when
    the extensions are built."""

    def finalize_options(self):
        super().finalize_options()
        # The extensions compile independently: one at a time per core (pip passes no -j).
        if self.parallel is None:
            self.parallel = True

    def build_extensions(self):
        import numpy as np
        from Cython.Build import cythonize

        openmp = _compiler_has_openmp()
        if not openmp:
            warnings.warn(
                "fastconv: the C compiler does not support OpenMP; the Cython kernels are "
                "built serial (single-threaded). Install a compiler with OpenMP (gcc) and "
                "rebuild for parallel kernels.",
                stacklevel=1,
            )
        # -fno-math-errno lets gcc vectorize sqrt (Adam's update) instead of calling libm.
        # No -march: the build runs on any CPU of its architecture; the vector kernels are
        # compiled once per instruction-set level (simd_units, target attributes) and the
        # level is chosen at import (kernels/_isa.py).
        compile_args = ["-O3", "-fno-math-errno"]
        link_args = []
        macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
        if openmp:
            compile_args.append("-fopenmp")
            link_args.append("-fopenmp")
        if BOUNDSCHECK == "0":
            # No debug info in the shipped build (Python's CFLAGS carry -g); the checked
            # builds keep it for ASan's and gdb's reports.
            compile_args.append("-g0")
        else:
            macros.append(("FC_BOUNDSCHECK", "1"))
        if BOUNDSCHECK == "asan":
            if not _compiles(["-fsanitize=address"]):
                raise SystemExit(
                    "FASTCONV_BOUNDSCHECK=asan: the C compiler cannot build with "
                    "-fsanitize=address; use FASTCONV_BOUNDSCHECK=1 (no AddressSanitizer)"
                )
            compile_args += ["-fsanitize=address", "-fno-omit-frame-pointer"]
            link_args.append("-fsanitize=address")
        for ext in self.extensions:
            if ext.name.endswith(".conv"):
                ext.sources += simd_units()
            ext.include_dirs += [np.get_include(), str(CYTHON_DIR), str(SIMD_DIR)]
            ext.define_macros += macros
            ext.extra_compile_args += compile_args
            ext.extra_link_args += link_args
        cythonized = cythonize(
            self.extensions,
            compiler_directives=COMPILER_DIRECTIVES,
            include_path=[str(CYTHON_DIR)],  # the shared .pxd files, cimported by name
            quiet=True,
            build_dir=None if BOUNDSCHECK == "0" else str(Path("build") / "boundscheck"),
        )
        sources = {ext.name: ext.sources for ext in cythonized}
        for ext in self.extensions:
            ext.sources = sources[ext.name]
        super().build_extensions()


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
