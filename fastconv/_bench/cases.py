"""The rows of ``fastconv bench``: one :class:`Case` per kernel and shape of the book's
DeepConvNet, each with its fixed-seed inputs and a callable per backend (PyTorch's too)."""
import math

import numpy as np

import fastconv as fc
from fastconv import functional

from . import deepconvnet
from .integrations import integration_cases
from .row import Case, Unavailable, fmt


def _torch():
    try:
        import torch
    except ImportError as err:
        raise Unavailable(f"torch not importable ({err})") from None
    return torch


def _tt(torch, a, grad=False):
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.requires_grad_(True) if grad else t


# ---- im2col / col2im
def _im2col_case(conv, backward):
    """im2col (or col2im) of ``conv``'s input, a :class:`deepconvnet.Conv`."""
    shape, k, s, p = conv.x_shape, conv.k, conv.stride, conv.pad
    N, C, H, W = shape
    _, _, OH, OW = conv.out_shape

    def inputs(dtype, rng):
        x = rng.standard_normal(shape).astype(dtype)
        col = rng.standard_normal((N * OH * OW, C * k * k)).astype(dtype)
        return dict(x=x, col=col)

    if not backward:
        def make(backend, a):
            return lambda: fc.im2col(a["x"], k, k, s, p, backend=backend)
    else:
        def make(backend, a):
            return lambda: fc.col2im(a["col"], shape, k, k, s, p, backend=backend)

    def make_torch(a):
        torch = _torch()
        F = torch.nn.functional
        if not backward:
            x = _tt(torch, a["x"])
            return lambda: F.unfold(x, k, padding=p, stride=s)
        col = _tt(torch, a["col"].reshape(N, OH * OW, C * k * k).transpose(0, 2, 1))
        return lambda: F.fold(col, (H, W), k, padding=p, stride=s)

    name = "col2im" if backward else "im2col"
    return Case(name, "im2col", (name,), f"{fmt(shape)} {k}x{k} s{s} p{p}", inputs, make,
                make_torch, note="torch: F.unfold/F.fold (different layout)")


# ---- conv
def conv_case(conv, backward):
    N, C, H, W, FN, k, s, pad = conv
    flops = conv.flops * (3 if backward else 1)

    def inputs(dtype, rng):
        return dict(
            x=rng.standard_normal((N, C, H, W)).astype(dtype),
            W=(rng.standard_normal((FN, C, k, k)) * math.sqrt(2.0 / (C * k * k))).astype(dtype),
            b=(0.1 * rng.standard_normal(FN)).astype(dtype),
            dout=rng.standard_normal(conv.out_shape).astype(dtype),
        )

    def make(backend, a):
        if not backward:
            return lambda: fc.conv2d(a["x"], a["W"], a["b"], s, pad, backend=backend)

        def step():
            out = fc.conv2d(a["x"], a["W"], a["b"], s, pad, backend=backend)
            return (out,) + tuple(fc.conv2d_backward(a["dout"], a["x"], a["W"], s, pad,
                                                     backend=backend))

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
    shape = f"{fmt((N, C, H, W))}->{FN} p{pad}"
    return Case(kernel, "conv", ops, shape, inputs, make, make_torch, flops)


# ---- pooling
def _pool_case(pool, kind, backward):
    shape, k, s = pool.x_shape, pool.k, pool.stride
    fwd_op, bwd_op = {"max": (fc.max_pool2d, fc.max_pool2d_backward),
                      "avg": (fc.avg_pool2d, fc.avg_pool2d_backward)}[kind]

    def inputs(dtype, rng):
        return dict(x=rng.standard_normal(shape).astype(dtype),
                    dout=rng.standard_normal(pool.out_shape).astype(dtype))

    def make(backend, a):
        if not backward:
            return lambda: fwd_op(a["x"], k, k, s, 0, backend=backend)
        if kind == "max":
            def step():
                out, arg = fwd_op(a["x"], k, k, s, 0, backend=backend)
                return out, bwd_op(a["dout"], arg, shape, k, k, s, 0, backend=backend)
        else:
            def step():
                return (fwd_op(a["x"], k, k, s, 0, backend=backend),
                        bwd_op(a["dout"], shape, k, k, s, 0, backend=backend))
        return step

    def make_torch(a):
        torch = _torch()
        F = torch.nn.functional
        x = _tt(torch, a["x"], grad=backward)
        torch_pool = ((lambda t: F.max_pool2d(t, k, s, return_indices=True)) if kind == "max"
                      else (lambda t: F.avg_pool2d(t, k, s)))
        if not backward:
            def fwd():
                with torch.inference_mode():
                    out = torch_pool(x)
                # torch's indices count positions in the whole plane, not in the window:
                # not compared with fastconv's argmax
                return (out[0], None) if kind == "max" else out
            return fwd
        dout = _tt(torch, a["dout"])

        def step():
            out = torch_pool(x)
            out = out[0] if kind == "max" else out
            return out, torch.autograd.grad(out, (x,), dout)[0]

        return step

    name = f"{kind}_pool2d"
    ops = (name, f"{name}_backward") if backward else (name,)
    kernel = name + ("+bwd" if backward else "")
    return Case(kernel, "pool", ops, f"{fmt(shape)} {k}x{k} s{s}", inputs, make, make_torch)


