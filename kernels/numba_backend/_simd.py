"""Explicit SIMD for Numba: a vector type and the register-blocked steps of the direct
convolution (``conv.py``), and the moves of im2col (``im2col.py``: ``move4``,
``stream_copy``), as LLVM IR written through ``numba.extending.intrinsic``.

Numba has no vector types, and LLVM does not turn a block of accumulators held in an
array into registers, so the blocked loops of the Cython kernels (``conv_simd.h``) are
built here: a block's accumulators are a tuple of LLVM vectors as wide as the registers
of the instruction-set level in force (``VBYTES``: 64 bytes at AVX-512, ``<16 x float>``
or ``<8 x double>``; 32 at AVX2, 16 at SSE; Numba compiles for that level, see
``kernels/_isa.py``), each step is unrolled at compile time, and products are added
with ``llvm.fma``; the blocks run as fast as the C kernels built by GCC (docs/tuning.md,
"C kernel details").

The block shapes are the Cython kernels', per level (``_isa.TABLE``): the
forward (``wide_*``) holds
``WIDE_F`` filters x ``WIDE_V`` vectors of output positions (``one_*``: 1 x ``ONE_V``,
for outputs of few channels), the weight gradient
``DW_F`` filters x ``DW3_C`` channels x 3 taps (``dw3_*``) or ``DW_F`` x ``DW_C`` of one
leftover tap (``dw_*``). The kernels with filters in vectors (``fv_*``) hold ``FV_P``
broadcast inputs x ``FV_F`` vectors of filters.
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

from .. import _isa
from .._conv_plan import BLOCKS

#: The level the kernels are compiled for, its vector bytes and block shapes.
LEVEL = _isa.level()
VBYTES = BLOCKS[LEVEL].vbytes
WIDE_F, WIDE_V = BLOCKS[LEVEL].fwd_f, BLOCKS[LEVEL].fwd_v
DW_F, DW_C, DW3_C = BLOCKS[LEVEL].dw_f, BLOCKS[LEVEL].dw_c, BLOCKS[LEVEL].dw3_c
FV_F, FV_P = BLOCKS[LEVEL].fv_f, BLOCKS[LEVEL].fv_p
ONE_V = BLOCKS[LEVEL].one_v

_I64 = ir.IntType(64)


def lanes(itemsize):
    """Elements of ``itemsize`` bytes in one vector."""
    return VBYTES // itemsize


class Vector(types.Type):
    """A SIMD vector of ``dtype``, ``VBYTES`` wide: the width of the level in force."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.lanes = lanes(dtype.bitwidth // 8)
        super().__init__(name=f"Vector({dtype} x {self.lanes})")


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.lanes))


def _at(context, builder, arrty, arr, index):
    """Pointer to element ``index`` of the 1-D array ``arr``."""
    return builder.gep(context.make_array(arrty)(context, builder, arr).data, [index])


def _load(builder, ptr, vt, llvt, offset=0):
    """Unaligned vector load at ``ptr + offset`` elements."""
    if offset:
        ptr = builder.gep(ptr, [ir.Constant(_I64, offset)])
    value = builder.load(builder.bitcast(ptr, llvt.as_pointer()))
    value.align = vt.dtype.bitwidth // 8
    return value


def _store(builder, value, ptr, vt, llvt, offset=0):
    if offset:
        ptr = builder.gep(ptr, [ir.Constant(_I64, offset)])
    builder.store(value, builder.bitcast(ptr, llvt.as_pointer())).align = vt.dtype.bitwidth // 8


def _fma(builder, vt, llvt):
    name = f"llvm.fma.v{vt.lanes}{'f32' if vt.dtype.bitwidth == 32 else 'f64'}"
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(llvt, [llvt] * 3), name)


def _broadcast(builder, scalar, vt, llvt):
    one = builder.insert_element(ir.Constant(llvt, ir.Undefined), scalar,
                                 ir.Constant(ir.IntType(32), 0))
    mask = ir.Constant(ir.VectorType(ir.IntType(32), vt.lanes), [0] * vt.lanes)
    return builder.shuffle_vector(one, ir.Constant(llvt, ir.Undefined), mask)


