"""The ground truth: every fastconv op in plain NumPy, following the book's algorithms.

Same names and signatures as the public ops (without ``backend=``). Not optimised, and
not validated: call them with well-formed input (the public ops check it first). One
module per kernel family; the ops of the registry (``fastconv._backend.FAMILIES``) are
exported, with the book's layers.
"""
from .._backend import family_ops as _family_ops
from . import layers

_ops = _family_ops(__name__)
globals().update(_ops)
__all__ = [*_ops, "layers"]
del _ops, _family_ops
