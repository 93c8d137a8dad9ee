"""The ``fastconv bench`` command, and the instruction-set options it shares with the
scripts in ``bench/``."""
import json
import os
import sys
import time

import numpy as np
from tqdm import tqdm

import fastconv as fc
from fastconv.cli import thread_count

from . import nets, neighbours
from .cases import build_cases, im2col_conv, select
from .report import (derive, failures, floor_text, format_table, legend, machine_info, notes,
                     row_line)
from .timing import MODES, SETTLE_S, im2col_floor, time_case

#: PyTorch's settings that hold oneDNN and ATen's own kernels to a level of fastconv's.
PEER_ENV = {
    "sse": {"ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default"},
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
}


SUITES = ("deepconvnet", "nets", "neighbours")


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
    """'isa: fastconv avx2 (host runs sse, avx2, avx512); torch AVX2' for a header."""
    from fastconv._kernels import _isa

    line = f"isa: fastconv {_isa.level()} (host runs {', '.join(_isa.host_levels())})"
    if with_torch:
        import torch

        line += f"; torch {torch.backends.cpu.get_cpu_capability()}"
    return line


def add_isa_argument(parser):
    from fastconv._kernels._isa import LEVELS

    parser.add_argument("--isa", choices=LEVELS, default=None,
                        help="instruction-set level for fastconv and PyTorch (default: "
                             "FASTCONV_ISA, else the host's highest)")


def configure_parser(parser):
    parser.add_argument("--suite", choices=SUITES, default="deepconvnet",
                        help="deepconvnet: every kernel on the book's DeepConvNet (default); "
                             "nets: conv layers of LeNet-5, CS231n, VGG and ResNet against "
                             "PyTorch; neighbours: fastconv ops alternated with NumPy matmul "
                             "and elementwise calls, in separate processes")
    parser.add_argument("--quick", action="store_true",
                        help="fewer, shorter samples (well under two minutes)")
    parser.add_argument("--kernel", action="append", metavar="NAME",
                        help="only rows of this kernel, op or family (im2col, conv, pool, linear, "
                             "augment, model, conv2d, max_pool2d, train_step, ...); repeatable "
                             "or comma-separated")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="dtype the ops run in: inputs and weights (default: float32)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--threads", type=thread_count, default=None,
                        help="threads for every backend and PyTorch (default: fastconv's "
                             "thread count, FASTCONV_NUM_THREADS or the CPU count)")
    parser.add_argument("--batch", type=int, default=100, help="batch size N (default 100)")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    add_isa_argument(parser)


def _time_rows(cases, backends, dtype, mode):
    """Every case timed and derived, in order; a progress bar on stderr when it is a
    terminal, one line per finished row on stdout when that is not; the traceback of a
    call that raised on stderr (once per backend and error)."""
    rows, shown = [], set()
    with tqdm(total=len(cases), desc="bench", unit="row", file=sys.stderr, disable=None) as bar:
        for case in cases:
            bar.set_postfix_str(f"{case.kernel} {case.shape}")
            row = derive(time_case(case, backends, dtype, mode))
            for b, tb in row["tracebacks"].items():
                if (b, row["failed"][b]) not in shown:
                    shown.add((b, row["failed"][b]))
                    bar.write(f"fastconv bench: {case.kernel} {case.shape} [{b}] raised:\n"
                              f"{tb}", file=sys.stderr)
            rows.append(row)
            if not sys.stdout.isatty():
                print(row_line(len(rows), len(cases), row), flush=True)
            bar.update(1)
    return rows


def run(args):
    """Time the selected rows and print the table; 0, or 1 when a kernel raised, or 2
    when ``--kernel`` matches no row."""
    run_at_isa(args.isa)
    t_start = time.perf_counter()
    names = [n for arg in (args.kernel or []) for n in arg.split(",") if n]
    if args.suite == "neighbours":
        return _run_neighbours(args)
    every = build_cases(args.batch) if args.suite == "deepconvnet" else nets.build_cases()
    cases = select(every, names)
    if not cases:
        known = sorted({n for c in every for n in (c.kernel, c.family) + tuple(c.ops)})
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
    print(f"fastconv bench ({args.suite}, {mode}, {args.dtype}, {threads} threads, backends: "
          f"{', '.join(backends)})")
    for line in machine_info(threads, backends)["describe"][:2]:
        print("  " + line)
    print("  " + isa_line("torch" in backends))
    if torch_note:
        print("  " + torch_note)
    sys.stdout.flush()

    rows = _time_rows(cases, backends, dtype, mode)
    timed = [r for r in rows if r["time_s"]]
    print()
    if timed:
        print(format_table(timed, backends))
        print()
        print(legend(backends))
        if args.suite == "nets":
            print("\n".join(nets.summary(timed)))
    for title, lines in (("skipped / notes", notes(rows, args.dtype)),
                         ("failed (tracebacks on stderr)", failures(rows))):
        if lines:
            print(f"\n{title}:")
            for line in lines:
                print("  " + line)
    floor = None
    if any(c.family == "im2col" for c in cases):
        compiled = [b for b in backends if b not in ("numpy", "torch")]
        floor = im2col_floor(im2col_conv(args.batch), dtype, compiled, MODES[mode]["repeats"])
        print("\n" + floor_text(floor))
    wall = time.perf_counter() - t_start
    print(f"\nwall time {wall:.1f} s")
    if args.json:
        doc = dict(machine=machine_info(threads, backends),
                   config=dict(mode=mode, dtype=args.dtype, batch=args.batch,
                               kernels=names, settle_s=SETTLE_S, **MODES[mode]),
                   rows=timed, skipped_rows=[r for r in rows if not r["time_s"]], wall_s=wall,
                   im2col_floor=None if floor is None else floor["ms"])
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        print(f"wrote {args.json}")
    raised = sum(len(r["failed"]) for r in rows)
    if raised:
        print(f"fastconv bench: {raised} row/backend pair{'s' * (raised > 1)} raised (listed "
              f"under 'failed'): exit status 1", file=sys.stderr)
        return 1
    return 0


def _run_neighbours(args):
    """``--suite neighbours``: each compiled backend in its own processes (float32)."""
    threads = args.threads if args.threads is not None else fc.get_num_threads()
    mode = "quick" if args.quick else "full"
    backends = [b for b in fc.available_backends() if b != "numpy"]
    print(f"fastconv bench (neighbours, {mode}, float32, {threads} threads, backends: "
          f"{', '.join(backends)}; {neighbours.PROCESSES} processes each, "
          f"{neighbours.PAIRS[mode]} pairs per process)")
    for line in machine_info(threads, backends)["describe"][:2]:
        print("  " + line)
    print("  " + isa_line(False))
    sys.stdout.flush()
    results = neighbours.run(backends, mode, threads)
    print("\n".join(neighbours.table(results)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=machine_info(threads, backends), suite="neighbours",
                           results=results), f, indent=1)
        print(f"wrote {args.json}")
    return 0