def _no_interleave(builder):
    """An empty ``asm sideeffect`` closing every register-block step: LLVM's loop
    vectorizer then leaves the step's loop alone instead of interleaving two iterations,
    which at AVX2 (16 registers) spilled accumulators on every step (docs/tuning.md,
    "C kernel details")."""
    builder.asm(ir.FunctionType(ir.VoidType(), []), "", "", [], side_effect=True)


def _hsum(builder, value, vt):
    total = builder.extract_element(value, ir.Constant(ir.IntType(32), 0))
    for i in range(1, vt.lanes):
        total = builder.fadd(total, builder.extract_element(value, ir.Constant(ir.IntType(32), i)))
    return total


def _zeros(arr, count):
    vt = Vector(arr.dtype)
    sig = types.UniTuple(vt, count)(arr)

    def codegen(context, builder, signature, args):
        zero = ir.Constant(context.get_value_type(vt), None)
        return context.make_tuple(builder, signature.return_type, [zero] * count)

    return sig, codegen


def _block_out(context, builder, arrty, arr, index, ld, accv, rows, vecs, vt, add):
    """A register block back into memory: ``arr[index + r*ld + v*lanes : ...] =
    accv[r*vecs + v]`` for r < rows, v < vecs, or ``+=`` with ``add``."""
    llvt = context.get_value_type(vt)
    base = _at(context, builder, arrty, arr, index)
    for r in range(rows):
        row = builder.gep(base, [builder.mul(ld, ir.Constant(_I64, r))])
        for v in range(vecs):
            value = builder.extract_value(accv, r * vecs + v)
            if add:
                value = builder.fadd(_load(builder, row, vt, llvt, v * vt.lanes), value)
            _store(builder, value, row, vt, llvt, v * vt.lanes)


def _wide_block(F, V):
    """The intrinsics ``(zeros, tap, store)`` of a forward block of F filters x V vectors
    of output positions:

    - ``zeros(arr)``: zeroed accumulators, element type of ``arr``;
    - ``tap(acc, x, xi, w, wi)``: ``acc[f*V + v] += w[wi + f] * x[xi + v*lanes : ...]``,
      one tap of one channel for the whole block (V loads, F broadcasts, F*V FMAs);
    - ``store(acc, out, oi, ldo)``: ``out[oi + f*ldo + v*lanes : ...] = acc[f*V + v]``.
    """

    @intrinsic
    def zeros(typingctx, arr):
        return _zeros(arr, F * V)

    @intrinsic
    def tap(typingctx, acc, x, xi, w, wi):
        vt = acc.dtype
        sig = acc(acc, x, xi, w, wi)

        def codegen(context, builder, signature, args):
            accv, xa, xiv, wa, wiv = args
            llvt = context.get_value_type(vt)
            fma = _fma(builder, vt, llvt)
            xp = _at(context, builder, signature.args[1], xa, xiv)
            wp = _at(context, builder, signature.args[3], wa, wiv)
            xs = [_load(builder, xp, vt, llvt, v * vt.lanes) for v in range(V)]
            out = [builder.extract_value(accv, i) for i in range(F * V)]
            for f in range(F):
                wf = builder.load(builder.gep(wp, [ir.Constant(_I64, f)]))
                wf = _broadcast(builder, wf, vt, llvt)
                for v in range(V):
                    out[f * V + v] = builder.call(fma, [xs[v], wf, out[f * V + v]])
            _no_interleave(builder)
            return context.make_tuple(builder, signature.return_type, out)

        return sig, codegen

    @intrinsic
    def store(typingctx, acc, out, oi, ldo):
        vt = acc.dtype
        sig = types.none(acc, out, oi, ldo)

        def codegen(context, builder, signature, args):
            accv, oa, oiv, ldov = args
            _block_out(context, builder, signature.args[1], oa, oiv, ldov, accv, F, V, vt,
                       False)
            return context.get_dummy_value()

        return sig, codegen

    return zeros, tap, store


