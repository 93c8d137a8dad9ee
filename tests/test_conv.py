"""conv2d / conv2d_backward: the reference against a naive loop and finite differences,
every backend and every compiled algorithm against the reference, and every bad input."""
import importlib

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv import _backend
from fastconv import reference as ref
from fastconv._kernels import _conv_plan, _isa
from fastconv.testing import assert_close

from _support import BACKENDS, COMPILED, TOL, naive_conv2d, numeric_grad, randn

DTYPES = [np.float32, np.float64]
ALGORITHMS = list(_conv_plan.ALGORITHMS)

# x shape (N, C, H, W), filters (FN, KH, KW), stride, pad
CASES = [
    ((1, 1, 5, 5), (2, 3, 3), 1, 0),           # N=1, C=1
    ((2, 1, 7, 6), (3, 3, 2), (2, 1), 1),      # C=1, non-square kernel, stride pair
    ((2, 3, 7, 6), (4, 3, 2), (2, 1), 1),      # non-square kernel, stride pair
    ((3, 4, 5, 5), (5, 1, 1), 1, 0),           # 1x1 kernel
    ((2, 3, 6, 6), (1, 3, 3), 1, 1),           # FN=1
    ((2, 2, 9, 7), (3, 3, 3), 2, 1),           # stride 2, windows that do not tile
    ((1, 2, 10, 11), (3, 4, 3), 3, 2),         # stride 3, pad 2
    ((2, 3, 5, 5), (4, 5, 5), 1, 0),           # output of size 1x1
    ((2, 2, 3, 3), (2, 3, 3), 3, 1),           # 1x1 output from a padded input
    ((2, 2, 4, 4), (3, 3, 3), 1, (2, 0)),      # pad pair
    ((3, 5, 6, 5), (4, 2, 3), (1, 3), (0, 2)),  # stride and pad pairs
    ((5, 16, 14, 14), (32, 3, 3), 1, 1),       # DeepConvNet's third conv, batch 5
    ((3, 32, 14, 14), (32, 3, 3), 1, 2),       # its fourth: each pass picks its kernel
    ((3, 32, 8, 8), (64, 3, 3), 1, 1),         # its fifth: the rule's direct_filters
]


def _inputs(shape, filt, dtype, seed=0):
    N, C, H, W = shape
    FN, KH, KW = filt
    return (randn(shape, dtype, seed), randn((FN, C, KH, KW), dtype, seed + 1),
            randn((FN,), dtype, seed + 2))


#: The longest reduction of any case (an output, dx or dW element as a sum of products).
TERMS = max(max(C * KH * KW, FN * KH * KW, N * H * W) for (N, C, H, W), (FN, KH, KW), _, _ in CASES)


def assert_near(actual, expected, dtype):
    assert_close(actual, expected, TERMS, dtype)


def _assert_backward_near(backward, dout, x, W, stride, pad, dtype):
    """``backward(need_dx)`` -> (dx, dW, db) of ``dout`` against the reference's gradients:
    all three, of ``dtype``, with need_dx; dx None and dW without. Returns the reference's
    gradients and the second call's."""
    want = ref.conv2d_backward(dout, x, W, stride, pad)
    for g, w in zip(backward(True), want):
        assert g.dtype == dtype
        assert_near(g, w, dtype)
    got = backward(False)
    assert got[0] is None
    assert_near(got[1], want[1], dtype)
    return want, got


# --------------------------------------------------------------------------- reference

@pytest.mark.parametrize("shape,filt,stride,pad", CASES[:-1])
def test_reference_forward_matches_naive_loop(shape, filt, stride, pad):
    x, W, b = _inputs(shape, filt, np.float64)
    assert_near(ref.conv2d(x, W, b, stride, pad), naive_conv2d(x, W, b, stride, pad), np.float64)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("filt,stride,pad", [((2, 3, 2), (2, 1), 1), ((3, 2, 2), 1, 0)])
