"""Data-parallel DeepConvNet training step at 1 and 2 ranks (fastconv.distributed).

    python bench/scaling.py [--ranks 1 2] [--batch 100] [--steps 20] [--dtype float32]

Starts ``mpiexec -n K`` for each rank count and prints, per row, the median over
``--steps`` steps (after 3 warm-up steps) of: the whole step (loss_and_gradient with
its Allreduce, then Adam, each step started together behind a Barrier), the local
forward/backward alone, and one Allreduce of the packed gradient buffer (0.5 MB in
float32). Two rows per K > 1: the same global batch (each rank computes batch / K: strong
scaling) and the same batch per rank (global batch K x batch: weak scaling). Each rank
runs cores // K kernel threads (fastconv.distributed's default; ``--threads`` sets it).

Needs ``pip install "fastconv[mpi]"``. Quote the ratios of one run, with the machine's
instruction-set level (printed); on a shared machine the absolute times are rough.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

_WARMUP = 3


def _worker(args):
    import numpy as np
    from mpi4py import MPI

    import fastconv
    from fastconv.distributed import DataParallel, abort_on_error, world
    from fastconv.models import DeepConvNet
    from fastconv.optim import Adam

    comm = world()
    with abort_on_error(comm):
        dtype = np.dtype(args.dtype)
        net = DeepConvNet(dtype=dtype, rng=0)
        dp = DataParallel(net, comm, threads="auto" if args.threads is None else args.threads)
        rng = np.random.default_rng(0)
        x = rng.random((args.batch, *net.input_dim), dtype=np.float32).astype(dtype)
        t = rng.integers(0, net.output_size, args.batch)
        opt = Adam()
        mine = dp.shard(args.batch)

        def step():
            loss, grads = dp.loss_and_gradient(x, t)
            opt.update(net.params, grads)

        def median_ms(fn, barrier):
            times = []
            for i in range(_WARMUP + args.steps):
                if barrier:
                    comm.Barrier()
                start = time.perf_counter()
                fn()
                if i >= _WARMUP:
                    times.append(time.perf_counter() - start)
            return 1e3 * float(np.median(times))

        step_ms = median_ms(step, True)
        compute_ms = median_ms(lambda: net.loss_and_gradient(x[mine], t[mine]), False)
        buf = np.zeros(sum(p.size for p in net.params.values()) + 1, dtype)
        allreduce_ms = median_ms(lambda: comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM), True)
        if comm.Get_rank() == 0:
            print(json.dumps(dict(ranks=comm.Get_size(), threads=fastconv.get_num_threads(),
                                  batch=args.batch, per_rank=mine.stop - mine.start,
                                  step_ms=step_ms, compute_ms=compute_ms,
                                  allreduce_ms=allreduce_ms, buffer_bytes=buf.nbytes)),
                  flush=True)
    return 0


def _mpiexec():
    beside = Path(sysconfig.get_path("scripts")) / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=100, help="global batch at 1 rank")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--threads", type=int, help="threads per rank (default: cores // K)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)
    mpiexec = _mpiexec()
    if mpiexec is None:
        print('bench/scaling.py: no mpiexec; pip install "fastconv[mpi]"', file=sys.stderr)
        return 2
    from fastconv._kernels import _isa

    print(f"DeepConvNet {args.dtype} training step (gradient + Allreduce + Adam), median of "
          f"{args.steps}; {os.cpu_count()} CPUs, instruction set {_isa.level()}, {mpiexec}")
    runs = []
    for k in args.ranks:
        for global_batch in dict.fromkeys([args.batch, args.batch * k]):
            mode = "same per-rank batch" if global_batch != args.batch else (
                "same global batch" if k > 1 else "baseline")
            cmd = [mpiexec, "-n", str(k), sys.executable, __file__, "--worker",
                   "--batch", str(global_batch), "--steps", str(args.steps),
                   "--dtype", args.dtype]
            if args.threads is not None:
                cmd += ["--threads", str(args.threads)]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if res.returncode != 0:
                print(f"{' '.join(cmd)} exited {res.returncode}:\n{res.stderr}", file=sys.stderr)
                return 1
            runs.append(dict(json.loads(res.stdout.strip().splitlines()[-1]), mode=mode))
    base = next((r for r in runs if r["ranks"] == 1), runs[0])
    base_rate = base["batch"] / base["step_ms"]
    print(f"{'ranks':>5} {'thr/rank':>8} {'batch':>6} {'/rank':>6} {'step ms':>8} "
          f"{'compute ms':>10} {'allreduce ms':>12} {'images/s':>9} {'vs 1 rank':>9}  mode")
    for r in runs:
        rate = r["batch"] / r["step_ms"]
        print(f"{r['ranks']:>5} {r['threads']:>8} {r['batch']:>6} {r['per_rank']:>6} "
              f"{r['step_ms']:>8.1f} {r['compute_ms']:>10.1f} {r['allreduce_ms']:>12.3f} "
              f"{1e3 * rate:>9.0f} {rate / base_rate:>8.2f}x  {r['mode']}")
    print(f"Allreduce buffer: {runs[0]['buffer_bytes']} bytes; 'vs 1 rank' is images/s "
          f"against the first 1-rank row")
    return 0


if __name__ == "__main__":
    sys.exit(main())
