"""The instruction-set levels the vector kernels run at: one record per level, and the
choice of one level for both backends.

``TABLE`` holds a :class:`Level` per level, lowest first: ``'sse'`` (16-byte vectors:
SSE2, the x86-64 baseline; NEON on ARM), ``'avx2'`` (32-byte vectors, AVX2 + FMA, 16
registers) and ``'avx512'`` (64-byte vectors, AVX-512F, 32 registers). Everything else
derives from it: setup.py writes each level's C translation unit (its target attribute
and block shapes), the C run-time check and the C table the Cython extension looks its
level up in (``write_c_units``); ``_conv_plan`` takes its block shapes and thresholds;
Numba compiles its kernels for the level (``configure_numba``). The default is the highest
level the CPU (and its OS) supports; ``FASTCONV_ISA`` forces a lower one, for tests and
benchmarks. Adding a level: CONTRIBUTING.md.
"""
import functools
import math
import os
import platform
from pathlib import Path
from typing import NamedTuple, Optional


class Blocks(NamedTuple):
    """Register-block shapes of the direct conv kernels at one level (the same in both
    backends; why these: docs/tuning.md, "Block shapes")."""

    vbytes: int  #: bytes in a vector
    fwd_f: int  #: forward/dx block: filters ...
    fwd_v: int  #: ... x vectors of output positions
    dw_f: int  #: weight-gradient blocks: filters ...
    dw_c: int  #: ... x channels, one tap
    dw3_c: int  #: ... x channels, three taps
    fv_f: int  #: direct_filters blocks: vectors of filters ...
    fv_p: int  #: ... x broadcast inputs (output positions; dW: channel-and-tap pairs)
    one_v: int  #: forward/dx block of one filter (``use_one``): vectors of positions


class Level(NamedTuple):
    """One instruction-set level: what the build, the run-time check, Numba and the conv
    plan need to know of it."""

    name: str
    #: GCC/Clang ``target`` attribute of its C unit; None: the architecture's baseline
    c_target: Optional[str]
    #: CPU features it needs, as GCC's ``__builtin_cpu_supports`` and LLVM name them
    cpu_features: tuple
    #: LLVM features above it, switched off for Numba when it is forced below the host's
    #: level: (a substring, name prefixes). LLVM clears what depends on a cleared feature,
    #: but a later '+' would set it again, so every dependant is listed.
    llvm_above: tuple
    registers: int  #: vector registers
    blocks: Blocks  #: the direct conv kernels' block shapes
    #: output channels below which the forward/dx runs one-filter blocks
    #: (docs/tuning.md, "One-filter blocks")
    one_below: int
    #: dW runs with filters in vectors where a packed plane holds fewer than this share of
    #: its outputs (docs/tuning.md, "Convolution plan")
    dw_filters_below: float


TABLE = (
    Level("sse", None, (), ("avx", ("amx", "evex512", "fma", "f16c", "vaes", "vpclmulqdq",
                                    "xop", "sha512", "sm3", "sm4")),
          16, Blocks(16, 4, 2, 4, 2, 1, 2, 4, 6), 4, 0.9),
    Level("avx2", "avx2,fma", ("avx2", "fma"), ("avx512", ("amx", "avx10", "evex512")),
          16, Blocks(32, 4, 3, 4, 2, 1, 2, 6, 8), 3, 0.9),
    Level("avx512", "avx512f,avx2,fma", ("avx512f", "avx2", "fma"), ("", ()),
          32, Blocks(64, 8, 3, 4, 4, 2, 2, 8, 8), 4, math.inf),
)
LEVELS = tuple(lvl.name for lvl in TABLE)
BY_NAME = {lvl.name: lvl for lvl in TABLE}
ENV = "FASTCONV_ISA"

X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


@functools.cache
def _host_features():
    from llvmlite import binding as llvm

    return llvm.get_host_cpu_features()


def host_levels():
    """The levels this CPU runs, lowest first (LLVM's view, which checks the OS saves
    the wider registers)."""
    if not X86:
        return tuple(lvl.name for lvl in TABLE if lvl.c_target is None)
    f = _host_features()
    return tuple(lvl.name for lvl in TABLE if all(f.get(c) for c in lvl.cpu_features))


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
    substring, prefixes = BY_NAME[lvl].llvm_above
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


def write_c_units(out_dir):
    """Write the C side of ``TABLE`` into ``out_dir`` (setup.py calls this): one translation
    unit per level (``conv_simd_<level>.c``: its block shapes and target attribute, then
    the kernels of ``conv_simd_level.h``) and ``conv_simd_levels.h``, the list of levels and
    the run-time check ``conv_simd.h`` includes. A file is rewritten only when its text
    changes (no needless rebuild). Returns the units' paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    head = "/* Written by setup.py from kernels/_isa.py (TABLE); do not edit. */"
    files, units = {}, []
    for lvl in TABLE:
        b = lvl.blocks
        lines = [head, f"#define FC_LEVEL {lvl.name}"]
        lines += [f"#define FC_{field.upper()} {value}" for field, value in b._asdict().items()]
        if lvl.c_target:
            lines.append(f'#define FC_TARGET "{lvl.c_target}"')
        lines.append('#include "conv_simd_level.h"')
        path = out / f"conv_simd_{lvl.name}.c"
        files[path] = lines
        units.append(str(path))
    names = ", ".join(f"fc_simd_{lvl.name}" for lvl in TABLE)
    check = []
    for lvl in reversed(TABLE):
        if lvl.cpu_features:
            test = " && ".join(f'__builtin_cpu_supports("{c}")' for c in lvl.cpu_features)
            check += [f"    if (level == &fc_simd_{lvl.name})", f"        return {test};"]
    files[out / "conv_simd_levels.h"] = [
        head,
        f"extern const fc_simd_level {names};",
        "/* Every level, lowest first: the table conv.pyx looks the level in force up in. */",
        "static const fc_simd_level* const fc_simd_levels[] = {"
        + ", ".join(f"&fc_simd_{lvl.name}" for lvl in TABLE) + "};",
        f"enum {{ fc_simd_level_count = {len(TABLE)} }};",
        "/* 1 when this CPU (and its OS) runs the level's instructions: the guard that keeps",
        " * an illegal instruction out, whatever level is asked for. */",
        "static inline int fc_simd_cpu_supports(const fc_simd_level* level)",
        "{",
        "    if (level->name == NULL)",
        "        return 0;",
        "#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))",
        "    __builtin_cpu_init();",
        *check,
        "#endif",
        "    return 1;",
        "}",
    ]
    for path, lines in files.items():
        text = "\n".join(lines) + "\n"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return units
