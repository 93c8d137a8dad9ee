"""Build the Cython kernels in kernels/cython_backend/ (OpenMP when the compiler has it)."""
import os
import shlex
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import importlib.util

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


def simd_units():
    """One C translation unit per instruction-set level for conv's direct kernels, written
    under build/ from the tables the Python side uses (``_isa.C_TARGETS``,
    ``_conv_plan.BLOCKS``), so the compiled block shapes cannot drift from them. A file
    is rewritten only when its text changes (no needless rebuild)."""
    isa, plan = _load("_isa"), _load("_conv_plan")
    out = Path("build") / "fastconv_simd"
    out.mkdir(parents=True, exist_ok=True)
    units = []
    for level in isa.LEVELS:
        b, target = plan.BLOCKS[level], isa.C_TARGETS[level]
        lines = ["/* Written by setup.py from kernels/_isa.py and kernels/_conv_plan.py. */",
                 f"#define FC_LEVEL {level}", f"#define FC_VBYTES {b.vbytes}",
                 f"#define FC_FWD_F {b.fwd_f}", f"#define FC_FWD_V {b.fwd_v}",
                 f"#define FC_DW_F {b.dw_f}", f"#define FC_DW_C {b.dw_c}",
                 f"#define FC_DW3_C {b.dw3_c}", f"#define FC_FV_F {b.fv_f}",
                 f"#define FC_FV_P {b.fv_p}", f"#define FC_ONE_V {b.one_v}"]
        if target:
            lines.append(f'#define FC_TARGET "{target}"')
        lines.append('#include "conv_simd_level.h"')
        text = "\n".join(lines) + "\n"
        path = out / f"conv_simd_{level}.c"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        units.append(str(path))
    return units


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
    # compiled once per instruction-set level (simd_units, target attributes) and the
    # level is chosen at import (kernels/_isa.py).
    compile_args = ["-O3", "-fno-math-errno"]
    link_args = []
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    if openmp:
        compile_args.append("-fopenmp")
        link_args.append("-fopenmp")
    if BOUNDSCHECK != "0":
        macros.append(("FC_BOUNDSCHECK", "1"))
    if BOUNDSCHECK == "asan":
        if not _compiles(["-fsanitize=address"]):
            raise SystemExit(
                "FASTCONV_BOUNDSCHECK=asan: the C compiler cannot build with "
                "-fsanitize=address; use FASTCONV_BOUNDSCHECK=1 (no AddressSanitizer)"
            )
        compile_args += ["-fsanitize=address", "-fno-omit-frame-pointer"]
        link_args.append("-fsanitize=address")
    exts = []
    for pyx in sorted(CYTHON_DIR.glob("*.pyx")):
        exts.append(
            Extension(
                f"fastconv._kernels.cython_backend.{pyx.stem}",
                [str(pyx), *(simd_units() if pyx.stem == "conv" else [])],
                include_dirs=[np.get_include(), str(CYTHON_DIR)],
                depends=[str(h) for h in sorted(CYTHON_DIR.glob("*.h"))],
                define_macros=macros,
                extra_compile_args=compile_args,
                extra_link_args=link_args,
            )
        )
    return cythonize(
        exts,
        compiler_directives=COMPILER_DIRECTIVES,
        quiet=True,
        build_dir=None if BOUNDSCHECK == "0" else str(Path("build") / "boundscheck"),
    )


setup(ext_modules=extensions())
