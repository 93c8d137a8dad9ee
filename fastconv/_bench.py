"""``fastconv bench``: time every kernel on the book's DeepConvNet shapes (batch 100)
with the NumPy reference, the compiled backends and PyTorch (when installed).

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
  ``BLAS_SETTLE_S``: measured, a 3.5 ms Cython conv took 9.6 ms (median of 20) when
  started 5 ms after a 2-thread NumPy matmul, 3.7 ms with no matmul before it.
- Each sample starts with one untimed call of the same backend, so a sample times the
  steady state rather than threads and caches waking up after the previous backend (the
  first call after 50 ms idle took up to 2.6x a steady call here).
- The reported time is the median of the samples. Speedup = reference time / backend
  time; "vs torch" = backend time / torch time (below 1: faster than PyTorch).
- A row whose op does not exist in this fastconv yet is skipped with a note.
- Instruction-set level: ``--isa`` (or ``FASTCONV_ISA``) runs fastconv at a lower level
  than the host's, and PyTorch at the same one (``ONEDNN_MAX_CPU_ISA`` and
  ``ATEN_CPU_CAPABILITY``, see ``PEER_ENV``), so an AVX-512 host also measures the AVX2
  path against an AVX2 peer. The header says which levels ran.
"""
import importlib
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

from ._progress import Progress

#: Seconds slept between two backends' samples, and after a sample of the NumPy
#: reference, whose OpenBLAS threads keep spinning (see the module docstring).
SETTLE_S = 0.005
BLAS_SETTLE_S = 0.2

#: Settings of a run: seconds per sample, samples per backend (max, min) and the
#: time budget per backend and row that lowers the sample count of slow calls.
MODES = {
    "quick": dict(target=0.01, repeats=5, min_repeats=2, budget=0.4),
    "full": dict(target=0.05, repeats=15, min_repeats=5, budget=4.0),
}


#: Relative errors against the reference above these are listed under the table.
REL_ERR_NOTE = {"float32": 1e-4, "float64": 1e-10}


#: PyTorch's settings that hold oneDNN and ATen's own kernels to a level of fastconv's.
PEER_ENV = {
    "sse": {"ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default"},
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
}


def run_at_isa(level):
    """Make this process run at instruction-set ``level`` (None: as it is): fastconv's
    level is fixed when its kernels load, so when ``level`` differs from
    ``FASTCONV_ISA`` the process starts again with it set. PyTorch, not imported yet,
    is held to the same level."""
    from fastconv._kernels import _isa

    if level is not None and os.environ.get(_isa.ENV) != level:
        os.environ[_isa.ENV] = level
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    lvl = _isa.level()
    if lvl != _isa.host_levels()[-1]:
        for key, value in PEER_ENV[lvl].items():
            os.environ.setdefault(key, value)


def isa_line(with_torch):
    """'isa: fastconv avx2 (host: sse, avx2, avx512); torch avx2' for a header."""
    from fastconv._kernels import _isa

    line = f"isa: fastconv {_isa.level()} (host runs {', '.join(_isa.host_levels())})"
    if with_torch:
        import torch

        line += f"; torch {torch.backends.cpu.get_cpu_capability()}"
    return line


class Unavailable(Exception):
    """A row or a backend cannot run here (op not implemented yet, torch absent)."""


# --------------------------------------------------------------------------- cases


@dataclass
class Case:
    """One row of the table.

    ``make(backend, inputs)`` returns a zero-argument callable whose result is compared
    with the reference's (``None`` results are not compared); ``make_torch(inputs)``
    does the same for PyTorch. ``ops`` are the public fastconv ops the row times.
    """

    kernel: str
    family: str
    ops: tuple
    shape: str
    inputs: object  # (dtype, rng) -> dict of arrays
    make: object
    make_torch: object = None
    flops: float = None
    note: str = ""


def _op(name):
    import fastconv as fc

    fn = getattr(fc, name, None)
    if fn is None:
        fn = getattr(getattr(fc, "functional", None), name, None)
    if fn is None:
        raise Unavailable(f"fc.{name} is not in fastconv or fastconv.functional yet")
    return fn


