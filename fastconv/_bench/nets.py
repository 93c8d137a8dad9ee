"""``fastconv bench --suite nets``: the convolutions of other people's nets, forward +
backward, against PyTorch.

DeepConvNet (the main table) is the book's net; users bring LeNet-5, CS231n's
assignment net, VGG and ResNet. Each row is one layer's ``conv2d`` + ``conv2d_backward``
at the batch its net trains with, float32.
"""
import math
import statistics

from .cases import conv_case
from .deepconvnet import Conv

#: (net, Conv(N, C, H, W, FN, k, stride, pad)) of every row.
LAYERS = (
    ("LeNet-5 CIFAR-10 conv1", Conv(64, 3, 32, 32, 6, 5, 1, 0)),
    ("LeNet-5 CIFAR-10 conv2", Conv(64, 6, 14, 14, 16, 5, 1, 0)),
    ("CS231n ThreeLayerConvNet", Conv(64, 3, 32, 32, 32, 7, 1, 3)),
    ("VGG CIFAR-10 64->64", Conv(64, 64, 32, 32, 64, 3, 1, 1)),
    ("VGG CIFAR-10 128->128", Conv(64, 128, 16, 16, 128, 3, 1, 1)),
    ("ResNet-18 stem 7x7 s2", Conv(8, 3, 224, 224, 64, 7, 2, 3)),
    ("ResNet-18 3x3 64 at 56", Conv(8, 64, 56, 56, 64, 3, 1, 1)),
    ("ResNet-18 3x3 128 at 28", Conv(8, 128, 28, 28, 128, 3, 1, 1)),
    ("ResNet-18 3x3 s2 64->128", Conv(8, 64, 56, 56, 128, 3, 2, 1)),
    ("ResNet-18 1x1 s2 projection", Conv(8, 64, 56, 56, 128, 1, 2, 0)),
    ("ResNet bottleneck 1x1 256->64", Conv(8, 256, 28, 28, 64, 1, 1, 0)),
)


def build_cases():
    """One ``conv2d+bwd`` row per layer, its shape prefixed by the net."""
    cases = []
    for name, conv in LAYERS:
        case = conv_case(conv, backward=True)
        case.shape = f"{name}: {case.shape} {conv.k}x{conv.k} s{conv.stride}"
        cases.append(case)
    return cases


def summary(rows):
    """Lines: per row the faster compiled backend's time over PyTorch's, their geometric
    mean and the largest (the issue's targets: every row <= 1.0, mean <= 0.75)."""
    best = []
    for row in rows:
        ratios = row.get("time_ratio_vs_torch", {})
        if ratios:
            best.append((min(ratios.values()), row["shape"]))
    if not best:
        return ["no PyTorch column: no ratios (pip install torch==2.13.0)"]
    geo = math.exp(statistics.fmean(math.log(r) for r, _ in best))
    worst = max(best)
    return [f"faster backend / torch over {len(best)} rows: geometric mean {geo:.2f}, "
            f"largest {worst[0]:.2f} ({worst[1]})"]
