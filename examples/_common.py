"""What the three integration examples share: arguments, data, initial weights and the
SGD loop; each example brings only its host library's forward and backward."""
import argparse
import time
from pathlib import Path

import numpy as np

import fastconv as fc

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def setup(doc):
    """Parse ``--steps --batch --lr --backend``, set the backend; returns ``(args, x,
    t, x_test, t_test)`` (Fashion-MNIST, or random images when there is none, so the
    loss then stays near log(10))."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--backend", default="auto", choices=("auto",) + fc.available_backends())
    args = parser.parse_args()
    fc.set_backend(args.backend)
    try:
        (x, t), (x_test, t_test) = fc.datasets.load_mnist(DATA, flatten=False, download=False,
                                                          kind="fashion-mnist")
        print(f"Fashion-MNIST: {len(x)} training, {len(x_test)} test images")
    except FileNotFoundError:
        print("Fashion-MNIST not found: training on random images")
        rng = np.random.default_rng(0)
        x, t = rng.random((2048, 1, 28, 28), np.float32), rng.integers(0, 10, 2048)
        x_test, t_test = x, t
    return args, x, t, x_test[:1000], t_test[:1000]


def init_params():
    """He-initialised conv3x3(16) - conv3x3(32) - affine(10) weights, float32."""
    rng = np.random.default_rng(0)
    p = {"W1": rng.standard_normal((16, 1, 3, 3)) * np.sqrt(2 / 9),
         "W2": rng.standard_normal((32, 16, 3, 3)) * np.sqrt(2 / 144),
         "W3": rng.standard_normal((32 * 7 * 7, 10)) * np.sqrt(2 / 1568)}
    p = {k: v.astype(np.float32) for k, v in p.items()}
    p.update(b1=np.zeros(16, np.float32), b2=np.zeros(32, np.float32),
             b3=np.zeros(10, np.float32))
    return p


def train(args, step, x, t):
    """``args.steps`` calls of ``step(xb, tb) -> loss`` (which updates the weights) on
    random batches, printing the loss and the time per step every 50 steps."""
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    for i in range(1, args.steps + 1):
        batch = rng.integers(0, len(x), args.batch)
        loss = step(x[batch], t[batch])
        if i % 50 == 0 or i == args.steps:
            ms = 1e3 * (time.perf_counter() - start) / i
            print(f"step {i:4d}  loss {float(loss):.3f}  ({ms:.1f} ms/step)")


def report(args, scores, t_test):
    accuracy = np.mean(np.asarray(scores).argmax(axis=1) == t_test)
    print(f"test accuracy on {len(t_test)} images: {accuracy:.3f} (backend {args.backend})")
