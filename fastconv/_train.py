"""``fastconv train``: train the book's DeepConvNet on MNIST or Fashion-MNIST with Adam.

Each epoch visits the training images once in a fresh random order (the book's Trainer
draws batches with replacement instead). After each epoch: the mean training loss,
accuracy on a fixed sample of 1,000 training images, on the validation split and on the
whole test set. The validation split (``--val-split``, a tenth by default) is carved from
the training images and chooses the best epoch, whose parameters are kept (``best.npz``);
the test set never chooses anything. ``--val-split 0`` trains on every image and turns
selection off: the run reports its last epoch only. At the end, in ``--out``:
``params.npz`` (the last epoch's; load either with ``DeepConvNet.load_params`` or
``fastconv evaluate``), ``best.npz`` (with a split), ``history.json`` and, when matplotlib
is installed, ``curves.png`` and ``misclassified.png``.

Recipe options: ``--lr-schedule`` (constant, step: x0.1 every ``--lr-step-epochs``, or
cosine to 0, with ``--warmup-epochs`` of linear warm-up), ``--weight-decay`` (decoupled,
AdamW's rule, or ``--weight-decay-mode l2``, the book's), and ``--augment`` (a recipe per
dataset, named in the run's header: random crops of the image zero-padded by 2 pixels
(shifts of -2..2) for mnist, flips and erasing for fashion-mnist (measured best, see
``AUGMENT_DEFAULT``); ``shift``, ``flip``, ``shift-flip``, ``flip-erase`` and
``shift-flip-erase`` (erase: random erasing of one rectangle of 2-20% of the image with
probability 1/2) choose one).

Reproducibility: ``--seed`` seeds one ``np.random.SeedSequence``, split into a stream for
the net (initial weights, then dropout masks), one for the data (epoch order, then the
``--augment`` draws, which go to the ``shift_flip`` kernel and ``erase`` as arrays) and
one for the validation split. NumPy's global random state is not used. The same seed,
backend, dtype and thread count give the same parameters bit for bit.

``--distributed``, under ``mpiexec -n K``, trains data-parallel over MPI
(:mod:`fastconv.distributed`): ``--batch-size`` stays the global batch; every rank
draws the order, the augmentation and the dropout masks for the whole batch from the
same seed and computes on its rows, and one Allreduce a step sums the gradients, so
each step equals the single-process one to float round-off (long float32 runs then
drift apart as they do between thread counts). Only rank 0 prints and writes ``--out``;
a rank that fails aborts the job.
"""
import argparse
import functools
import io
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

_TRAIN_SAMPLE = 1000     # training images scored after each epoch
_EVAL_BATCH = 500        # images per forward pass when scoring
_MAX_SHIFT = 2           # --augment: shifts of -2..2 pixels in each direction
_LOG_EVERY = 60.0        # seconds between progress lines when stderr is not a terminal
#: --augment recipes: what each does to a batch, and the default per dataset (digits are
#: not mirror-symmetric, garments are); Fashion-MNIST's default was the best of the
#: recipes measured (docs/tuning.md, "Augmentation defaults").
AUGMENT = {"shift": ("shift",), "flip": ("flip",), "shift-flip": ("shift", "flip"),
           "flip-erase": ("flip", "erase"), "shift-flip-erase": ("shift", "flip", "erase")}
AUGMENT_DEFAULT = {"mnist": "shift", "fashion-mnist": "flip-erase"}
_ERASE_P, _ERASE_AREA = 0.5, (0.02, 0.2)  # erase: probability, share of the image