def _module(name):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise
        return None


def _torch():
    try:
        import torch
    except ImportError as err:
        raise Unavailable(f"torch not importable ({err})") from None
    return torch


def _tt(torch, a, grad=False):
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.requires_grad_(True) if grad else t


def _out(H, k, s, p):
    return (H + 2 * p - k) // s + 1


# ---- im2col / col2im
def _im2col_case(shape, k, s, p, backward):
    N, C, H, W = shape
    OH, OW = _out(H, k, s, p), _out(W, k, s, p)

    def inputs(dtype, rng):
        x = rng.standard_normal(shape).astype(dtype)
        col = rng.standard_normal((N * OH * OW, C * k * k)).astype(dtype)
        return dict(x=x, col=col)

    if not backward:
        def make(backend, a):
            f = _op("im2col")
            return lambda: f(a["x"], k, k, s, p, backend=backend)
    else:
        def make(backend, a):
            f = _op("col2im")
            return lambda: f(a["col"], shape, k, k, s, p, backend=backend)

    def make_torch(a):
        torch = _torch()
        F = torch.nn.functional
        if not backward:
            x = _tt(torch, a["x"])
            return lambda: F.unfold(x, k, padding=p, stride=s)
        col = _tt(torch, a["col"].reshape(N, OH * OW, C * k * k).transpose(0, 2, 1))
        return lambda: F.fold(col, (H, W), k, padding=p, stride=s)

    name = "col2im" if backward else "im2col"
    return Case(name, "im2col", (name,), f"{_fmt(shape)} {k}x{k} s{s} p{p}", inputs, make,
                make_torch, note="torch: F.unfold/F.fold (different layout)")


# ---- conv
def _conv_case(N, C, H, W, FN, pad, backward):
    k, s = 3, 1
    OH, OW = _out(H, k, s, pad), _out(W, k, s, pad)
    flops = 2.0 * N * FN * OH * OW * C * k * k * (3 if backward else 1)

    def inputs(dtype, rng):
        return dict(
            x=rng.standard_normal((N, C, H, W)).astype(dtype),
            W=(rng.standard_normal((FN, C, k, k)) * math.sqrt(2.0 / (C * k * k))).astype(dtype),
            b=(0.1 * rng.standard_normal(FN)).astype(dtype),
            dout=rng.standard_normal((N, FN, OH, OW)).astype(dtype),
        )

    def make(backend, a):
        fwd = _op("conv2d")
        if not backward:
            return lambda: fwd(a["x"], a["W"], a["b"], s, pad, backend=backend)
        bwd = _op("conv2d_backward")

        def step():
            out = fwd(a["x"], a["W"], a["b"], s, pad, backend=backend)
            return (out,) + tuple(bwd(a["dout"], a["x"], a["W"], s, pad, backend=backend))

        return step

    def make_torch(a):
        torch = _torch()
        F = torch.nn.functional
        x, Wt, b = (_tt(torch, a[n], grad=backward) for n in ("x", "W", "b"))
        if not backward:
            def fwd():
                with torch.inference_mode():
                    return F.conv2d(x, Wt, b, stride=s, padding=pad)
            return fwd
        dout = _tt(torch, a["dout"])

        def step():
            out = F.conv2d(x, Wt, b, stride=s, padding=pad)
            return (out,) + torch.autograd.grad(out, (x, Wt, b), dout)

        return step

    kernel = "conv2d+bwd" if backward else "conv2d"
    ops = ("conv2d", "conv2d_backward") if backward else ("conv2d",)
    shape = f"{_fmt((N, C, H, W))}->{FN} p{pad}"
    return Case(kernel, "conv", ops, shape, inputs, make, make_torch, flops)


