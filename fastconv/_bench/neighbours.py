"""``fastconv bench --suite neighbours``: fastconv's ops next to NumPy's own calls.

In a user's net a fastconv op is followed (or preceded) by NumPy: the affine layer's
matmul, an elementwise pass. Each row times, in one process, the fastconv op alone, the
neighbour alone and the two alternated, and reports the pair's time against the sum of
the two alone (1.0: neither slows the other; above: one library's threads held cores
the other needed). Every backend runs in its own processes (``PROCESSES`` of them), so
one's threads never meet the other's; the row shows the median ratio and the worst.
"""
import json
import statistics
import subprocess
import sys
import time

import numpy as np

#: Separate processes per backend; pairs (and calls of each op alone) per process.
PROCESSES = 3
PAIRS = {"quick": 20, "full": 40}

#: (label, build(backend, rng) -> zero-argument callable): fastconv's side of a pair.
#: The convs: DeepConvNet's second (direct algorithm), a ResNet-style stride-2 3x3 (im2col
#: + GEMM) and CS231n's 7x7 first layer; DeepConvNet's first pool; CS231n's affine layer.
OPS = {
    "conv2d direct 100x16x28x28->16 3x3": ((100, 16, 28, 28), (16, 16, 3, 3), 1, 1),
    "conv2d gemm 64x16x32x32->32 3x3 s2": ((64, 16, 32, 32), (32, 16, 3, 3), 2, 1),
    "conv2d 64x3x32x32->32 7x7 p3": ((64, 3, 32, 32), (32, 3, 7, 7), 1, 3),
    "max_pool2d 100x16x28x28 2x2": ((100, 16, 28, 28),),
    "linear 64x8192 @ 8192x100": ((64, 8192), (8192, 100)),
}
NEIGHBOURS = ("matmul", "elementwise")
ORDERS = ("op,numpy", "numpy,op")


def _op(label, backend, rng):
    import fastconv as fc

    shapes = OPS[label]
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes
              if isinstance(s, tuple)]
    if label.startswith("conv2d"):
        x, W = arrays
        stride, pad = shapes[2], shapes[3]
        return lambda: fc.conv2d(x, W, None, stride, pad, backend=backend)
    if label.startswith("max_pool2d"):
        return lambda: fc.max_pool2d(arrays[0], 2, 2, 2, backend=backend)
    x, W = arrays
    return lambda: fc.linear(x, W, None, backend=backend)


def _neighbour(name, rng):
    """NumPy's side: CS231n's affine + ReLU (A @ B + b, multi-threaded BLAS), or an
    elementwise pass over an activation of 1M values (NumPy's one thread)."""
    if name == "matmul":
        A = rng.standard_normal((64, 8192)).astype(np.float32)
        B = rng.standard_normal((8192, 100)).astype(np.float32)
        b = rng.standard_normal(100).astype(np.float32)
        return lambda: np.maximum(A @ B + b, 0)
    E = rng.standard_normal((64, 16, 32, 32)).astype(np.float32)
    return lambda: np.tanh(E) * 0.5 + E


def _median_call(fn, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def pair_times(op, nb, order, pairs):
    """(op alone, neighbour alone, the two in ``order``): medians of ``pairs`` calls in
    seconds, after one warm-up call of each."""
    first, second = (op, nb) if order == ORDERS[0] else (nb, op)
    op(), nb()
    return (_median_call(op, pairs), _median_call(nb, pairs),
            _median_call(lambda: (first(), second()), pairs))


def measure(backend, pairs, threads):
    """Every row for ``backend`` in this process: {(op, neighbour, order): (op s,
    neighbour s, pair s)}, each a median of ``pairs`` calls."""
    import fastconv as fc

    fc.set_num_threads(threads)
    rng = np.random.default_rng(0)
    out = {}
    for label in OPS:
        op = _op(label, backend, rng)
        for name in NEIGHBOURS:
            nb = _neighbour(name, rng)
            for order in ORDERS:
                out["|".join((label, name, order))] = pair_times(op, nb, order, pairs)
    return out


def run(backends, mode, threads):
    """Rows of every backend, each from ``PROCESSES`` fresh processes taken in turn;
    returns {backend: {row: [(op, neighbour, pair) per process]}}."""
    results = {b: {} for b in backends}
    for _ in range(PROCESSES):
        for b in backends:
            proc = subprocess.run([sys.executable, "-c", WORKER, b, str(PAIRS[mode]),
                                   str(threads)], capture_output=True, text=True)
            if proc.returncode:
                raise RuntimeError(f"neighbours worker ({b}) failed:\n{proc.stderr}")
            for row, t in json.loads(proc.stdout.strip().splitlines()[-1]).items():
                results[b].setdefault(row, []).append(t)
    return results


def table(results):
    """The report: one line per row and backend, times in ms, ratio = pair / (op + numpy)."""
    lines = [f"{'op':36s} {'numpy':11s} {'order':9s} {'backend':7s} {'op ms':>7s} "
             f"{'numpy ms':>8s} {'pair ms':>8s} {'ratio':>6s} {'worst':>6s}"]
    worst = 0.0
    for b, rows in results.items():
        for row, per_proc in rows.items():
            label, name, order = row.split("|")
            ratios = [p / (a + n) for a, n, p in per_proc]
            med = [statistics.median(v) for v in zip(*per_proc)]
            worst = max(worst, statistics.median(ratios))
            lines.append(f"{label:36s} {name:11s} {order:9s} {b:7s} {1e3 * med[0]:7.2f} "
                         f"{1e3 * med[1]:8.2f} {1e3 * med[2]:8.2f} "
                         f"{statistics.median(ratios):6.2f} {max(ratios):6.2f}")
    lines.append(f"largest median ratio: {worst:.2f} (ratio: the pair's median time over the "
                 f"sum of the two alone; median over {PROCESSES} processes, worst: their "
                 f"largest)")
    return lines


#: A worker process: ``python -c WORKER backend pairs threads`` prints its rows as JSON.
WORKER = ("import json, sys\nfrom fastconv._bench import neighbours\n"
          "print(json.dumps(neighbours.measure(sys.argv[1], int(sys.argv[2]), "
          "int(sys.argv[3]))))")