#: The forward block (WIDE_F x WIDE_V) and the one-filter block (1 x ONE_V).
wide_zeros, wide_tap, wide_store = _wide_block(WIDE_F, WIDE_V)
one_zeros, one_tap, one_store = _wide_block(1, ONE_V)


@intrinsic
def fv_zeros(typingctx, arr):
    """Zeroed accumulators of a block with filters in vectors."""
    return _zeros(arr, FV_P * FV_F)


@intrinsic
def fv_index(typingctx, idx, i0):
    """``(idx[i0], ..., idx[i0 + FV_P - 1])``: a block's broadcast offsets, read once
    outside its loop (``fv_step``)."""
    sig = types.UniTuple(types.intp, FV_P)(idx, i0)

    def codegen(context, builder, signature, args):
        ia, i0v = args
        ip = _at(context, builder, signature.args[0], ia, i0v)
        values = [builder.load(builder.gep(ip, [ir.Constant(_I64, p)])) for p in range(FV_P)]
        return context.make_tuple(builder, signature.return_type, values)

    return sig, codegen


@intrinsic
def fv_step(typingctx, acc, x, xi, pp, w, wi):
    """``acc[p*FV_F + v] += x[xi + pp[p]] * w[wi + v*lanes : ...]``: FV_F loads, FV_P
    broadcasts, FV_P*FV_F FMAs. The forward's tap (pp: output positions, w: packed
    filters) and the weight gradient's step (pp: channel-and-tap offsets, w: dout with
    filters last)."""
    vt = acc.dtype
    sig = acc(acc, x, xi, pp, w, wi)

    def codegen(context, builder, signature, args):
        accv, xa, xiv, ppv, wa, wiv = args
        llvt = context.get_value_type(vt)
        fma = _fma(builder, vt, llvt)
        xp = _at(context, builder, signature.args[1], xa, xiv)
        wp = _at(context, builder, signature.args[4], wa, wiv)
        ws = [_load(builder, wp, vt, llvt, v * vt.lanes) for v in range(FV_F)]
        out = [builder.extract_value(accv, i) for i in range(FV_P * FV_F)]
        for p in range(FV_P):
            at = builder.extract_value(ppv, p)
            xb = _broadcast(builder, builder.load(builder.gep(xp, [at])), vt, llvt)
            for v in range(FV_F):
                out[p * FV_F + v] = builder.call(fma, [xb, ws[v], out[p * FV_F + v]])
        _no_interleave(builder)
        return context.make_tuple(builder, signature.return_type, out)

    return sig, codegen


def _fv_out(add):
    """The intrinsic writing a block with filters in vectors into rows of filters:
    ``arr[index + p*ld + v*lanes : ...] = acc[p*FV_F + v]`` (the forward, rows of
    filters per output, which ``conv._unpack_t`` transposes), or ``+=`` with ``add`` (the
    weight gradient, rows of filters per channel and tap): stored as held, not
    transposed (docs/tuning.md, "C kernel details")."""
    def out(typingctx, acc, arr, index, ld):
        sig = types.none(acc, arr, index, ld)

        def codegen(context, builder, signature, args):
            accv, aa, iv, ldv = args
            _block_out(context, builder, signature.args[1], aa, iv, ldv, accv, FV_P, FV_F,
                       acc.dtype, add)
            return context.get_dummy_value()

        return sig, codegen

    out.__name__ = out.__qualname__ = "fv_add" if add else "fv_store"
    return intrinsic(out)


fv_store, fv_add = _fv_out(False), _fv_out(True)


@intrinsic
def dw_zeros(typingctx, arr):
    """Zeroed accumulators of a weight-gradient block."""
    return _zeros(arr, DW_F * DW_C)


