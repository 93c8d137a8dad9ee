"""The networks of "Deep Learning from Scratch" on fastconv's ops.

:class:`DeepConvNet` (chapter 8) and :class:`SimpleConvNet` (chapter 7) keep the book's
constructors, parameter names (``W1``, ``b1``, ...), ``params`` dict, ``layers``,
``predict``/``loss``/``accuracy``/``gradient`` (and SimpleConvNet's
``numerical_gradient``) and ``save_params``/``load_params``, so the book's scripts run
unchanged. Inside, each convolution or affine layer that the book follows with a ReLU
is one fused layer (``conv2d(..., relu=True)`` / ``linear(..., relu=True)``, whose
backward masks the gradient with ``out > 0`` exactly as the book's ``Relu`` does), and
the first convolution skips its input gradient.
``tests/test_models.py`` checks that loss and gradients equal those of the book's
unfused layer stack.

Differences from the book, all additive:

- ``dtype=`` (float64 by default, as the book) and :meth:`astype`. float32 runs natively.
  float16 is an inference mode: parameters and inputs are *rounded* to float16 and the
  arithmetic runs in float32 (fastconv's rule for float16; the book's float16
  experiment likewise rounds weights and inputs to float16 and computes in float64).
- ``rng=``: the initial weights and the dropout masks come from a
  ``np.random.Generator`` owned by the net (an int seeds it), not from NumPy's global
  state, so training is reproducible per seed.
- ``accuracy`` also scores a last, partial batch (the book silently drops it), and
  takes (N, 1) class indices (the book's argmax over their single column scores
  every image as class 0).
- The pooling and softmax-with-loss layers are :mod:`fastconv.layers`' own; dropout is
  :class:`fastconv.layers.Dropout` drawing from the net's generator.
- ``load_params`` checks names and shapes, reads ``.npz`` and the book's ``.pkl``
  through :mod:`fastconv.params_io` (a restricted unpickler), and casts to the net's
  dtype; ``save_params`` writes ``.npz`` (or ``.pkl`` when the name ends so).

Input checks. Every public entry that takes images (``predict``, ``loss``, ``accuracy``,
``gradient``, ``loss_and_gradient``) checks them first, in one helper, and names the
net and the method in its message (the book's nets fail deep inside, or not at all):

- ``x`` must be a NumPy ndarray of shape ``(N, *input_dim)`` with N >= 1, e.g.
  ``(N, 1, 28, 28)``: anything else is a ``TypeError`` (convert with ``np.asarray``), and
  the book's flattened ``(N, 784)`` is a ``ValueError`` that says how to reshape it.
- ``x`` must be floating point. Integer input (raw uint8 pixels 0-255, int64, ...) is a
  ``TypeError``: convert and scale it, ``x.astype(np.float32) / 255``. The book's nets
  would run on raw pixels and give wrong answers without a word.
- Float input is *not* range-checked: images that are float but still 0-255 run, and the
  pretrained weights then give nonsense. A range check would also refuse legitimately
  standardised data (mean 0, values beyond [0, 1]), so scaling floats is left to the
  caller.
- Labels ``t`` (array_like) must be integer class indices of shape ``(N,)`` or ``(N, 1)``
  in ``[0, output_size)``, or one-hot rows ``(N, output_size)``, with the N of ``x``. An
  ``(N, 1)`` ``t`` is class indices for every N (the book's ch07/gradient_check.py passes
  ``np.array([1]).reshape((1, 1))``), also when ``output_size`` is 1 (then all 0).
  Float class indices are a ``TypeError`` here (:class:`fastconv.layers.SoftmaxWithLoss`
  takes whole-number floats).
"""
from collections import OrderedDict

import numpy as np

from . import layers, params_io
from ._validation import out_size, pair

__all__ = ["DeepConvNet", "SimpleConvNet"]

_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _float_dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in _FLOATS:
        raise TypeError(f"dtype must be float16, float32 or float64, got {dt}")
    return dt


