"""fastconv's ops next to NumPy's calls (``fastconv bench --suite neighbours``): the
time of a fastconv op and a NumPy matmul or elementwise pass alternated, over the sum
of the two alone (1.0: neither slows the other). asv runs each parameter set in its
own process."""
from .common import COMPARED, Tracked, require


def _names():
    try:
        from fastconv._bench import neighbours
    except ImportError:
        return [], [], []
    return list(neighbours.OPS), list(neighbours.NEIGHBOURS), list(neighbours.ORDERS)


OPS, NEIGHBOURS, ORDERS = _names()


class NeighbourPair(Tracked):
    params = (COMPARED, OPS, NEIGHBOURS, ORDERS)
    param_names = ("backend", "op", "numpy", "order")

    def setup(self, backend, op, numpy, order):
        require(backend)

    def track_pair_over_sum(self, backend, op, numpy, order):
        import numpy as np

        from fastconv._bench import neighbours

        rng = np.random.default_rng(0)
        alone_op, alone_nb, pair = neighbours.pair_times(
            neighbours._op(op, backend, rng), neighbours._neighbour(numpy, rng), order, 20)
        return pair / (alone_op + alone_nb)

    track_pair_over_sum.unit = "x"
