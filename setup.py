"""Build the Cython kernels in kernels/cython_backend/ (OpenMP when the compiler has it)."""
import os
import shlex
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

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


def extensions():
    openmp = _compiler_has_openmp()
    if not openmp:
        warnings.warn(
            "fastconv: the C compiler does not support OpenMP; the Cython kernels are built "
            "serial (single-threaded). Install a compiler with OpenMP (gcc) and rebuild for "
            "parallel kernels.",
            stacklevel=1,
        )
    # -fno-math-errno lets gcc vectorize sqrt (Adam's update) instead of calling libm.
    # No -march: the build runs on any CPU of its architecture; the vector kernels are
    # compiled once per instruction-set level (conv_simd_<level>.c, target attributes)
    # and the level is chosen at import (kernels/_isa.py).
    compile_args = ["-O3", "-fno-math-errno"]
    link_args = []
    if openmp:
        compile_args.append("-fopenmp")
        link_args.append("-fopenmp")
    exts = []
    for pyx in sorted(CYTHON_DIR.glob("*.pyx")):
        exts.append(
            Extension(
                f"fastconv._kernels.cython_backend.{pyx.stem}",
                [str(pyx), *(str(c) for c in sorted(CYTHON_DIR.glob(f"{pyx.stem}_simd_*.c")))],
                include_dirs=[np.get_include(), str(CYTHON_DIR)],
                depends=[str(h) for h in sorted(CYTHON_DIR.glob("*.h"))],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                extra_compile_args=compile_args,
                extra_link_args=link_args,
            )
        )
    return cythonize(
        exts,
        compiler_directives=COMPILER_DIRECTIVES,
        quiet=True,
    )


setup(ext_modules=extensions())