@intrinsic
def dw_step(typingctx, acc, g, gi, gs, x, xi, xs):
    """``acc[f*DW_C + c] += g[gi + f*gs : ...] * x[xi + c*xs : ...]``: one vector of
    positions for the whole block (DW_F + DW_C loads, DW_F*DW_C FMAs)."""
    vt = acc.dtype
    sig = acc(acc, g, gi, gs, x, xi, xs)

    def codegen(context, builder, signature, args):
        accv, ga, giv, gsv, xa, xiv, xsv = args
        llvt = context.get_value_type(vt)
        fma = _fma(builder, vt, llvt)
        gp = _at(context, builder, signature.args[1], ga, giv)
        xp = _at(context, builder, signature.args[4], xa, xiv)
        gv = [_load(builder, builder.gep(gp, [builder.mul(gsv, ir.Constant(_I64, f))]), vt, llvt)
              for f in range(DW_F)]
        xv = [_load(builder, builder.gep(xp, [builder.mul(xsv, ir.Constant(_I64, c))]), vt, llvt)
              for c in range(DW_C)]
        out = [builder.extract_value(accv, i) for i in range(DW_F * DW_C)]
        for f in range(DW_F):
            for c in range(DW_C):
                out[f * DW_C + c] = builder.call(fma, [gv[f], xv[c], out[f * DW_C + c]])
        _no_interleave(builder)
        return context.make_tuple(builder, signature.return_type, out)

    return sig, codegen


@intrinsic
def dw3_zeros(typingctx, arr):
    """Zeroed accumulators of a three-tap weight-gradient block."""
    return _zeros(arr, DW_F * DW3_C * 3)


@intrinsic
def dw3_step(typingctx, acc, g, gi, gs, x, xi, xs, offs):
    """``acc[(f*DW3_C + c)*3 + k] += g[gi + f*gs : ...] * x[xi + c*xs + offs[k] : ...]``
    for k < 3: one vector of positions for three taps (DW_F + 3*DW3_C loads,
    DW_F*DW3_C*3 FMAs; one vector of g live at a time). ``offs``, the three taps'
    offsets, come as a tuple read before the loop: loaded from the offset array in the
    step, they were read again on every step (the step's ``asm sideeffect`` keeps loads
    on its side), 3 scalar loads and 6 address computations per 24 FMAs."""
    vt = acc.dtype
    sig = acc(acc, g, gi, gs, x, xi, xs, offs)

    def codegen(context, builder, signature, args):
        accv, ga, giv, gsv, xa, xiv, xsv, offt = args
        llvt = context.get_value_type(vt)
        fma = _fma(builder, vt, llvt)
        gp = _at(context, builder, signature.args[1], ga, giv)
        xp = _at(context, builder, signature.args[4], xa, xiv)
        offs = [builder.extract_value(offt, k) for k in range(3)]
        xv = [[_load(builder, builder.gep(xp, [builder.add(builder.mul(xsv, ir.Constant(_I64, c)),
                                                            offs[k])]), vt, llvt)
               for k in range(3)] for c in range(DW3_C)]
        out = [builder.extract_value(accv, i) for i in range(DW_F * DW3_C * 3)]
        for f in range(DW_F):
            gv = _load(builder, builder.gep(gp, [builder.mul(gsv, ir.Constant(_I64, f))]), vt, llvt)
            for c in range(DW3_C):
                for k in range(3):
                    i = (f * DW3_C + c) * 3 + k
                    out[i] = builder.call(fma, [gv, xv[c][k], out[i]])
        _no_interleave(builder)
        return context.make_tuple(builder, signature.return_type, out)

    return sig, codegen


def _add_sums(channels, taps):
    """Intrinsic ``(acc, dw, di, fstride, cstride)``: ``dw[di + f*fstride + c*cstride + k]
    += sum of acc[(f*channels + c)*taps + k]``'s lanes, for a block of DW_F filters x
    ``channels`` x ``taps``."""

    @intrinsic
    def add_sums(typingctx, acc, dw, di, fstride, cstride):
        vt = acc.dtype
        sig = types.none(acc, dw, di, fstride, cstride)

        def codegen(context, builder, signature, args):
            accv, da, div, fs, cs = args
            base = _at(context, builder, signature.args[1], da, div)
            for f in range(DW_F):
                for c in range(channels):
                    row = builder.add(builder.mul(fs, ir.Constant(_I64, f)),
                                      builder.mul(cs, ir.Constant(_I64, c)))
                    for k in range(taps):
                        ptr = builder.gep(base, [builder.add(row, ir.Constant(_I64, k))])
                        i = (f * channels + c) * taps + k
                        total = _hsum(builder, builder.extract_value(accv, i), vt)
                        builder.store(builder.fadd(builder.load(ptr), total), ptr)
            return context.get_dummy_value()

        return sig, codegen

    return add_sums