def test_gradients_match_centered_differences(backend, filt, stride, pad):
    x, W, b = _inputs((2, 2, 5, 4), filt, np.float64, seed=3)
    out = fc.conv2d(x, W, b, stride, pad, backend=backend)
    G = randn(out.shape, np.float64, 9)

    def loss():
        return float(np.sum(fc.conv2d(x, W, b, stride, pad, backend=backend) * G))

    num_dx, num_dW, num_db = (numeric_grad(loss, a) for a in (x, W, b))
    dx, dW, db = fc.conv2d_backward(G, x, W, stride, pad, backend=backend)
    for got, want in ((dx, num_dx), (dW, num_dW), (db, num_db)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- backends

def _kernel(backend):
    return _backend.kernels(backend, "conv")


def _win(x, W, stride, pad):
    """The checked window geometry the public ops hand the kernels."""
    v = fc._validation
    return v.window(x.shape[2], x.shape[3], W.shape[2], W.shape[3],
                    v.pair(stride, "stride", "test", 1), v.pair(pad, "pad", "test", 0), "test")


def _applies(algorithm, g):
    """False (after checking the kernels refuse it) for a direct algorithm where no
    direct kernel applies: strided windows or pad >= window."""
    if algorithm == "gemm" or _conv_plan.use_direct(g):
        return True
    for backend in COMPILED:
        with pytest.raises(ValueError, match=f"algorithm='{algorithm}' needs stride 1"):
            _kernel(backend).conv2d(np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1, 1)),
                                    np.zeros(1), g, algorithm=algorithm)
    return False


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,filt,stride,pad", CASES)
def test_kernels_match_reference(backend, algorithm, dtype, shape, filt, stride, pad):
    """Every algorithm of each compiled backend, forward, fused ReLU and backward."""
    x, W, b = _inputs(shape, filt, dtype)
    win = _win(x, W, stride, pad)
    if not _applies(algorithm, win):
        return
    k = _kernel(backend)
    expected = ref.conv2d(x, W, b, stride, pad)
    out = k.conv2d(x, W, b, win, False, algorithm=algorithm)
    assert out.dtype == dtype and out.flags.c_contiguous
    assert_near(out, expected, dtype)
    assert_near(k.conv2d(x, W, b, win, True, algorithm=algorithm),
                np.maximum(expected, 0), dtype)

    dout = randn(expected.shape, dtype, 7)
    want, (_, _, db) = _assert_backward_near(
        lambda need_dx: k.conv2d_backward(dout, x, W, win, need_dx, algorithm=algorithm),
        dout, x, W, stride, pad, dtype)
    assert_near(db, want[2], dtype)

    relu_out = np.ascontiguousarray(np.maximum(expected, 0), dtype=dtype)
    want = ref.conv2d_backward(dout * (relu_out > 0), x, W, stride, pad)
    got = k.conv2d_backward(dout, x, W, win, True, algorithm=algorithm, relu_out=relu_out)
    for g, w in zip(got, want):
        assert_near(g, w, dtype)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,filt,pad", [
    ((37, 16, 28, 28), (16, 3, 3), 1),   # many work chunks per thread, a short last one
    ((11, 5, 13, 6), (10, 3, 2), (2, 1)),  # pads equal to KH-1 / KW-1, odd channel counts
    ((9, 3, 4, 17), (17, 2, 3), 0),
    ((29, 32, 8, 8), (64, 3, 3), 1),     # the rule's direct_filters over several chunks
    ((13, 16, 28, 28), (1, 3, 3), 1),    # one output channel: the one-filter blocks
    ((7, 1, 28, 28), (16, 3, 3), 1),     # DeepConvNet's first conv: dx in one-filter blocks
])
def test_kernels_match_reference_many_chunks(backend, algorithm, dtype, shape, filt, pad):
    """Batches split into several packed chunks per thread, where each chunk's planes
    must not see the previous chunk's data."""
    x, W, b = _inputs(shape, filt, dtype)
    win = _win(x, W, 1, pad)
    k = _kernel(backend)
    expected = ref.conv2d(x, W, b, 1, pad, relu=True)
    out = k.conv2d(x, W, b, win, True, algorithm=algorithm)
    assert_near(out, expected, dtype)
    dout = randn(expected.shape, dtype, 11)
    want = ref.conv2d_backward(dout, x, W, 1, pad, relu_out=expected)
    got = k.conv2d_backward(dout, x, W, win, True, algorithm=algorithm, relu_out=out)
    for g, w in zip(got, want):
        assert_near(g, w, dtype)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,filt,stride,pad", CASES[::3])