# ---- pooling
def _pool_case(shape, k, s, kind, backward):
    N, C, H, W = shape
    OH, OW = _out(H, k, s, 0), _out(W, k, s, 0)

    def inputs(dtype, rng):
        return dict(x=rng.standard_normal(shape).astype(dtype),
                    dout=rng.standard_normal((N, C, OH, OW)).astype(dtype))

    def make(backend, a):
        if kind == "max":
            fwd = _op("max_pool2d")
            if not backward:
                return lambda: fwd(a["x"], k, k, s, 0, backend=backend)
            bwd = _op("max_pool2d_backward")

            def step():
                out, arg = fwd(a["x"], k, k, s, 0, backend=backend)
                return out, bwd(a["dout"], arg, shape, k, k, s, 0, backend=backend)

            return step
        fwd = _op("avg_pool2d")
        if not backward:
            return lambda: fwd(a["x"], k, k, s, 0, backend=backend)
        bwd = _op("avg_pool2d_backward")

        def step():
            return fwd(a["x"], k, k, s, 0, backend=backend), bwd(
                a["dout"], shape, k, k, s, 0, backend=backend)

        return step

    def make_torch(a):
        torch = _torch()
        F = torch.nn.functional
        x = _tt(torch, a["x"], grad=backward)
        pool = ((lambda t: F.max_pool2d(t, k, s, return_indices=True)) if kind == "max"
                else (lambda t: F.avg_pool2d(t, k, s)))
        if not backward:
            def fwd():
                with torch.inference_mode():
                    out = pool(x)
                # torch's indices count positions in the whole plane, not in the window:
                # not compared with fastconv's argmax
                return (out[0], None) if kind == "max" else out
            return fwd
        dout = _tt(torch, a["dout"])

        def step():
            out = pool(x)
            out = out[0] if kind == "max" else out
            return out, torch.autograd.grad(out, (x,), dout)[0]

        return step

    name = f"{kind}_pool2d"
    ops = (name, f"{name}_backward") if backward else (name,)
    kernel = name + ("+bwd" if backward else "")
    return Case(kernel, "pool", ops, f"{_fmt(shape)} {k}x{k} s{s}", inputs, make, make_torch)


# ---- fused multiply-accumulate
def _linear_case(N, D, M, relu, backward):
    flops = 2.0 * N * D * M * (3 if backward else 1)

    def inputs(dtype, rng):
        return dict(x=rng.standard_normal((N, D)).astype(dtype),
                    W=(rng.standard_normal((D, M)) * math.sqrt(2.0 / D)).astype(dtype),
                    b=(0.1 * rng.standard_normal(M)).astype(dtype),
                    dout=rng.standard_normal((N, M)).astype(dtype))

    def make(backend, a):
        fwd = _op("linear")
        if not backward:
            return lambda: fwd(a["x"], a["W"], a["b"], relu, backend=backend)
        bwd = _op("linear_backward")

        def step():
            out = fwd(a["x"], a["W"], a["b"], relu, backend=backend)
            grads = bwd(a["dout"], a["x"], a["W"], relu_out=out if relu else None,
                        backend=backend)
            return (out,) + tuple(grads)

        return step

    def make_torch(a):
        torch = _torch()
        F = torch.nn.functional
        x, b = _tt(torch, a["x"], backward), _tt(torch, a["b"], backward)
        Wt = _tt(torch, np.ascontiguousarray(a["W"].T), backward)  # torch keeps (M, D)

        def fwd():
            out = F.linear(x, Wt, b)
            return F.relu(out) if relu else out

        if not backward:
            def run():
                with torch.inference_mode():
                    return fwd()
            return run
        dout = _tt(torch, a["dout"])

        def step():
            out = fwd()
            dx, dWt, db = torch.autograd.grad(out, (x, Wt, b), dout)
            return out, dx, dWt.T, db

        return step

    kernel = "linear+bwd" if backward else "linear"
    ops = ("linear", "linear_backward") if backward else ("linear",)
    shape = f"{N}x{D} @ {D}x{M}" + (" +relu" if relu else "")
    return Case(kernel, "fma", ops, shape, inputs, make, make_torch, flops)


# ---- data augmentation
def _shift_flip_case(shape):
    N = shape[0]

    def inputs(dtype, rng):
        return dict(x=rng.standard_normal(shape).astype(dtype),
                    dy=rng.integers(-2, 3, N), dx=rng.integers(-2, 3, N),
                    flip=rng.integers(0, 2, N).astype(bool))

    def make(backend, a):
        f = _op("shift_flip")
        return lambda: f(a["x"], a["dy"], a["dx"], a["flip"], backend=backend)

    return Case("shift_flip", "augment", ("shift_flip",), f"{_fmt(shape)} +-2px", inputs, make)


