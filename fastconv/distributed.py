"""Data-parallel training over MPI (mpi4py, the optional extra ``fastconv[mpi]``).

Run the same script on K ranks (``mpiexec -n K python train.py``); every rank holds the
whole net and each step works on its share of the global mini-batch::

    from fastconv.distributed import DataParallel
    dp = DataParallel(net)                 # broadcasts rank 0's parameters
    for xb, tb in global_batches:          # the same global batch on every rank
        loss, grads = dp.loss_and_gradient(xb, tb)    # this rank's rows, then one Allreduce
        optimizer.update(net.params, grads)          # identical on every rank
    acc = dp.accuracy(x_test, t_test)      # each rank scores its share; hits summed

``python -m fastconv train --distributed`` does this for DeepConvNet (the user guide's
"Training over MPI").

What a step does, and why:

- Rank r of K takes rows ``lo:hi`` of a global batch of B (:meth:`DataParallel.shard`:
  contiguous, sizes differing by at most one) and computes the mean loss and gradients
  of its rows. Each gradient is scaled by ``(hi - lo) / B`` while it is copied into one
  contiguous buffer (all parameters packed once, at construction, plus one slot for the
  loss), and one in-place ``Allreduce`` sums the buffer. The sum is the gradient of the
  mean loss over the whole global batch, whatever the shard sizes, so uneven shards and a
  last partial batch need nothing special.
- Every random draw of a step is taken for the whole global batch. A layer whose
  ``rng`` is a ``np.random.Generator`` (``fastconv.layers.Dropout(ratio, rng=...)``;
  DeepConvNet's two dropout layers share the net's generator) gets a stand-in during the
  step: a draw whose first axis is this rank's shard is drawn at the global batch size
  and the rank keeps its rows. Each rank's generators therefore advance exactly as one process's do,
  and the masks are those one process would draw. The data's own draws (epoch order,
  augmentation) are the caller's: draw them for the global batch on every rank from the
  same seed and take this rank's slice (``fastconv train`` does).
- The sum arrives identical on every rank (what the MPI standard advises implementations
  to do and MPICH does; tests/test_distributed.py checks the ranks' parameters bit for
  bit), so the same optimizer update keeps the parameters identical without further
  messages.

Each step equals one process's step on the same global batch to float round-off: the
gradient sums are grouped per shard and the shard sums added (another order of the same
terms). Over many steps that round-off lets float32 runs drift apart, as a change of
thread count does in one process (a ReLU input or pooling tie within round-off switches
a gradient, and Adam magnifies gradients near zero); the accuracy reached is the same
within that spread (the user guide's "Training over MPI"). A rank whose shard is empty (a global batch smaller than the rank count)
runs one all-zero image with its results discarded, so that its generators still
advance with the others.

Nets: anything with the book's interface: ``params`` (dict of name -> ndarray, one
float32 or float64 dtype, updated in place by the optimizer) and ``gradient(x, t)``
(or ``loss_and_gradient(x, t)``, preferred: it also gives the loss), ``predict(x)`` for
evaluation, layers in ``layers`` (a list or dict) for the random draws above. Refused at
construction: a dropout layer without a generator (the book's ``np.random.rand`` masks
would be drawn per shard and depend on the rank count). Warned about: batch
normalisation, whose statistics are those of each rank's shard (no synchronised batch
norm here).

Threads: with K ranks on one machine, each rank's kernels and BLAS use ``cores // K``
threads (:func:`default_num_threads`; cores = the union of the ranks' CPU affinity
masks) unless ``fastconv.set_num_threads`` or ``FASTCONV_NUM_THREADS`` chose a count;
``DataParallel(..., threads=n)`` sets one.

Failure: wrap a rank's work in :func:`abort_on_error`: an exception on any rank prints
its traceback, marked with the rank, and aborts the communicator, so the job exits
non-zero at once instead of waiting forever in the next collective.

mpi4py is imported when this module first needs MPI, never by ``import fastconv``.
"""
import contextlib
import os
import sys
import time
import traceback
import warnings

import numpy as np

