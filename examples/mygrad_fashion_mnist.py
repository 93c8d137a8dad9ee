"""A small CNN of MyGrad tensors, trained on Fashion-MNIST, its convolutions, pooling
and affine layer running on fastconv's kernels.

MyGrad code switches with one import (``pip install fastconv[mygrad]``)::

    # from mygrad.nnet.layers import conv_nd, max_pool
    from fastconv.integrations.mygrad import conv2d, max_pool2d, linear

and ``loss.backward()`` runs fastconv's backward kernels. Run from the project root::

    python examples/mygrad_fashion_mnist.py [--steps 200] [--backend cython]

The data comes from ../shared/data/fashion-mnist (next to the project), else from
wherever ``fastconv.datasets.load_mnist`` finds it; random images when there is none
(the loss then stays near log(10)).
"""
import argparse
import time
from pathlib import Path

import mygrad as mg
import numpy as np
from mygrad.nnet.losses import softmax_crossentropy

import fastconv as fc
from fastconv.integrations.mygrad import conv2d, linear, max_pool2d

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
    p = {k: mg.tensor(v.astype(np.float32)) for k, v in p.items()}
    p.update(b1=mg.zeros(16, dtype=np.float32), b2=mg.zeros(32, dtype=np.float32),
             b3=mg.zeros(10, dtype=np.float32))

    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        batch = rng.integers(0, len(x), args.batch)
        loss = softmax_crossentropy(scores_of(p, x[batch]), t[batch])
        loss.backward()
        for tensor in p.values():
            tensor.data -= args.lr * tensor.grad
        if step % 50 == 0 or step == args.steps:
            ms = 1e3 * (time.perf_counter() - start) / step
            print(f"step {step:4d}  loss {loss.item():.3f}  ({ms:.1f} ms/step)")
    with mg.no_autodiff:
        accuracy = np.mean(scores_of(p, x_test).data.argmax(axis=1) == t_test)
    print(f"test accuracy on {len(t_test)} images: {accuracy:.3f} (backend {args.backend})")


if __name__ == "__main__":
    main()
