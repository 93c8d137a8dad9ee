"""What both conv backends share: the per-shape algorithm rule and the wide-plane layout.

Algorithms (``kernels/*_backend/conv``):

- ``'direct'``, stride 1 with ``PH < KH`` and ``PW < KW`` (every DeepConvNet conv):
  register-blocked kernels on "wide" planes, no col matrix. A thread packs a chunk of
  images channel by channel into zero-padded planes laid end to end, neighbours sharing
  their padding (a plane is (H + PH) x (W + PW), see ``wide_layout``), so window tap
  (ky, kx) of output position q reads the input at ``q + ky*Wp + kx``: one shifted
  contiguous vector load per tap. The forward keeps a block of filters x vectors of
  output positions in registers for the whole reduction over channels and taps (its
  shape per instruction-set level: ``BLOCKS``, below); the PW columns
  and PH rows computed past each image's outputs are dropped by the compaction that
  adds bias and ReLU. dx is the same forward kernel over dout packed with the padding
  (KH-1-PH, KW-1-PW) and the flipped filters (``flipped_filters``); that packed dout,
  read (KH-1-PH)*Wp + KW-1-PW values further on, is zero between outputs and aligned
  with x's windows: dW accumulates from it in blocks of filters x channels x 3 taps
  (filters x channels x 1 for taps left over).
  Cython writes the blocks in C with GCC vector extensions (``conv_simd.h``, one unit
  per level), Numba as
  LLVM vector IR (``numba_backend/_simd.py``). Other geometries have no direct kernel.
- ``'direct_filters'``, where ``'direct'`` applies: the same packed planes, but only the
  real outputs are computed, and the vectors hold filters instead of positions. The
  forward keeps a block of filter vectors x output positions (``fv_f`` x ``fv_p``,
  ``BLOCKS``): per channel and tap it loads ``fv_f`` vectors of filters and broadcasts
  each position's input value against them, so a plane's padding costs nothing, and a
  block skips the window rows that read only padding (``tap_ranges``); the block is
  stored as it is held, a row of filters per output, and the compaction transposes it
  (``unpack_t``, square register blocks). dx is that kernel
  over the packed dout. dW takes dout packed with filters last (one row per output,
  ``pack_t``) and keeps a block of filter vectors x ``fv_p`` channel-and-tap pairs
  (``dw_offsets``), broadcasting x at each output: a sum over real outputs only, with
  no horizontal sums at the end. Positions and pairs come as offset lists
  (``positions``, ``dw_offsets``), padded to whole blocks.
- ``'gemm'``: im2col + GEMM without transposes. Each thread owns a contiguous share
  of the batch and walks it in groups of ``G`` images: it builds the group's col in
  (C*KH*KW, G*OH*OW) layout, one single-threaded BLAS call ``W(FN, K) @ col`` gives
  the group's (FN, G*OH*OW) block, and bias/ReLU are applied while scattering the
  block into the NCHW output. Backward gathers dout the same way, accumulates
  ``dW += dout_g @ col.T`` in a per-thread partial (reduced at the end: race-free) and
  folds ``W.T @ dout_g`` back into dx image by image (each image is owned by one
  thread). ``G`` is chosen so the col group stays around ``COL_GROUP_BYTES``
  (docs/tuning.md, "Chunk sizes").

The rule (``use_direct``, ``use_filters``): a direct algorithm wherever its kernels
apply, im2col + GEMM elsewhere; then, pass by pass (the forward; the backward's dW and
dx), filters in vectors where the pass's output channels fill whole blocks of filters
and, for the forward and dx, it sums over at least ``FILTERS_MIN_CHANNELS`` channels and
more than 10% of the wide kernel's products would multiply padding (``real_fraction``,
``FILTERS_BELOW``), for dW where its outputs fill less of a packed plane than
``DW_FILTERS_BELOW`` (per level); else the wide kernels.
``plan`` applies it and sizes the call (``Plan.outputs`` and ``dx_outputs`` list the
outputs of the passes with filters in vectors), and the driver both backends share
(``kernels/_conv_driver.py``) executes what it returns. A forced
``'direct'`` or ``'direct_filters'`` runs every pass with its kernels.
The measurements behind the rule, its thresholds and the block shapes, and the Winograd
prototype that was not kept: docs/tuning.md, "Convolution plan".
"""
import functools
import math
from typing import NamedTuple

import numpy as np

from ._isa import TABLE


