"""The book's DeepConvNet as the benchmarks see it: the shapes of its layers, read from
the default arguments of :class:`fastconv.models.DeepConvNet` so that they cannot drift
from the model, and the PyTorch network of the same architecture.

``fastconv bench``, ``bench/profile_step.py``, ``bench/conv_blocks.py`` and the asv
suite (``bench/benchmarks``) all take DeepConvNet from here.
"""
import inspect
from typing import NamedTuple

import numpy as np

from fastconv._validation import out_size
from fastconv.models import DeepConvNet

#: Architecture the constructor does not parametrize: a 2x2 stride-2 max pool after
#: every second convolution, dropout of this ratio after both affine layers.
POOL_SIZE = POOL_STRIDE = 2
DROPOUT = 0.5


class Conv(NamedTuple):
    """A convolution of ``FN`` ``k`` x ``k`` filters over input (N, C, H, W)."""

    N: int
    C: int
    H: int
    W: int
    FN: int
    k: int
    stride: int
    pad: int

    @property
    def x_shape(self):
        return self.N, self.C, self.H, self.W

    @property
    def out_shape(self):
        return (self.N, self.FN, out_size(self.H, self.k, self.stride, self.pad),
                out_size(self.W, self.k, self.stride, self.pad))

    @property
    def flops(self):
        """Forward FLOPs (2 per multiply-add)."""
        N, FN, OH, OW = self.out_shape
        return 2.0 * N * FN * OH * OW * self.C * self.k * self.k


class Pool(NamedTuple):
    """A ``k`` x ``k`` max pool with ``stride`` (no padding) over input (N, C, H, W)."""

    N: int
    C: int
    H: int
    W: int
    k: int
    stride: int

    @property
    def x_shape(self):
        return self.N, self.C, self.H, self.W

    @property
    def out_shape(self):
        return (self.N, self.C, out_size(self.H, self.k, self.stride, 0),
                out_size(self.W, self.k, self.stride, 0))


class Linear(NamedTuple):
    """An affine layer x (N, D) @ W (D, M) + b, followed by a ReLU when ``relu``."""

    N: int
    D: int
    M: int
    relu: bool

    @property
    def flops(self):
        """Forward FLOPs (2 per multiply-add)."""
        return 2.0 * self.N * self.D * self.M


class Shapes(NamedTuple):
    """DeepConvNet on a batch: input ``x`` (N, C, H, W) and ``layers``, the Conv, Pool
    and Linear entries in the network's order (ReLU, dropout and loss have no entry)."""

    x: tuple
    layers: tuple

    @property
    def convs(self):
        return [e for e in self.layers if isinstance(e, Conv)]

    @property
    def pools(self):
        return [e for e in self.layers if isinstance(e, Pool)]

    @property
    def linears(self):
        return [e for e in self.layers if isinstance(e, Linear)]

    def flops(self, train=False):
        """FLOPs of the convolutions and affine layers of ``predict``; ``train``: of a
        training step, counted as three forward passes (forward, dx, dW)."""
        fwd = sum(e.flops for e in self.convs + self.linears)
        return 3 * fwd if train else fwd


def shapes(N=100):
    """The layers of ``DeepConvNet()`` (default arguments) on a batch of ``N`` images."""
    defaults = {name: p.default for name, p in inspect.signature(DeepConvNet).parameters.items()}
    C, H, W = defaults["input_dim"]
    layers = []
    convs = [v for name, v in defaults.items() if name.startswith("conv_param_")]
    for i, cp in enumerate(convs):
        conv = Conv(N, C, H, W, cp["filter_num"], cp["filter_size"], cp["stride"], cp["pad"])
        layers.append(conv)
        _, C, H, W = conv.out_shape
        if i % 2 == 1:
            pool = Pool(N, C, H, W, POOL_SIZE, POOL_STRIDE)
            layers.append(pool)
            _, C, H, W = pool.out_shape
    hidden, classes = defaults["hidden_size"], defaults["output_size"]
    layers += [Linear(N, C * H * W, hidden, True), Linear(N, hidden, classes, False)]
    return Shapes((N, *defaults["input_dim"]), tuple(layers))


def torch_net(torch, dtype):
    """PyTorch's ``nn.Sequential`` of DeepConvNet's architecture in ``dtype`` (a NumPy
    dtype or its name), scores out: train it with ``F.cross_entropy`` (the book's
    softmax with loss). Its initial weights are PyTorch's, not the book's."""
    nn = torch.nn
    layers, flat = [], False
    for e in shapes(1).layers:
        if isinstance(e, Conv):
            layers += [nn.Conv2d(e.C, e.FN, e.k, e.stride, e.pad), nn.ReLU()]
        elif isinstance(e, Pool):
            layers.append(nn.MaxPool2d(e.k, e.stride))
        else:
            if not flat:
                layers.append(nn.Flatten())
                flat = True
            layers += [nn.Linear(e.D, e.M)] + ([nn.ReLU()] if e.relu else [])
            layers.append(nn.Dropout(DROPOUT))
    return nn.Sequential(*layers).to(getattr(torch, np.dtype(dtype).name))
