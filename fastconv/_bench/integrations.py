"""Bench rows for :mod:`fastconv.integrations`: one training step of a small CNN written
with each host code base, without fastconv (the ``numpy`` column) and with fastconv's
integration on each compiled backend.

The net, the same in every row: conv 3x3 (16 filters, pad 1) - ReLU - max pool 2x2,
conv 3x3 (32 filters, pad 1) - ReLU - max pool 2x2, affine 1568 -> 10, softmax
cross-entropy, plain SGD update; input (N, 1, 28, 28), float32 by default.

Without fastconv, each host computes the layers as its users do:

* CS231n: the course's NumPy im2col algorithm (index arrays built per call, one fancy
  index gather for im2col, ``np.add.at`` for col2im, the GEMM in BLAS) and its
  reshape-based max pooling, re-expressed below.
* autograd: a convolution written with ``autograd.numpy`` (nine shifted slices of the
  padded input stacked and contracted with ``tensordot``), pooling by reshape and
  ``max``; autograd differentiates it.
* MyGrad: ``mygrad.nnet.conv_nd``, ``relu`` and ``max_pool``.

Every step returns its loss, computed before the update: rows compare it with the
``numpy`` column's on the first call (every column starts from the same weights).
"""
import importlib
import math

import numpy as np

from .._validation import out_size
from .row import Case, Unavailable

#: (input channels, filters) of the two 3x3 convolutions, each padded by 1 and followed
#: by ReLU and a 2x2 max pool; then an affine layer to 10 classes.
CONVS = ((1, 16), (16, 32))
CLASSES = 10
LEARNING_RATE = 0.01
HOSTS = ("cs231n", "autograd", "mygrad")
_NOTES = {
    "cs231n": "numpy column: CS231n's NumPy im2col layers; others: fastconv.integrations.cs231n",
    "autograd": "numpy column: autograd.numpy convolution; others: fastconv.integrations.autograd",
    "mygrad": "numpy column: mygrad.nnet conv_nd/max_pool; others: fastconv.integrations.mygrad",
}


def init_params(rng, dtype=np.float32):
    """He-initialised weights ``W1, b1, W2, b2, W3, b3`` of the small CNN."""
    params = {}
    for i, (C, F) in enumerate(CONVS, 1):
        params[f"W{i}"] = (rng.standard_normal((F, C, 3, 3)) * math.sqrt(2 / (9 * C))).astype(dtype)
        params[f"b{i}"] = np.zeros(F, dtype)
    D = CONVS[-1][1] * 7 * 7
    params["W3"] = (rng.standard_normal((D, CLASSES)) * math.sqrt(2 / D)).astype(dtype)
    params["b3"] = np.zeros(CLASSES, dtype)
    return params


def step_flops(N):
    """Multiply-adds x 2 of a step: the forward's convolutions and affine layer, times 3
    for forward + the two gradients."""
    fwd = 0
    H = 28
    for C, F in CONVS:
        fwd += 2 * N * F * H * H * C * 9
        H //= 2
    fwd += 2 * N * CONVS[-1][1] * H * H * CLASSES
    return 3.0 * fwd


def _host(name):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise
        raise Unavailable(f"{name} is not installed: pip install fastconv[{name}]") from None


# --------------------------------------------------------------------------- shared