def _mask_of(builder, flag, vt):
    """The i1 ``flag`` in every lane of a vector of ``vt``'s width."""
    return _broadcast(builder, flag, vt, ir.VectorType(ir.IntType(1), vt.lanes))


@intrinsic
def copy_vector(typingctx, dst, di, src, si, mask, mi, use_mask):
    """``dst[di : di + lanes] = src[si : si + lanes]``, with ``use_mask`` zero where
    ``mask[mi : mi + lanes]`` is not > 0 (the fused ReLU's backward): one vector of a
    packed row (``conv._pack``)."""
    vt = Vector(dst.dtype)
    sig = types.none(dst, di, src, si, mask, mi, use_mask)

    def codegen(context, builder, signature, args):
        da, div, sa, siv, ma, miv, um = args
        llvt = context.get_value_type(vt)
        zero = ir.Constant(llvt, None)
        value = _load(builder, _at(context, builder, signature.args[2], sa, siv), vt, llvt)
        dp = _at(context, builder, signature.args[0], da, div)
        with builder.if_else(um) as (masked, plain):
            with masked:
                m = _load(builder, _at(context, builder, signature.args[4], ma, miv), vt, llvt)
                keep = builder.fcmp_ordered(">", m, zero)
                _store(builder, builder.select(keep, value, zero), dp, vt, llvt)
            with plain:
                _store(builder, value, dp, vt, llvt)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def bias_relu_vector(typingctx, dst, di, src, si, b, relu):
    """``dst[di : di + lanes] = src[si : si + lanes] + b``, then with ``relu`` zero where
    that is < 0 (NaN kept, as np.maximum(v, 0)): one vector of a compacted output row
    (``conv._unwide``)."""
    vt = Vector(dst.dtype)
    sig = types.none(dst, di, src, si, b, relu)

    def codegen(context, builder, signature, args):
        da, div, sa, siv, bv, rl = args
        llvt = context.get_value_type(vt)
        value = _load(builder, _at(context, builder, signature.args[2], sa, siv), vt, llvt)
        value = _relu_if(builder, builder.fadd(value, _broadcast(builder, bv, vt, llvt)), rl, vt)
        _store(builder, value, _at(context, builder, signature.args[0], da, div), vt, llvt)
        return context.get_dummy_value()

    return sig, codegen


def _transpose(builder, rows, lanes):
    """``rows[k][r] <-> rows[r][k]``: a square block of ``lanes`` vectors transposed in
    log2(lanes) rounds of two-vector shuffles, each swapping the off-diagonal blocks of
    half the size (as the Cython kernels' fc_transpose)."""
    lanes_t = ir.VectorType(ir.IntType(32), lanes)
    half = lanes // 2
    while half:
        lo = ir.Constant(lanes_t, [lanes + j - half if j & half else j for j in range(lanes)])
        hi = ir.Constant(lanes_t, [lanes + j if j & half else j + half for j in range(lanes)])
        for i in range(lanes):
            if not i & half:
                a, b = rows[i], rows[i + half]
                rows[i] = builder.shuffle_vector(a, b, lo)
                rows[i + half] = builder.shuffle_vector(a, b, hi)
        half //= 2


def _relu_if(builder, value, relu, vt):
    """``value`` with lanes < 0 zeroed where the i1 ``relu`` is set (NaN kept, as
    np.maximum(v, 0))."""
    zero = ir.Constant(value.type, None)
    drop = builder.and_(builder.fcmp_ordered("<", value, zero), _mask_of(builder, relu, vt))
    return builder.select(drop, zero, value)


