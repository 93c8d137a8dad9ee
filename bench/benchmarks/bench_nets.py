"""The ``nets`` suite of ``fastconv bench``: one conv layer of LeNet-5, CS231n's
ThreeLayerConvNet, VGG and ResNet per parameter, forward + backward, float32, every
backend and PyTorch (the layers: ``fastconv._bench.nets.LAYERS``)."""
import numpy as np

from .common import BACKENDS, SEED, Timed, require


def _layers():
    try:
        from fastconv._bench import nets
    except ImportError:  # a commit before the suite: no parameters
        return {}
    return dict(nets.LAYERS)


LAYERS = _layers()


class NetsConvLayer(Timed):
    params = (BACKENDS, list(LAYERS))
    param_names = ("backend", "layer")

    def setup(self, backend, layer):
        require(backend)
        from fastconv._bench import Unavailable
        from fastconv._bench.nets import conv_case

        case = conv_case(LAYERS[layer], backward=True)
        inputs = case.inputs(np.float32, np.random.default_rng(SEED))
        try:
            self.step = case.make_torch(inputs) if backend == "torch" else case.make(backend, inputs)
        except Unavailable as err:
            raise NotImplementedError(str(err)) from None
        self.step()

    def time_conv2d_forward_backward(self, backend, layer):
        self.step()