def test_public_ops_match_reference(backend, dtype, shape, filt, stride, pad):
    x, W, b = _inputs(shape, filt, dtype)
    expected = ref.conv2d(x, W, b, stride, pad)
    assert_near(fc.conv2d(x, W, b, stride, pad, backend=backend), expected, dtype)
    relu = fc.conv2d(x, W, b, stride=stride, pad=pad, relu=True, backend=backend)
    assert relu.dtype == dtype
    assert_near(relu, np.maximum(expected, 0), dtype)
    assert_near(fc.conv2d(x, W, None, stride, pad, backend=backend), expected - b[:, None, None], dtype)
    dout = randn(expected.shape, dtype, 5)
    _assert_backward_near(
        lambda need_dx: fc.conv2d_backward(dout, x, W, stride, pad, need_dx=need_dx,
                                           backend=backend),
        dout, x, W, stride, pad, dtype)


@settings(max_examples=25, deadline=None)
@given(N=st.integers(1, 3), C=st.integers(1, 4), H=st.integers(1, 9), Wd=st.integers(1, 9),
       FN=st.integers(1, 4), KH=st.integers(1, 4), KW=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2),
       seed=st.integers(0, 2**16))
def test_hypothesis_shapes(N, C, H, Wd, FN, KH, KW, sh, sw, ph, pw, seed):
    assume(KH <= H + 2 * ph and KW <= Wd + 2 * pw)
    x, W, b = _inputs((N, C, H, Wd), (FN, KH, KW), np.float64, seed)
    expected = ref.conv2d(x, W, b, (sh, sw), (ph, pw))
    dout = randn(expected.shape, np.float64, seed + 3)
    want = ref.conv2d_backward(dout, x, W, (sh, sw), (ph, pw))
    win = _win(x, W, (sh, sw), (ph, pw))
    for backend in COMPILED:
        for algorithm in filter(lambda a: _applies(a, win), ALGORITHMS):
            k = _kernel(backend)
            assert_near(k.conv2d(x, W, b, win, True, algorithm=algorithm),
                        np.maximum(expected, 0), np.float64)
            got = k.conv2d_backward(dout, x, W, win, True, algorithm=algorithm)
            for g, w in zip(got, want):
                assert_near(g, w, np.float64)


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_contiguous_inputs(backend):
    x, W, b = _inputs((3, 3, 12, 9), (4, 3, 2), np.float64)
    xs = x[:, :, ::2, :]                       # strided view
    Wf = np.asfortranarray(W)
    bs = np.repeat(b, 2)[::2]
    expected = ref.conv2d(np.ascontiguousarray(xs), W, b, 1, 1)
    assert_near(fc.conv2d(xs, Wf, bs, 1, 1, backend=backend), expected, np.float64)
    dout_t = np.ascontiguousarray(randn(expected.shape, np.float64, 4).transpose(0, 1, 3, 2))
    dout = dout_t.transpose(0, 1, 3, 2)        # same values, transposed strides
    want = ref.conv2d_backward(np.ascontiguousarray(dout), np.ascontiguousarray(xs), W, 1, 1)
    for g, w in zip(fc.conv2d_backward(dout, xs, Wf, 1, 1, backend=backend), want):
        assert_near(g, w, np.float64)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float16_computed_in_float32(backend):
    x, W, b = _inputs((2, 3, 6, 6), (4, 3, 3), np.float16)
    out = fc.conv2d(x, W, b, 1, 1, backend=backend)
    assert out.dtype == np.float16
    expected = ref.conv2d(x.astype(np.float32), W.astype(np.float32), b.astype(np.float32), 1, 1)
    np.testing.assert_allclose(out.astype(np.float32), expected, **TOL[np.dtype(np.float16)],
                               )
    dout = randn(out.shape, np.float16, 2)
    grads = fc.conv2d_backward(dout, x, W, 1, 1, backend=backend)
    want = ref.conv2d_backward(*(a.astype(np.float32) for a in (dout, x, W)), 1, 1)
    for g, w in zip(grads, want):
        assert g.dtype == np.float16
        np.testing.assert_allclose(g.astype(np.float32), w, rtol=2e-3,
                                   atol=2e-3 * float(np.abs(w).max()))