@intrinsic
def transpose_block(typingctx, dst, di, ldd, src, si, lds, mask, use_mask):
    """``dst[di + k*ldd + r] = src[si + r*lds + k]`` for r, k < lanes, with ``use_mask``
    zero where ``mask[si + r*lds + k]`` is not > 0: one square block of a transposing
    pack (``conv._pack_t``), as lanes vector loads, ``_transpose`` and lanes stores."""
    vt = Vector(dst.dtype)
    sig = types.none(dst, di, ldd, src, si, lds, mask, use_mask)

    def codegen(context, builder, signature, args):
        da, div, lddv, sa, siv, ldsv, ma, um = args
        llvt = context.get_value_type(vt)
        L = vt.lanes
        sp = _at(context, builder, signature.args[3], sa, siv)
        mp = _at(context, builder, signature.args[6], ma, siv)
        dp = _at(context, builder, signature.args[0], da, div)
        zero = ir.Constant(llvt, None)
        keep_all = _mask_of(builder, builder.not_(um), vt)
        rows = []
        for r in range(L):
            at = builder.mul(ldsv, ir.Constant(_I64, r))
            value = _load(builder, builder.gep(sp, [at]), vt, llvt)
            m = _load(builder, builder.gep(mp, [at]), vt, llvt)
            keep = builder.or_(builder.fcmp_ordered(">", m, zero), keep_all)
            rows.append(builder.select(keep, value, zero))
        _transpose(builder, rows, L)
        for k in range(L):
            _store(builder, rows[k], builder.gep(dp, [builder.mul(lddv, ir.Constant(_I64, k))]),
                   vt, llvt)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def unpack_block(typingctx, dst, di, ldd, src, si, lds, b, bi, relu):
    """``dst[di + k*ldd + r] = src[si + r*lds + k] + b[bi + k]`` for r, k < lanes, then
    with ``relu`` zero where that is < 0 (NaN kept): one square block of the compaction
    of the forward with filters in vectors (``conv._unpack_t``)."""
    vt = Vector(dst.dtype)
    sig = types.none(dst, di, ldd, src, si, lds, b, bi, relu)

    def codegen(context, builder, signature, args):
        da, div, lddv, sa, siv, ldsv, ba, biv, rl = args
        llvt = context.get_value_type(vt)
        L = vt.lanes
        sp = _at(context, builder, signature.args[3], sa, siv)
        bp = _at(context, builder, signature.args[6], ba, biv)
        dp = _at(context, builder, signature.args[0], da, div)
        rows = [_load(builder, builder.gep(sp, [builder.mul(ldsv, ir.Constant(_I64, r))]),
                      vt, llvt) for r in range(L)]
        _transpose(builder, rows, L)
        for k in range(L):
            bias = _broadcast(builder, builder.load(builder.gep(bp, [ir.Constant(_I64, k)])),
                              vt, llvt)
            value = _relu_if(builder, builder.fadd(rows[k], bias), rl, vt)
            _store(builder, value, builder.gep(dp, [builder.mul(lddv, ir.Constant(_I64, k))]),
                   vt, llvt)
        return context.get_dummy_value()

    return sig, codegen


#: Sums of a one-tap and of a three-tap weight-gradient block into dW.
dw_add_sums = _add_sums(DW_C, 1)
dw3_add_sums = _add_sums(DW3_C, 3)


@intrinsic
def row_sum(typingctx, a, start, count):
    """Sum of ``a[start : start + count]`` (count a multiple of the lanes), accumulated
    lane-wise in one vector: a float32 sum without the serial dependency chain."""
    vt = Vector(a.dtype)
    sig = a.dtype(a, start, count)

    def codegen(context, builder, signature, args):
        aa, startv, countv = args
        llvt = context.get_value_type(vt)
        base = _at(context, builder, signature.args[0], aa, startv)
        acc = cgutils.alloca_once_value(builder, ir.Constant(llvt, None))
        with cgutils.for_range_slice(builder, ir.Constant(_I64, 0), countv,
                                     ir.Constant(_I64, vt.lanes)) as (q, _):
            value = _load(builder, builder.gep(base, [q]), vt, llvt)
            builder.store(builder.fadd(builder.load(acc), value), acc)
        return _hsum(builder, builder.load(acc), vt)

    return sig, codegen