#: Block shapes per level (one ``_isa.Level`` record each), the same in both backends
#: (setup.py writes them into each level's C unit; Numba reads them here). A forward block
#: keeps fwd_f*fwd_v accumulators, fwd_v input vectors and one broadcast filter value in
#: registers (the one-filter block, one_v accumulators and the broadcast, its loads
#: folded into the FMAs); a three-tap dW block dw_f*dw3_c*3 accumulators, dw3_c*3 input
#: vectors and one vector of dout (loaded one filter at a time).
BLOCKS = {lvl.name: lvl.blocks for lvl in TABLE}

#: Target size in bytes of one thread's col group (see ``group_size``).
COL_GROUP_BYTES = 512 * 1024

#: Target size in bytes of one thread's packed images (input and output channels) for
#: the direct kernels (see ``simd_chunk``; docs/tuning.md, "Chunk sizes").
SIMD_CHUNK_BYTES = 512 * 1024


def use_direct(g):
    """True when the direct kernels apply to the window ``g``: stride 1 and pad < window."""
    return g.sh == 1 and g.sw == 1 and g.ph < g.kh and g.pw < g.kw


#: The forward and dx run with filters in vectors where fewer than this fraction of the
#: wide kernel's products are real (``real_fraction``) and the pass sums over at least
#: ``FILTERS_MIN_CHANNELS`` channels; dW where a wide plane holds fewer than
#: ``DW_FILTERS_BELOW[level]`` of its outputs (its kernel with filters in vectors
#: multiplies the padding taps too, so only the plane's fill counts). See the module
#: docstring.
FILTERS_BELOW = 0.9
FILTERS_MIN_CHANNELS = 8
DW_FILTERS_BELOW = {lvl.name: lvl.dw_filters_below for lvl in TABLE}

ALGORITHMS = ("direct", "direct_filters", "gemm")


def choose(algorithm, g):
    """``algorithm`` if given (one of ``ALGORITHMS``), else ``'direct'`` where the direct
    kernels apply to the window geometry ``g`` (``plan`` then picks between the two
    direct kernels) and ``'gemm'`` elsewhere. ValueError for a direct algorithm where no
    direct kernel applies."""
    if algorithm is None:
        return "direct" if use_direct(g) else "gemm"
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be None or one of {ALGORITHMS}, got {algorithm!r}")
    if algorithm != "gemm" and not use_direct(g):
        raise ValueError(
            f"algorithm={algorithm!r} needs stride 1 and pad < window (got window "
            f"{g.kh}x{g.kw}, stride {(g.sh, g.sw)}, pad {(g.ph, g.pw)}); use 'gemm' or None"
        )
    return algorithm


def real_fraction(plane, out_h, out_w, top, left, in_h, in_w, kh, kw):
    """Fraction of a wide kernel's products (``plane`` values per image x kh*kw taps)
    that are real: at an output position (out_h x out_w) and reading a value of the input
    (in_h x in_w, at row ``top`` and column ``left`` of the padded plane), not padding."""
    def inside(n_out, n_in, first, k):
        lo, hi = _window_span(np.arange(n_out), first, n_in, k)
        return int(np.maximum(hi - lo, 0).sum())

    return inside(out_h, in_h, top, kh) * inside(out_w, in_w, left, kw) / (plane * kh * kw)


def use_filters(plane, real, real_dx, outputs, FN, C, filters, backward, level):
    """The rule between the direct kernels, per pass: ``(fv, fv_dx)``, True where the
    forward (or, ``backward``, dW) and dx run with filters in vectors. A pass qualifies
    where its output channels (FN; C for dx) fill whole blocks of ``filters``; the forward
    and dx then where it sums over at least ``FILTERS_MIN_CHANNELS`` channels (C; FN for
    dx) and fewer than ``FILTERS_BELOW`` of its wide products are real (``real``,
    ``real_dx``: ``real_fraction``), dW where a packed plane of ``plane`` values holds
    fewer than ``DW_FILTERS_BELOW[level]`` of them as its ``outputs``."""
    if backward:
        fv = FN % filters == 0 and outputs < DW_FILTERS_BELOW[level] * plane
    else:
        fv = FN % filters == 0 and C >= FILTERS_MIN_CHANNELS and real < FILTERS_BELOW
    fv_dx = (backward and C % filters == 0 and FN >= FILTERS_MIN_CHANNELS
             and real_dx < FILTERS_BELOW)
    return fv, fv_dx


#: Output channels below which the forward/dx kernel runs blocks of one filter
#: (``one_v`` vectors) instead of ``fwd_f`` filters, whose rows past the real channels
#: are computed and dropped (docs/tuning.md, "One-filter blocks").
ONE_BELOW = {lvl.name: lvl.one_below for lvl in TABLE}