@pytest.mark.parametrize("backend", BACKENDS)
def test_mixed_dtypes_follow_result_type(backend):
    x, W, b = _inputs((2, 2, 5, 5), (3, 3, 3), np.float32)
    out = fc.conv2d(x, W.astype(np.float64), b, backend=backend)
    assert out.dtype == np.float64
    assert_near(out, ref.conv2d(x.astype(np.float64), W.astype(np.float64), b.astype(np.float64)),
                np.float64)
    dx, dW, db = fc.conv2d_backward(out, x, W, backend=backend)
    assert dx.dtype == dW.dtype == db.dtype == np.float64


# --------------------------------------------------------------------------- validation

X = np.zeros((2, 3, 6, 6), np.float32)
W3 = np.zeros((4, 3, 3, 3), np.float32)
B = np.zeros(4, np.float32)
DOUT = np.zeros((2, 4, 4, 4), np.float32)


def _assert_rejects(fn, args, change, exc, match):
    """``fn(**args)`` with the arguments in ``change`` replaced raises ``exc`` matching
    ``match``."""
    with pytest.raises(exc, match=match):
        fn(**{**args, **change})


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(x=X[0]), ValueError, r"x is 3-dimensional.*needs 4 dimensions \(N, C, H, W\)"),
    (dict(W=W3[0]), ValueError, r"W is 3-dimensional"),
    (dict(x=X.tolist()), TypeError, r"x must be a NumPy ndarray"),
    (dict(x=X.astype(np.int32)), TypeError, r"x has dtype int32"),
    (dict(W=np.zeros((4, 2, 3, 3), np.float32)), ValueError, r"x has 3 channels .* W expects 2"),
    (dict(b=np.zeros((4, 1), np.float32)), ValueError, r"b is 2-dimensional"),
    (dict(b=np.zeros(5, np.float32)), ValueError, r"b has shape \(5,\) but W has 4 filters"),
    (dict(W=np.zeros((4, 3, 9, 3), np.float32)), ValueError, r"9x3 filter is larger than the padded input 6x6"),
    (dict(stride=0), ValueError, r"stride must be positive"),
    (dict(stride=1.5), TypeError, r"stride must be an int"),
    (dict(stride=(1, 2, 3)), ValueError, r"stride must be an int or an \(h, w\) pair"),
    (dict(pad=-1), ValueError, r"pad must be >= 0"),
    (dict(pad=(0, True)), TypeError, r"pad\[1\] must be an int"),
    (dict(relu=1), TypeError, r"relu must be True or False"),
    (dict(backend="gpu"), ValueError, r"backend must be one of"),
])
def test_conv2d_rejects_bad_input(kwargs, exc, match):
    _assert_rejects(fc.conv2d, dict(x=X, W=W3, b=B, stride=1, pad=0), kwargs, exc, match)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(dout=DOUT[..., :3]), ValueError,
     r"dout has shape \(2, 4, 4, 3\), expected \(2, 4, 4, 4\); conv2d of x \(2, 3, 6, 6\)"),
    (dict(dout=DOUT[0]), ValueError, r"dout is 3-dimensional"),
    (dict(dout=DOUT.astype(np.int64)), TypeError, r"dout has dtype int64"),
    (dict(pad=1), ValueError, r"dout has shape \(2, 4, 4, 4\), expected \(2, 4, 6, 6\)"),
    (dict(W=np.zeros((4, 1, 3, 3), np.float32)), ValueError, r"x has 3 channels"),
    (dict(x=np.zeros((2, 3, 2, 2), np.float32)), ValueError, r"larger than the padded input"),
    (dict(stride=(1, 0)), ValueError, r"stride\[1\] must be positive"),
    (dict(need_dx=None), TypeError, r"need_dx must be True or False"),
    (dict(relu_out=DOUT[..., :3]), ValueError, r"relu_out has shape \(2, 4, 4, 3\), expected"),
    (dict(relu_out=DOUT.astype(np.int32)), TypeError, r"relu_out has dtype int32"),
])
def test_conv2d_backward_rejects_bad_input(kwargs, exc, match):
    _assert_rejects(fc.conv2d_backward, dict(dout=DOUT, x=X, W=W3, stride=1, pad=0), kwargs,
                    exc, match)


