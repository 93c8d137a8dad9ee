"""asv benchmarks of fastconv: every kernel with the NumPy reference, Numba, Cython and
PyTorch (when importable) as the ``backend`` parameter.

asv imports this package before any benchmark module, so the thread pools are fixed
here, before NumPy (OpenBLAS), Numba, libgomp or PyTorch load: every run uses the same
thread count (``FASTCONV_BENCH_THREADS``, default 2, the CI machine's cores), which keeps
results comparable between commits and machines.
"""
import os

THREADS = os.environ.get("FASTCONV_BENCH_THREADS", "2")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMBA_NUM_THREADS", "FASTCONV_NUM_THREADS"):
    os.environ[_var] = THREADS

# PyTorch is held to fastconv's instruction-set level when one is forced (FASTCONV_ISA),
# so its rows compare like with like; imported after the thread counts are fixed.
from fastconv._bench import PEER_ENV  # noqa: E402

for _var, _value in PEER_ENV.get(os.environ.get("FASTCONV_ISA", "").strip().lower(), {}).items():
    os.environ.setdefault(_var, _value)