# ---- DeepConvNet
#: (C, H, W, FN, pad) of the six 3x3 stride-1 convolutions of the book's DeepConvNet.
DEEPCONVNET_CONVS = [
    (1, 28, 28, 16, 1), (16, 28, 28, 16, 1),
    (16, 14, 14, 32, 1), (32, 14, 14, 32, 2),
    (32, 8, 8, 64, 1), (64, 8, 8, 64, 1),
]
#: Inputs of its three 2x2 stride-2 max pools and its two affine layers (D, M, relu).
DEEPCONVNET_POOLS = [(16, 28, 28), (32, 16, 16), (64, 8, 8)]
DEEPCONVNET_LINEARS = [(1024, 50, True), (50, 10, False)]


def _deepconvnet_flops(N, train):
    fwd = sum(2.0 * N * FN * _out(H, 3, 1, p) * _out(W, 3, 1, p) * C * 9
              for C, H, W, FN, p in DEEPCONVNET_CONVS)
    fwd += sum(2.0 * N * D * M for D, M, _ in DEEPCONVNET_LINEARS)
    return 3 * fwd if train else fwd


def _torch_deepconvnet(torch):
    nn = torch.nn
    layers = []
    for i, (C, _, _, FN, p) in enumerate(DEEPCONVNET_CONVS):
        layers += [nn.Conv2d(C, FN, 3, 1, p), nn.ReLU()]
        if i % 2 == 1:
            layers.append(nn.MaxPool2d(2, 2))
    layers += [nn.Flatten(), nn.Linear(1024, 50), nn.ReLU(), nn.Dropout(0.5),
               nn.Linear(50, 10), nn.Dropout(0.5)]
    return nn.Sequential(*layers)


def _model_case(N, train):
    def inputs(dtype, rng):
        return dict(x=rng.random((N, 1, 28, 28)).astype(dtype), t=rng.integers(0, 10, N),
                    dtype=dtype)

    def make(backend, a):
        import fastconv as fc

        models, optim = _module("fastconv.models"), _module("fastconv.optim")
        if not hasattr(models, "DeepConvNet"):
            raise Unavailable("fc.models.DeepConvNet is not implemented yet")
        with fc.use_backend(backend):
            # the same seeded weights for every backend, so predictions can be compared
            net = models.DeepConvNet(dtype=a["dtype"], rng=0)
        if not train:
            def predict():
                with fc.use_backend(backend):
                    return net.predict(a["x"])

            return predict
        if not hasattr(optim, "Adam"):
            raise Unavailable("fc.optim.Adam is not implemented yet")
        opt = optim.Adam()

        def step():
            with fc.use_backend(backend):
                opt.update(net.params, net.gradient(a["x"], a["t"]))

        return step

    def make_torch(a):
        torch = _torch()
        net = _torch_deepconvnet(torch).to(torch.float32 if a["dtype"] == np.float32
                                           else torch.float64)
        x = _tt(torch, a["x"])
        if not train:
            net.eval()

            def predict():
                with torch.inference_mode():
                    return net(x)

            return predict
        t = torch.from_numpy(a["t"])
        opt = torch.optim.Adam(net.parameters())
        net.train()

        def step():
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(x), t).backward()
            opt.step()

        return step

    kernel = "train_step" if train else "predict"
    what = "gradient + Adam" if train else "predict"
    return Case(kernel, "model", (), f"DeepConvNet N={N} {what}", inputs, make, make_torch,
                _deepconvnet_flops(N, train),
                note="torch predictions are not compared (other weights, inverted dropout)")


def _fmt(shape):
    return "x".join(str(d) for d in shape)