@pytest.mark.parametrize("geometry,direct", [
    ((3, 3, 1, 1, 1, 1), True),    # every DeepConvNet conv
    ((3, 3, 1, 1, 2, 2), True),
    ((1, 1, 1, 1, 0, 0), True),
    ((2, 3, 1, 1, 1, 2), True),    # pads up to KH-1 / KW-1
    ((3, 3, 1, 1, 3, 1), False),   # pad >= KH: dx's padding would be negative
    ((1, 1, 1, 1, 1, 0), False),
    ((3, 3, 2, 1, 1, 1), False),   # strided windows
    ((3, 3, 1, 3, 0, 0), False),
])
def test_rule_picks_direct_where_its_kernels_apply(geometry, direct):
    g = fc._validation.Window(*geometry, 1, 1)  # the output size does not enter the rule
    assert _conv_plan.use_direct(g) is direct
    assert _conv_plan.choose(None, g) == ("direct" if direct else "gemm")
    assert _conv_plan.choose("gemm", g) == "gemm"
    if not direct:
        for algorithm in ("direct", "direct_filters"):
            with pytest.raises(ValueError, match=f"algorithm='{algorithm}' needs stride 1"):
                _conv_plan.choose(algorithm, g)


#: The rule's kernels on DeepConvNet's six convs (float32): per conv, whether the forward,
#: dW and dx run with filters in vectors ("f") or on wide planes ("w"), at the levels the
#: rule was measured at (_conv_plan.FILTERS_BELOW, FILTERS_MIN_CHANNELS, DW_FILTERS_BELOW).
RULE_ON_DEEPCONVNET = {
    "avx512": ["www", "www", "ffw", "fff", "fff", "fff"],
    "avx2": ["www", "fwf", "fff", "fwf", "fff", "fff"],
}


@pytest.mark.parametrize("level", sorted(RULE_ON_DEEPCONVNET))
def test_rule_picks_kernels_per_pass_on_deepconvnet(level):
    """Filters in vectors where a pass's channels fill blocks of filters and, for the
    forward and dx, it sums over 8 channels or more and under 0.9 of its wide products are
    real (dW: its outputs fill under 0.9 of a packed plane, any fraction at AVX-512),
    wide planes elsewhere; each pass of a call decides alone."""
    from fastconv._bench.deepconvnet import shapes

    for conv, want in zip(shapes(100).convs, RULE_ON_DEEPCONVNET[level]):
        N, C, H, W, FN, k, s, p = conv
        g = _win(np.empty((1, C, H, W)), np.empty((FN, C, k, k)), s, p)
        fwd = _conv_plan.plan((N, C, H, W), (FN, C, k, k), g, 4, 2, level)
        bwd = _conv_plan.plan((N, C, H, W), (FN, C, k, k), g, 4, 2, level, backward=True)
        assert fwd.algorithm == bwd.algorithm == "direct", conv
        assert not fwd.dx_filters_in_vectors
        got = "".join("f" if fv else "w" for fv in (fwd.filters_in_vectors,
                                                    bwd.filters_in_vectors,
                                                    bwd.dx_filters_in_vectors))
        assert got == want, conv


