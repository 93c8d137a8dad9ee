"""A small CNN's training step (conv-relu-pool x2, affine, softmax loss, SGD; batch 64,
float32) written with CS231n's layer API, HIPS autograd and MyGrad: ``backend='numpy'``
is the host code without fastconv (CS231n's NumPy im2col layers, an ``autograd.numpy``
convolution, ``mygrad.nnet.conv_nd``/``max_pool``), the compiled backends the same step
through :mod:`fastconv.integrations` (see ``fastconv/_bench/integrations.py``).

autograd and MyGrad are not fastconv dependencies: their rows are skipped where they are
not installed (``asv run --python=same`` in an environment that has them)."""
import numpy as np

from .common import COMPARED, SEED, Timed, Tracked, require, speedup

# Imported here, once, so that forked benchmark processes inherit them (see common.py).
for _host in ("autograd", "mygrad"):
    try:
        __import__(_host)
    except ImportError:
        pass

BATCH = 64
HOSTS = ["cs231n", "autograd", "mygrad"]


def _step(backend, host):
    """The training step of ``host``'s net on ``backend``; NotImplementedError (asv:
    skipped) when the commit has no integrations or the host library is missing."""
    require(backend)
    try:
        from fastconv._bench import integrations
        from fastconv._bench import Unavailable
    except ImportError as err:
        raise NotImplementedError(f"no fastconv.integrations at this commit ({err})") from None
    rng = np.random.default_rng(SEED)
    x = rng.random((BATCH, 1, 28, 28)).astype(np.float32)
    t = rng.integers(0, integrations.CLASSES, BATCH)
    params = integrations.init_params(rng, np.float32)
    try:
        return integrations.make_step(host, backend, x, t, params)
    except Unavailable as err:
        raise NotImplementedError(str(err)) from None


class IntegrationTrainStep(Timed):
    params = (["numpy"] + COMPARED, HOSTS)
    param_names = ("backend", "host")
    repeat = (2, 5, 10.0)

    def setup(self, backend, host):
        self.step = _step(backend, host)
        self.step()  # Numba compiles or loads its cache here, never in a timing

    def time_train_step(self, backend, host):
        self.step()


class IntegrationTrainStepMemory(Timed):
    params = IntegrationTrainStep.params
    param_names = ("backend", "host")
    setup = IntegrationTrainStep.setup

    def peakmem_train_step(self, backend, host):
        self.step()


class IntegrationTrainStepVsHost(Tracked):
    """Speedup of the step through fastconv's integration over the same host's step
    without fastconv, measured alternately in one process (the issue's targets: >= 10x
    for autograd and MyGrad, >= 5x for CS231n, float32, 2 threads)."""

    params = (COMPARED, HOSTS)
    param_names = ("backend", "host")

    def setup(self, backend, host):
        self.step = _step(backend, host)
        self.host = _step("numpy", host)
        self.step()
        self.host()

    def track_speedup_train_step(self, backend, host):
        return speedup(self.host, self.step, rounds=3)

    track_speedup_train_step.unit = "x"


class ThreeLayerConvNet(Timed):
    """CS231n's ThreeLayerConvNet loss + gradients (N=64, 3x32x32, 32 filters 7x7, hidden
    100, float32): ``numpy`` runs the assignment's fast-layer algorithm, the compiled
    backends fastconv.integrations.cs231n."""

    params = (["numpy"] + COMPARED,)
    param_names = ("backend",)

    def setup(self, backend):
        require(backend)
        try:
            from fastconv._bench.integrations import three_layer_case
        except ImportError as err:
            raise NotImplementedError(f"no ThreeLayerConvNet row at this commit ({err})") from None
        case = three_layer_case(BATCH)
        self.step = case.make(backend, case.inputs(np.float32, np.random.default_rng(SEED)))
        self.step()

    def time_loss_and_gradients(self, backend):
        self.step()