__all__ = ["DataParallel", "abort_on_error", "default_num_threads", "shard_bounds", "world",
           "INSTALL_HINT"]

#: What to install when mpi4py or an MPI library is missing.
INSTALL_HINT = ('pip install "fastconv[mpi]" (mpi4py and the mpich wheel, no system MPI '
                'needed), or pip install mpi4py built against a system MPI')


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"fastconv.distributed needs mpi4py and an MPI library ({exc}); "
                          f"install them with {INSTALL_HINT}") from exc
    return MPI


def world():
    """``MPI.COMM_WORLD``: every rank ``mpiexec`` started (one, without ``mpiexec``).

    Raises
    ------
    ImportError
        mpi4py or its MPI library is missing; the message says what to install.
    """
    return _mpi().COMM_WORLD


def shard_bounds(n, size, rank):
    """Rows ``(lo, hi)`` of rank ``rank`` out of ``size`` in a global batch of ``n``.

    Contiguous, in rank order, sizes ``n // size`` or one more (the lower ranks take the
    extra rows); ranks past ``n`` get an empty ``(n, n)``.
    """
    q, r = divmod(int(n), int(size))
    lo = rank * q + min(rank, r)
    return lo, lo + q + (rank < r)


def default_num_threads(comm=None):
    """``cores // ranks`` for the ranks sharing this rank's machine (collective).

    cores is the size of the union of those ranks' CPU affinity masks, so it is right
    both when ``mpiexec`` binds each rank to its own cores and when it does not. At
    least 1. Every rank of ``comm`` must call it.
    """
    MPI = _mpi()
    comm = MPI.COMM_WORLD if comm is None else comm
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        if hasattr(os, "sched_getaffinity"):
            cpus = sorted(os.sched_getaffinity(0))
        else:
            cpus = list(range(os.cpu_count() or 1))
        cores = set().union(*node.allgather(cpus))
        return max(1, len(cores) // node.Get_size())
    finally:
        node.Free()


#: Seconds a failing rank waits between printing its traceback and aborting the job.
ABORT_GRACE_S = 1.0


@contextlib.contextmanager
def abort_on_error(comm=None, errorcode=1):
    """Abort every rank of ``comm`` when the block raises on this one.

    The traceback is printed to stderr, headed by ``rank r of K``, before
    ``comm.Abort(errorcode)`` ends the job (``mpiexec`` then exits non-zero). Without it
    the other ranks would wait forever in their next collective. ``SystemExit(0)`` passes
    through; with a single rank the exception propagates as usual.
    """
    comm = world() if comm is None else comm
    try:
        yield
    except BaseException as exc:
        if comm.Get_size() == 1 or (isinstance(exc, SystemExit) and exc.code in (None, 0)):
            raise
        sys.stderr.write(f"fastconv.distributed: rank {comm.Get_rank()} of "
                         f"{comm.Get_size()} failed; aborting all ranks\n"
                         + "".join(traceback.format_exception(exc)))
        sys.stderr.flush()
        # mpiexec forwards a rank's stderr asynchronously and stops forwarding when the
        # abort tears the job down: aborting at once lost the whole message in one of
        # five CI runs (mpiexec's stderr empty); the pause lets it through.
        time.sleep(ABORT_GRACE_S)
        comm.Abort(errorcode)


class _ShardedDraws:
    """Stands in for a layer's ``np.random.Generator`` during a step (see the module).

    Inside :meth:`window`, ``random(size)`` with ``size[0]`` equal to this rank's shard
    draws ``(total, *size[1:])`` and returns rows ``lo:hi``. Any other draw inside a step
    raises: taken per shard, it would make the result depend on the rank count. Outside
    a step every call goes to the generator unchanged.
    """

    def __init__(self, generator):
        self.generator = generator
        self._rows = None

    @contextlib.contextmanager
    def window(self, lo, hi, total):
        self._rows = (lo, hi, total)
        try:
            yield
        finally:
            self._rows = None

    def random(self, size=None, dtype=np.float64, out=None):
        if self._rows is None:
            return self.generator.random(size, dtype=dtype, out=out)
        lo, hi, total = self._rows
        shape = (size,) if np.ndim(size) == 0 and size is not None else tuple(size or ())
        if out is not None or not shape or shape[0] != hi - lo:
            raise RuntimeError(
                f"DataParallel: a layer drew random numbers of shape {shape} during a step "
                f"on a shard of {hi - lo} images; only draws with one row per image "
                f"(Generator.random((N, ...))) can be taken for the global batch"
            )
        return self.generator.random((total,) + shape[1:], dtype=dtype)[lo:hi]

    def __getattr__(self, name):
        attr = getattr(self.generator, name)
        if self._rows is not None and callable(attr):
            raise RuntimeError(
                f"DataParallel: a layer called Generator.{name} during a step; only "
                f"Generator.random is drawn for the global batch (any other draw would "
                f"depend on the rank count)"
            )
        return attr


def _shard_draws(net):
    """Give every layer of ``net`` whose ``rng`` is a Generator a :class:`_ShardedDraws`
    (one per generator) and return them; refuse dropout without a generator, warn about
    batch normalisation (see the module)."""
    proxies = {}
    for i, layer in enumerate(_layer_list(net)):
        rng = getattr(layer, "rng", None)
        if isinstance(rng, _ShardedDraws):
            proxies.setdefault(id(rng.generator), rng)
        elif isinstance(rng, np.random.Generator):
            layer.rng = proxies.setdefault(id(rng), _ShardedDraws(rng))
        elif hasattr(layer, "dropout_ratio"):
            raise ValueError(
                f"DataParallel: layer {i} ({type(layer).__name__}) draws its dropout "
                f"masks without a np.random.Generator (the book's np.random.rand), so "
                f"each rank would draw for its own shard and the result would depend "
                f"on the rank count; give it a generator: "
                f"fastconv.layers.Dropout(ratio, rng=seed_or_generator)"
            )
        if hasattr(layer, "running_mean"):
            warnings.warn(
                f"DataParallel: layer {i} ({type(layer).__name__}) normalises over each "
                f"rank's shard, not the global batch, and keeps its running statistics "
                f"per rank: results depend on the rank count", stacklevel=3)
    return list(proxies.values())


def _layer_list(net):
    layers = getattr(net, "layers", None)
    if layers is None:
        return []
    return list(layers.values()) if hasattr(layers, "values") else list(layers)


class DataParallel:
    """One net trained data-parallel over the ranks of an MPI communicator.

    Parameters
    ----------
    net : object
        The book's interface: ``params`` (dict of name -> ndarray, all of one dtype,
        float32 or float64), ``loss_and_gradient(x, t)`` or ``gradient(x, t)``,
        ``predict(x)``; see the module. Its parameters are overwritten with rank 0's.
    comm : mpi4py communicator, optional
        Default ``MPI.COMM_WORLD``.
    threads : "auto", int or None
        ``"auto"``: :func:`default_num_threads` unless a count was already chosen
        (``fastconv.set_num_threads``, ``FASTCONV_NUM_THREADS``). An int: that count.
        None: leave the thread count alone.

    Attributes
    ----------
    comm, rank, size
        The communicator, this rank, the number of ranks.
    net
        The wrapped net.

    Raises
    ------
    ImportError
        mpi4py is missing.
    TypeError, ValueError
        ``net`` lacks the interface, its parameters are of mixed or non-float dtypes,
        differ between ranks, or a dropout layer draws without a generator.
    """

    def __init__(self, net, comm=None, threads="auto"):
        MPI = _mpi()
        self._MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.net = net
        self._set_threads(threads)
        params = self._check_net(net)
        # All ranks see the same gathered signatures, so all raise together or none does.
        signature = [(k, v.shape, v.dtype.str) for k, v in params.items()]
        others = self.comm.allgather(signature)
        bad = [r for r, s in enumerate(others) if s != others[0]]
        if bad:
            raise ValueError(
                f"DataParallel: the parameters of rank {bad[0]} ({others[bad[0]]}) differ "
                f"in names, shapes or dtypes from rank 0's ({others[0]}); build the same "
                f"net on every rank"
            )
        self.dtype = next(iter(params.values())).dtype
        sizes = [v.size for v in params.values()]
        # One buffer for the whole step's message: every gradient, then the loss.
        self._flat = np.zeros(sum(sizes) + 1, dtype=self.dtype)
        self._grads, offset = {}, 0
        for (name, p), n in zip(params.items(), sizes):
            self._grads[name] = self._flat[offset:offset + n].reshape(p.shape)
            offset += n
        self._draws = _shard_draws(net)
        self.broadcast_params()

    # ------------------------------------------------------------------ setup

    def _set_threads(self, threads):
        import fastconv
        from fastconv import _backend

        if threads == "auto":
            n = default_num_threads(self.comm)  # collective: called on every rank
            if _backend._num_threads is None:
                fastconv.set_num_threads(n)
        elif threads is not None:
            fastconv.set_num_threads(threads)

    @staticmethod
    def _check_net(net):
        params = getattr(net, "params", None)
        if not isinstance(params, dict) or not params:
            raise TypeError(
                f"DataParallel: net must have a non-empty dict `params` of name -> ndarray "
                f"(the book's interface), got {type(net).__name__} with params of type "
                f"{type(params).__name__}"
            )
        if not (callable(getattr(net, "loss_and_gradient", None))
                or callable(getattr(net, "gradient", None))):
            raise TypeError(f"DataParallel: {type(net).__name__} has neither "
                            f"loss_and_gradient(x, t) nor gradient(x, t)")
        kinds = sorted({str(v.dtype) if isinstance(v, np.ndarray) else type(v).__name__
                        for v in params.values()})
        if len(kinds) != 1 or not all(isinstance(v, np.ndarray) for v in params.values()):
            raise TypeError(
                f"DataParallel: the entries of net.params must be ndarrays of one dtype "
                f"(they are packed into one buffer), got {', '.join(kinds)}; cast them to "
                f"one, e.g. net.astype(np.float32)"
            )
        dtype = next(iter(params.values())).dtype
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"DataParallel: parameters of dtype {dtype}; train in float32 or "
                            f"float64 (net.astype(np.float32))")
        return params

    def broadcast_params(self, root=0):
        """Overwrite every rank's parameters, in place, with those of ``root`` (one
        ``Bcast`` of the packed buffer)."""
        params = self.net.params
        if self.rank == root:
            for name, view in self._grads.items():
                view[...] = params[name]
        self.comm.Bcast(self._flat, root=root)
        for name, view in self._grads.items():
            np.copyto(params[name], view)

    # ------------------------------------------------------------------ training

    def shard(self, n):
        """This rank's rows of a global batch of ``n``, as a ``slice``."""
        return slice(*shard_bounds(n, self.size, self.rank))

    def loss_and_gradient(self, x, t, total=None):
        """Mean loss and gradients over a global batch; one ``Allreduce``.

        Parameters
        ----------
        x : ndarray of shape (B, C, H, W)
            The global batch, the same on every rank (each takes ``x[self.shard(B)]``);
            or, with ``total``, only this rank's rows ``x[self.shard(total)]``.
        t : array_like of shape (B,) or (B, classes)
            Labels, as ``x``.
        total : int, optional
            The global batch size when ``x`` and ``t`` are this rank's rows already.

        Returns
        -------
        loss : float
            The mean loss over the global batch (0.0 when the net has only ``gradient``
            and its ``last_layer`` keeps no ``loss``).
        grads : dict of name -> ndarray
            The gradients of that mean, identical on every rank. They are views of one
            buffer that the next call overwrites: use them before then.
        """
        if not isinstance(x, np.ndarray):
            raise TypeError(f"DataParallel.loss_and_gradient: x must be a NumPy ndarray, got "
                            f"{type(x).__name__}; convert it with np.asarray")
        t = np.asarray(t)
        if t.ndim == 0 or t.shape[0] != x.shape[0]:
            raise ValueError(f"DataParallel.loss_and_gradient: t has shape {t.shape} for the "
                             f"{x.shape[0]} images of x; pass one label (or one-hot row) "
                             f"per image")
        if total is None:
            total = x.shape[0]
            lo, hi = shard_bounds(total, self.size, self.rank)
            x, t = x[lo:hi], t[lo:hi]
        else:
            if isinstance(total, bool) or not isinstance(total, (int, np.integer)) or total < 1:
                raise ValueError(f"DataParallel.loss_and_gradient: total must be a positive "
                                 f"int (the global batch size), got {total!r}")
            lo, hi = shard_bounds(total, self.size, self.rank)
            if x.shape[0] != hi - lo:
                raise ValueError(
                    f"DataParallel.loss_and_gradient: x holds {x.shape[0]} images, but rank "
                    f"{self.rank}'s share of a global batch of {total} on {self.size} ranks "
                    f"is {hi - lo} (rows {lo}:{hi}); pass x[dp.shard({total})], or the "
                    f"whole batch without total"
                )
        if hi > lo:
            loss, grads = self._local(x, t, lo, hi, total)
            weight = (hi - lo) / total
            for name, view in self._grads.items():
                np.multiply(grads[name], weight, out=view, casting="same_kind")
            self._flat[-1] = loss * weight
        else:
            # An empty shard: one zero image keeps this rank's generators in step.
            self._local(np.zeros((1,) + x.shape[1:], x.dtype),
                        np.zeros((1,) + t.shape[1:], t.dtype), 0, 1, total)
            self._flat[...] = 0
        self.comm.Allreduce(self._MPI.IN_PLACE, self._flat, op=self._MPI.SUM)
        return float(self._flat[-1]), self._grads

    def gradient(self, x, t, total=None):
        """The gradients of :meth:`loss_and_gradient` (the book's ``gradient``)."""
        return self.loss_and_gradient(x, t, total)[1]

    def _local(self, x, t, lo, hi, total):
        with contextlib.ExitStack() as stack:
            for proxy in self._draws:
                stack.enter_context(proxy.window(lo, hi, total))
            step = getattr(self.net, "loss_and_gradient", None)
            if callable(step):
                return step(x, t)
            grads = self.net.gradient(x, t)
            loss = getattr(getattr(self.net, "last_layer", None), "loss", None)
            return (0.0 if loss is None else float(loss)), grads

    # ------------------------------------------------------------------ evaluation

    def predict_labels(self, x, batch_size=500):
        """Predicted class of every image of ``x`` (in inference mode), each rank
        scoring its shard; the labels are gathered on every rank.

        Returns
        -------
        ndarray of int64, shape (N,)
        """
        MPI = self._MPI
        n = x.shape[0]
        lo, hi = shard_bounds(n, self.size, self.rank)
        local = np.empty(hi - lo, np.int64)
        for i in range(lo, hi, batch_size):
            j = min(i + batch_size, hi)
            local[i - lo:j - lo] = np.argmax(self.net.predict(x[i:j]), axis=1)
        bounds = [shard_bounds(n, self.size, r) for r in range(self.size)]
        counts = [b - a for a, b in bounds]
        out = np.empty(n, np.int64)
        self.comm.Allgatherv(local, [out, counts, [a for a, _ in bounds], MPI.INT64_T])
        return out

    def accuracy(self, x, t, batch_size=500):
        """Fraction of ``x`` classified as ``t`` (indices or one-hot), each rank scoring
        its shard in inference mode; the hit counts are summed (one ``Allreduce``)."""
        t = np.asarray(t)
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        n = x.shape[0]
        lo, hi = shard_bounds(n, self.size, self.rank)
        hits = np.zeros(1, np.int64)
        for i in range(lo, hi, batch_size):
            j = min(i + batch_size, hi)
            hits += np.sum(np.argmax(self.net.predict(x[i:j]), axis=1) == t[i:j])
        self.comm.Allreduce(self._MPI.IN_PLACE, hits, op=self._MPI.SUM)
        return int(hits[0]) / n
