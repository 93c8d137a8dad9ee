"""``fastconv bench``: time every kernel on the book's DeepConvNet shapes (batch 100)
with the NumPy reference, the compiled backends and PyTorch (when installed).

Modules: :mod:`.deepconvnet` (the network's layer shapes and its PyTorch twin),
:mod:`.cases` (the rows), :mod:`.timing`, :mod:`.report` (table, notes, JSON header)
and :mod:`.cli` (the command and the ``--isa`` option of the scripts in ``bench/``).

Methodology
-----------
- Every backend of a row gets the same fixed-seed inputs.
- Warm-up: each backend's callable runs once untimed (Numba compiles or loads its
  cache here), then once timed to choose ``number``, the calls per sample, so one
  sample lasts at least ``target`` seconds.
- Samples are interleaved round-robin between the backends of a row, rotating the
  order every round, so slow drifts of a shared machine hit every backend alike.
  Between two backends the bench sleeps ``SETTLE_S``: OpenMP (libgomp, used by the
  Cython kernels, Numba's omp layer and PyTorch) keeps its threads spinning for a
  while after a parallel region, and those spinning threads would steal the cores
  from the next backend. OpenBLAS's threads spin far longer after a BLAS call (the
  NumPy reference's GEMMs), so after a reference sample the bench sleeps
  ``BLAS_SETTLE_S`` (docs/tuning.md, "Bench method: settling between backends").
- Each sample starts with one untimed call of the same backend, so a sample times the
  steady state rather than threads and caches waking up after the previous backend (the
  first call after an idle pause is much slower than a steady one: same section).
- The reported time is the median of the samples. Speedup = reference time / backend
  time; "vs torch" = backend time / torch time (below 1: faster than PyTorch).
- A backend that cannot run a row here (:class:`Unavailable`: PyTorch or a host
  library absent) is skipped with a note; without the reference the row is skipped.
  A call that raises anything else is listed under "failed" with its traceback on
  stderr, the other rows still run, and the command exits with status 1.
- Instruction-set level: ``--isa`` (or ``FASTCONV_ISA``) runs fastconv at a lower level
  than the host's, and PyTorch at the same one (``ONEDNN_MAX_CPU_ISA`` and
  ``ATEN_CPU_CAPABILITY``, see ``PEER_ENV``), so an AVX-512 host also measures the AVX2
  path against an AVX2 peer. The header says which levels ran.
"""
from .cases import build_cases, covered_ops, select
from .row import Case, Unavailable
from .cli import PEER_ENV, add_isa_argument, configure_parser, isa_line, run, run_at_isa
from .report import legend
from .timing import time_case

__all__ = ["Case", "Unavailable", "build_cases", "covered_ops", "select", "PEER_ENV",
           "add_isa_argument", "configure_parser", "isa_line", "run", "run_at_isa",
           "legend", "time_case"]
