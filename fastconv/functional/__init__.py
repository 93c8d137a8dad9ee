"""The public ops: thin wrappers that validate once and dispatch to a backend."""
from .im2col import col2im, im2col
from .conv import conv2d, conv2d_backward

__all__ = ["im2col", "col2im", "conv2d", "conv2d_backward"]