def _generator(rng):
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _output_shape(layer, shape):
    """The shape (without the batch axis) ``layer`` of a net gives for input ``shape``."""
    if isinstance(layer, (layers.Convolution, layers.Pooling)):
        if isinstance(layer, layers.Convolution):
            channels, (kh, kw) = layer.W.shape[0], layer.W.shape[2:]
        else:
            channels, kh, kw = shape[0], layer.pool_h, layer.pool_w
        (sh, sw), (ph, pw) = (pair(v, name, "repr", 0) for v, name in
                              ((layer.stride, "stride"), (layer.pad, "pad")))
        return (channels, out_size(shape[1], kh, sh, ph), out_size(shape[2], kw, sw, pw))
    if isinstance(layer, layers.Affine):
        return (layer.W.shape[1],)
    return shape


# --------------------------------------------------------------------------- networks


class _Net:
    """What both networks share; subclasses build ``params``, ``layers`` and
    ``_weight_layers`` (the layer owning ``W{i+1}``/``b{i+1}`` at position i)."""

    def _init_common(self, dtype, rng, input_dim, output_size):
        self.dtype = _float_dtype(dtype)
        self.rng = _generator(rng)
        self.input_dim = tuple(int(d) for d in input_dim)
        self.output_size = int(output_size)

    def __repr__(self):
        """The architecture: each layer, with the shape it gives one image, in order."""
        count = sum(p.size for p in self.params.values())
        named = self.layers.items() if isinstance(self.layers, dict) else enumerate(self.layers)
        lines = [f"{type(self).__name__}(input_dim={self.input_dim}, output_size="
                 f"{self.output_size}, dtype={self.dtype}, {count:,} parameters)"]
        shape = self.input_dim
        for name, layer in named:
            shape = _output_shape(layer, shape)
            lines.append(f"  {name}: {layer!r} -> {shape}")
        lines.append(f"  last_layer: {self.last_layer!r}")
        return "\n".join(lines)

    @property
    def compute_dtype(self):
        """The dtype the arithmetic runs in: float32 for a float16 net, else ``dtype``."""
        return np.dtype(np.float32) if self.dtype == np.float16 else self.dtype

    def _sequence(self):
        return self.layers.values() if isinstance(self.layers, dict) else self.layers

    def _push_params(self):
        """Point the layers at ``params`` (copies in float32 for a float16 net)."""
        for i, layer in enumerate(self._weight_layers):
            layer.W = self.params[f"W{i + 1}"].astype(self.compute_dtype, copy=False)
            layer.b = self.params[f"b{i + 1}"].astype(self.compute_dtype, copy=False)

    def _check(self, method, x, t=None, train=False):
        """The checks of every public entry point (see the module docstring, "Input
        checks"), with ``Net.method`` in each message. Returns ``t`` as an ndarray
        (None when not given); ``x`` is checked, not converted (see :meth:`_cast`).
        """
        where = f"{type(self).__name__}.{method}"
        if train and self.dtype == np.float16:
            raise TypeError(
                f"{where}: this net is float16, which fastconv uses for inference only; "
                f"train in float32 or float64 (net.astype(np.float32))"
            )
        C, H, W = self.input_dim
        want = f"(N, {C}, {H}, {W})"
        if not isinstance(x, np.ndarray):
            raise TypeError(
                f"{where}: x must be a NumPy ndarray of images of shape {want}, got "
                f"{type(x).__name__}; convert it with np.asarray(x, dtype=np.float32)"
            )
        if x.dtype.kind in "iu":
            raise TypeError(
                f"{where}: x has integer dtype {x.dtype}; the network takes floating-point "
                f"images scaled to [0, 1]. Convert and scale raw 0-255 pixels with "
                f"x.astype(np.float32) / 255 (load_mnist(..., normalize=True) does this)"
            )
        if x.dtype.kind != "f":
            raise TypeError(
                f"{where}: x has dtype {x.dtype}; the network takes float16, float32 or "
                f"float64 images; convert with x.astype(np.float32)"
            )
        if x.shape[1:] != self.input_dim:  # implies ndim 4
            msg = f"{where}: x has shape {x.shape}; the network takes images of shape {want}"
            if x.ndim == 2 and x.shape[1] == C * H * W:
                fix = f": reshape with x.reshape(-1, {C}, {H}, {W})"
                if self.input_dim == (1, 28, 28):
                    fix += " or load the data with load_mnist(..., flatten=False)"
            elif x.shape == self.input_dim:
                fix = ": for a single image add the batch axis, x[np.newaxis]"
            elif x.ndim == 3 and C == 1 and x.shape[1:] == (H, W):
                fix = ": add the channel axis with x[:, np.newaxis]"
            elif x.ndim == 4 and x.shape[1:] == (H, W, C):
                fix = ": x looks channels-last (N, H, W, C); use x.transpose(0, 3, 1, 2)"
            elif x.ndim == 4:
                fix = (f", the input_dim it was built with; resize the images or build the "
                       f"net with input_dim={x.shape[1:]}")
            else:
                fix = f"; pass a 4-dimensional array of shape {want}"
            raise ValueError(msg + fix)
        N = x.shape[0]
        if N == 0:
            raise ValueError(f"{where}: x has shape {x.shape}, no images; pass at least one")
        if t is None:
            return None
        t = np.asarray(t)
        K = self.output_size
        if t.ndim == 2 and t.shape[1] == 1:
            t = t.reshape(-1)  # a column of class indices, for every N and K
        if t.ndim == 1:
            if t.dtype.kind not in "iu":
                raise TypeError(
                    f"{where}: t has dtype {t.dtype}; labels must be integer class indices "
                    f"(N,) or (N, 1), or one-hot rows (N, {K}); convert indices with "
                    f"t.astype(np.int64)"
                )
            if t.shape[0] != N:
                raise ValueError(
                    f"{where}: t holds {t.shape[0]} labels for the {N} images of x; pass "
                    f"one label per image"
                )
            lo, hi = int(t.min()), int(t.max())
            if lo < 0 or hi >= K:
                raise ValueError(
                    f"{where}: class indices t must lie in [0, {K}) for this net's {K} "
                    f"outputs, got values in [{lo}, {hi}]"
                )
        elif t.ndim == 2:
            if t.shape != (N, K):
                raise ValueError(
                    f"{where}: one-hot t has shape {t.shape}; expected ({N}, {K}), one row "
                    f"per image of x and one column per class"
                )
            if t.dtype.kind not in "biuf":
                raise TypeError(f"{where}: one-hot t has dtype {t.dtype}; pass numbers")
        else:
            raise ValueError(
                f"{where}: t has shape {t.shape}; expected class indices of shape ({N},) "
                f"or ({N}, 1), or one-hot rows of shape ({N}, {K})"
            )
        return t

    def _cast(self, x):
        """A checked ``x`` in ``compute_dtype`` (rounded to float16 first for a float16 net)."""
        if self.dtype == np.float16:
            x = x.astype(np.float16, copy=False)
        return x.astype(self.compute_dtype, copy=False)

    def _forward(self, x, train_flg):
        for layer in self._sequence():
            if isinstance(layer, layers.Dropout):
                x = layer.forward(x, train_flg)
            else:
                x = layer.forward(x)
        return x

    def astype(self, dtype):
        """Cast the parameters to ``dtype`` in place of the old ones; returns ``self``.

        float16 rounds them to float16 and makes the net inference-only (see module).
        """
        self.dtype = _float_dtype(dtype)
        for key, val in self.params.items():
            self.params[key] = val.astype(self.dtype)
        self._push_params()
        return self

    def predict(self, x, train_flg=False):
        """Scores before softmax.

        Parameters
        ----------
        x : ndarray of shape (N, C, H, W), (C, H, W) = ``input_dim``
            Floating-point images, e.g. float32 of shape (N, 1, 28, 28) scaled to
            [0, 1]. Cast to ``compute_dtype``. Float values are not range-checked (raw
            0-255 pixels stored as float run and give nonsense: divide them by 255).
        train_flg : bool
            True: dropout draws masks (training); False: dropout scales by 1 - ratio.

        Returns
        -------
        ndarray of shape (N, output_size), dtype ``compute_dtype``

        Raises
        ------
        TypeError
            ``x`` is not an ndarray (a list, ...), or has an integer dtype (raw uint8
            pixels: ``x.astype(np.float32) / 255``) or another non-float dtype.
        ValueError
            ``x`` is not of shape (N, C, H, W) with N >= 1, e.g. the book's flattened
            (N, 784): ``x.reshape(-1, 1, 28, 28)``.

        The same checks, naming the method, guard :meth:`loss`, :meth:`accuracy`,
        :meth:`gradient` and :meth:`loss_and_gradient`.
        """
        self._check("predict", x)
        return self._forward(self._cast(x), train_flg)

    def loss(self, x, t):
        """Mean cross-entropy of ``predict(x, train_flg=True)`` against labels ``t``
        (array_like: integer indices (N,) or (N, 1), or one-hot (N, output_size)); a float.
        ``x`` as for :meth:`predict`; bad ``x`` or ``t`` raise as described there."""
        t = self._check("loss", x, t)
        return self._loss(self._cast(x), t)

    def _loss(self, x, t):
        return self.last_layer.forward(self._forward(x, True), t)

    def accuracy(self, x, t, batch_size=100):
        """Fraction of ``x`` classified as ``t`` (indices (N,) or (N, 1), or one-hot), in
        inference mode, ``batch_size`` images at a time; the last partial batch counts
        too. ``x`` and ``t`` as for :meth:`loss`; each batch is cast to ``compute_dtype``
        in turn."""
        t = self._check("accuracy", x, t)
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        hits = 0
        for i in range(0, x.shape[0], batch_size):
            y = self._forward(self._cast(x[i:i + batch_size]), False)
            hits += int(np.sum(np.argmax(y, axis=1) == t[i:i + batch_size]))
        return hits / x.shape[0]

    def loss_and_gradient(self, x, t):
        """One forward and backward pass: ``(loss, grads)`` (see :meth:`gradient`)."""
        t = self._check("loss_and_gradient", x, t, train=True)
        return self._loss_and_gradient(self._cast(x), t)

    def _loss_and_gradient(self, x, t):
        loss = self._loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(list(self._sequence())):
            dout = layer.backward(dout)
        grads = {}
        for i, layer in enumerate(self._weight_layers):
            grads[f"W{i + 1}"] = layer.dW
            grads[f"b{i + 1}"] = layer.db
        return loss, grads

    def gradient(self, x, t):
        """Gradients of :meth:`loss` by backpropagation.

        ``x`` and ``t`` as for :meth:`loss`; a float16 net raises TypeError (inference
        only).

        Returns
        -------
        dict
            ``'W1'``, ``'b1'``, ... each shaped like its parameter.
        """
        t = self._check("gradient", x, t, train=True)
        return self._loss_and_gradient(self._cast(x), t)[1]

    def save_params(self, file_name="params.npz"):
        """Write ``params`` to ``file_name``: ``.npz``, or the book's pickle for ``.pkl``."""
        params_io.save_params(self.params, file_name)

    def load_params(self, file_name="params.npz"):
        """Read parameters from ``.npz`` or the book's ``.pkl`` (restricted unpickler),
        cast them to the net's dtype and hand them to the layers.

        Raises
        ------
        FileNotFoundError
            No file at ``file_name`` (other ``OSError`` subclasses when it cannot be
            read); the message names the net, the path and the files expected.
        ValueError
            The file lacks one of this net's parameters or holds one of another shape,
            or is not a valid parameter file (see :func:`fastconv.params_io.load_params`).
        """
        try:
            loaded = params_io.load_params(file_name)
        except OSError as exc:
            raise type(exc)(f"{type(self).__name__}.load_params: {exc}") from exc
        for key, val in self.params.items():
            if key not in loaded:
                raise ValueError(
                    f"{file_name}: has no parameter {key!r} (holds {sorted(loaded)}); "
                    f"is it a {type(self).__name__} parameter file?"
                )
            if loaded[key].shape != val.shape:
                raise ValueError(
                    f"{file_name}: parameter {key!r} has shape {loaded[key].shape}, this "
                    f"{type(self).__name__} needs {val.shape}; build the net with the "
                    f"constructor arguments the file was trained with"
                )
        for key in self.params:
            self.params[key] = np.ascontiguousarray(loaded[key], dtype=self.dtype)
        self._push_params()


