"""A small CNN written with CS231n's layer functions, trained on Fashion-MNIST on
fastconv's kernels.

CS231n code switches with one import::

    # from cs231n.layer_utils import conv_relu_pool_forward, conv_relu_pool_backward
    from fastconv.integrations.cs231n import conv_relu_pool_forward, conv_relu_pool_backward

Run from the project root::

    python examples/cs231n_fashion_mnist.py [--steps 200] [--backend cython]

The data comes from ../shared/data/fashion-mnist (next to the project), else from
wherever ``fastconv.datasets.load_mnist`` finds it; random images when there is none
(the loss then stays near log(10)).
"""
import argparse
import time
from pathlib import Path

import numpy as np

import fastconv as fc
from fastconv.integrations.cs231n import conv_relu_pool_backward, conv_relu_pool_forward

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def load(n_test):
    try:
        (x, t), (x_test, t_test) = fc.datasets.load_mnist(DATA, flatten=False, download=False,
                                                          kind="fashion-mnist")
        print(f"Fashion-MNIST: {len(x)} training, {len(x_test)} test images")
    except FileNotFoundError:
        print("Fashion-MNIST not found: training on random images")
        rng = np.random.default_rng(0)
        x, t = rng.random((2048, 1, 28, 28), np.float32), rng.integers(0, 10, 2048)
        x_test, t_test = x[:n_test], t[:n_test]
    return x, t, x_test[:n_test], t_test[:n_test]


def affine_forward(x, w, b):
    return x.reshape(x.shape[0], -1) @ w + b, (x, w)


def affine_backward(dout, cache):
    x, w = cache
    return (dout @ w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T @ dout, dout.sum(axis=0)


def softmax_loss(scores, y):
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = scores.shape[0]
    dscores = np.exp(log_p)
    dscores[np.arange(n), y] -= 1
    return -log_p[np.arange(n), y].mean(), dscores / n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--backend", default="auto", choices=("auto",) + fc.available_backends())
    args = parser.parse_args()
    fc.set_backend(args.backend)
    x, t, x_test, t_test = load(1000)

    rng = np.random.default_rng(0)
    conv_param = {"stride": 1, "pad": 1}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    p = {"W1": rng.standard_normal((16, 1, 3, 3)) * np.sqrt(2 / 9),
         "W2": rng.standard_normal((32, 16, 3, 3)) * np.sqrt(2 / 144),
         "W3": rng.standard_normal((32 * 7 * 7, 10)) * np.sqrt(2 / 1568)}
    p = {k: v.astype(np.float32) for k, v in p.items()}
    p.update(b1=np.zeros(16, np.float32), b2=np.zeros(32, np.float32),
             b3=np.zeros(10, np.float32))

    def scores_of(xb):
        h1, c1 = conv_relu_pool_forward(xb, p["W1"], p["b1"], conv_param, pool_param)
        h2, c2 = conv_relu_pool_forward(h1, p["W2"], p["b2"], conv_param, pool_param)
        scores, c3 = affine_forward(h2, p["W3"], p["b3"])
        return scores, (c1, c2, c3)

    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        batch = rng.integers(0, len(x), args.batch)
        scores, (c1, c2, c3) = scores_of(x[batch])
        loss, dscores = softmax_loss(scores, t[batch])
        grads = {}
        dh2, grads["W3"], grads["b3"] = affine_backward(dscores, c3)
        dh1, grads["W2"], grads["b2"] = conv_relu_pool_backward(dh2, c2)
        _, grads["W1"], grads["b1"] = conv_relu_pool_backward(dh1, c1)
        for k, g in grads.items():
            p[k] -= args.lr * g
        if step % 50 == 0 or step == args.steps:
            ms = 1e3 * (time.perf_counter() - start) / step
            print(f"step {step:4d}  loss {loss:.3f}  ({ms:.1f} ms/step)")
    accuracy = np.mean(scores_of(x_test)[0].argmax(axis=1) == t_test)
    print(f"test accuracy on {len(t_test)} images: {accuracy:.3f} (backend {args.backend})")


if __name__ == "__main__":
    main()
