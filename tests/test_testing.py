"""fastconv.testing: assert_matches_reference and check_grad pass on fastconv's ops and
layers, and fail, naming the backend / argument and the worst element, on wrong ones."""
import re

import numpy as np
import pytest

import fastconv as fc
from fastconv import layers
from fastconv.testing import (assert_close, assert_matches_reference,
                              check_grad, tolerance)

from _support import BACKENDS, COMPILED, randn



# --------------------------------------------------------------------------- assert_close

def test_sum_tolerance_grows_with_the_terms():
    """The AVX2 case of fastconv.testing.tolerance: a 1024-term float32 sum in a row
    reaching 50 may differ in the 6th digit."""
    expected = np.array([50.0, 0.3163093], np.float32)
    actual = np.array([50.0, 0.3163041], np.float32)
    with pytest.raises(AssertionError, match=r"1 of 2 elements differ .* elementwise "
                                             r"results \(rtol .*\); worst at index \(1,\)"):
        assert_close(actual, expected)
    assert_close(actual, expected, terms=1024)
    # atol: the row's, plus max(rtol, 4 eps sqrt(terms)) times the largest magnitude
    assert tolerance(expected, terms=1024) == pytest.approx((1e-5, 1e-6 + 1e-5 * 50))
    assert tolerance(expected, terms=2**20) == pytest.approx((1e-5, 1e-6 + 2.0**-12 * 50))
    with pytest.raises(AssertionError, match="sums of 1024 terms"):
        assert_close(expected + np.float32(0.01), expected, terms=1024)


def test_assert_close_fails_on_nan_shape_dtype_and_integers():
    e = np.array([1.0, np.nan, np.inf])
    assert_close(e.copy(), e)
    with pytest.raises(AssertionError, match=r"worst at index \(1,\): got np.float64\(2.0\), "
                                             r"expected np.float64\(nan\)"):
        assert_close(np.array([1.0, 2.0, np.inf]), e)
    with pytest.raises(AssertionError, match=r"worst at index \(2,\)"):
        assert_close(np.array([1.0, np.nan, -np.inf]), e)
    with pytest.raises(AssertionError, match=r"shape \(2,\), expected \(3,\)"):
        assert_close(e[:2], e)
    with pytest.raises(AssertionError, match="dtype float32, expected float64"):
        assert_close(e.astype(np.float32), e)
    with pytest.raises(AssertionError, match=r"1 of 3 elements differ \(exact comparison of "
                                             r"int32\); first at index \(2,\)"):
        assert_close(np.array([0, 1, 3], np.int32), np.array([0, 1, 2], np.int32))


# --------------------------------------------------------------------------- reference

def _public_cases(dtype):
    x = randn((2, 3, 7, 6), dtype, 0)
    W = randn((4, 3, 3, 3), dtype, 1)
    b = randn((4,), dtype, 2)
    dout = randn((2, 4, 4, 3), dtype, 3)
    pooled, argmax = fc.max_pool2d(x, 3, 2, (2, 2), 1, backend="numpy")
    Wl = randn((126, 5), dtype, 4)
    return [
        (fc.conv2d, (x, W, b, 2, 1), dict(relu=True)),
        (fc.conv2d_backward, (dout, x, W, 2, 1), {}),
        (fc.max_pool2d, (x, 3, 2, (2, 2), 1), {}),
        (fc.max_pool2d_backward, (randn(pooled.shape, dtype, 5), argmax, x.shape, 3, 2,
                                  (2, 2), 1), {}),
        (fc.avg_pool2d, (x, 3, 3, 1, 1), {}),
        (fc.avg_pool2d_backward, (randn((2, 3, 7, 6), dtype, 6), x.shape, 3, 3, 1, 1), {}),
        (fc.linear, (x, Wl, randn((5,), dtype, 7)), dict(relu=True)),
        (fc.linear_backward, (randn((2, 5), dtype, 8), x, Wl), {}),
        (fc.im2col, (x, 3, 2, 1, 1), {}),
        (fc.col2im, (randn((2 * 7 * 7, 18), dtype, 9), x.shape, 3, 2, 1, 1), {}),
        (fc.functional.shift_flip, (x, np.array([1, -2]), np.array([0, 3]),
                                    np.array([1, 0])), {}),
    ]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("case", range(11))
