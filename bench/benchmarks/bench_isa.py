"""The instruction-set level every other result of a run was measured at, recorded with
them: 0 = sse, 1 = avx2, 2 = avx512 (``FASTCONV_ISA`` forces a lower one)."""
from fastconv._kernels import _isa


def track_isa_level():
    return _isa.LEVELS.index(_isa.level())


track_isa_level.unit = "level (0 sse, 1 avx2, 2 avx512)"


def track_host_level():
    return _isa.LEVELS.index(_isa.host_levels()[-1])


track_host_level.unit = "level (0 sse, 1 avx2, 2 avx512)"