def _softmax_loss(scores, t):
    """Mean softmax cross-entropy and its gradient (CS231n's ``softmax_loss``)."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(scores.shape[0])
    dscores = np.exp(log_p)
    dscores[rows, t] -= 1
    dscores /= scores.shape[0]
    return -log_p[rows, t].mean(), dscores


def _sgd(params, grads):
    for k, g in grads.items():
        params[k] -= LEARNING_RATE * g


# --------------------------------------------------------------------------- CS231n

def _window_indices(C, H, W, k, pad, stride):
    """Index arrays (channel, row, column) into the padded input: row ``(c, ky, kx)`` of
    the column matrix, column ``(oy, ox)``."""
    OH, OW = out_size(H, k, stride, pad), out_size(W, k, stride, pad)
    ky = np.repeat(np.arange(k), k)
    kx = np.tile(np.arange(k), k)
    oy = stride * np.repeat(np.arange(OH), OW)
    ox = stride * np.tile(np.arange(OW), OH)
    chan = np.repeat(np.arange(C), k * k)[:, None]
    rows = np.tile(ky, C)[:, None] + oy[None, :]
    cols = np.tile(kx, C)[:, None] + ox[None, :]
    return chan, rows, cols, OH, OW


def _cs231n_conv_forward(x, w, b, pad):
    N, C, H, W = x.shape
    F, _, k, _ = w.shape
    chan, rows, cols, OH, OW = _window_indices(C, H, W, k, pad, 1)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    # (N, C*k*k, OH*OW) -> (C*k*k, OH*OW*N): one column per (output pixel, image)
    x_cols = xp[:, chan, rows, cols].transpose(1, 2, 0).reshape(C * k * k, -1)
    out = (w.reshape(F, -1) @ x_cols + b[:, None]).reshape(F, OH, OW, N).transpose(3, 0, 1, 2)
    return np.ascontiguousarray(out), (x.shape, w, pad, x_cols)


def _cs231n_conv_backward(dout, cache):
    (N, C, H, W), w, pad, x_cols = cache
    F, _, k, _ = w.shape
    db = dout.sum(axis=(0, 2, 3))
    d = dout.transpose(1, 2, 3, 0).reshape(F, -1)
    dw = (d @ x_cols.T).reshape(w.shape)
    chan, rows, cols, OH, OW = _window_indices(C, H, W, k, pad, 1)
    dx_cols = (w.reshape(F, -1).T @ d).reshape(C * k * k, OH * OW, N).transpose(2, 0, 1)
    dxp = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dout.dtype)
    np.add.at(dxp, (slice(None), chan, rows, cols), dx_cols)
    return dxp[:, :, pad:pad + H, pad:pad + W], dw, db


def _cs231n_pool_forward(x):
    """2x2 stride-2 max pooling by reshape (windows that tile the input)."""
    N, C, H, W = x.shape
    blocks = x.reshape(N, C, H // 2, 2, W // 2, 2)
    out = blocks.max(axis=3).max(axis=4)
    return out, (blocks, out)


def _cs231n_pool_backward(dout, cache):
    blocks, out = cache
    hit = blocks == out[:, :, :, None, :, None]
    # tied maxima share the gradient, as in CS231n's reshape method
    share = dout[:, :, :, None, :, None] / hit.sum(axis=(3, 5), keepdims=True)
    dx = np.where(hit, share, 0).astype(dout.dtype, copy=False)
    N, C, OH, _, OW, _ = blocks.shape
    return dx.reshape(N, C, 2 * OH, 2 * OW)


def _cs231n_sandwich_numpy():
    def forward(x, w, b):
        a, conv_cache = _cs231n_conv_forward(x, w, b, 1)
        r = np.maximum(a, 0)
        out, pool_cache = _cs231n_pool_forward(r)
        return out, (conv_cache, a, pool_cache)

    def backward(dout, cache):
        conv_cache, a, pool_cache = cache
        da = np.where(a > 0, _cs231n_pool_backward(dout, pool_cache), 0).astype(dout.dtype)
        return _cs231n_conv_backward(da, conv_cache)

    def affine_forward(x, w, b):  # CS231n's layers.affine_forward
        return x.reshape(x.shape[0], -1) @ w + b, (x, w)

    def affine_backward(dout, cache):
        x, w = cache
        flat = x.reshape(x.shape[0], -1)
        return (dout @ w.T).reshape(x.shape), flat.T @ dout, dout.sum(axis=0)

    return forward, backward, affine_forward, affine_backward


def _cs231n_sandwich_fastconv():
    from fastconv.integrations import cs231n

    conv_param = {"stride": 1, "pad": 1}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}

    def forward(x, w, b):
        return cs231n.conv_relu_pool_forward(x, w, b, conv_param, pool_param)

    return (forward, cs231n.conv_relu_pool_backward, cs231n.affine_forward,
            cs231n.affine_backward)


def _loss_and_grads(params, x, t, layers):
    """CS231n's layer-API net: ``layers`` are (forward, backward) pairs, layer i with
    parameters ``W{i}``, ``b{i}``, then the softmax loss; returns (loss, grads)."""
    h, caches = x, []
    for i, (forward, _) in enumerate(layers, 1):
        h, cache = forward(h, params[f"W{i}"], params[f"b{i}"])
        caches.append(cache)
    loss, d = _softmax_loss(h, t)
    grads = {}
    for i in range(len(layers), 0, -1):
        d, grads[f"W{i}"], grads[f"b{i}"] = layers[i - 1][1](d, caches[i - 1])
    return loss, grads


def _cs231n_step(params, x, t, sandwich):
    forward, backward, affine_forward, affine_backward = sandwich
    loss, grads = _loss_and_grads(params, x, t, [(forward, backward), (forward, backward),
                                                 (affine_forward, affine_backward)])
    _sgd(params, grads)
    return loss


# --------------------------------------------------------------------------- autograd

def _autograd_loss_numpy(anp, logsumexp):
    def conv(x, W, b):
        N, C, H, Wd = x.shape
        xp = anp.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="constant")
        shifted = anp.stack([xp[:, :, i:i + H, j:j + Wd] for i in range(3) for j in range(3)],
                            axis=2)  # (N, C, 9, H, W)
        out = anp.tensordot(anp.reshape(W, (W.shape[0], C, 9)), shifted, axes=([1, 2], [1, 2]))
        return anp.transpose(out, (1, 0, 2, 3)) + anp.reshape(b, (1, -1, 1, 1))

    def pool(h):
        N, C, H, W = h.shape
        return anp.max(anp.reshape(h, (N, C, H // 2, 2, W // 2, 2)), axis=(3, 5))

    def loss(params, x, t):
        h = pool(anp.maximum(conv(x, params["W1"], params["b1"]), 0.0))
        h = pool(anp.maximum(conv(h, params["W2"], params["b2"]), 0.0))
        scores = anp.dot(anp.reshape(h, (h.shape[0], -1)), params["W3"]) + params["b3"]
        log_p = scores - logsumexp(scores, axis=1, keepdims=True)
        return -anp.mean(log_p[np.arange(x.shape[0]), t])

    return loss


def _autograd_loss_fastconv(anp, logsumexp, backend):
    from fastconv.integrations import autograd as fa

    def loss(params, x, t):
        h = fa.conv2d(x, params["W1"], params["b1"], pad=1, relu=True, backend=backend)
        h = fa.max_pool2d(h, 2, 2, backend=backend)
        h = fa.conv2d(h, params["W2"], params["b2"], pad=1, relu=True, backend=backend)
        h = fa.max_pool2d(h, 2, 2, backend=backend)
        scores = fa.linear(h, params["W3"], params["b3"], backend=backend)
        log_p = scores - logsumexp(scores, axis=1, keepdims=True)
        return -anp.mean(log_p[np.arange(x.shape[0]), t])

    return loss


# --------------------------------------------------------------------------- MyGrad

def _mygrad_forward_numpy(mg):
    from mygrad.nnet.activations import relu
    from mygrad.nnet.layers import conv_nd, max_pool

    def forward(p, x):
        h = conv_nd(x, p["W1"], stride=1, padding=1) + p["b1"].reshape(1, -1, 1, 1)
        h = max_pool(relu(h), (2, 2), 2)
        h = conv_nd(h, p["W2"], stride=1, padding=1) + p["b2"].reshape(1, -1, 1, 1)
        h = max_pool(relu(h), (2, 2), 2)
        return mg.matmul(h.reshape(h.shape[0], -1), p["W3"]) + p["b3"]

    return forward


def _mygrad_forward_fastconv(backend):
    from fastconv.integrations import mygrad as fm

    def forward(p, x):
        h = fm.conv2d(x, p["W1"], p["b1"], pad=1, relu=True, backend=backend)
        h = fm.max_pool2d(h, 2, 2, backend=backend)
        h = fm.conv2d(h, p["W2"], p["b2"], pad=1, relu=True, backend=backend)
        h = fm.max_pool2d(h, 2, 2, backend=backend)
        return fm.linear(h, p["W3"], p["b3"], backend=backend)

    return forward


# --------------------------------------------------------------------------- steps

def make_step(host, backend, x, t, params):
    """A zero-argument training step of the small CNN with ``host``'s code: ``backend``
    'numpy' is the host without fastconv, another backend the host with fastconv's
    integration on it. The step updates its own copy of ``params`` and returns the loss
    before the update.

    Raises
    ------
    Unavailable
        The host library is not installed.
    """
    import fastconv as fc

    params = {k: v.copy() for k, v in params.items()}
    if host == "cs231n":
        sandwich = _cs231n_sandwich_numpy() if backend == "numpy" else _cs231n_sandwich_fastconv()

        def step():
            with fc.use_backend(backend):
                return np.asarray(_cs231n_step(params, x, t, sandwich))

        return step
    if host == "autograd":
        _host("autograd")
        import autograd.numpy as anp
        from autograd import value_and_grad
        from autograd.scipy.special import logsumexp

        loss = (_autograd_loss_numpy(anp, logsumexp) if backend == "numpy"
                else _autograd_loss_fastconv(anp, logsumexp, backend))
        loss_and_grads = value_and_grad(loss)

        def step():
            value, grads = loss_and_grads(params, x, t)
            _sgd(params, grads)
            return np.asarray(value)

        return step
    if host == "mygrad":
        mg = _host("mygrad")
        from mygrad.nnet.losses import softmax_crossentropy

        forward = (_mygrad_forward_numpy(mg) if backend == "numpy"
                   else _mygrad_forward_fastconv(backend))
        tensors = {k: mg.tensor(v) for k, v in params.items()}

        def step():
            # MyGrad's memory guard (off for both rows alike) makes a graph's arrays
            # read-only until it is released: once in a CI run the update below found a
            # parameter still locked after backward() ("output array is read-only"), which
            # 60 steps of every backend, with and without the cyclic GC, never repeated.
            with mg.mem_guard_off:
                loss = softmax_crossentropy(forward(tensors, x), t)
                loss.backward()
            for p in tensors.values():
                p.data -= LEARNING_RATE * p.grad
            return np.asarray(loss.item())

        return step
    raise ValueError(f"make_step: host must be one of {HOSTS}, got {host!r}")


def _case(host, N):
    def inputs(dtype, rng):
        return dict(x=rng.random((N, 1, 28, 28)).astype(dtype), t=rng.integers(0, CLASSES, N),
                    params=init_params(rng, dtype))

    def make(backend, a):
        return make_step(host, backend, a["x"], a["t"], a["params"])

    return Case(f"{host}_step", "integration", (), f"small CNN N={N} SGD step", inputs, make,
                None, step_flops(N), note=_NOTES[host])


# --------------------------------------------------------------------------- CS231n's net

#: CS231n assignment 2's ThreeLayerConvNet as the assignment sizes it: conv 7x7 (32
#: filters, pad 3) - ReLU - 2x2 max pool - affine 8192 -> 100 - ReLU - affine 100 -> 10.
THREE_LAYER = dict(C=3, H=32, filters=32, k=7, hidden=100, classes=10)


def _three_layer_params(rng, dtype):
    c = THREE_LAYER
    F, k, D = c["filters"], c["k"], c["filters"] * (c["H"] // 2) ** 2
    return dict(W1=(1e-3 * rng.standard_normal((F, c["C"], k, k))).astype(dtype),
                b1=np.zeros(F, dtype),
                W2=(1e-3 * rng.standard_normal((D, c["hidden"]))).astype(dtype),
                b2=np.zeros(c["hidden"], dtype),
                W3=(1e-3 * rng.standard_normal((c["hidden"], c["classes"]))).astype(dtype),
                b3=np.zeros(c["classes"], dtype))


def _fast_layers(compiled):
    """The assignment's fast layers, re-expressed: a compiled im2col (fastconv's, on
    ``compiled``) and one NumPy GEMM per conv, col2im for dx, reshape max pooling (the
    windows tile), NumPy affine layers."""
    import fastconv as fc

    def conv_relu_pool_forward(x, w, b, pad):
        N, C, H, W = x.shape
        F, _, k, _ = w.shape
        col = fc.im2col(x, k, k, 1, pad, backend=compiled)  # (N*H*W, C*k*k)
        a = (col @ w.reshape(F, -1).T + b).reshape(N, H, W, F).transpose(0, 3, 1, 2)
        r = np.maximum(a, 0)
        out, pool_cache = _cs231n_pool_forward(r)
        return out, (x.shape, w, pad, col, a, pool_cache)

    def conv_relu_pool_backward(dout, cache):
        shape, w, pad, col, a, pool_cache = cache
        F, _, k, _ = w.shape
        da = np.where(a > 0, _cs231n_pool_backward(dout, pool_cache), 0).astype(dout.dtype)
        d = da.transpose(0, 2, 3, 1).reshape(-1, F)
        dw = (d.T @ col).reshape(w.shape)
        dx = fc.col2im(d @ w.reshape(F, -1), shape, k, k, 1, pad, backend=compiled)
        return dx, dw, da.sum(axis=(0, 2, 3))

    def affine_forward(x, w, b):
        return x.reshape(x.shape[0], -1) @ w + b, (x, w)

    def affine_backward(dout, cache):
        x, w = cache
        return (dout @ w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T @ dout, dout.sum(0)

    def affine_relu_forward(x, w, b):
        a, cache = affine_forward(x, w, b)
        return np.maximum(a, 0), (cache, a)

    def affine_relu_backward(dout, cache):
        cache, a = cache
        return affine_backward(np.where(a > 0, dout, 0).astype(dout.dtype), cache)

    return (conv_relu_pool_forward, conv_relu_pool_backward, affine_relu_forward,
            affine_relu_backward, affine_forward, affine_backward)


def _integration_layers():
    from fastconv.integrations import cs231n

    conv_param = {"stride": 1, "pad": (THREE_LAYER["k"] - 1) // 2}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    return (lambda x, w, b, pad: cs231n.conv_relu_pool_forward(x, w, b, conv_param,
                                                              pool_param),
            cs231n.conv_relu_pool_backward, cs231n.affine_relu_forward,
            cs231n.affine_relu_backward, cs231n.affine_forward, cs231n.affine_backward)


def three_layer_loss(params, x, t, layers):
    """ThreeLayerConvNet.loss(X, y) with ``layers``: (loss, grads), as the assignment's."""
    conv_f, conv_b, affr_f, affr_b, aff_f, aff_b = layers
    pad = (THREE_LAYER["k"] - 1) // 2
    return _loss_and_grads(params, x, t, [(lambda h, w, b: conv_f(h, w, b, pad), conv_b),
                                          (affr_f, affr_b), (aff_f, aff_b)])


