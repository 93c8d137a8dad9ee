"""What both conv backends share: the per-shape algorithm rule.

Algorithms (``kernels/*_backend/conv``):

- ``'direct'``: loops over output pixels, no col matrix, meant for windows that hold
  few values (``C*KH*KW <= DIRECT_MAX_K``), where a GEMM with so short an inner
  dimension runs below BLAS peak. Measured on DeepConvNet's first layer ((100,1,28,28)
  -> 16, 3x3, pad 1, float32, one thread, CPU time of the calling thread, best of 5x10
  on a loaded 2-core machine): Numba direct fwd 3.8 ms / bwd without dx 4.1 ms, gemm
  1.3 / 3.9 ms; Cython direct 3.8 / 4.2 ms, gemm 3.0 / 2.6 ms. The direct kernels lose,
  so ``DIRECT_MAX_K`` is 0 and the rule never picks them; they stay reachable with
  ``algorithm='direct'`` (tested against the reference) for later tuning.
- ``'gemm'``: im2col + GEMM without transposes. Each thread owns a contiguous share
  of the batch and walks it in groups of ``G`` images: it builds the group's col in
  (C*KH*KW, G*OH*OW) layout, one single-threaded BLAS call ``W(FN, K) @ col`` gives
  the group's (FN, G*OH*OW) block, and bias/ReLU are applied while scattering the
  block into the NCHW output. Backward gathers dout the same way, accumulates
  ``dW += dout_g @ col.T`` in a per-thread partial (reduced at the end: race-free) and
  folds ``W.T @ dout_g`` back into dx image by image (each image is owned by one
  thread). ``G`` is chosen so the col group stays around ``COL_GROUP_BYTES``: large
  enough for an efficient GEMM, small enough to stay in L2. Sweeping the group from
  one image to each thread's whole share (one big GEMM per thread over a full col)
  on DeepConvNet's convs 2-6, the whole-share col was slowest everywhere (backward up
  to 2.7x slower, conv2: 88 vs 32 ms Numba, 48 vs 23 ms Cython, one thread), and groups
  of 1 image to 512 KiB were within the machine's noise of each other.
"""
import numpy as np

#: Target size in bytes of one thread's col group (see ``group_size``).
COL_GROUP_BYTES = 512 * 1024

#: Target size in bytes of one thread's packed images (input and output channels) for
#: the Cython direct kernels (see ``simd_chunk``).
SIMD_CHUNK_BYTES = 512 * 1024


def use_direct(backend, kh, kw, sh, sw, ph, pw):
    """The rule: True when ``backend``'s direct algorithm is chosen for this geometry."""
    return sh == 1 and sw == 1 and ph < kh and pw < kw


def choose(algorithm, backend, kh, kw, sh, sw, ph, pw):
    """``algorithm`` if given (``'direct'`` or ``'gemm'``), else the rule's choice."""
    if algorithm is None:
        return "direct" if use_direct(backend, kh, kw, sh, sw, ph, pw) else "gemm"
    if algorithm not in ("direct", "gemm"):
        raise ValueError(f"algorithm must be None, 'direct' or 'gemm', got {algorithm!r}")
    return algorithm


def group_size(N, K, P, itemsize, n_threads):
    """Images per GEMM for col groups of about ``COL_GROUP_BYTES``, at least 1, and no
    more than each thread's share of the batch."""
    g = max(1, COL_GROUP_BYTES // max(1, K * P * itemsize))
    share = -(-N // max(1, n_threads))
    return max(1, min(g, share))


def wide_layout(H, W, kh, kw, top, left):
    """Geometry of (H, W) images packed as wide planes with (top, left) zero padding
    shared between neighbours: row length ``Wp``, plane size ``S`` and the flat offset
    of every window tap (intp array, ``ky*Wp + kx``)."""
    Wp = W + left
    S = (H + top) * Wp
    off = np.array([ky * Wp + kx for ky in range(kh) for kx in range(kw)], dtype=np.intp)
    return Wp, S, off


def wide_buffer_width(G, S, Wp, top, off, step, lanes):
    """Row length of a packed buffer: G planes, the zero rows after them (``top + 1``
    rows and a vector), the forward kernel's overrun past the last block of ``step``
    positions and the largest tap offset, in whole vectors."""
    n = G * S + (top + 1) * Wp + lanes + step + int(off[-1]) + 1
    return -(-n // lanes) * lanes


def pack_filters(W3, F):
    """(FN, C, T) filters -> (ceil(FN/F), C, T, F) blocks, zero-padded, flat: the layout
    the forward kernels read, F broadcasts per tap."""
    FN, C, T = W3.shape
    nfb = -(-FN // F)
    wp = np.zeros((nfb * F, C, T), dtype=W3.dtype)
    wp[:FN] = W3
    return np.ascontiguousarray(wp.reshape(nfb, F, C, T).transpose(0, 2, 3, 1)).ravel()


def flipped_filters(W):
    """(FN, C, KH, KW) -> (C, FN, KH*KW): the filters of the convolution that maps dout
    to dx (a stride-1 conv's input gradient is dout, padded by KH-1-PH and KW-1-PW,
    cross-correlated with W flipped in both axes and channels and filters swapped)."""
    FN, C, kh, kw = W.shape
    return np.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)).reshape(C, FN, kh * kw)


def simd_chunk(N, channels, S, itemsize, n_threads):
    """Images per packed chunk of the direct kernels: ``channels`` planes of ``S`` values
    per image in about ``SIMD_CHUNK_BYTES``, at least 1, at most each thread's share."""
    g = max(1, SIMD_CHUNK_BYTES // max(1, channels * S * itemsize))
    share = -(-N // max(1, n_threads))
    return max(1, min(g, share))
