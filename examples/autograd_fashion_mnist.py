"""A small CNN differentiated by HIPS autograd, trained on Fashion-MNIST, its
convolutions, pooling and affine layer running on fastconv's kernels.

autograd code switches with one import (``pip install "fastconv[autograd]"``)::

    from fastconv.integrations.autograd import conv2d, max_pool2d, linear

and ``autograd.grad`` of a loss written with them runs fastconv's backward kernels.
Run from the project root::

    python examples/autograd_fashion_mnist.py [--steps 200] [--backend cython]

The data comes from ../shared/data/fashion-mnist (next to the project), else from
wherever ``fastconv.datasets.load_mnist`` finds it; random images when there is none
(the loss then stays near log(10)).
"""
import autograd.numpy as anp
import numpy as np
from autograd import value_and_grad
from autograd.scipy.special import logsumexp

import _common
from fastconv.integrations.autograd import conv2d, linear, max_pool2d


def scores_of(p, x):
    h = max_pool2d(conv2d(x, p["W1"], p["b1"], pad=1, relu=True), 2, 2)
    h = max_pool2d(conv2d(h, p["W2"], p["b2"], pad=1, relu=True), 2, 2)
    return linear(h, p["W3"], p["b3"])


def loss(p, x, t):
    scores = scores_of(p, x)
    log_p = scores - logsumexp(scores, axis=1, keepdims=True)
    return -anp.mean(log_p[np.arange(len(t)), t])


def main():
    args, x, t, x_test, t_test = _common.setup(__doc__)
    p = _common.init_params()
    loss_and_grads = value_and_grad(loss)

    def step(xb, tb):
        value, grads = loss_and_grads(p, xb, tb)
        for k, g in grads.items():
            p[k] -= args.lr * g
        return value

    _common.train(args, step, x, t)
    _common.report(args, scores_of(p, x_test), t_test)


if __name__ == "__main__":
    main()