@pytest.mark.parametrize("level", _conv_plan.BLOCKS)
@pytest.mark.parametrize("backward", [False, True])
def test_forced_algorithm_runs_every_pass_alike(level, backward):
    """``'direct'`` runs every pass on wide planes, ``'direct_filters'`` every pass with
    filters in vectors, even where the channels fill no block (12 here)."""
    g = _win(np.empty((1, 12, 8, 8)), np.empty((64, 12, 3, 3)), 1, 1)
    args = (100, 12, 8, 8), (64, 12, 3, 3), g, 4, 2, level
    wide = _conv_plan.plan(*args, algorithm="direct", backward=backward)
    assert not wide.filters_in_vectors and not wide.dx_filters_in_vectors
    filters = _conv_plan.plan(*args, algorithm="direct_filters", backward=backward)
    assert filters.filters_in_vectors and filters.dx_filters_in_vectors == backward
    rule = _conv_plan.plan(*args, backward=backward)
    assert rule.filters_in_vectors and not rule.dx_filters_in_vectors  # 12: no block


def test_real_fraction_counts_products_inside_the_input():
    """A wide plane's products that are real: per output row (and column) the window rows
    (columns) inside the input. 3x3 pad 1 on 28x28: the first and last output rows keep 2
    of 3 window rows (82 of 84), on a 29x29 plane; pad 2 on 14x14: 1, 2, 3 x 12, 2, 1 of
    3 x 16 rows, on a 16x16 plane; dx's plane for it has none to drop but its columns
    past 14; a 1x1 window without padding keeps every product."""
    assert _conv_plan.real_fraction(29 * 29, 28, 28, 1, 1, 28, 28, 3, 3) == 82 ** 2 / (841 * 9)
    assert _conv_plan.real_fraction(16 * 16, 16, 16, 2, 2, 14, 14, 3, 3) == 42 ** 2 / (256 * 9)
    assert _conv_plan.real_fraction(16 * 16, 14, 14, 0, 0, 16, 16, 3, 3) == 196 / 256
    assert _conv_plan.real_fraction(7 * 9, 7, 9, 0, 0, 7, 9, 1, 1) == 1.0


def test_rule_leaves_few_channels_on_wide_planes():
    """The forward with filters in vectors needs FILTERS_MIN_CHANNELS input channels: one
    channel (DeepConvNet's first conv at AVX2, 16 filters = one AVX2 block) stays wide,
    sixteen of the same plane go to filters in vectors."""
    g = _win(np.empty((1, 1, 28, 28)), np.empty((16, 1, 3, 3)), 1, 1)
    assert not _conv_plan.plan((100, 1, 28, 28), (16, 1, 3, 3), g, 4, 2,
                               "avx2").filters_in_vectors
    assert _conv_plan.plan((100, 16, 28, 28), (16, 16, 3, 3), g, 4, 2,
                           "avx2").filters_in_vectors


def test_tap_ranges_skip_window_rows_that_read_only_padding():
    """Blocks of 8 outputs on 8x8 images with pad 1: the first row's blocks skip window row
    0 (taps 0-2), the last row's window row 2 (taps 6-8); a block spanning rows or
    images keeps every tap, and dx's planes without padding (pad 0) skip nothing."""
    got = _conv_plan.tap_ranges(2, 8, 8, 1, 8, 3, 3, 8).reshape(-1, 2).tolist()
    assert got == 2 * ([[3, 9]] + 6 * [[0, 9]] + [[0, 6]])
    rows_of_6 = _conv_plan.tap_ranges(2, 6, 6, 1, 6, 3, 3, 8).reshape(-1, 2)
    assert (rows_of_6 == [0, 9]).all()  # every block spans a middle row
    assert (_conv_plan.tap_ranges(1, 14, 14, 0, 16, 3, 3, 8).reshape(-1, 2) == [0, 9]).all()


