"""The ground truth: every fastconv op in plain NumPy, following the book's algorithms.

Same names and signatures as the public ops (without ``backend=``). Not optimised, and
not validated: call them with well-formed input (the public ops check it first).
"""
from .im2col import col2im, im2col
from .pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from .fma import linear, linear_backward
from .conv import conv2d, conv2d_backward
from . import layers

__all__ = ["im2col", "col2im", "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward", "linear", "linear_backward", "conv2d", "conv2d_backward", "layers"]
