"""A small CNN of MyGrad tensors, trained on Fashion-MNIST, its convolutions, pooling
and affine layer running on fastconv's kernels.

MyGrad code switches with one import (``pip install "fastconv[mygrad]"``)::

    # from mygrad.nnet.layers import conv_nd, max_pool
    from fastconv.integrations.mygrad import conv2d, max_pool2d, linear

and ``loss.backward()`` runs fastconv's backward kernels. Run from the project root::

    python examples/mygrad_fashion_mnist.py [--steps 200] [--backend cython]

The data comes from ../shared/data/fashion-mnist (next to the project), else from
wherever ``fastconv.datasets.load_mnist`` finds it; random images when there is none
(the loss then stays near log(10)).
"""
import mygrad as mg
from mygrad.nnet.losses import softmax_crossentropy

import _common
from fastconv.integrations.mygrad import conv2d, linear, max_pool2d


def scores_of(p, x):
    h = max_pool2d(conv2d(x, p["W1"], p["b1"], pad=1, relu=True), 2, 2)
    h = max_pool2d(conv2d(h, p["W2"], p["b2"], pad=1, relu=True), 2, 2)
    return linear(h, p["W3"], p["b3"])


def main():
    args, x, t, x_test, t_test = _common.setup(__doc__)
    p = {k: mg.tensor(v) for k, v in _common.init_params().items()}

    def step(xb, tb):
        loss = softmax_crossentropy(scores_of(p, xb), tb)
        loss.backward()
        for tensor in p.values():
            tensor.data -= args.lr * tensor.grad
        return loss.item()

    _common.train(args, step, x, t)
    with mg.no_autodiff:
        _common.report(args, scores_of(p, x_test).data, t_test)


if __name__ == "__main__":
    main()
