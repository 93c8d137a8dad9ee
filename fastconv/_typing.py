"""Type aliases of the public signatures (the docstrings give shapes and dtypes)."""

#: A stride or pad: one int for both axes, or an ``(h, w)`` pair.
IntPair = int | tuple[int, int]
