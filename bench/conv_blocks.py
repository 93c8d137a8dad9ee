"""Time the direct convolution kernels on DeepConvNet's six convs at the instruction-set
level in force: the measurement behind the block shapes of ``kernels/_isa.TABLE``.

    FASTCONV_ISA=avx2 python bench/conv_blocks.py [--backend cython] [--repeat 15]
                                                  [--algorithm direct|gemm]

Prints, per layer, the median ms of the forward (fused ReLU), of the backward with dx
(without for the first layer, as a network runs it) and their GFLOP/s, then the sums.
Change a level's shapes in its ``kernels/_isa.TABLE`` record (both backends), rebuild, and
run again to compare.
"""
import argparse
import time

import numpy as np

import fastconv as fc
from fastconv._bench import deepconvnet
from fastconv._validation import window


def _median_ms(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="cython", choices=("cython", "numba"))
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--algorithm", default="direct", choices=("direct", "gemm"),
                        help="time the im2col + GEMM algorithm instead (the rule's other "
                             "choice, kernels/_conv_plan.use_direct)")
    args = parser.parse_args()
    fc.set_num_threads(args.threads)
    from fastconv._kernels import _isa

    print(f"{args.algorithm} conv kernels, {args.backend}, level {_isa.level()} (host: "
          f"{', '.join(_isa.host_levels())}), {args.threads} threads, float32, "
          f"batch {args.batch}, median of {args.repeat}")
    rng = np.random.default_rng(0)
    mod = fc._backend.kernels(args.backend, "conv")
    alg = args.algorithm
    tot_f = tot_b = 0.0
    for i, conv in enumerate(deepconvnet.shapes(args.batch).convs):
        _, C, H, W, FN, k, s, p = conv
        g = window(H, W, k, k, (s, s), (p, p), "conv_blocks")
        x = rng.random(conv.x_shape, dtype=np.float32)
        Wt = (rng.standard_normal((FN, C, k, k)) * 0.1).astype(np.float32)
        b = np.zeros(FN, np.float32)
        y = fc.conv2d(x, Wt, b, s, p, relu=True, backend=args.backend)
        dout = rng.standard_normal(y.shape).astype(np.float32)
        need_dx = i > 0
        fwd = _median_ms(lambda: mod.conv2d(x, Wt, b, g, True, algorithm=alg), args.repeat)
        bwd = _median_ms(lambda: mod.conv2d_backward(dout, x, Wt, g, need_dx=need_dx,
                                                     algorithm=alg, relu_out=y), args.repeat)
        flop = conv.flops
        tot_f, tot_b = tot_f + fwd, tot_b + bwd
        print(f"  {C:2d}x{H}x{W} -> {FN:2d} p{p}  fwd {fwd:6.2f} ms {flop / fwd / 1e6:6.1f} GFLOP/s"
              f"   bwd{'' if need_dx else ' (no dx)'} {bwd:6.2f} ms "
              f"{flop * (2 if need_dx else 1) / bwd / 1e6:6.1f} GFLOP/s")
    print(f"  sum: fwd {tot_f:.2f} ms, bwd {tot_b:.2f} ms, total {tot_f + tot_b:.2f} ms")


if __name__ == "__main__":
    main()