def build_cases(N=100):
    """Every row of the bench, in table order (the book's DeepConvNet at batch ``N``)."""
    cases = [_im2col_case((N, 16, 28, 28), 3, 1, 1, False),
             _im2col_case((N, 16, 28, 28), 3, 1, 1, True)]
    for backward in (False, True):
        cases += [_conv_case(N, C, H, W, FN, p, backward) for C, H, W, FN, p in DEEPCONVNET_CONVS]
    for backward in (False, True):
        cases += [_pool_case((N,) + s, 2, 2, "max", backward) for s in DEEPCONVNET_POOLS]
    cases += [_pool_case((N,) + DEEPCONVNET_POOLS[0], 2, 2, "avg", b) for b in (False, True)]
    for backward in (False, True):
        cases += [_linear_case(N, D, M, relu, backward) for D, M, relu in DEEPCONVNET_LINEARS]
    cases.append(_shift_flip_case((N, 1, 28, 28)))
    cases += [_model_case(N, True), _model_case(N, False)]
    return cases


def im2col_floor(N, dtype, backends, repeats):
    """im2col of DeepConvNet's conv2 input into a preallocated ``out=`` and into a fresh
    array, against ``np.copyto`` of as many bytes between two preallocated arrays (the
    memory floor): medians of interleaved calls, ms and multiples of the copy."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, 16, 28, 28)).astype(dtype)
    src = rng.standard_normal((N * 28 * 28, 16 * 9)).astype(dtype)
    dst = np.empty_like(src)
    calls = {"np.copyto": lambda: np.copyto(dst, src)}
    f = _op("im2col")
    for b in backends:
        out = np.empty_like(src)
        calls[f"{b} out="] = lambda b=b, out=out: f(x, 3, 3, 1, 1, out=out, backend=b)
        calls[b] = lambda b=b: f(x, 3, 3, 1, 1, backend=b)
    times = {k: [] for k in calls}
    for fn in calls.values():
        fn()
    for _ in range(max(5, repeats)):
        for k, fn in calls.items():
            fn()
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
            time.sleep(SETTLE_S)
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    copy = ms["np.copyto"]
    lines = [f"im2col {_fmt(x.shape)} 3x3 p1 against the memory floor "
             f"({src.nbytes / 1e6:.0f} MB copied by np.copyto: {copy:.2f} ms)"]
    lines += [f"  {k:<14}{v:8.2f} ms  {v / copy:5.2f}x the copy" for k, v in ms.items()
              if k != "np.copyto"]
    return dict(ms=ms, text="\n".join(lines))


def covered_ops():
    """The public ops that ``fastconv bench`` times (tests check every public kernel is here)."""
    return sorted({op for case in build_cases() for op in case.ops})


def select(cases, names):
    """Cases whose kernel label, family or one of whose ops is in ``names``."""
    if not names:
        return cases
    want = set(names)
    return [c for c in cases if want & ({c.kernel, c.family} | set(c.ops))]


# --------------------------------------------------------------------------- timing


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
    """Time one row. Returns a dict with per-backend medians (seconds) and notes."""
    cfg = MODES[mode]
    inputs = case.inputs(dtype, np.random.default_rng(seed))
    fns, skipped, expected, err = {}, {}, None, {}
    for b in sorted(backends, key=lambda b: b != "numpy"):
        try:
            if b == "torch":
                fn = case.make_torch(inputs) if case.make_torch is not None else None
            else:
                fn = case.make(b, inputs)
            if b == "torch" and fn is None:
                raise Unavailable("no torch equivalent")
            result = fn()  # warm-up: JIT compile / cache load, first touch of memory
        except Unavailable as e:
            if b == "numpy":  # the op itself is missing: no row, not even torch's
                skipped = {b: str(e) for b in backends}
                break
            skipped[b] = str(e)
            continue
        except ModuleNotFoundError as e:
            if not (e.name or "").startswith("fastconv._kernels."):
                raise
            skipped[b] = f"kernel module {e.name} does not exist yet"
            continue
        except Exception as e:  # a kernel under construction must not stop the bench
            skipped[b] = f"failed: {type(e).__name__}: {e}"
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
        note=case.note,
    )


def _derived(row):
    t = row["time_s"]
    ref, tch = t.get("numpy"), t.get("torch")
    row["speedup_vs_reference"] = {b: ref / v for b, v in t.items() if ref and b != "numpy"}
    row["time_ratio_vs_torch"] = {b: v / tch for b, v in t.items()
                                  if tch and b not in ("torch", "numpy")}
    if row["flops"]:
        row["gflops"] = {b: row["flops"] / v / 1e9 for b, v in t.items()}
    return row


# --------------------------------------------------------------------------- output

def _ratio(v):
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def format_table(rows, backends):
    """The aligned text table of :func:`run`'s rows."""
    compiled = [b for b in backends if b not in ("numpy", "torch")]
    has_torch = "torch" in backends
    timed = [b for b in backends]
    head = ["kernel", "shape"] + [f"{'ref' if b == 'numpy' else b} ms" for b in timed]
    head += [f"{b} x" for b in compiled + (["torch"] if has_torch else [])]
    if has_torch:
        head += [f"{b}/torch" for b in compiled]
    head += ["GFLOP/s"]
    lines = []
    for row in rows:
        t = row["time_s"]
        cells = [row["kernel"], row["shape"]]
        cells += [f"{t[b] * 1e3:.2f}" if b in t else "-" for b in timed]
        sp = row["speedup_vs_reference"]
        cells += [_ratio(sp[b]) if b in sp else "-"
                  for b in compiled + (["torch"] if has_torch else [])]
        if has_torch:
            rt = row["time_ratio_vs_torch"]
            cells += [f"{rt[b]:.2f}" if b in rt else "-" for b in compiled]
        gf = row.get("gflops", {})
        best = [gf[b] for b in compiled if b in gf]
        cells.append(f"{max(best):.3g}" if best else "-")
        lines.append(cells)
    widths = [max(len(str(r[i])) for r in [head] + lines) for i in range(len(head))]

    def fmt(cells):
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    out = [fmt(head), "  ".join("-" * w for w in widths)] + [fmt(c) for c in lines]
    return "\n".join(out)


