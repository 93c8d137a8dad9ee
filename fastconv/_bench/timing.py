"""Timing of the bench's rows (see the methodology in :mod:`fastconv._bench`)."""
import math
import statistics
import time
import traceback

import numpy as np

import fastconv as fc

from .row import Unavailable

#: Seconds slept between two backends' samples, and after a sample of the NumPy
#: reference, whose OpenBLAS threads keep spinning (see the package docstring).
SETTLE_S = 0.005
BLAS_SETTLE_S = 0.2

#: Settings of a run: seconds per sample, samples per backend (max, min) and the
#: time budget per backend and row that lowers the sample count of slow calls.
MODES = {
    "quick": dict(target=0.01, repeats=5, min_repeats=2, budget=0.4),
    "full": dict(target=0.05, repeats=15, min_repeats=5, budget=4.0),
}


def _errors(result, expected):
    """(max abs error, that error / max |expected|) over every output, or None."""
    if result is None or expected is None:
        return None
    if not isinstance(result, (tuple, list)):
        result, expected = (result,), (expected,)
    if len(result) != len(expected):
        return None
    err = scale = 0.0
    for r, e in zip(result, expected):
        if r is None or e is None:
            continue
        r = r.detach().numpy() if hasattr(r, "detach") else np.asarray(r)
        e = np.asarray(e, dtype=np.float64)
        if r.size != e.size:
            return None
        err = max(err, float(np.max(np.abs(r.reshape(e.shape).astype(np.float64) - e))))
        scale = max(scale, float(np.max(np.abs(e))))
    return err, err / scale if scale else err


def time_case(case, backends, dtype, mode, seed=0):
    """Time one row.

    Returns a dict with per-backend medians ``time_s`` (seconds), the backends that
    cannot run here (``skipped``: the case raised :class:`Unavailable`), and those whose
    warm-up call raised anything else (``failed``: one line each; ``tracebacks``: the
    whole traceback). A reference that is unavailable skips the whole row.
    """
    cfg = MODES[mode]
    inputs = case.inputs(dtype, np.random.default_rng(seed))
    fns, skipped, failed, tracebacks, expected, err = {}, {}, {}, {}, None, {}
    for b in sorted(backends, key=lambda b: b != "numpy"):
        try:
            if b == "torch" and case.make_torch is None:
                raise Unavailable("no torch equivalent")
            fn = case.make_torch(inputs) if b == "torch" else case.make(b, inputs)
            result = fn()  # warm-up: JIT compile / cache load, first touch of memory
        except Unavailable as e:
            if b == "numpy":  # no reference, no row (not even torch's)
                skipped = {b: str(e) for b in backends}
                break
            skipped[b] = str(e)
            continue
        except Exception as e:  # a crashing kernel is reported and fails the run
            failed[b] = f"{type(e).__name__}: {e}"
            tracebacks[b] = traceback.format_exc()
            continue
        fns[b] = fn
        if b == "numpy":
            expected = result
        elif expected is not None and not (b == "torch" and case.family in ("model", "im2col")):
            err[b] = _errors(result, expected)
    # calibrate: one timed call per backend picks the calls per sample
    number, samples, limit = {}, {b: [] for b in fns}, {}
    for b, fn in fns.items():
        t0 = time.perf_counter()
        fn()
        est = time.perf_counter() - t0
        number[b] = max(1, math.ceil(cfg["target"] / max(est, 1e-7)))
        per_sample = est * number[b]
        limit[b] = int(min(cfg["repeats"], max(cfg["min_repeats"], cfg["budget"] // per_sample)))
    order = list(fns)
    for r in range(max(limit.values(), default=0)):
        rot = order[r % len(order):] + order[:r % len(order)]
        for b in rot:
            if len(samples[b]) >= limit[b]:
                continue
            time.sleep(SETTLE_S)
            fn, n = fns[b], number[b]
            fn()
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[b].append((time.perf_counter() - t0) / n)
            if b == "numpy":
                time.sleep(BLAS_SETTLE_S)
    return dict(
        kernel=case.kernel, family=case.family, ops=list(case.ops), shape=case.shape,
        dtype=np.dtype(dtype).name, flops=case.flops,
        time_s={b: statistics.median(s) for b, s in samples.items()},
        samples_s=samples, number=number,
        max_abs_err={b: e and e[0] for b, e in err.items()},
        max_rel_err={b: e and e[1] for b, e in err.items()}, skipped=skipped,
        failed=failed, tracebacks=tracebacks, note=case.note,
    )


def im2col_floor(conv, dtype, backends, repeats):
    """im2col of ``conv``'s input into a preallocated ``out=`` and into a fresh array,
    against ``np.copyto`` of as many bytes between two preallocated arrays (the memory
    floor): medians of interleaved calls in ms (``ms``), the bytes copied and the shape."""
    k, s, p = conv.k, conv.stride, conv.pad
    N, _, OH, OW = conv.out_shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal(conv.x_shape).astype(dtype)
    src = rng.standard_normal((N * OH * OW, conv.C * k * k)).astype(dtype)
    dst = np.empty_like(src)
    calls = {"np.copyto": lambda: np.copyto(dst, src)}
    for b in backends:
        out = np.empty_like(src)
        calls[f"{b} out="] = lambda b=b, out=out: fc.im2col(x, k, k, s, p, out=out, backend=b)
        calls[b] = lambda b=b: fc.im2col(x, k, k, s, p, backend=b)
    times = {name: [] for name in calls}
    for fn in calls.values():
        fn()
    for _ in range(max(5, repeats)):
        for name, fn in calls.items():
            fn()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            time.sleep(SETTLE_S)
    return dict(ms={name: 1e3 * statistics.median(v) for name, v in times.items()},
                bytes=src.nbytes, shape=x.shape, window=(k, s, p))
