"""The instruction-set level the vector kernels run at, one choice for both backends.

Levels, lowest first: ``'sse'`` (16-byte vectors: SSE2, the x86-64 baseline; NEON on
ARM), ``'avx2'`` (32-byte vectors, AVX2 + FMA, 16 registers) and ``'avx512'`` (64-byte
vectors, AVX-512F, 32 registers). The Cython extension holds the kernels of every level
(one translation unit per level, written by setup.py from ``C_TARGETS`` and
``_conv_plan.BLOCKS``) and calls those of the level in force; Numba
compiles its kernels for it (``configure_numba``). The default is the highest level the
CPU (and its OS) supports; ``FASTCONV_ISA`` forces a lower one, for tests and benchmarks.
"""
import functools
import os
import platform

LEVELS = ("sse", "avx2", "avx512")
#: The GCC/Clang ``target`` attribute each level's C kernels are compiled with (x86; None:
#: the architecture's baseline, SSE2 on x86-64, NEON on ARM).
C_TARGETS = {"sse": None, "avx2": "avx2,fma", "avx512": "avx512f,avx2,fma"}
ENV = "FASTCONV_ISA"

X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")

# LLVM features that need the registers of a level above, as (a substring, prefixes):
# switched off for Numba when a lower level is forced. LLVM clears what depends on a
# cleared feature, but a later '+' in the string would set it again, so every dependant
# is listed.
_ABOVE = {
    "avx2": ("avx512", ("amx", "avx10", "evex512")),
    "sse": ("avx", ("amx", "evex512", "fma", "f16c", "vaes", "vpclmulqdq", "xop", "sha512",
                    "sm3", "sm4")),
}


@functools.cache
def _host_features():
    from llvmlite import binding as llvm

    return llvm.get_host_cpu_features()


def host_levels():
    """The levels this CPU runs, lowest first (LLVM's view, which checks the OS saves
    the wider registers)."""
    if not X86:
        return ("sse",)
    f = _host_features()
    levels = ["sse"]
    if f.get("avx2") and f.get("fma"):
        levels.append("avx2")
        if f.get("avx512f"):
            levels.append("avx512")
    return tuple(levels)


_level = None


def level():
    """The level in force: ``FASTCONV_ISA`` when set, else the host's highest."""
    global _level
    if _level is None:
        have = host_levels()
        want = os.environ.get(ENV, "").strip().lower()
        if not want:
            _level = have[-1]
        elif want not in LEVELS:
            raise ValueError(f"{ENV}={want!r} is not a level; use one of {', '.join(LEVELS)} "
                             f"(this CPU runs {', '.join(have)}), or unset it")
        elif want not in have:
            raise ValueError(f"{ENV}={want!r}: this CPU does not run {want} instructions "
                             f"(it runs {', '.join(have)}); pick one of those or unset it")
        else:
            _level = want
    return _level


def numba_features(lvl):
    """The LLVM feature string Numba must compile with for ``lvl``, or None when the
    host's own features are that level (nothing to restrict)."""
    if not X86 or lvl == host_levels()[-1]:
        return None
    substring, prefixes = _ABOVE[lvl]
    parts = []
    for item in _host_features().flatten().split(","):
        name = item[1:]
        parts.append(f"-{name}" if substring in name or name.startswith(prefixes) else item)
    return ",".join(parts)


def configure_numba():
    """Make Numba compile for the level in force. Its on-disk cache keys every entry by
    the CPU name and feature string (``magic_tuple``), so kernels built at one level are
    never served at another. Must run before Numba's CPU target is first used; if it was
    (Numba code compiled earlier in this process), a forced level is refused."""
    from llvmlite import binding as llvm
    from numba.core import config, registry

    features = numba_features(level())
    if features is None:
        return
    config.CPU_NAME = llvm.get_host_cpu_name()
    config.CPU_FEATURES = features
    if registry.cpu_target.target_context.codegen().magic_tuple()[2] != features:
        raise RuntimeError(
            f"{ENV}={level()}: Numba compiled code in this process before fastconv's Numba "
            f"backend was imported, for the host's level; import fastconv first or unset {ENV}")
