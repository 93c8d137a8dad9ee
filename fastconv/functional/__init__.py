"""The public ops: thin wrappers that validate once and dispatch to a backend, one module
per kernel family; the ops of the registry (``fastconv._backend.FAMILIES``) are exported."""
from .._backend import family_ops as _family_ops

_ops = _family_ops(__name__)
globals().update(_ops)
__all__ = list(_ops)
del _ops, _family_ops
