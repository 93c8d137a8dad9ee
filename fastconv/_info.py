"""``fastconv info``: what this installation runs on.

It is the command to run when something is wrong, so it reports what it cannot tell
(an invalid ``FASTCONV_*`` variable, a backend that does not import) instead of failing.
"""
import os
import platform


def configure_parser(parser):
    from .cli import thread_count

    parser.add_argument("--threads", type=thread_count, default=None, metavar="N",
                        help="apply set_num_threads(N) first")


def _isa_lines():
    from fastconv._kernels import _conv_plan, _isa

    forced = os.environ.get(_isa.ENV)
    level = _isa.level()
    b = _conv_plan.BLOCKS[level]
    return [f"isa: {level}{f' (forced by {_isa.ENV})' if forced else ''}; host runs "
            f"{', '.join(_isa.host_levels())}; direct conv blocks: forward {b.fwd_f} filters x "
            f"{b.fwd_v} vectors (1 x {b.one_v} below {_conv_plan.ONE_BELOW[level]} output "
            f"channels), dW {b.dw_f} x {b.dw3_c} x 3 taps; with filters in vectors "
            f"{b.fv_f} vectors x {b.fv_p} inputs ({b.vbytes}-byte vectors)"]


def _backend_lines():
    import fastconv as fc

    chosen = fc._backend._global_backend  # what get_backend() would refuse to return
    try:
        runs = fc.get_backend(resolved=True)
    except ValueError:
        runs = "nothing until the variable above is fixed"
    return [f"backends available: {', '.join(fc.available_backends())}",
            f"current backend: {chosen} -> {runs}",
            f"threads: {fc.get_num_threads()}"]


def _runtime_lines():
    import fastconv as fc

    lines = []
    if "numba" in fc.available_backends():
        import numba

        lines.append(f"numba {numba.__version__}: {numba.get_num_threads()} threads "
                     f"(launched {numba.config.NUMBA_NUM_THREADS})")
    if "cython" in fc.available_backends():
        from fastconv._kernels.cython_backend import _runtime

        omp = "on" if _runtime.openmp_enabled() else "OFF (built without OpenMP: serial)"
        lines.append(f"cython: OpenMP {omp}, {_runtime.get_num_threads()} threads")
    else:
        lines.append(f"cython: unavailable ({fc._backend._import_errors.get('cython')})")
    return lines


def _pool_lines():
    from fastconv._kernels import _pool

    return _pool.status()


def _blas_lines():
    import scipy.linalg  # noqa: F401  (loads SciPy's BLAS so it is listed)
    from threadpoolctl import threadpool_info

    lines = []
    for pool in threadpool_info():
        name = pool["internal_api"]
        if pool["user_api"] == "openmp":
            # threadpoolctl reads no version from OpenMP runtimes; the file names it.
            name = os.path.basename(pool["filepath"]).split(".so")[0]
        details = ", ".join(v for v in (pool.get("version") or "version unknown",
                                        pool.get("architecture")) if v)
        lines.append(f"{pool['user_api']}: {name}, {details}, "
                     f"{pool['num_threads']} threads, {pool['filepath']}")
    return lines


def describe():
    """Lines describing version, environment errors, backends, threads, OpenMP and BLAS
    pools; a part that cannot be told says why in its line."""
    import numpy as np

    import fastconv as fc

    lines = [f"fastconv {fc.__version__}  (Python {platform.python_version()}, "
             f"NumPy {np.__version__})"]
    lines += [f"error: {msg}" for msg in fc._backend.environment_errors().values()]
    for part, what in ((_backend_lines, "backends"), (_isa_lines, "isa"),
                       (_runtime_lines, "runtimes"), (_pool_lines, "thread pool"),
                       (_blas_lines, "BLAS")):
        try:
            lines += part()
        except (ImportError, ValueError) as err:
            lines.append(f"{what}: cannot tell ({err})")
    return lines


def run(args):
    import fastconv as fc

    if args.threads is not None:
        fc.set_num_threads(args.threads)
    print("\n".join(describe()))
    return 1 if fc._backend.environment_errors() else 0
