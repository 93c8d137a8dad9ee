"""Peak memory of one DeepConvNet training step (batch 100, float32, gradient + Adam
update) for fastconv's backends and for PyTorch (CPU), each in a fresh process.

    python bench/peakmem_step.py                      # cython numba numpy torch
    python bench/peakmem_step.py cython torch

Each child process imports only its framework, builds the net (PyTorch's twin of the
same architecture: ``fastconv._bench.deepconvnet.torch_net``), the batch and the
optimizer, runs one step on one image (Numba's JIT or its cache load, PyTorch's lazily
loaded kernels: per-process costs, not per-step ones; measured before this warm-up they
added about 75 MiB to Numba's figure), hands the memory freed since back to the system
(glibc's ``malloc_trim``: what the warm-up freed would otherwise serve the next step
unseen), reads its resident memory (the interpreter, the imports, the compiled code,
the parameters and the batch), then runs two steps on the batch and reports for each
the peak of its resident memory above that (Linux's VmHWM, reset through
``/proc/self/clear_refs`` before the step): the memory training needs, what a step
keeps for the next (activations held by the layers, gradients, the optimizer's state)
included. The second step is the steady state of a training loop. Every framework runs
at fastconv's thread count (``FASTCONV_NUM_THREADS``, else the CPUs this process may
use); the header names fastconv's instruction-set level (its block shapes size the
direct convolution's buffers).
"""
import json
import os
import subprocess
import sys

FRAMEWORKS = ("cython", "numba", "numpy", "torch")
BATCH = 100
MIB = 2.0**20


def _train_step(framework):
    """A callable running one training step of ``framework`` on a fixed batch."""
    import numpy as np

    import fastconv as fc
    from fastconv.models import DeepConvNet
    from fastconv.optim import Adam

    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
    t = rng.integers(0, 10, BATCH)
    if framework != "torch":
        fc.set_backend(framework)
        net, opt = DeepConvNet(dtype=np.float32, rng=0), Adam()
        return lambda n=BATCH: opt.update(net.params, net.gradient(x[:n], t[:n]))
    import torch

    from fastconv._bench.deepconvnet import torch_net

    torch.set_num_threads(fc.get_num_threads())
    torch.manual_seed(0)
    net = torch_net(torch, np.float32)
    opt = torch.optim.Adam(net.parameters())
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)

    def step(n=BATCH):
        net.train()
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(xt[:n]), tt[:n]).backward()
        opt.step()

    return step


def _child(framework):
    import gc

    from fastconv._bench import memory

    step = _train_step(framework)
    step(1)
    gc.collect()
    memory.trim()
    result = {"resident": memory.status("VmRSS")}
    for name in ("first", "steady"):
        memory.reset_peak()
        step()
        result[name] = memory.status("VmHWM") - result["resident"]
    print(json.dumps(result))


def main(frameworks):
    unknown = sorted(set(frameworks) - set(FRAMEWORKS))
    if unknown:
        sys.exit(f"unknown framework(s) {unknown}; choose from {list(FRAMEWORKS)}")
    from fastconv._bench import memory
    from fastconv._kernels import _isa

    try:
        memory.reset_peak()
    except OSError as err:
        sys.exit(f"peak memory is read from /proc/self (Linux 4.0+), unavailable here: {err}")

    print(f"DeepConvNet training step, batch {BATCH}, float32, fastconv at {_isa.level()}; "
          "each framework in its own process.\nPeak resident memory of a step above the "
          "resident memory after setup and a one-image step (MiB):")
    print(f"{'framework':<10} {'after setup':>12} {'first step':>11} {'steady step':>12}")
    for fw in frameworks:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", fw],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            lines = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()
            print(f"{fw:<10} failed: {lines[-1]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{fw:<10} {r['resident'] / MIB:>12.0f} {r['first'] / MIB:>11.1f} "
              f"{r['steady'] / MIB:>12.1f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2])
    else:
        main(sys.argv[1:] or list(FRAMEWORKS))