def test_every_public_op_matches_its_reference(case, dtype):
    op, args, kwargs = _public_cases(dtype)[case]
    assert_matches_reference(op, *args, **kwargs)


def _off_by_one_cell(backend, index):
    """A conv2d that is wrong in one cell on ``backend`` only."""
    def conv2d(x, W, b=None, stride=1, pad=0, relu=False):
        out = fc.conv2d(x, W, b, stride, pad, relu)
        if fc.get_backend() == backend:
            out[index] += 1e-3 * np.abs(out).max()
        return out
    return conv2d


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_wrong_result_names_the_backend_and_the_worst_element(backend):
    x, W = randn((2, 3, 6, 6), np.float32), randn((4, 3, 3, 3), np.float32, 1)
    with pytest.raises(AssertionError) as info:
        assert_matches_reference(_off_by_one_cell(backend, (1, 2, 3, 4)), x, W, pad=1)
    message = str(info.value)
    assert message.startswith(f"conv2d on backend {backend!r}: 1 of 288 elements differ")
    assert "tolerance for sums of 28 terms" in message
    assert "worst at index (1, 2, 3, 4)" in message


@pytest.mark.skipif(not COMPILED, reason="no compiled backend built here")
def test_a_wrong_argmax_fails_exactly():
    def max_pool2d(x, pool_h, pool_w, stride=None, pad=0):
        out, arg = fc.max_pool2d(x, pool_h, pool_w, stride, pad)
        if fc.get_backend() != "numpy":
            arg = arg.copy()
            arg[0, 0, 0, 0] = (arg[0, 0, 0, 0] + 1) % 4
        return out, arg

    with pytest.raises(AssertionError, match=r"max_pool2d on backend '\w+', output \[1\]: 1 of "
                                             r"\d+ elements differ \(exact comparison of int32\)"):
        assert_matches_reference(max_pool2d, randn((2, 2, 4, 4)), 2, 2)


def test_outputs_of_another_structure_or_dtype_fail():
    x, W = randn((1, 1, 4, 4)), randn((1, 1, 3, 3))
    with pytest.raises(AssertionError, match=r"returned outputs \['\[0\]', '\[1\]'\], the "
                                             r"reference \['.'\]"):
        assert_matches_reference(lambda x, W: (fc.conv2d(x, W), None), x, W,
                                 reference=fc.reference.conv2d)
    with pytest.raises(AssertionError, match="dtype float32, expected float64"):
        assert_matches_reference(lambda x, W: fc.conv2d(x, W).astype(np.float32), x, W,
                                 reference=fc.reference.conv2d)


def test_explicit_reference_select_and_arguments():
    x, W = randn((1, 2, 5, 5)), randn((3, 2, 3, 3))
    assert_matches_reference(lambda x, W: (fc.conv2d(x, W), "cache"), x, W,
                             reference=lambda x, W: (fc.reference.conv2d(x, W), None),
                             select=lambda r: r[0], terms=19, backends=BACKENDS[:1])
    def my_op(x):
        return x

    with pytest.raises(TypeError, match="fastconv.reference has no 'my_op'; pass the function"):
        assert_matches_reference(my_op, x)
    with pytest.raises(TypeError, match="do not pass backend="):
        assert_matches_reference(fc.conv2d, x, W, backend="numpy")
    with pytest.raises(ValueError, match="terms has 2 entries for 1 outputs of conv2d"):
        assert_matches_reference(fc.conv2d, x, W, terms=(1, 2))


# --------------------------------------------------------------------------- check_grad

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op, args, kwargs", [
    (fc.conv2d, ((2, 3, 6, 5), (4, 3, 3, 2), (4,)), dict(stride=(2, 1), pad=1, relu=True)),
    (fc.max_pool2d, ((2, 3, 7, 7), 3, 3), dict(stride=2, pad=1)),
    (fc.avg_pool2d, ((2, 3, 7, 7), 3, 2), dict(stride=1, pad=1)),
    (fc.linear, ((3, 2, 4), (8, 5), (5,)), dict(relu=True)),
])
def test_check_grad_passes_on_fastconv_ops(op, args, kwargs, backend):
    args = [randn(a, seed=i) if isinstance(a, tuple) else a for i, a in enumerate(args)]
    check_grad(op, *args, backend=backend, **kwargs)