class DeepConvNet(_Net):
    """The book's chapter-8 network, about 99.4% on MNIST.

    conv - relu - conv - relu - pool - conv - relu - conv - relu - pool -
    conv - relu - conv - relu - pool - affine - relu - dropout - affine - dropout - softmax

    Parameters
    ----------
    input_dim : tuple (C, H, W)
    conv_param_1 ... conv_param_6 : dict
        ``filter_num``, ``filter_size``, ``pad``, ``stride`` of each convolution (the
        book's defaults: 16, 16, 32, 32, 64, 64 filters of 3x3, pad 1, except pad 2 in
        the fourth).
    hidden_size, output_size : int
    dropout_ratio : float in [0, 1)
        Of both dropout layers (the book's 0.5).
    dtype : float64 (default), float32 or float16 (inference only, see module)
    rng : None, int or np.random.Generator
        Source of the initial weights and of the dropout masks.

    Attributes
    ----------
    params : dict
        ``W1..W6`` of shape (FN, C, KH, KW), ``W7`` (64*4*4, hidden_size), ``W8``
        (hidden_size, output_size), ``b1..b8``; in ``dtype``.
    layers : list
        Convolution(relu) x2, Pooling, Convolution(relu) x2, Pooling, Convolution(relu)
        x2, Pooling, Affine(relu), Dropout, Affine, Dropout (:mod:`fastconv.layers`): the
        book's list with each ReLU
        fused into the layer before it (so the book's indices 0, 2, 5, 7, 10, 12, 15, 18
        of the weight layers become 0, 1, 3, 4, 6, 7, 9, 11).
    last_layer : fastconv.layers.SoftmaxWithLoss

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.models import DeepConvNet
    >>> net = DeepConvNet(rng=np.random.default_rng(0))
    >>> x, t = np.zeros((2, 1, 28, 28)), np.array([3, 7])
    >>> grads = net.gradient(x, t)           # W1..W8, b1..b8, as the book's
    >>> grads["W1"].shape, net.predict(x).shape
    ((16, 1, 3, 3), (2, 10))
    """

    def __init__(self, input_dim=(1, 28, 28),
                 conv_param_1={'filter_num': 16, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 conv_param_2={'filter_num': 16, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 conv_param_3={'filter_num': 32, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 conv_param_4={'filter_num': 32, 'filter_size': 3, 'pad': 2, 'stride': 1},
                 conv_param_5={'filter_num': 64, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 conv_param_6={'filter_num': 64, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 hidden_size=50, output_size=10, dropout_ratio=0.5, dtype=np.float64,
                 rng=None):
        self._init_common(dtype, rng, input_dim, output_size)
        conv_params = [conv_param_1, conv_param_2, conv_param_3,
                       conv_param_4, conv_param_5, conv_param_6]
        C, H, W = input_dim
        shapes, fan_in = [], []
        for i, cp in enumerate(conv_params):
            k, p, s = cp['filter_size'], cp['pad'], cp['stride']
            shapes.append((cp['filter_num'], C, k, k))
            fan_in.append(C * k * k)
            C, H, W = cp['filter_num'], out_size(H, k, s, p), out_size(W, k, s, p)
            if i % 2 == 1:
                H, W = H // 2, W // 2
            if H < 1 or W < 1:
                raise ValueError(
                    f"input_dim {input_dim} is too small for DeepConvNet: nothing is left "
                    f"after convolution {i + 1} and its pooling"
                )
        shapes += [(C * H * W, hidden_size), (hidden_size, output_size)]
        fan_in += [C * H * W, hidden_size]
        # He initialisation, as the book: std = sqrt(2 / inputs per unit).
        scales = np.sqrt(2.0 / np.array(fan_in))
        self.params = {}
        for i, shape in enumerate(shapes):
            self.params[f"W{i + 1}"] = (scales[i] * self.rng.standard_normal(shape)).astype(self.dtype)
            self.params[f"b{i + 1}"] = np.zeros(shape[0] if len(shape) == 4 else shape[1], self.dtype)

        convs = [layers.Convolution(None, None, cp['stride'], cp['pad'], relu=True,
                                    need_dx=(i > 0)) for i, cp in enumerate(conv_params)]
        fc7, fc8 = layers.Affine(None, None, relu=True), layers.Affine(None, None)
        self.layers = [convs[0], convs[1], layers.Pooling(2, 2, stride=2),
                       convs[2], convs[3], layers.Pooling(2, 2, stride=2),
                       convs[4], convs[5], layers.Pooling(2, 2, stride=2),
                       fc7, layers.Dropout(dropout_ratio, rng=self.rng), fc8,
                       layers.Dropout(dropout_ratio, rng=self.rng)]
        self._weight_layers = convs + [fc7, fc8]
        self.last_layer = layers.SoftmaxWithLoss()
        self._push_params()


class SimpleConvNet(_Net):
    """The book's chapter-7 network: conv - relu - pool - affine - relu - affine - softmax.

    Parameters
    ----------
    input_dim : tuple (C, H, W)
    conv_param : dict
        ``filter_num``, ``filter_size``, ``pad``, ``stride``.
    hidden_size, output_size : int
    weight_init_std : float
        Standard deviation of the initial weights (the book's 0.01).
    dtype : float64 (default), float32 or float16 (inference only)
    rng : None, int or np.random.Generator

    Attributes
    ----------
    params : dict
        ``W1`` (FN, C, K, K), ``W2`` (FN*PH*PW, hidden_size), ``W3`` (hidden_size,
        output_size), ``b1..b3``.
    layers : OrderedDict
        ``'Conv1'`` (Convolution with ReLU: the book's Conv1 + Relu1), ``'Pool1'``,
        ``'Affine1'`` (Affine with ReLU: Affine1 + Relu2), ``'Affine2'``.
    """

    def __init__(self, input_dim=(1, 28, 28),
                 conv_param={'filter_num': 30, 'filter_size': 5, 'pad': 0, 'stride': 1},
                 hidden_size=100, output_size=10, weight_init_std=0.01,
                 dtype=np.float64, rng=None):
        self._init_common(dtype, rng, input_dim, output_size)
        fn, k = conv_param['filter_num'], conv_param['filter_size']
        p, s = conv_param['pad'], conv_param['stride']
        C, H, W = input_dim
        oh, ow = out_size(H, k, s, p), out_size(W, k, s, p)
        if oh < 2 or ow < 2:
            raise ValueError(f"input_dim {input_dim} is too small for a {k}x{k} filter "
                             f"with pad {p} and stride {s} followed by 2x2 pooling")
        pool_out = fn * (oh // 2) * (ow // 2)
        shapes = [(fn, C, k, k), (pool_out, hidden_size), (hidden_size, output_size)]
        self.params = {}
        for i, shape in enumerate(shapes):
            self.params[f"W{i + 1}"] = (weight_init_std * self.rng.standard_normal(shape)).astype(self.dtype)
            self.params[f"b{i + 1}"] = np.zeros(shape[0] if len(shape) == 4 else shape[1], self.dtype)
        self.layers = OrderedDict()
        self.layers['Conv1'] = layers.Convolution(None, None, s, p, relu=True, need_dx=False)
        self.layers['Pool1'] = layers.Pooling(2, 2, stride=2)
        self.layers['Affine1'] = layers.Affine(None, None, relu=True)
        self.layers['Affine2'] = layers.Affine(None, None)
        self._weight_layers = [self.layers['Conv1'], self.layers['Affine1'], self.layers['Affine2']]
        self.last_layer = layers.SoftmaxWithLoss()
        self._push_params()

    def numerical_gradient(self, x, t, h=1e-4):
        """Gradients of :meth:`loss` by centered differences, as the book's (its
        ``common/gradient.py``): ``(loss(p + h) - loss(p - h)) / (2 h)`` for each entry p
        of each parameter, changed in place and restored.

        Two forward passes per parameter entry: for small nets, to check :meth:`gradient`
        (the book's ch07/gradient_check.py).

        Parameters
        ----------
        x, t
            As for :meth:`loss`; a float16 net raises TypeError (inference only).
        h : float
            The step, the book's 1e-4.

        Returns
        -------
        dict
            ``'W1'``, ``'b1'``, ... each shaped and typed like its parameter.
        """
        t = self._check("numerical_gradient", x, t, train=True)
        x = self._cast(x)
        self._push_params()  # the layers must hold the very arrays perturbed below
        grads = {}
        for key, p in self.params.items():
            grads[key] = g = np.zeros_like(p)
            for i in np.ndindex(p.shape):
                old = p[i]
                p[i] = old + h
                hi = self._loss(x, t)
                p[i] = old - h
                lo = self._loss(x, t)
                p[i] = old
                g[i] = (hi - lo) / (2 * h)
        return grads