def legend(backends):
    """What the printed columns mean (the torch sentences only when torch ran)."""
    lines = ["ms: median time per call.  '<b> x' = reference ms / <b> ms (speedup over the "
             "NumPy reference).  GFLOP/s: the faster compiled backend."]
    if "torch" in backends:
        lines.append("'<b>/torch' = <b> ms / torch ms: below 1.00 fastconv is faster than "
                     "PyTorch.  torch runs F.* ops with autograd (forward rows under "
                     "inference_mode).")
    lines.append("'+bwd' rows time forward + backward.")
    return "\n".join(lines)


def row_line(i, n, row):
    """One finished row as a line, printed as it finishes when stdout is a log or a pipe
    (the table comes at the end; a terminal gets the bar on stderr)."""
    times = ", ".join(f"{'ref' if b == 'numpy' else b} {v * 1e3:.2f} ms"
                      for b, v in row["time_s"].items())
    return f"[{i}/{n}] {row['kernel']} {row['shape']}: {times or 'skipped'}"


def machine_info(threads, backends):
    """Versions, threads and backends, for the JSON header."""
    import numpy

    info = dict(python=platform.python_version(), platform=platform.platform(),
                machine=platform.machine(), cpus=os.cpu_count(), threads=threads,
                backends=list(backends), numpy=numpy.__version__)
    for mod in ("numba", "scipy", "Cython", "torch", "threadpoolctl"):
        try:
            info[mod.lower()] = __import__(mod).__version__
        except ImportError:
            info[mod.lower()] = None
    try:
        from ._info import describe

        info["describe"] = describe()
    except Exception as e:  # describe() must not stop a bench run
        info["describe"] = [f"describe() failed: {e}"]
    import fastconv

    info["fastconv"] = fastconv.__version__
    return info


# --------------------------------------------------------------------------- CLI


def configure_parser(parser):
    parser.add_argument("--quick", action="store_true",
                        help="fewer, shorter samples (well under two minutes)")
    parser.add_argument("--kernel", action="append", metavar="NAME",
                        help="only rows of this kernel, op or family (im2col, conv, pool, fma, "
                             "augment, model, conv2d, max_pool2d, train_step, ...); repeatable "
                             "or comma-separated")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every backend and PyTorch (default: fastconv's "
                             "thread count, FASTCONV_NUM_THREADS or the CPU count)")
    parser.add_argument("--batch", type=int, default=100, help="batch size N (default 100)")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    add_isa_argument(parser)