def use_one(channels, level):
    """True when a wide forward/dx call computing ``channels`` output channels runs the
    one-filter blocks (``ONE_BELOW``)."""
    return channels < ONE_BELOW[level]


def filter_block(filters, channels, level, lanes):
    """Filters per block of the forward/dx kernel computing ``channels`` output channels
    (FN, or C for dx) at ``level`` with vectors of ``lanes``: ``fv_f`` vectors of filters
    for the kernel with filters in vectors (``filters``), one filter where ``use_one``,
    else ``fwd_f``."""
    b = BLOCKS[level]
    if filters:
        return b.fv_f * lanes
    return 1 if use_one(channels, level) else b.fwd_f


#: What a plan holds where a pass lists no offsets.
_NO_OFFSETS = np.empty(0, dtype=np.intp)
_NO_OFFSETS.flags.writeable = False


class Plan(NamedTuple):
    """How one conv call runs, with every size its kernels need: the same decision and
    sizes in both backends (``kernels/_conv_driver.py`` executes it). The direct
    algorithms run each pass (the forward; the backward's dW and dx) on wide planes or
    with filters in vectors: the latter where the pass's ``outputs`` (forward, dW) or
    ``dx_outputs`` (dx) are listed. Its arrays are read-only (``plan`` hands the same one
    to every call of a shape); the fields a call does not use keep their defaults, 0 or
    no offsets."""

    algorithm: str  #: one of ``ALGORITHMS``
    images: int  #: images per packed chunk (direct) or per GEMM (gemm)
    threads: int  #: threads that get work
    chunks: int = 0  #: direct: chunks the batch is cut into (``batch_chunks``)
    tap_offsets: np.ndarray = _NO_OFFSETS  #: direct: flat offsets of the window taps (``wide_layout``)
    row_length: int = 0  #: direct: length of a row of the packed buffers
    x_rows: int = 0  #: direct: rows of packed x: C, or for dW C rounded up to its blocks
    filter_block: int = 0  #: forward: filters per block of its kernel (``filter_block``)
    out_rows: int = 0  #: forward: FN rounded up to whole filter blocks
    outputs: np.ndarray = _NO_OFFSETS  #: forward or dW with filters in vectors: the outputs' offsets
    output_taps: np.ndarray = _NO_OFFSETS  #: forward with filters in vectors: each block's taps
    dout_rows: int = 0  #: backward: rows of packed dout, FN rounded up to dW's blocks
    filters_last_row: int = 0  #: dW with filters in vectors: row of dout packed filters last
    dw_inputs: np.ndarray = _NO_OFFSETS  #: dW with filters in vectors: the inputs it broadcasts
    dx_filter_block: int = 0  #: dx: filters per block (its output channels are x's C)
    dx_rows: int = 0  #: dx: C rounded up to whole filter blocks
    dx_outputs: np.ndarray = _NO_OFFSETS  #: dx with filters in vectors: its outputs' offsets
    dx_output_taps: np.ndarray = _NO_OFFSETS  #: dx with filters in vectors: each block's taps

    @property
    def filters_in_vectors(self):
        """The forward (or dW) runs with filters in vectors."""
        return self.outputs.size > 0

    @property
    def dx_filters_in_vectors(self):
        """dx runs with filters in vectors."""
        return self.dx_outputs.size > 0


def _frozen(a):
    """``a`` made read-only (None: no offsets): plans are shared between calls."""
    if a is None:
        return _NO_OFFSETS
    a.flags.writeable = False
    return a


