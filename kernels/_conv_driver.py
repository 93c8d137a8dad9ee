"""The convolution driver both compiled backends share.

``kernels._conv_plan.plan`` decides how a call runs and sizes it; :class:`ConvDriver`
executes that plan over one backend's raw kernels: it allocates the buffers, packs the
filters, calls the pass kernels, reruns a direct backward whose dW or db came out
non-finite by im2col + GEMM and finishes dW and db from the per-chunk partial sums.
Each backend's ``conv`` module holds only the raw kernels named in ``RAW_KERNELS``,
with the same parameters in both (``tests/test_kernel_interface.py`` checks them).
"""
import numpy as np

from ._blas import single_threaded_blas
from ._conv_plan import finite, flipped_filters, pack_filters, plan

#: What a backend's conv module provides: its level's block shapes, its thread count,
#: and the pass kernels of the two algorithms (im2col + GEMM, and direct on wide planes).
RAW_KERNELS = ("block_shapes", "get_num_threads", "forward_gemm", "backward_gemm",
               "forward_direct", "backward_direct")


def _scratch(*shape, dtype):
    """A placeholder for a buffer the call does not use (the kernels take every buffer)."""
    return np.empty(shape, dtype=dtype)


class ConvDriver:
    """``conv2d`` and ``conv2d_backward`` of one backend, over its raw kernels
    (``kernels``: the backend's conv module)."""

    __all__ = ("conv2d", "conv2d_backward")

    def __init__(self, kernels):
        self._k = kernels
        #: The instruction-set level the backend's kernels were built for.
        self.level = kernels.block_shapes()[0]

    def plan(self, x, W, g, algorithm=None, backward=False):
        """The :class:`~kernels._conv_plan.Plan` of a call on these arrays."""
        return plan(x.shape, W.shape, g, x.itemsize, self._k.get_num_threads(), self.level,
                    algorithm, backward, finite(W))

    def conv2d(self, x, W, b, g, relu=False, algorithm=None):
        """``x`` (N, C, H, W), ``W`` (FN, C, KH, KW), ``b`` (FN,), all C-contiguous of one
        float dtype, and the checked window ``g`` -> (N, FN, OH, OW). ``algorithm`` (one
        of ``_conv_plan.ALGORITHMS``) overrides the plan's rule."""
        N, C = x.shape[:2]
        FN = W.shape[0]
        out = np.empty((N, FN, g.oh, g.ow), dtype=x.dtype)
        p = self.plan(x, W, g, algorithm)
        if p.algorithm == "gemm":
            K, P = C * g.kh * g.kw, g.oh * g.ow
            with single_threaded_blas():
                self._k.forward_gemm(
                    x=x, Wm=W.reshape(FN, K), b=b, out=out,
                    col_ws=np.empty((p.threads, K * p.images * P), dtype=x.dtype),
                    res_ws=np.empty((p.threads, FN * p.images * P), dtype=x.dtype),
                    kh=g.kh, kw=g.kw, sh=g.sh, sw=g.sw, ph=g.ph, pw=g.pw, relu=bool(relu),
                    images=p.images, threads=p.threads)
            return out
        self._k.forward_direct(
            x=x, wpk=pack_filters(W.reshape(FN, C, g.kh * g.kw), p.filter_block), b=b,
            out=out, xbuf=np.zeros((p.threads, C, p.row_length), dtype=x.dtype),
            wide=np.empty((p.threads, p.out_rows, p.row_length), dtype=x.dtype),
            filter_block=p.filter_block, tap_offsets=p.tap_offsets, outputs=p.outputs,
            output_taps=p.output_taps, ph=g.ph, pw=g.pw, relu=bool(relu), images=p.images,
            chunks=p.chunks, threads=p.threads)
        return out

    def conv2d_backward(self, dout, x, W, g, need_dx=True, algorithm=None, relu_out=None):
        """Gradients ``(dx or None, dW, db)`` of :meth:`conv2d`; ``dout`` is (N, FN, OH, OW)
        C-contiguous, same dtype as ``x`` and ``W``; ``g`` and ``algorithm`` as in
        :meth:`conv2d`. ``relu_out``: the output of a ``relu=True`` forward (same shape
        as ``dout``), whose ReLU backward is fused into the pass that gathers ``dout``;
        None: no ReLU."""
        need_dx = bool(need_dx)
        p = self.plan(x, W, g, algorithm, backward=True)
        if p.algorithm != "gemm":
            grads = self._backward_direct(dout, relu_out, x, W, g, need_dx, p)
            if finite(grads[1], grads[2]) or algorithm is not None:  # see _conv_plan.finite
                return grads
            p = self.plan(x, W, g, "gemm", backward=True)
        N, C = x.shape[:2]
        FN = W.shape[0]
        K, P = C * g.kh * g.kw, g.oh * g.ow
        dx = np.empty_like(x) if need_dx else None
        dW_part = np.empty((p.threads, FN, K), dtype=x.dtype)
        db_part = np.empty((p.threads, FN), dtype=x.dtype)
        col = K * p.images * P
        with single_threaded_blas():
            self._k.backward_gemm(
                dout=dout, rout=dout if relu_out is None else relu_out,
                has_relu=relu_out is not None, x=x, Wm=W.reshape(FN, K),
                dx=dx if need_dx else _scratch(1, 1, 1, 1, dtype=x.dtype), need_dx=need_dx,
                dW_part=dW_part, db_part=db_part,
                col_ws=np.empty((p.threads, col), dtype=x.dtype),
                dg_ws=np.empty((p.threads, FN * p.images * P), dtype=x.dtype),
                dcol_ws=np.empty((p.threads, col if need_dx else 1), dtype=x.dtype),
                kh=g.kh, kw=g.kw, sh=g.sh, sw=g.sw, ph=g.ph, pw=g.pw, images=p.images,
                threads=p.threads)
        return dx, dW_part.sum(axis=0).reshape(W.shape), db_part.sum(axis=0)

    def _backward_direct(self, dout, relu_out, x, W, g, need_dx, p):
        FN, C, kh, kw = W.shape
        ntap = kh * kw
        fv_dw = p.filters_in_vectors
        xbuf = np.zeros((p.threads, p.x_rows, p.row_length), dtype=x.dtype)
        dbuf = np.zeros((p.threads, p.dout_rows, p.row_length), dtype=x.dtype)
        if fv_dw:
            gbuf = np.empty((p.threads, p.images * g.oh * g.ow * p.filters_last_row),
                            dtype=x.dtype)
            dW_part = np.empty((p.chunks, p.dw_inputs.size * p.filters_last_row),
                               dtype=x.dtype)
        else:
            gbuf = _scratch(p.threads, 1, dtype=x.dtype)
            dW_part = np.empty((p.chunks, p.dout_rows * p.x_rows * ntap), dtype=x.dtype)
        db_part = np.empty((p.chunks, FN), dtype=x.dtype)
        if need_dx:
            dx = np.empty_like(x)
            wdx = pack_filters(flipped_filters(W), p.dx_filter_block)
            wide = np.empty((p.threads, p.dx_rows, p.row_length), dtype=x.dtype)
        else:
            dx = _scratch(1, 1, 1, 1, dtype=x.dtype)
            wdx = _scratch(1, dtype=x.dtype)
            wide = _scratch(p.threads, 1, 1, dtype=x.dtype)
        self._k.backward_direct(
            dout=dout, rout=dout if relu_out is None else relu_out,
            has_relu=relu_out is not None, x=x, wdx=wdx, dx=dx, need_dx=need_dx,
            dW_part=dW_part, db_part=db_part, xbuf=xbuf, dbuf=dbuf, gbuf=gbuf, wide=wide,
            dx_filter_block=p.dx_filter_block, tap_offsets=p.tap_offsets,
            outputs=p.outputs, filters_last_row=p.filters_last_row, dw_inputs=p.dw_inputs,
            dx_outputs=p.dx_outputs if need_dx else p.dx_outputs[:0],
            dx_output_taps=p.dx_output_taps, kh=kh, kw=kw, ph=g.ph, pw=g.pw,
            images=p.images, chunks=p.chunks, threads=p.threads)
        dW = dW_part.sum(axis=0)
        if fv_dw:
            dW = dW.reshape(-1, p.filters_last_row)[:C * ntap, :FN].T
        else:
            dW = dW.reshape(p.dout_rows, p.x_rows, ntap)[:FN, :C]
        return (dx if need_dx else None), dW.reshape(W.shape), db_part.sum(axis=0)