def test_check_grad_in_float32_keeps_the_dtype():
    x, W = randn((2, 3, 6, 6), np.float32), randn((4, 3, 3, 3), np.float32, 1)
    seen = []

    def conv(x, W):
        seen.append(x.dtype)
        return fc.conv2d(x, W)

    check_grad(conv, x, W, dtype=None,
               backward=lambda dout, x, W: fc.conv2d_backward(dout, x, W)[:2])
    assert set(seen) == {np.dtype(np.float32)}


def test_a_wrong_backward_names_the_argument_and_the_worst_element():
    x, W, b = randn((2, 3, 6, 6)), randn((4, 3, 3, 3), seed=1), randn((4,), seed=2)

    def backward_without_relu_mask(dout, x, W, b, **kwargs):
        return fc.conv2d_backward(dout, x, W, 1, 1)

    with pytest.raises(AssertionError, match=r"check_grad\(conv2d\): gradient of argument 0: "
                                             r"\d+ of 50 checked elements disagree; worst at "
                                             r"index \(\d, \d, \d, \d\)"):
        check_grad(fc.conv2d, x, W, b, pad=1, relu=True, backward=backward_without_relu_mask)

    def backward_with_wrong_db(dout, x, W, b, **kwargs):
        dx, dW, db = fc.conv2d_backward(dout, x, W, 1, 1)
        return dx, dW, db * (1 + 1e-4)

    with pytest.raises(AssertionError, match=r"gradient of argument 2: 4 of 4 checked"):
        check_grad(fc.conv2d, x, W, b, pad=1, backward=backward_with_wrong_db)


def test_check_grad_refuses_what_it_cannot_check():
    x = randn((2, 3))
    with pytest.raises(TypeError, match="not a fastconv op with a known backward; pass "
                                        "backward="):
        check_grad(np.tanh, x)
    with pytest.raises(ValueError, match="wrt names argument 1"):
        check_grad(fc.linear, x, randn((3, 2)), wrt=[1], backward=lambda d, x, W: (None, None))
    with pytest.raises(TypeError, match="too coarse"):
        check_grad(fc.linear, x.astype(np.float16), randn((3, 2), np.float16), dtype=None)


@pytest.mark.parametrize("make, args", [
    (lambda: layers.Convolution(randn((4, 3, 3, 3), seed=1), randn((4,), seed=2), 1, 1),
     ((2, 3, 6, 6),)),
    (lambda: layers.Pooling(2, 2, 2), ((2, 3, 6, 6),)),
    (lambda: layers.Affine(randn((24, 5), seed=1), randn((5,), seed=2)), ((3, 2, 3, 4),)),
    (lambda: layers.Relu(), ((3, 7),)),
    (lambda: layers.Sigmoid(), ((3, 7),)),
    (lambda: layers.Dropout(0.4), ((3, 7),)),
    (lambda: layers.Dropout(0.4, rng=3), ((3, 7),)),
    (lambda: layers.BatchNormalization(randn((7,), seed=1), randn((7,), seed=2)), ((4, 7),)),
    (lambda: layers.SoftmaxWithLoss(), ((5, 4), np.array([0, 1, 2, 3, 0]))),
])
def test_check_grad_passes_on_the_layers(make, args):
    layer = make()
    args = [randn(a) if isinstance(a, tuple) else a for a in args]
    params = {k: v for k, v in vars(layer).items() if isinstance(v, np.ndarray)}
    check_grad(layer, *args)
    assert all(vars(layer)[k] is v for k, v in params.items())  # restored


def test_a_wrong_layer_backward_names_the_parameter():
    class Affine(layers.Affine):
        def backward(self, dout):
            dx = super().backward(dout)
            self.dW = self.dW.T.reshape(self.dW.shape)  # the classic transposition slip
            return dx

    layer = Affine(randn((6, 6), seed=1), randn((6,), seed=2))
    with pytest.raises(AssertionError, match=re.escape("check_grad(Affine): dW (parameter W)")):
        check_grad(layer, randn((3, 6)))
    check_grad(layer, randn((3, 6)), wrt=["x", "b"])