def _round_up(a, b):
    return -(-a // b) * b


#: Plans kept (``plan``); the cost of planning a call is in docs/tuning.md, "Plan cache".
PLANS_CACHED = 256


@functools.lru_cache(maxsize=PLANS_CACHED)
def plan(x_shape, W_shape, g, itemsize, n_threads, level, algorithm=None, backward=False,
         finite_w=True):
    """The :class:`Plan` of a conv call on ``x_shape`` with filters ``W_shape`` and window
    ``g`` (a checked ``Window``: ``kh, kw, sh, sw, ph, pw, oh, ow``), for ``n_threads``
    threads at instruction-set ``level`` (its block shapes: ``BLOCKS``); ``algorithm``
    overrides the rule. ``finite_w``: the filters are finite; where they are not, the
    rule picks im2col + GEMM, whose products are the reference's (the direct kernels
    multiply W by padding in dx, which the reference drops, and skip padding in the
    forward, which the reference multiplies: inf * 0 is NaN). Cached: every argument is
    hashable and the plan read-only."""
    rule = algorithm is None
    if rule and not finite_w:
        algorithm = "gemm"
    blocks = BLOCKS[level]
    algorithm = choose(algorithm, g)
    kh, kw, ph, pw, oh, ow = g.kh, g.kw, g.ph, g.pw, g.oh, g.ow
    N, C, H, W = x_shape
    FN = W_shape[0]
    if algorithm == "gemm":
        G = group_size(N, C * kh * kw, oh * ow, itemsize, n_threads)
        return Plan("gemm", G, min(n_threads, -(-N // G)))
    lanes = blocks.vbytes // itemsize
    Wp, S, off, G, nt, width, chunks = wide_plan(x_shape, W_shape, ph, pw, itemsize,
                                                 n_threads,
                                                 max(blocks.fwd_v, blocks.one_v) * lanes,
                                                 lanes, backward)
    if rule:
        fv, fv_dx = use_filters(S, real_fraction(S, oh, ow, ph, pw, H, W, kh, kw),
                                real_fraction(S, H, W, kh - 1 - ph, kw - 1 - pw, oh, ow, kh,
                                              kw),
                                oh * ow, FN, C, blocks.fv_f * lanes, backward, level)
    else:
        fv = fv_dx = algorithm == "direct_filters"
    fv_dx = fv_dx and backward
    p = blocks.fv_p
    sizes = dict(algorithm=algorithm, images=G, threads=nt, chunks=chunks,
                 tap_offsets=_frozen(off), row_length=width,
                 outputs=_frozen(positions(G, oh, ow, Wp, S, p) if fv else None))
    if not backward:
        F = filter_block(fv, FN, level, lanes)
        return Plan(**sizes, x_rows=C, filter_block=F, out_rows=_round_up(FN, F),
                    output_taps=_frozen(tap_ranges(G, oh, ow, ph, H, kh, kw, p) if fv
                                        else None))
    F_dx = filter_block(fv_dx, C, level, lanes)
    return Plan(**sizes, x_rows=dw_channels(C, kh * kw, blocks.dw_c, blocks.dw3_c),
                dout_rows=_round_up(FN, blocks.dw_f),
                filters_last_row=_round_up(FN, blocks.fv_f * lanes) if fv else 0,
                dw_inputs=_frozen(dw_offsets(C, off, width, p) if fv else None),
                dx_filter_block=F_dx, dx_rows=_round_up(C, F_dx),
                dx_outputs=_frozen(positions(G, H, W, Wp, S, p) if fv_dx else None),
                dx_output_taps=_frozen(tap_ranges(G, H, W, kh - 1 - ph, oh, kh, kw, p)
                                       if fv_dx else None))


def dw_offsets(C, off, xs, p):
    """Offsets ``c*xs + off[t]`` of every channel c < C and tap t in a packed buffer with
    rows of ``xs``, zero-padded to a multiple of ``p``: the inputs the weight-gradient
    kernel with filters in vectors broadcasts."""
    k = (np.arange(C)[:, None] * xs + np.asarray(off)).ravel()
    return np.ascontiguousarray(np.concatenate([k, np.zeros(-k.size % p, k.dtype)]), dtype=np.intp)


def _window_span(o, first, n_in, k):
    """Window rows ``[lo, hi)`` (``hi <= lo``: none) that output rows ``o`` (an array)
    read inside an input of ``n_in`` rows starting at row ``first`` of a padded plane;
    columns alike."""
    return np.maximum(0, first - o), np.minimum(k, first + n_in - o)


def tap_ranges(G, OH, OW, top, rows, kh, kw, p):
    """Per block of ``p`` outputs listed by ``positions`` (G images of OH x OW), the window
    taps ``[t0, t1)`` (ky-major) that read data: output row oy's window row ky reads row
    oy + ky of a plane whose ``rows`` data rows start at row ``top``; the rows above and
    below are zero padding, which a block whose outputs all sit in the first (last)
    rows skips. Flat intp array, two entries per block."""
    oy = np.tile(np.repeat(np.arange(OH), OW), G)
    oy = np.concatenate([oy, np.full(-oy.size % p, oy[-1])]).reshape(-1, p)
    lo, hi = _window_span(oy, top, rows, kh)
    lo, hi = lo.min(axis=1) * kw, hi.max(axis=1) * kw
    return np.ascontiguousarray(np.stack([lo, hi], axis=1).ravel(), dtype=np.intp)


def positions(G, OH, OW, Wp, S, p):
    """Flat offsets in G packed planes (``wide_layout``) of every output position
    (OH x OW per plane), repeated at the end to a multiple of ``p``."""
    q = (np.arange(G)[:, None, None] * S + np.arange(OH)[:, None] * Wp
         + np.arange(OW)).ravel()
    n = -(-q.size // p) * p
    return np.ascontiguousarray(np.concatenate([q, np.full(n - q.size, q[-1])]), dtype=np.intp)


def finite(*arrays):
    """True when every value of ``arrays`` is finite. The direct backward's dW and db (a
    few filters' worth of values) are checked with it: a non-finite value in x can reach
    dW through the zeros between outputs of the packed dout (0 * inf), so a call whose
    check fails is recomputed by im2col + GEMM, which multiplies real window cells only."""
    return all(bool(np.isfinite(a).all()) for a in arrays)


def _images_per_chunk(N, image_bytes, target_bytes, n_threads):
    """Images whose ``image_bytes`` each fill about ``target_bytes``: at least 1, at most
    each thread's share of the batch."""
    g = max(1, target_bytes // max(1, image_bytes))
    share = -(-N // max(1, n_threads))
    return max(1, min(g, share))


def group_size(N, K, P, itemsize, n_threads):
    """Images per GEMM for col groups of about ``COL_GROUP_BYTES``."""
    return _images_per_chunk(N, K * P * itemsize, COL_GROUP_BYTES, n_threads)


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


def wide_plan(x_shape, W_shape, ph, pw, itemsize, n_threads, step, lanes, backward):
    """Sizes of one direct-kernel call: ``(Wp, S, off, G, nt, width, chunks)``: the plane
    geometry (``wide_layout``), images per chunk, threads used, the packed buffers' row
    length (for the backward, also wide enough for dout packed with dx's padding) and the
    number of chunks (``batch_chunks``)."""
    N, C, H, W = x_shape
    FN, _, kh, kw = W_shape
    Wp, S, off = wide_layout(H, W, kh, kw, ph, pw)
    chunks = batch_chunks(N, simd_chunk(N, C + FN, S, itemsize, n_threads), n_threads)
    G = -(-N // chunks)
    nt = min(n_threads, chunks)
    top = max(ph, kh - 1 - ph) if backward else ph
    return Wp, S, off, G, nt, wide_buffer_width(G, S, Wp, top, off, step, lanes), chunks


def batch_chunks(N, G, n_threads):
    """Chunks the direct kernels cut a batch of N into, for chunks of at most G images:
    a multiple of the threads (at most N), so that threads taking chunks as they finish
    (chunk k holds images ``[k*N // chunks, (k+1)*N // chunks)``) get equal shares when
    nothing else runs, and the first to finish takes more when another process slows one
    down (docs/tuning.md, "Chunk sizes")."""
    return min(N, -(-N // (G * n_threads)) * n_threads)


def pack_filters(W3, F):
    """(FN, C, T) filters, any strides -> (ceil(FN/F), C, T, F) blocks, zero-padded,
    flat: the layout the forward kernels read, F broadcasts per tap. One strided copy
    per block."""
    FN, C, T = W3.shape
    nfb = -(-FN // F)
    wp = np.empty((nfb, C, T, F), dtype=W3.dtype)
    if FN % F:
        wp[-1] = 0
    for i in range(nfb):
        blk = W3[i * F:(i + 1) * F]
        wp[i, :, :, :blk.shape[0]] = blk.transpose(1, 2, 0)
    return wp.ravel()


def flipped_filters(W):
    """(FN, C, KH, KW) -> (C, FN, KH*KW) view: the filters of the convolution that maps
    dout to dx (a stride-1 conv's input gradient is dout, padded by KH-1-PH and KW-1-PW,
    cross-correlated with W flipped in both axes and channels and filters swapped).
    ``pack_filters`` copies it once."""
    FN, C, kh, kw = W.shape
    return W.reshape(FN, C, kh * kw)[:, :, ::-1].transpose(1, 0, 2)


def dw_channels(C, ntap, block_c, block3_c):
    """Channels the weight-gradient kernels run over, C rounded up to whole blocks: of
    ``block3_c`` when every tap goes in a three-tap block, else of both block widths
    (zero channels are computed and dropped; C = 1 with 3x3 taps pads to 2, not 4)."""
    step = block3_c if ntap % 3 == 0 else math.lcm(block_c, block3_c)
    return -(-C // step) * step


def simd_chunk(N, channels, S, itemsize, n_threads):
    """Images per packed chunk of the direct kernels: ``channels`` planes of ``S`` values
    per image in about ``SIMD_CHUNK_BYTES``."""
    return _images_per_chunk(N, channels * S * itemsize, SIMD_CHUNK_BYTES, n_threads)
