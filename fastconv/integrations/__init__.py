"""fastconv inside other NumPy code bases, each switched on by one import.

=============================  ==========================================================
``fastconv.integrations``      for code written against
=============================  ==========================================================
``.cs231n``                    CS231n's ``fast_layers`` / ``layer_utils`` functions
                               (``conv_forward_fast``, ``conv_relu_pool_forward``, ...)
``.autograd``                  HIPS autograd: ``conv2d``, ``max_pool2d``, ``avg_pool2d``,
                               ``linear`` as primitives whose VJPs run fastconv's backward
                               kernels (``pip install "fastconv[autograd]"``)
``.mygrad``                    MyGrad: the same four ops as MyGrad operations on
                               ``mygrad.Tensor`` (``pip install "fastconv[mygrad]"``)
=============================  ==========================================================

Importing this package imports none of them: each submodule imports its host library
when it is itself imported, so fastconv never depends on autograd or MyGrad.
"""


def _host_missing(module, library, err):
    """The ImportError of ``fastconv.integrations.<module>`` when its host library (the
    package ``<module>``, also the extra ``fastconv[<module>]``) fails to import: ``err``."""
    return ImportError(
        f"fastconv.integrations.{module} needs {library} ({err}); install it with "
        f"`pip install fastconv[{module}]` (or `pip install {module}`)"
    )
