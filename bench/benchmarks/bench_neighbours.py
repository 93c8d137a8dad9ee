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
        f, nb = neighbours._op(op, backend, rng), neighbours._neighbour(numpy, rng)
        first, second = (f, nb) if order == neighbours.ORDERS[0] else (nb, f)
        f(), nb()
        alone = neighbours._median_call(f, 20) + neighbours._median_call(nb, 20)
        return neighbours._median_call(lambda: (first(), second()), 20) / alone

    track_pair_over_sum.unit = "x"
