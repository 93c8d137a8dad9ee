"""A small CNN written with CS231n's layer functions, trained on Fashion-MNIST on
fastconv's kernels.

CS231n code switches with one import::

    # from cs231n.layer_utils import conv_relu_pool_forward, conv_relu_pool_backward
    # from cs231n.layers import affine_forward, affine_backward
    from fastconv.integrations.cs231n import *

Run from the project root::

    python examples/cs231n_fashion_mnist.py [--steps 200] [--backend cython]

The data comes from ../shared/data/fashion-mnist (next to the project), else from
wherever ``fastconv.datasets.load_mnist`` finds it; random images when there is none
(the loss then stays near log(10)).
"""
import numpy as np

import _common
from fastconv.integrations.cs231n import (affine_backward, affine_forward,
                                         conv_relu_pool_backward, conv_relu_pool_forward)


def softmax_loss(scores, y):
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = scores.shape[0]
    dscores = np.exp(log_p)
    dscores[np.arange(n), y] -= 1
    return -log_p[np.arange(n), y].mean(), dscores / n


def main():
    args, x, t, x_test, t_test = _common.setup(__doc__)
    p = _common.init_params()
    conv_param = {"stride": 1, "pad": 1}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}

    def scores_of(xb):
        h1, c1 = conv_relu_pool_forward(xb, p["W1"], p["b1"], conv_param, pool_param)
        h2, c2 = conv_relu_pool_forward(h1, p["W2"], p["b2"], conv_param, pool_param)
        scores, c3 = affine_forward(h2, p["W3"], p["b3"])
        return scores, (c1, c2, c3)

    def step(xb, tb):
        scores, (c1, c2, c3) = scores_of(xb)
        loss, dscores = softmax_loss(scores, tb)
        grads = {}
        dh2, grads["W3"], grads["b3"] = affine_backward(dscores, c3)
        dh1, grads["W2"], grads["b2"] = conv_relu_pool_backward(dh2, c2)
        _, grads["W1"], grads["b1"] = conv_relu_pool_backward(dh1, c1)
        for k, g in grads.items():
            p[k] -= args.lr * g
        return loss

    _common.train(args, step, x, t)
    _common.report(args, scores_of(x_test)[0], t_test)


if __name__ == "__main__":
    main()