def three_layer_flops(N):
    c = THREE_LAYER
    conv = 2.0 * N * c["filters"] * c["H"] ** 2 * c["C"] * c["k"] ** 2
    affine = 2.0 * N * (c["filters"] * (c["H"] // 2) ** 2 * c["hidden"]
                        + c["hidden"] * c["classes"])
    return 3 * (conv + affine)


def three_layer_case(N=64):
    """CS231n's ThreeLayerConvNet loss + gradients: the ``numpy`` column runs the
    assignment's fast-layer algorithm (its im2col compiled: fastconv's), the others
    :mod:`fastconv.integrations.cs231n` on that backend."""
    import fastconv as fc

    c = THREE_LAYER

    def inputs(dtype, rng):
        return dict(x=rng.standard_normal((N, c["C"], c["H"], c["H"])).astype(dtype),
                    t=rng.integers(0, c["classes"], N), params=_three_layer_params(rng, dtype))

    def make(backend, a):
        if backend == "numpy":
            compiled = next((b for b in ("cython", "numba") if b in fc.available_backends()),
                            None)
            if compiled is None:
                raise Unavailable("no compiled backend for the fast layers' im2col")
            layers = _fast_layers(compiled)
        else:
            layers = _integration_layers()

        def step():
            with fc.use_backend(backend if backend != "numpy" else "auto"):
                loss, grads = three_layer_loss(a["params"], a["x"], a["t"], layers)
            return (np.asarray(loss),) + tuple(grads[k] for k in sorted(grads))

        return step

    return Case("cs231n_three_layer", "integration", (),
                f"ThreeLayerConvNet N={N} loss+grads", inputs, make, None, three_layer_flops(N),
                note="cs231n_three_layer: numpy column = the assignment's fast layers (compiled "
                     "im2col + one NumPy GEMM per conv, reshape pooling); others: "
                     "fastconv.integrations.cs231n")


def integration_cases(N=64):
    """One row per host code base: the small CNN's training step at batch ``N``; then
    CS231n's own ThreeLayerConvNet."""
    return [_case(host, N) for host in HOSTS] + [three_layer_case(N)]
