"""A small CNN differentiated by HIPS autograd, trained on Fashion-MNIST, its
convolutions, pooling and affine layer running on fastconv's kernels.

autograd code switches with one import (``pip install fastconv[autograd]``)::

    from fastconv.integrations.autograd import conv2d, max_pool2d, linear

and ``autograd.grad`` of a loss written with them runs fastconv's backward kernels.
Run from the project root::

    python examples/autograd_fashion_mnist.py [--steps 200] [--backend cython]

The data comes from ../shared/data/fashion-mnist (next to the project), else from
wherever ``fastconv.datasets.load_mnist`` finds it; random images when there is none
(the loss then stays near log(10)).
"""
import argparse
import time
from pathlib import Path

import autograd.numpy as anp
import numpy as np
from autograd import value_and_grad
from autograd.scipy.special import logsumexp

import fastconv as fc
from fastconv.integrations.autograd import conv2d, linear, max_pool2d

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


def scores_of(p, x):
    h = max_pool2d(conv2d(x, p["W1"], p["b1"], pad=1, relu=True), 2, 2)
    h = max_pool2d(conv2d(h, p["W2"], p["b2"], pad=1, relu=True), 2, 2)
    return linear(h, p["W3"], p["b3"])


def loss(p, x, t):
    scores = scores_of(p, x)
    log_p = scores - logsumexp(scores, axis=1, keepdims=True)
    return -anp.mean(log_p[np.arange(len(t)), t])


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
    p = {"W1": rng.standard_normal((16, 1, 3, 3)) * np.sqrt(2 / 9),
         "W2": rng.standard_normal((32, 16, 3, 3)) * np.sqrt(2 / 144),
         "W3": rng.standard_normal((32 * 7 * 7, 10)) * np.sqrt(2 / 1568)}
    p = {k: v.astype(np.float32) for k, v in p.items()}
    p.update(b1=np.zeros(16, np.float32), b2=np.zeros(32, np.float32),
             b3=np.zeros(10, np.float32))
    loss_and_grads = value_and_grad(loss)

    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        batch = rng.integers(0, len(x), args.batch)
        value, grads = loss_and_grads(p, x[batch], t[batch])
        for k, g in grads.items():
            p[k] -= args.lr * g
        if step % 50 == 0 or step == args.steps:
            ms = 1e3 * (time.perf_counter() - start) / step
            print(f"step {step:4d}  loss {value:.3f}  ({ms:.1f} ms/step)")
    accuracy = np.mean(scores_of(p, x_test).argmax(axis=1) == t_test)
    print(f"test accuracy on {len(t_test)} images: {accuracy:.3f} (backend {args.backend})")


if __name__ == "__main__":
    main()