def add_isa_argument(parser):
    from fastconv._kernels._isa import LEVELS

    parser.add_argument("--isa", choices=LEVELS, default=None,
                        help="instruction-set level for fastconv and PyTorch (default: "
                             "FASTCONV_ISA, else the host's highest)")


def run(args):
    run_at_isa(args.isa)
    import fastconv as fc

    t_start = time.perf_counter()
    names = [n for arg in (args.kernel or []) for n in arg.split(",") if n]
    cases = select(build_cases(args.batch), names)
    if not cases:
        known = sorted({n for c in build_cases(args.batch)
                        for n in (c.kernel, c.family) + tuple(c.ops)})
        print(f"fastconv bench: no row matches --kernel {names}; known: {', '.join(known)}",
              file=sys.stderr)
        return 2
    threads = args.threads if args.threads is not None else fc.get_num_threads()
    fc.set_num_threads(threads)
    backends = list(fc.available_backends())
    torch_note = None
    if not args.no_torch:
        try:
            import torch

            torch.set_num_threads(threads)
            backends.append("torch")
        except ImportError as e:
            torch_note = f"torch not importable ({e}): no PyTorch column"
    mode = "quick" if args.quick else "full"
    dtype = np.dtype(args.dtype).type
    print(f"fastconv bench ({mode}, {args.dtype}, {threads} threads, backends: "
          f"{', '.join(backends)})")
    for line in machine_info(threads, backends)["describe"][:2]:
        print("  " + line)
    print("  " + isa_line("torch" in backends))
    if torch_note:
        print("  " + torch_note)
    sys.stdout.flush()

    rows, skipped_rows = [], []
    with Progress(total=len(cases), desc="bench") as bar:
        for case in cases:
            bar.set_postfix(f"{case.kernel} {case.shape}")
            row = _derived(time_case(case, backends, dtype, mode))
            if not sys.stdout.isatty():
                print(row_line(len(rows) + len(skipped_rows) + 1, len(cases), row), flush=True)
            if not row["time_s"]:
                skipped_rows.append(row)
            else:
                rows.append(row)
            bar.update(1)

    print()
    if rows:
        print(format_table(rows, backends))
        print()
        print(legend(backends))
    notes = {}  # (kernel, backend, text) -> rows, so one missing kernel is one line
    for r in skipped_rows:
        notes.setdefault((r["kernel"], "", r["skipped"]["numpy"]), []).append(r["shape"])
    for row in rows:
        for b, why in row["skipped"].items():
            if b != "torch" or not why.startswith("no torch"):
                notes.setdefault((row["kernel"], b, why), []).append(row["shape"])
        for b, e in row["max_rel_err"].items():
            if e is not None and e > REL_ERR_NOTE[args.dtype]:
                why = (f"max error {e:.2g} relative to max |reference| "
                       f"(abs {row['max_abs_err'][b]:.2g})")
                notes.setdefault((row["kernel"], b, why), []).append(row["shape"])
    notes = [f"{k}{f' [{b}]' if b else ''} ({len(v)} row{'s' * (len(v) > 1)}): {why}"
             for (k, b, why), v in notes.items()]
    if notes:
        print("\nskipped / notes:")
        for n in notes:
            print("  " + n)
    floor = None
    if any(c.family == "im2col" for c in cases):
        floor = im2col_floor(args.batch, dtype, [b for b in backends if b not in ("numpy", "torch")],
                             MODES[mode]["repeats"])
        print("\n" + floor["text"])
    wall = time.perf_counter() - t_start
    print(f"\nwall time {wall:.1f} s")
    if args.json:
        doc = dict(machine=machine_info(threads, backends),
                   config=dict(mode=mode, dtype=args.dtype, batch=args.batch,
                               kernels=names, settle_s=SETTLE_S, **MODES[mode]),
                   rows=rows, skipped_rows=skipped_rows, wall_s=wall,
                   im2col_floor=None if floor is None else floor["ms"])
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        print(f"wrote {args.json}")
    return 0