@intrinsic
def next_chunk(typingctx, counter):
    """``counter[0]`` before adding 1 to it, atomically: the chunk a thread of a ``prange``
    loop takes next (the Cython drivers' ``schedule="dynamic"``)."""
    sig = types.intp(counter)

    def codegen(context, builder, signature, args):
        ptr = _at(context, builder, signature.args[0], args[0], ir.Constant(_I64, 0))
        return builder.atomic_rmw("add", ptr, ir.Constant(_I64, 1), "monotonic")

    return sig, codegen


@intrinsic
def keep_scalar(typingctx):
    """An empty ``asm sideeffect`` in a loop body: LLVM's vectorizer leaves that loop
    scalar."""
    sig = types.none()

    def codegen(context, builder, signature, args):
        _no_interleave(builder)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def stream_copy(typingctx, dst, di, src, si, count):
    """``dst.flat[di : di + count] = src.flat[si : si + count]``, the vectors that lie
    aligned in ``dst`` written with non-temporal stores (which skip the read of dst's
    cache lines that ordinary stores pay), the values before and after them one by one.
    For large outputs written once (im2col's ``out=``); ``store_fence`` after the last."""
    vt = Vector(dst.dtype)
    sig = types.none(dst, di, src, si, count)

    def codegen(context, builder, signature, args):
        da, div, sa, siv, n = args
        llvt = context.get_value_type(vt)
        size = vt.dtype.bitwidth // 8
        dp = _at(context, builder, signature.args[0], da, div)
        sp = _at(context, builder, signature.args[2], sa, siv)
        addr = builder.ptrtoint(dp, _I64)
        head = builder.udiv(builder.and_(builder.neg(addr), ir.Constant(_I64, VBYTES - 1)),
                            ir.Constant(_I64, size))
        aligned = builder.icmp_unsigned("==", builder.and_(addr, ir.Constant(_I64, size - 1)),
                                        ir.Constant(_I64, 0))
        head = builder.select(aligned, head, n)
        head = builder.select(builder.icmp_unsigned("<", head, n), head, n)
        body = builder.sub(n, head)
        body = builder.sub(body, builder.urem(body, ir.Constant(_I64, vt.lanes)))
        end = builder.add(head, body)
        nontemporal = builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
        with cgutils.for_range(builder, head) as loop:
            builder.store(builder.load(builder.gep(sp, [loop.index])),
                          builder.gep(dp, [loop.index]))
        with cgutils.for_range_slice(builder, head, end, ir.Constant(_I64, vt.lanes)) as (q, _):
            value = _load(builder, builder.gep(sp, [q]), vt, llvt)
            st = builder.store(value, builder.bitcast(builder.gep(dp, [q]), llvt.as_pointer()))
            st.align = VBYTES
            st.set_metadata("nontemporal", nontemporal)
        with cgutils.for_range_slice(builder, end, n, ir.Constant(_I64, 1)) as (q, _):
            builder.store(builder.load(builder.gep(sp, [q])), builder.gep(dp, [q]))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def store_fence(typingctx):
    """The non-temporal stores before it made visible to every thread: ``sfence`` on
    x86 (they are weakly ordered there), a full fence elsewhere."""
    sig = types.none()

    def codegen(context, builder, signature, args):
        if _isa.X86:
            sfence = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse.sfence")
            builder.call(sfence, [])
        else:
            builder.fence("seq_cst")
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def move4(typingctx, dst, di, src, si):
    """``dst.flat[di : di + 4] = src.flat[si : si + 4]`` as one vector move."""
    sig = types.none(dst, di, src, si)

    def codegen(context, builder, signature, args):
        da, div, sa, siv = args
        llvt = ir.VectorType(context.get_value_type(signature.args[0].dtype), 4)
        size = signature.args[0].dtype.bitwidth // 8
        sp = builder.bitcast(_at(context, builder, signature.args[2], sa, siv), llvt.as_pointer())
        dp = builder.bitcast(_at(context, builder, signature.args[0], da, div), llvt.as_pointer())
        value = builder.load(sp)
        value.align = size
        builder.store(value, dp).align = size
        return context.get_dummy_value()

    return sig, codegen