@pytest.mark.parametrize("N", [1, 2, 3, 7, 100, 101])
@pytest.mark.parametrize("G", [1, 4, 12, 200])
@pytest.mark.parametrize("threads", [1, 2, 3, 16])
def test_batch_chunks_cover_the_batch_in_equal_shares(N, G, threads):
    """Chunks of at most G images, each image in exactly one, their count a multiple of
    the threads (or N, one image each), so threads that take chunks in turn get equal
    shares."""
    chunks = _conv_plan.batch_chunks(N, min(G, -(-N // threads)), threads)
    starts = [k * N // chunks for k in range(chunks + 1)]
    sizes = np.diff(starts)
    assert starts[0] == 0 and starts[-1] == N and (sizes >= 1).all()
    assert sizes.max() <= min(G, -(-N // threads)) and sizes.max() - sizes.min() <= 1
    assert chunks == N or chunks % threads == 0


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("shape", [(40, 16, 8, 8, 32), (30, 8, 14, 14, 8)])
def test_gradients_are_the_same_bits_every_call(backend, shape):
    """Threads take the direct kernels' chunks as they finish, in an order that changes
    from call to call; dW and db are still summed in one order (per chunk, then the
    chunks in turn), so repeated calls give identical bits (a run with the same seed
    trains the same weights). Four threads: on fewer cores they take chunks in a
    different order every call (per-thread sums failed this test on 2 cores)."""
    N, C, H, W, FN = shape
    x, Wt, _ = _inputs((N, C, H, W), (FN, 3, 3), np.float32)
    dout = np.random.default_rng(1).standard_normal((N, FN, H, W)).astype(np.float32)
    old = fc.get_num_threads()
    try:
        fc.set_num_threads(4)
        first = fc.conv2d_backward(dout, x, Wt, 1, 1, backend=backend)
        for _ in range(30):
            again = fc.conv2d_backward(dout, x, Wt, 1, 1, backend=backend)
            for a, b in zip(first, again):
                np.testing.assert_array_equal(a, b)
    finally:
        fc.set_num_threads(old)


def test_plans_are_shared_and_read_only():
    """``plan`` hands every call of a shape the same plan, whose arrays nothing can
    change."""
    g = fc._validation.Window(3, 3, 1, 1, 1, 1, 8, 8)
    args = ((100, 64, 8, 8), (64, 64, 3, 3), g, 4, 2, "avx512")
    p = _conv_plan.plan(*args, backward=True)
    assert p is _conv_plan.plan(*args, backward=True)
    arrays = (p.tap_offsets, p.outputs, p.dw_inputs, p.dx_outputs, p.dx_output_taps)
    assert all(a.size for a in arrays)
    for a in arrays:
        with pytest.raises(ValueError, match="read-only"):
            a[0] = 1


@pytest.mark.parametrize("level", _isa.LEVELS)
def test_filter_block_is_one_filter_for_few_output_channels(level):
    """The forward/dx kernel's filters per block: one below the level's ONE_BELOW output
    channels, the wide block from there on, vectors of filters for direct_filters."""
    b, below = _conv_plan.BLOCKS[level], _conv_plan.ONE_BELOW[level]
    assert 1 < below <= b.fwd_f
    for channels in range(1, below):
        assert _conv_plan.filter_block(False, channels, level, 16) == 1
    for channels in (below, b.fwd_f, 64):
        assert _conv_plan.filter_block(False, channels, level, 16) == b.fwd_f
    assert _conv_plan.filter_block(True, 64, level, 16) == b.fv_f * 16


@pytest.mark.parametrize("backend", COMPILED)
def test_kernel_rejects_unknown_algorithm(backend):
    with pytest.raises(ValueError, match="algorithm must be None or one of"):
        _kernel(backend).conv2d(X, W3, B, _win(X, W3, 1, 0), False, algorithm="fft")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_relu_backward_matches_book_mask(backend, dtype):
    """relu_out applies the book's Relu.backward (zero where out <= 0) to dout."""
    x, W, b = _inputs((3, 4, 7, 7), (5, 3, 3), dtype)
    out = fc.conv2d(x, W, b, 1, 1, relu=True, backend=backend)
    assert (out == 0).any() and (out > 0).any()
    dout = randn(out.shape, dtype, 9)
    masked = dout.copy()
    masked[out <= 0] = 0
    want = ref.conv2d_backward(masked, x, W, 1, 1)
    got = fc.conv2d_backward(dout, x, W, 1, 1, relu_out=out, backend=backend)
    for g, w in zip(got, want):
        assert_near(g, w, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_relu_propagates_nan(backend):
    """relu=True is np.maximum(v, 0): NaN stays NaN, as in the reference."""
    x = np.full((1, 1, 3, 3), np.nan, np.float32)
    out = fc.conv2d(x, np.ones((2, 1, 3, 3), np.float32), relu=True, backend=backend)
    assert np.isnan(out).all()


@pytest.mark.parametrize("backend", COMPILED)
def test_direct_kernels_refuse_short_buffers(backend):
    """The unchecked direct loops refuse packed buffers too short for their vectors (in
    Numba: a stale cache compiled on another CPU) instead of writing past them."""
    from fastconv._kernels import _conv_plan as plan

    raw = importlib.import_module(f"fastconv._kernels.{backend}_backend.conv")
    _, vbytes, F, V, *_, one_v = raw.block_shapes()
    x, W, b = _inputs((1, 1, 1, 1), (F, 1, 1), np.float32)
    Wp, S, off = plan.wide_layout(1, 1, 1, 1, 0, 0)
    L = vbytes // x.itemsize
    short = plan.wide_buffer_width(1, S, Wp, 0, off, max(V, one_v) * L, L) - L
    out = np.empty((1, F, 1, 1), np.float32)
    none = np.empty(0, np.intp)
    with pytest.raises(ValueError, match="too short"):
        raw.forward_direct(x=x, wpk=plan.pack_filters(W.reshape(F, 1, 1), F), b=b, out=out,
                           xbuf=np.zeros((1, 1, short), np.float32),
                           wide=np.zeros((1, F, short), np.float32), filter_block=F,
                           tap_offsets=off, outputs=none, output_taps=none, ph=0, pw=0,
                           relu=False, images=1, chunks=1, threads=1)


def _same_values(got, want, dtype):
    """NaN where the reference has NaN, the same infinities, and finite values close."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
    fin = np.isfinite(want)
    assert_near(np.where(fin, got, 0), np.where(fin, want, 0), dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_non_finite_filters_give_the_references_values(backend, bad):
    """inf/NaN in W on planes the rule gives to filters in vectors: the forward and the
    gradients as the reference's, whose forward multiplies the padding's zeros by W
    (NaN at the borders) and whose dx does not: the rule runs im2col + GEMM there."""
    dtype = np.float32
    x, W, b = _inputs((3, 32, 8, 8), (64, 3, 3), dtype)
    W[5, 3, 0, 1] = bad
    W[7, 30, 2, 2] = bad
    dout = randn((3, 64, 8, 8), dtype, 3)
    with np.errstate(invalid="ignore"):  # inf * 0 in the reference's products
        _same_values(fc.conv2d(x, W, b, 1, 1, backend=backend), ref.conv2d(x, W, b, 1, 1),
                     dtype)
        for g, w in zip(fc.conv2d_backward(dout, x, W, 1, 1, backend=backend),
                        ref.conv2d_backward(dout, x, W, 1, 1)):
            _same_values(g, w, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("pad", [0, 1])
def test_non_finite_input_gives_the_references_values(backend, bad, pad):
    """inf/NaN in x: forward and all three gradients as the reference's (#13: the direct
    backward used to put NaN in dW where the reference is finite, 0 * inf between
    outputs); NaN/inf in dout likewise."""
    dtype = np.float32
    x, W, b = _inputs((3, 4, 9, 8), (5, 3, 3), dtype)
    x[1, 2, 4, 0] = bad          # a border column: its neighbours between outputs meet it
    x[2, 0, 0, 7] = bad
    dout = randn((3, 5, 9 + 2 * pad - 2, 8 + 2 * pad - 2), dtype, 3)
    _same_values(fc.conv2d(x, W, b, 1, pad, backend=backend), ref.conv2d(x, W, b, 1, pad),
                 dtype)
    for g, w in zip(fc.conv2d_backward(dout, x, W, 1, pad, backend=backend),
                    ref.conv2d_backward(dout, x, W, 1, pad)):
        _same_values(g, w, dtype)
    x2, _, _ = _inputs((3, 4, 9, 8), (5, 3, 3), dtype)
    dout[0, 1, 3, 3] = bad
    for g, w in zip(fc.conv2d_backward(dout, x2, W, 1, pad, backend=backend),
                    ref.conv2d_backward(dout, x2, W, 1, pad)):
        _same_values(g, w, dtype)
