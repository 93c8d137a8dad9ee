"""``fastconv info``: what this installation runs on."""
import os
import platform


def configure_parser(parser):
    parser.add_argument("--threads", type=int, default=None, help="apply set_num_threads first")


def _isa_line():
    from fastconv._kernels import _conv_plan, _isa

    forced = os.environ.get(_isa.ENV)
    level = _isa.level()
    b = _conv_plan.BLOCKS[level]
    return (f"isa: {level}{f' (forced by {_isa.ENV})' if forced else ''}; host runs "
            f"{', '.join(_isa.host_levels())}; direct conv blocks: forward {b.fwd_f} filters x "
            f"{b.fwd_v} vectors (1 x {b.one_v} below {_conv_plan.ONE_BELOW[level]} output "
            f"channels), dW {b.dw_f} x {b.dw3_c} x 3 taps; with filters in vectors "
            f"{b.fv_f} vectors x {b.fv_p} inputs ({b.vbytes}-byte vectors)")


def describe():
    """Lines describing version, backends, threads, OpenMP and BLAS pools."""
    import numpy as np

    import fastconv as fc

    lines = [
        f"fastconv {fc.__version__}  (Python {platform.python_version()}, NumPy {np.__version__})",
        f"backends available: {', '.join(fc.available_backends())}",
        f"current backend: {fc.get_backend()} -> {fc._backend.resolve()}",
        f"threads: {fc.get_num_threads()}",
        _isa_line(),
    ]
    if "numba" in fc.available_backends():
        import numba

        lines.append(
            f"numba {numba.__version__}: {numba.get_num_threads()} threads "
            f"(launched {numba.config.NUMBA_NUM_THREADS})"
        )
    if "cython" in fc.available_backends():
        from fastconv._kernels.cython_backend import _runtime

        omp = "on" if _runtime.openmp_enabled() else "OFF (built without OpenMP: serial)"
        lines.append(f"cython: OpenMP {omp}, {_runtime.get_num_threads()} threads")
    else:
        lines.append(f"cython: unavailable ({fc._backend._import_errors.get('cython')})")
    from fastconv._kernels import _pool

    lines += _pool.status()
    import scipy.linalg  # noqa: F401  (loads SciPy's BLAS so it is listed)
    from threadpoolctl import threadpool_info

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


def run(args):
    import fastconv as fc

    if args.threads is not None:
        fc.set_num_threads(args.threads)
    print("\n".join(describe()))
    return 0
