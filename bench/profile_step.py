"""Where one DeepConvNet training step spends its time: fastconv, part by part, next to
PyTorch's profiler on the same network.

    python bench/profile_step.py [--backend cython] [--threads 2] [--steps 20] [--no-torch]
                                 [--isa sse|avx2|avx512]

Prints, for fastconv: the median time of every layer's forward and backward, the softmax
loss, the Adam update and what is left (Python, allocation, copies) as a share of the
whole step, with GFLOP/s per convolution next to this machine's SGEMM; then PyTorch's
own profiler table (self CPU time per op) for the same step, and the ratio of the two
step times measured alternately in one process.
"""
import argparse
import time
from collections import defaultdict

import numpy as np

import fastconv as fc
from fastconv import models, optim
from fastconv._bench import add_isa_argument, deepconvnet, isa_line, run_at_isa
from fastconv._info import describe

BATCH = 100


def sgemm_gflops(n=2048, repeat=5):
    """This machine's float32 GEMM rate through NumPy's BLAS, GFLOP/s (best of ``repeat``)."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = a.T.copy()
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeat))
    return 2 * n**3 / best / 1e9


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class Instrumented:
    """Wraps every layer's forward/backward of ``net`` and the optimizer with timers;
    ``flops`` holds the forward FLOPs of each convolution (from the shared DeepConvNet
    table ``dcn``, in the net's order), ``first_conv`` the name of the one without dx."""

    def __init__(self, net, opt, dcn):
        self.net, self.opt = net, opt
        self.times = defaultdict(list)
        self.flops = {}
        self.names = []
        counts = defaultdict(int)
        convs = iter(dcn.convs)
        for layer in list(net.layers) + [net.last_layer]:
            kind = type(layer).__name__
            counts[kind] += 1
            name = f"{kind}{counts[kind]}"
            self.names.append(name)
            if getattr(getattr(layer, "W", None), "ndim", 0) == 4:
                self.flops[name] = next(convs).flops
            self._wrap(layer, "forward", f"{name} fwd")
            self._wrap(layer, "backward", f"{name} bwd")
        self.first_conv = next(iter(self.flops))
        update = opt.update

        def timed_update(params, grads):
            t0 = time.perf_counter()
            update(params, grads)
            self.times["Adam update"].append(time.perf_counter() - t0)

        opt.update = timed_update

    def _wrap(self, layer, method, key):
        fn = getattr(layer, method)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            self.times[key].append(time.perf_counter() - t0)
            return out

        setattr(layer, method, timed)


def fastconv_profile(backend, dtype, steps, x, t, peak):
    net = models.DeepConvNet(dtype=dtype, rng=0)
    opt = optim.Adam()
    with fc.use_backend(backend):
        for _ in range(3):
            opt.update(net.params, net.gradient(x, t))
        inst = Instrumented(net, opt, deepconvnet.shapes(x.shape[0]))
        totals = []
        for _ in range(steps):
            t0 = time.perf_counter()
            opt.update(net.params, net.gradient(x, t))
            totals.append(time.perf_counter() - t0)
    step = float(np.median(totals))
    print(f"\nfastconv ({backend}, {np.dtype(dtype).name}, batch {BATCH}): step "
          f"{step * 1e3:.1f} ms (median of {steps})")
    print(f"{'part':<22}{'ms':>8}{'share':>8}{'GFLOP/s':>10}{'of SGEMM':>10}")
    accounted = 0.0
    keys = [k for n in inst.names for k in (f"{n} fwd", f"{n} bwd")] + ["Adam update"]
    for key in keys:
        if key not in inst.times:
            continue
        ms = float(np.median(inst.times[key]))
        accounted += ms
        name = key.split()[0]
        rate = ""
        if name in inst.flops:
            flop = inst.flops[name] * (1 if key.endswith("fwd") else 2)
            if key.endswith("bwd") and name == inst.first_conv:
                flop = inst.flops[name]  # no dx for the first layer
            gf = flop / ms / 1e9
            rate = f"{gf:10.1f}{gf / peak:10.0%}"
        print(f"{key:<22}{ms * 1e3:8.2f}{ms / step:8.0%}{rate}")
    other = step - accounted
    print(f"{'other (Python, glue)':<22}{other * 1e3:8.2f}{other / step:8.0%}")
    total_flops = sum(inst.flops.values()) * 3 - inst.flops[inst.first_conv]
    print(f"conv work {total_flops / 1e9:.2f} GFLOP per step; whole step at "
          f"{total_flops / step / 1e9:.1f} GFLOP/s ({total_flops / step / 1e9 / peak:.0%} of SGEMM)")
    return net, opt


def torch_profile(torch, dtype, steps, x, t):
    torch.manual_seed(0)
    net = deepconvnet.torch_net(torch, dtype)
    opt = torch.optim.Adam(net.parameters())
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(net(xt), tt).backward()
        opt.step()

    for _ in range(3):
        step()
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    print(f"\nPyTorch {torch.__version__} profiler, {steps} steps (self CPU time per op):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=16))
    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--no-torch", action="store_true")
    add_isa_argument(parser)
    args = parser.parse_args(argv)
    run_at_isa(args.isa)

    fc.set_num_threads(args.threads)
    dtype = np.dtype(args.dtype).type
    dcn = deepconvnet.shapes(BATCH)
    rng = np.random.default_rng(0)
    x = rng.random(dcn.x).astype(dtype)
    t = rng.integers(0, dcn.linears[-1].M, BATCH)
    peak = sgemm_gflops()
    backend = fc._backend.resolve(args.backend)
    print("\n".join(describe()))
    print(isa_line(False))
    print(f"SGEMM 2048^3 through NumPy's BLAS: {peak:.0f} GFLOP/s on {args.threads} threads")
    net, opt = fastconv_profile(backend, dtype, args.steps, x, t, peak)

    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("\nPyTorch not installed: `pip install torch==2.13.0` for the comparison")
    if torch is not None:
        print(isa_line(True))
        torch.set_num_threads(args.threads)
        torch_step = torch_profile(torch, dtype, args.steps, x, t)
        fc_times, torch_times = [], []
        with fc.use_backend(backend):
            for _ in range(args.steps):
                fc_times.append(_timed(lambda: opt.update(net.params, net.gradient(x, t))))
                torch_times.append(_timed(torch_step))
        ratio = np.median(fc_times) / np.median(torch_times)
        print(f"alternating {args.steps} steps each: fastconv {np.median(fc_times) * 1e3:.1f} ms, "
              f"PyTorch {np.median(torch_times) * 1e3:.1f} ms, fastconv / PyTorch = {ratio:.2f}")


if __name__ == "__main__":
    main()
