"""A row of ``fastconv bench`` (:class:`Case`), the exception that skips one, and the
shape format the tables use: the pieces every row module shares."""
from dataclasses import dataclass


class Unavailable(Exception):
    """A row or a backend cannot run here (PyTorch or a host library absent)."""


@dataclass
class Case:
    """One row of the table.

    ``make(backend, inputs)`` returns a zero-argument callable whose result is compared
    with the reference's (``None`` results are not compared); ``make_torch(inputs)``
    does the same for PyTorch. ``ops`` are the public fastconv ops the row times.
    """

    kernel: str
    family: str
    ops: tuple
    shape: str
    inputs: object  # (dtype, rng) -> dict of arrays
    make: object
    make_torch: object = None
    flops: float = None
    note: str = ""


def fmt(shape):
    """``(100, 16, 28, 28)`` -> ``'100x16x28x28'``."""
    return "x".join(str(d) for d in shape)
