"""First-call cost: a fresh process imports fastconv and runs one DeepConvNet training step
(float32, batch 100, gradient + Adam), then five more; prints the first-call overhead
beyond a steady-state step.

    python bench/first_step.py cython|numba
    NUMBA_CACHE_DIR=$(mktemp -d) python bench/first_step.py numba    # cold Numba cache
"""
import sys
import time

t0 = time.perf_counter()
import numpy as np  # noqa: E402

import fastconv as fc  # noqa: E402
from fastconv.models import DeepConvNet  # noqa: E402
from fastconv.optim import Adam  # noqa: E402


def main(backend):
    fc.set_backend(backend)
    net = DeepConvNet(dtype=np.float32, rng=0)
    rng = np.random.default_rng(0)
    x = rng.random((100, *net.input_dim), dtype=np.float32)
    t = rng.integers(0, net.output_size, 100)
    opt = Adam()
    def step():
        start = time.perf_counter()
        opt.update(net.params, net.gradient(x, t))
        return time.perf_counter() - start

    step()
    first = time.perf_counter() - t0
    steady = float(np.median([step() for _ in range(5)]))
    print(f"{backend}: import + first step {first:.2f} s, steady step {steady * 1e3:.0f} ms, "
          f"first-call overhead {first - steady:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "auto")
