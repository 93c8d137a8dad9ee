"""The public ops: thin wrappers that validate once and dispatch to a backend."""
from .im2col import col2im, im2col
from .pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from .fma import linear, linear_backward
from .conv import conv2d, conv2d_backward
from .augment import shift_flip

__all__ = ["im2col", "col2im", "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward", "linear", "linear_backward", "conv2d", "conv2d_backward",
           "shift_flip"]
