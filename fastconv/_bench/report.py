"""What ``fastconv bench`` prints and stores: the ratios of a timed row, the table, its
legend, the notes under it, the im2col memory floor and the machine header."""
import os
import platform

import numpy as np

import fastconv

from .row import fmt

#: Relative errors against the reference above these are listed under the table.
REL_ERR_NOTE = {"float32": 1e-4, "float64": 1e-10}


def derive(row):
    """Add speedups over the reference, time ratios to torch and GFLOP/s to a row of
    :func:`~fastconv._bench.timing.time_case`; returns it."""
    t = row["time_s"]
    ref, tch = t.get("numpy"), t.get("torch")
    row["speedup_vs_reference"] = {b: ref / v for b, v in t.items() if ref and b != "numpy"}
    row["time_ratio_vs_torch"] = {b: v / tch for b, v in t.items()
                                  if tch and b not in ("torch", "numpy")}
    if row["flops"]:
        row["gflops"] = {b: row["flops"] / v / 1e9 for b, v in t.items()}
    return row


def _ratio(v):
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def format_table(rows, backends):
    """The aligned text table of the timed rows."""
    compiled = [b for b in backends if b not in ("numpy", "torch")]
    has_torch = "torch" in backends
    head = ["kernel", "shape"] + [f"{'ref' if b == 'numpy' else b} ms" for b in backends]
    head += [f"{b} x" for b in compiled + (["torch"] if has_torch else [])]
    if has_torch:
        head += [f"{b}/torch" for b in compiled]
    head += ["GFLOP/s"]
    lines = []
    for row in rows:
        t = row["time_s"]
        cells = [row["kernel"], row["shape"]]
        cells += [f"{t[b] * 1e3:.2f}" if b in t else "-" for b in backends]
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

    def line(cells):
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(head), "  ".join("-" * w for w in widths)] + [line(c) for c in lines])


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


def _grouped(entries):
    """``(kernel, backend, text, shape)`` -> one line per (kernel, backend, text)."""
    groups = {}
    for kernel, backend, text, shape in entries:
        groups.setdefault((kernel, backend, text), []).append(shape)
    return [f"{k}{f' [{b}]' if b else ''} ({len(v)} row{'s' * (len(v) > 1)}): {text}"
            for (k, b, text), v in groups.items()]


def notes(rows, dtype):
    """Lines under the table: rows and backends that could not run here, and errors
    against the reference above :data:`REL_ERR_NOTE`."""
    entries = []
    for row in rows:
        k, shape = row["kernel"], row["shape"]
        if not row["time_s"] and "numpy" in row["skipped"]:  # no reference: no row
            entries.append((k, "", row["skipped"]["numpy"], shape))
            continue
        entries += [(k, b, why, shape) for b, why in row["skipped"].items()
                    if b != "torch" or not why.startswith("no torch")]
        for b, e in row["max_rel_err"].items():
            if e is not None and e > REL_ERR_NOTE[dtype]:
                why = (f"max error {e:.2g} relative to max |reference| "
                       f"(abs {row['max_abs_err'][b]:.2g})")
                entries.append((k, b, why, shape))
    return _grouped(entries)


def failures(rows):
    """One line per kernel, backend and error of the calls that raised."""
    return _grouped((r["kernel"], b, why, r["shape"])
                    for r in rows for b, why in r["failed"].items())


def floor_text(floor):
    """The lines of :func:`~fastconv._bench.timing.im2col_floor`'s result."""
    ms = floor["ms"]
    k, _, p = floor["window"]
    copy = ms["np.copyto"]
    lines = [f"im2col {fmt(floor['shape'])} {k}x{k} p{p} against the memory floor "
             f"({floor['bytes'] / 1e6:.0f} MB copied by np.copyto: {copy:.2f} ms)"]
    lines += [f"  {name:<14}{v:8.2f} ms  {v / copy:5.2f}x the copy" for name, v in ms.items()
              if name != "np.copyto"]
    return "\n".join(lines)


def machine_info(threads, backends):
    """Versions, threads and backends, for the JSON header."""
    info = dict(python=platform.python_version(), platform=platform.platform(),
                machine=platform.machine(), cpus=os.cpu_count(), threads=threads,
                backends=list(backends), numpy=np.__version__)
    for mod in ("numba", "scipy", "Cython", "torch", "threadpoolctl"):
        try:
            info[mod.lower()] = __import__(mod).__version__
        except ImportError:
            info[mod.lower()] = None
    try:
        from fastconv._info import describe

        info["describe"] = describe()
    except Exception as e:  # describe() must not stop a bench run
        info["describe"] = [f"describe() failed: {e}"]
    info["fastconv"] = fastconv.__version__
    return info