def _adaptive_case(shape, size, backward):
    """Adaptive average pooling of ``shape`` to ``size`` (OH, OW); ``size`` None: global."""
    N, C = shape[:2]
    out_shape = (N, C) + (size or (1, 1))

    def inputs(dtype, rng):
        return dict(x=rng.standard_normal(shape).astype(dtype),
                    dout=rng.standard_normal(out_shape).astype(dtype))

    def make(backend, a):
        if size is None:
            def step():
                out = fc.global_avg_pool2d(a["x"], backend=backend)
                return (out, fc.global_avg_pool2d_backward(a["dout"], shape, backend=backend)
                        ) if backward else out
        else:
            def step():
                out = fc.adaptive_avg_pool2d(a["x"], size, backend=backend)
                return (out, fc.adaptive_avg_pool2d_backward(a["dout"], shape, size,
                                                             backend=backend)
                        ) if backward else out
        return step

    def make_torch(a):
        torch = _torch()
        F = torch.nn.functional
        x = _tt(torch, a["x"], grad=backward)
        if not backward:
            def fwd():
                with torch.inference_mode():
                    return F.adaptive_avg_pool2d(x, size or 1)
            return fwd
        dout = _tt(torch, a["dout"])

        def step():
            out = F.adaptive_avg_pool2d(x, size or 1)
            return out, torch.autograd.grad(out, (x,), dout)[0]

        return step

    name = "global_avg_pool2d" if size is None else "adaptive_avg_pool2d"
    ops = (name, f"{name}_backward") if backward else (name,)
    kernel = name + ("+bwd" if backward else "")
    what = "" if size is None else f" -> {size[0]}x{size[1]}"
    return Case(kernel, "pool", ops, fmt(shape) + what, inputs, make, make_torch)


# ---- fused multiply-accumulate
def _linear_case(lin, backward):
    N, D, M, relu = lin
    flops = lin.flops * (3 if backward else 1)

    def inputs(dtype, rng):
        return dict(x=rng.standard_normal((N, D)).astype(dtype),
                    W=(rng.standard_normal((D, M)) * math.sqrt(2.0 / D)).astype(dtype),
                    b=(0.1 * rng.standard_normal(M)).astype(dtype),
                    dout=rng.standard_normal((N, M)).astype(dtype))

    def make(backend, a):
        if not backward:
            return lambda: fc.linear(a["x"], a["W"], a["b"], relu, backend=backend)

        def step():
            out = fc.linear(a["x"], a["W"], a["b"], relu, backend=backend)
            grads = fc.linear_backward(a["dout"], a["x"], a["W"],
                                       relu_out=out if relu else None, backend=backend)
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
    return Case(kernel, "linear", ops, shape, inputs, make, make_torch, flops)


# ---- data augmentation
def _shift_flip_case(shape):
    N = shape[0]

    def inputs(dtype, rng):
        return dict(x=rng.standard_normal(shape).astype(dtype),
                    dy=rng.integers(-2, 3, N), dx=rng.integers(-2, 3, N),
                    flip=rng.integers(0, 2, N).astype(bool))

    def make(backend, a):
        return lambda: functional.shift_flip(a["x"], a["dy"], a["dx"], a["flip"],
                                             backend=backend)

    return Case("shift_flip", "augment", ("shift_flip",), f"{fmt(shape)} +-2px", inputs, make)


# ---- DeepConvNet
def _model_case(dcn, train):
    def inputs(dtype, rng):
        classes = dcn.linears[-1].M
        return dict(x=rng.random(dcn.x).astype(dtype), t=rng.integers(0, classes, dcn.x[0]),
                    dtype=dtype)

    def make(backend, a):
        with fc.use_backend(backend):
            # the same seeded weights for every backend, so predictions can be compared
            net = fc.models.DeepConvNet(dtype=a["dtype"], rng=0)
        if not train:
            def predict():
                with fc.use_backend(backend):
                    return net.predict(a["x"])

            return predict
        opt = fc.optim.Adam()

        def step():
            with fc.use_backend(backend):
                opt.update(net.params, net.gradient(a["x"], a["t"]))

        return step

    def make_torch(a):
        torch = _torch()
        net = deepconvnet.torch_net(torch, a["dtype"])
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
    return Case(kernel, "model", (), f"DeepConvNet N={dcn.x[0]} {what}", inputs, make,
                make_torch, dcn.flops(train),
                note="torch predictions are not compared (other weights, inverted dropout)")


def im2col_conv(N=100):
    """The convolution whose input the im2col rows unfold: DeepConvNet's second, on the
    net's largest activations."""
    return deepconvnet.shapes(N).convs[1]


def build_cases(N=100):
    """Every row of the bench, in table order (the book's DeepConvNet at batch ``N``)."""
    dcn = deepconvnet.shapes(N)
    cases = [_im2col_case(im2col_conv(N), False), _im2col_case(im2col_conv(N), True)]
    for backward in (False, True):
        cases += [conv_case(c, backward) for c in dcn.convs]
    for backward in (False, True):
        cases += [_pool_case(p, "max", backward) for p in dcn.pools]
    cases += [_pool_case(dcn.pools[0], "avg", b) for b in (False, True)]
    # a ResNet-style head on the last pool's input, and bins that do not tile its first
    cases += [_adaptive_case(dcn.pools[-1].x_shape, None, b) for b in (False, True)]
    cases += [_adaptive_case(dcn.pools[0].x_shape, (5, 5), b) for b in (False, True)]
    for backward in (False, True):
        cases += [_linear_case(lin, backward) for lin in dcn.linears]
    cases.append(_shift_flip_case(dcn.x))
    cases += [_model_case(dcn, True), _model_case(dcn, False)]
    return cases + integration_cases(64)


def covered_ops():
    """The public ops that ``fastconv bench`` times (tests check every public kernel is here)."""
    return sorted({op for case in build_cases() for op in case.ops})


def select(cases, names):
    """Cases whose kernel label, family or one of whose ops is in ``names``."""
    if not names:
        return cases
    want = set(names)
    return [c for c in cases if want & ({c.kernel, c.family} | set(c.ops))]