def _number(convert, accept, expected):
    """An argparse ``type``: ``convert(text)``, refused unless ``accept(value)``."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_positive_float = _number(float, lambda v: v > 0, "a positive number")
_non_negative_float = _number(float, lambda v: v >= 0, "a number >= 0")
_fraction = _number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def plural(count, word):
    """``"1 epoch"``, ``"2 epochs"``: ``count`` and ``word``, plural unless ``count`` is 1."""
    return f"{count} {word}" + ("" if count == 1 else "s")


def add_data_arguments(parser, detect_kind=False):
    """``--data``, ``--kind`` and ``--backend`` (shared with ``fastconv evaluate``).

    With ``detect_kind`` (evaluate), ``--kind`` defaults to None: the caller takes the
    kind from the files (:func:`fastconv.datasets.detect_kind`), mnist when they are
    neither test set.
    """
    parser.add_argument("--data", metavar="DIR",
                        help="directory with the IDX files (train-images-idx3-ubyte[.gz], ...) "
                             "or a parent holding a mnist/ or fashion-mnist/ folder; default: "
                             "$FASTCONV_DATA, the download cache, then a download")
    parser.add_argument("--kind", choices=("mnist", "fashion-mnist"),
                        default=None if detect_kind else "mnist",
                        help="which dataset; default: recognised from the test images' "
                             "checksum, mnist when they are neither (a parent --data DIR is "
                             "read from its mnist/ folder)" if detect_kind
                        else "which dataset (default: mnist)")
    parser.add_argument("--backend", choices=("auto", "numba", "cython", "numpy"),
                        default="auto", help="kernel backend (default: auto)")
    from .cli import thread_count

    parser.add_argument("--threads", type=thread_count, metavar="N",
                        help="threads for the kernels and BLAS (default: all cores)")


def configure_parser(parser):
    add_data_arguments(parser)
    parser.add_argument("--epochs", type=_positive_int, default=10, help="default: 10")
    parser.add_argument("--batch-size", type=_positive_int, default=100, help="default: 100")
    parser.add_argument("--lr", type=_positive_float, default=0.001,
                        help="Adam's learning rate (default: 0.001)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="default: float32")
    parser.add_argument("--augment", nargs="?", const="auto", default=None,
                        choices=("auto",) + tuple(AUGMENT),
                        help=f"augment each batch: random crops of the image zero-padded by "
                             f"{_MAX_SHIFT} pixels (shift), horizontal flips (flip), random "
                             f"erasing (erase): one of the choices; alone or 'auto': shift "
                             f"for mnist, flip-erase for fashion-mnist")
    parser.add_argument("--lr-schedule", choices=("constant", "step", "cosine"),
                        default="constant", help="learning rate over the run: constant "
                        "(default), step (x0.1 every --lr-step-epochs) or cosine (to 0)")
    parser.add_argument("--lr-step-epochs", type=_positive_int, metavar="E",
                        help="step schedule: epochs between decays (default: a third of "
                             "--epochs)")
    parser.add_argument("--warmup-epochs", type=_non_negative_float, default=0.0, metavar="E",
                        help="cosine schedule: linear warm-up over the first E epochs "
                             "(default: 0)")
    parser.add_argument("--weight-decay", type=_non_negative_float, default=0.0,
                        metavar="RATE", help="weight decay of the weights, not biases "
                        "(default: 0)")
    parser.add_argument("--weight-decay-mode", choices=("decoupled", "l2"),
                        default="decoupled", help="decoupled (AdamW's rule, default) or l2 "
                        "(added to the gradient, the book's weight_decay_lambda)")
    parser.add_argument("--dropout", type=_fraction, default=0.5, metavar="RATIO",
                        help="ratio of DeepConvNet's two dropout layers (default: the "
                             "book's 0.5)")
    parser.add_argument("--val-split", type=_fraction, default=0.1, metavar="F",
                        help="hold out this fraction of the training images (after --limit) "
                             "to choose the best epoch on (default: 0.1); 0: train on all "
                             "of them, no selection, the last epoch is reported")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.add_argument("--out", metavar="DIR", default="runs/train",
                        help="where params.npz, history.json and the plots go "
                             "(default: runs/train)")
    parser.add_argument("--limit", type=_positive_int, metavar="N",
                        help="use only the first N training images (quick runs)")
    parser.add_argument("--no-plots", action="store_true",
                        help="skip curves.png and misclassified.png")
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel over MPI: start with mpiexec -n K; --batch-size "
                             "stays the global batch, each rank takes its share; threads "
                             "default to cores // K per rank (needs fastconv[mpi])")
    parser.epilog = ("example: python -m fastconv train --kind fashion-mnist "
                     "--data ../shared/data/fashion-mnist --epochs 15 --out runs/fmnist")


def setup_backend(args):
    """Apply ``--backend`` and ``--threads`` process-wide; returns the concrete backend."""
    import fastconv as fc
    from fastconv import _backend

    if args.threads is not None:
        fc.set_num_threads(args.threads)
    fc.set_backend(args.backend)
    return _backend.resolve(None)


def load_data(args, stream, normalize=True):
    """``load_mnist`` as images (N, 1, 28, 28); None (after a message) when it fails.

    ``args.kind`` None (evaluate without ``--kind``) looks for the data as mnist.
    """
    from fastconv.datasets import load_mnist

    kind = args.kind or "mnist"
    if args.data is not None and not Path(args.data).is_dir():
        # Said at once: a folder the user named is never replaced by the cache or a download.
        what = "is not a folder" if Path(args.data).exists() else "does not exist"
        print(f"fastconv: --data {args.data} {what}; pass the folder that holds the IDX "
              f"files (t10k-images-idx3-ubyte[.gz], ...) or its parent with a {kind}/ "
              f"folder, or leave --data out to use $FASTCONV_DATA, the download cache or a "
              f"download", file=stream)
        return None
    try:
        return load_mnist(args.data, normalize=normalize, flatten=False, kind=kind)
    except (FileNotFoundError, ValueError) as err:
        print(f"fastconv: cannot load {kind}: {err}", file=stream)
        return None


def predict_labels(net, x, batch_size=_EVAL_BATCH):
    """Predicted class of every image, in inference mode; int64 array of shape (N,)."""
    import numpy as np

    out = np.empty(x.shape[0], dtype=np.int64)
    for i in range(0, x.shape[0], batch_size):
        out[i:i + batch_size] = np.argmax(net.predict(x[i:i + batch_size]), axis=1)
    return out


def lr_schedule(args, steps):
    """The learning rate at each update (a callable of the 0-based update index) for
    ``--lr-schedule``, ``steps`` updates an epoch; None for a constant rate."""
    from fastconv import optim

    if args.lr_schedule == "step":
        every = args.lr_step_epochs or max(1, args.epochs // 3)
        return optim.StepDecay(args.lr, every * steps, 0.1)
    if args.lr_schedule == "cosine":
        total = args.epochs * steps
        return optim.CosineDecay(args.lr, total,
                                 warmup_steps=min(total - 1, round(args.warmup_epochs * steps)))
    return None


def augment_batch(xb, mine, b, ops, rng):
    """``xb`` (this rank's rows ``mine`` of a batch of ``b``) augmented by ``ops`` (see
    ``AUGMENT``), every draw taken for the whole batch so that all ranks draw alike."""
    import numpy as np

    from fastconv.functional.augment import erase, shift_flip

    shift = _MAX_SHIFT if "shift" in ops else 0
    dy = rng.integers(-shift, shift + 1, size=b)
    dx = rng.integers(-shift, shift + 1, size=b)
    flip = rng.integers(0, 2, size=b) if "flip" in ops else np.zeros(b, np.int64)
    if xb.shape[0]:  # a rank's share of a last batch under K images is empty
        xb = shift_flip(xb, dy[mine], dx[mine], flip[mine])
    if "erase" in ops:
        H, W = xb.shape[2:]
        area = rng.uniform(*_ERASE_AREA, size=b) * H * W
        aspect = np.exp(rng.uniform(np.log(0.3), np.log(1 / 0.3), size=b))
        h = np.minimum(H, np.rint(np.sqrt(area * aspect))).astype(np.int64)
        w = np.minimum(W, np.rint(np.sqrt(area / aspect))).astype(np.int64)
        on = rng.random(b) < _ERASE_P
        top = (rng.random(b) * (H - h + 1)).astype(np.int64)
        left = (rng.random(b) * (W - w + 1)).astype(np.int64)
        if xb.shape[0]:
            xb = erase(xb, top[mine], left[mine], (h * on)[mine], (w * on)[mine])
    return xb


def run(args):
    if not args.distributed:
        return _run(args, None)
    from fastconv import distributed

    try:
        comm = distributed.world()
    except ImportError as err:
        print(f"fastconv train --distributed: {err}", file=sys.stderr)
        return 2
    # A failing rank (an exception, or an error it reports and returns) ends every rank:
    # the others would otherwise wait in their next collective for good.
    with distributed.abort_on_error(comm):
        code = _run(args, comm)
    if code and comm.Get_size() > 1:
        sys.stderr.flush()
        comm.Abort(code)
    return code


class _Discard(io.TextIOBase):
    """Where the progress of ranks other than 0 goes."""

    def write(self, text):
        return len(text)


def _run(args, comm):
    import numpy as np

    from fastconv import _plots
    from fastconv.models import DeepConvNet
    from fastconv.optim import Adam, WeightDecay

    err = sys.stderr
    root = comm is None or comm.Get_rank() == 0
    log = err if root else _Discard()  # progress and results: rank 0 only; errors: every rank
    backend = setup_backend(args)
    # Known before the (long) run, said before it starts and again at the end.
    plots_missing = "--no-plots" if args.no_plots else _plots.matplotlib_missing()
    data = load_data(args, err)
    if data is None:
        return 1
    (x_train, t_train), (x_test, t_test) = data
    if x_train.shape[0] == 0:
        print(f"fastconv: the {args.kind} data found holds no training images (only the "
              f"t10k files); pass --data DIR with train-images-idx3-ubyte[.gz] and "
              f"train-labels-idx1-ubyte[.gz]", file=err)
        return 1
    if args.limit is not None:
        x_train, t_train = x_train[:args.limit], t_train[:args.limit]
    dtype = np.dtype(args.dtype)
    x_train = x_train.astype(dtype)
    x_test = x_test.astype(dtype)
    t_train = t_train.astype(np.int64)
    t_test = t_test.astype(np.int64)

    net_seed, data_seed, split_seed = np.random.SeedSequence(args.seed).spawn(3)
    x_val = t_val = None
    if args.val_split:
        n_val = round(args.val_split * x_train.shape[0])
        if not 1 <= n_val < x_train.shape[0]:
            print(f"fastconv: --val-split {args.val_split} of {x_train.shape[0]} training "
                  f"images leaves {n_val} for validation and {x_train.shape[0] - n_val} to "
                  f"train on; both need at least one: pass a larger --limit, another "
                  f"--val-split, or --val-split 0 to keep the last epoch without "
                  f"selection", file=err)
            return 1
        perm = np.random.default_rng(split_seed).permutation(x_train.shape[0])
        val, keep = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        x_val, t_val = x_train[val], t_train[val]
        x_train, t_train = x_train[keep], t_train[keep]
    net = DeepConvNet(input_dim=x_train.shape[1:], dropout_ratio=args.dropout, dtype=dtype,
                      rng=np.random.default_rng(net_seed))
    rng = np.random.default_rng(data_seed)
    optimizer = Adam(lr=args.lr)
    if args.weight_decay:
        optimizer = WeightDecay(optimizer, args.weight_decay,
                                decoupled=args.weight_decay_mode == "decoupled")
    out_dir = Path(args.out)
    if root:
        out_dir.mkdir(parents=True, exist_ok=True)
        if x_val is None:  # no selection: an earlier run's best.npz would pass for this one's
            (out_dir / "best.npz").unlink(missing_ok=True)
    if comm is None:
        dp, predict, ranks = None, functools.partial(predict_labels, net), ""
    else:
        from fastconv import distributed, get_num_threads

        dp = distributed.DataParallel(net, comm)  # cores // ranks threads unless --threads
        predict = dp.predict_labels
        lo, hi = distributed.shard_bounds(args.batch_size, dp.size, dp.size - 1)
        share = f"{hi - lo}" if args.batch_size % dp.size == 0 else f"{hi - lo}-{hi - lo + 1}"
        ranks = (f" global ({share} per rank), {plural(dp.size, 'rank')} x "
                 f"{plural(get_num_threads(), 'thread')}")

    n = x_train.shape[0]
    steps = -(-n // args.batch_size)
    sample = np.arange(min(n, _TRAIN_SAMPLE))
    schedule = lr_schedule(args, steps)
    recipe = AUGMENT_DEFAULT[args.kind] if args.augment == "auto" else args.augment
    ops = AUGMENT[recipe] if recipe else ()
    what = {"shift": f"crop of a {_MAX_SHIFT}-pixel zero pad", "flip": "horizontal flip",
            "erase": f"erase p={_ERASE_P}"}
    selected_on = "validation" if x_val is not None else None
    print(f"fastconv train: DeepConvNet on {args.kind}, {n} training"
          + (f" / {x_val.shape[0]} validation" if x_val is not None else "")
          + f" / {x_test.shape[0]} test images, {args.dtype}, backend {backend}, batch "
          f"{args.batch_size}{ranks}, Adam lr {args.lr}"
          + (f" ({args.lr_schedule} schedule)" if schedule else "")
          + (f", weight decay {args.weight_decay} ({args.weight_decay_mode})"
             if args.weight_decay else "")
          + (f", dropout {args.dropout}" if args.dropout != 0.5 else "")
          + f", {plural(args.epochs, 'epoch')}"
          + (f", augment {recipe} ({', '.join(what[o] for o in ops)})" if ops else "")
          + ("; best epoch chosen on the validation set" if selected_on else
             "; no validation split (--val-split 0): the last epoch is kept"),
          file=log, flush=True)
    if plots_missing and not args.no_plots:
        print(f"fastconv train: curves.png and misclassified.png will not be drawn: "
              f"{plots_missing} (or pass --no-plots)", file=log, flush=True)

    history = dict(args={k: v for k, v in vars(args).items() if not k.startswith("_")},
                   backend=backend, augment=list(ops), selected_on=selected_on,
                   step_loss=[], epochs=[])
    best_val_acc, best_path = -1.0, out_dir / "best.npz"
    if dp is not None:
        history["ranks"] = dp.size
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(n)
        losses = []
        aug_s = 0.0
        t0 = last_log = time.perf_counter()
        # Quiet (disable=None) when the log is not a terminal: a line now and then instead.
        bar = tqdm(total=steps, desc=f"epoch {epoch}/{args.epochs}", file=log,
                   disable=None if root else True, leave=True, dynamic_ncols=True)
        with bar:
            for s in range(steps):
                idx = order[s * args.batch_size:(s + 1) * args.batch_size]
                # Every rank draws for the whole batch and takes its rows.
                b = idx.size
                mine = slice(None) if dp is None else dp.shard(b)
                xb, tb = x_train[idx[mine]], t_train[idx[mine]]
                if ops:
                    ta = time.perf_counter()
                    xb = augment_batch(xb, mine, b, ops, rng)
                    aug_s += time.perf_counter() - ta
                if schedule is not None:
                    optimizer.lr = schedule((epoch - 1) * steps + s)
                if dp is None:
                    loss, grads = net.loss_and_gradient(xb, tb)
                else:
                    loss, grads = dp.loss_and_gradient(xb, tb, total=b)
                optimizer.update(net.params, grads)
                losses.append(loss)
                done = min((s + 1) * args.batch_size, n)
                now = time.perf_counter()
                status = dict(loss=f"{np.mean(losses[-50:]):.4f}", img_s=f"{done / (now - t0):.0f}")
                bar.set_postfix(status, refresh=False)
                bar.update(1)
                if bar.disable and root and now - last_log >= _LOG_EVERY:
                    print(f"  epoch {epoch} step {s + 1}/{steps}: loss {status['loss']}  "
                          f"{status['img_s']} images/s", file=log, flush=True)
                    last_log = now
        # The bar has drawn its final (100%) line and ended it: the summary goes below.
        train_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        train_acc = float(np.mean(predict(x_train[sample]) == t_train[sample]))
        val_acc = None if x_val is None else float(np.mean(predict(x_val) == t_val))
        pred = predict(x_test)
        test_acc = float(np.mean(pred == t_test))
        eval_s = time.perf_counter() - t1
        record = dict(epoch=epoch, loss=float(np.mean(losses)), train_acc=train_acc,
                      val_acc=val_acc, test_acc=test_acc, lr=float(optimizer.lr),
                      train_seconds=train_s, augment_seconds=aug_s, eval_seconds=eval_s,
                      images_per_second=n / train_s)
        history["epochs"].append(record)
        history["step_loss"].extend(float(v) for v in losses)
        if val_acc is not None and val_acc > best_val_acc:
            best_val_acc = val_acc
            history.update(best_epoch=epoch, best_val_acc=val_acc, best_test_acc=test_acc)
            if root:
                net.save_params(best_path)
        print(f"epoch {epoch}/{args.epochs}: loss {record['loss']:.4f}  train acc "
              f"{train_acc:.4f} ({plural(sample.size, 'image')})"
              + (f"  val acc {val_acc:.4f}" if val_acc is not None else "")
              + f"  test acc {test_acc:.4f}  {train_s:.1f} s "
              f"({record['images_per_second']:.0f} images/s"
              + (f", augment {100 * aug_s / train_s:.1f}%" if ops else "")
              + f"), eval {eval_s:.1f} s", file=log, flush=True)

    if not root:
        return 0
    params_path = out_dir / "params.npz"
    net.save_params(params_path)
    (out_dir / "history.json").write_text(json.dumps(history, indent=1))
    print(f"saved {params_path} and {out_dir / 'history.json'}", file=err)

    if plots_missing:
        print(f"plots skipped: {plots_missing}", file=err)
    else:
        curves = out_dir / "curves.png"
        _plots.plot_curves(history["step_loss"], steps,
                           [e["train_acc"] for e in history["epochs"]],
                           [e["test_acc"] for e in history["epochs"]], curves,
                           val_acc=None if x_val is None else
                           [e["val_acc"] for e in history["epochs"]],
                           best_epoch=history.get("best_epoch"))
        shown = _plots.plot_misclassified(x_test, t_test, pred, _plots.class_names(args.kind),
                                          out_dir / "misclassified.png")
        print(f"saved {curves}" + (f" and {out_dir / 'misclassified.png'} "
                                   f"({plural(shown, 'image')})"
                                   if shown else " (no misclassified test images)"), file=err)
    final = history["epochs"][-1]
    if selected_on:
        print(f"best epoch {history['best_epoch']} (validation accuracy "
              f"{history['best_val_acc']:.4f}): test accuracy {history['best_test_acc']:.4f}, "
              f"saved in {best_path}", file=err)
    print(f"test accuracy {final['test_acc']:.4f} after {plural(args.epochs, 'epoch')}",
          flush=True)
    return 0
