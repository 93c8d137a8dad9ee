"""``fastconv evaluate``: accuracy and per-class accuracy of a DeepConvNet parameter file
(``.npz`` from ``fastconv train``, or the book's ``.pkl``) on a test set.

``--dtype float16`` rounds the weights and the input images to float16 and computes in
float32 (fastconv's float16 rule), which is what the book's float16 experiment measures.

Which test set it is (MNIST or Fashion-MNIST: titles and class names) comes from the test
images' checksum (:func:`fastconv.datasets.detect_kind`) when ``--kind`` is not given; a
``--kind`` that the checksum contradicts is kept, with a warning on stderr. Images that
are neither test set are reported as ``--kind`` (default mnist), without a warning.
"""
import sys

from ._train import (_positive_int, add_data_arguments, load_data, plural, predict_labels,
                     setup_backend)


def configure_parser(parser):
    parser.add_argument("--params", required=True, metavar="FILE",
                        help="parameter file: .npz (fastconv train) or the book's .pkl")
    add_data_arguments(parser, detect_kind=True)
    parser.add_argument("--dtype", choices=("float16", "float32", "float64"),
                        default="float64", help="default: float64 (the book's)")
    parser.add_argument("--batch-size", type=_positive_int, default=500,
                        help="images per forward pass (default: 500)")
    parser.epilog = ("example: python -m fastconv evaluate --params "
                     "../shared/data/pretrained/deep_convnet_params.pkl --data "
                     "../shared/data/mnist")


def _shapes(params, keys):
    return ", ".join(f"{k} {tuple(params[k].shape)}" for k in keys)


def _other_architecture(params, net):
    """None when ``params`` (a loaded parameter file) fits ``net``, the DeepConvNet that
    evaluate runs; else what the file holds, as far as its names and shapes tell, and
    how to evaluate it."""
    from fastconv.models import SimpleConvNet

    if all(k in params and params[k].shape == v.shape for k, v in net.params.items()):
        return None
    weights = sorted((k for k in params if k[:1] == "W" and k[1:].isdigit()),
                     key=lambda k: int(k[1:]))
    found = _shapes(params, weights) or "no W1, W2, ...: " + ", ".join(sorted(params))
    python = "in Python, then call its load_params(FILE) and accuracy(x, t)"
    simple = SimpleConvNet(input_dim=net.input_dim, rng=0)
    if all(k in params and params[k].shape == v.shape for k, v in simple.params.items()):
        return f"the book's SimpleConvNet ({found}): build fastconv.models.SimpleConvNet() {python}"
    if weights == [f"W{i}" for i in range(1, 9)]:
        return (f"a DeepConvNet with other layer sizes ({found}): build DeepConvNet with the "
                f"arguments it was trained with {python}")
    if weights == ["W1", "W2", "W3"] and params["W1"].ndim == 4:
        return (f"a SimpleConvNet with other layer sizes ({found}): build SimpleConvNet with "
                f"the arguments it was trained with {python}")
    return f"a net that fastconv.models does not build ({found})"


def run(args):
    import numpy as np

    from fastconv import _plots
    from fastconv.datasets import detect_kind
    from fastconv.models import DeepConvNet
    from fastconv.params_io import load_params

    err = sys.stderr
    backend = setup_backend(args)
    data = load_data(args, err, normalize=False)
    if data is None:
        return 1
    _, (x_raw, t_test) = data
    found = detect_kind(x_raw)  # the loaded bytes themselves: no second read
    kind = args.kind or found or "mnist"
    if args.kind is not None and found is not None and found != args.kind:
        where = args.data if args.data is not None else "the data found"
        print(f"fastconv evaluate: warning: --kind {args.kind}, but the test images in "
              f"{where} are the {found} test set (by their checksum); reporting as "
              f"{args.kind} anyway: pass --kind {found} or leave --kind out", file=err)
    # load_mnist's normalization, done here so that detect_kind saw the raw pixels
    x_test = x_raw.astype(np.float32)
    x_test /= np.float32(255.0)
    del x_raw
    net = DeepConvNet(input_dim=x_test.shape[1:], dtype=args.dtype)
    try:
        other = _other_architecture(load_params(args.params), net)
        if other is None:
            net.load_params(args.params)
    except (OSError, ValueError) as exc:
        print(f"fastconv: cannot load {args.params}: {exc}", file=err)
        return 1
    if other is not None:
        print(f"fastconv evaluate: {args.params} is not a parameter file of the net evaluate "
              f"runs, the book's DeepConvNet with its default layers "
              f"({_shapes(net.params, [f'W{i}' for i in range(1, 9)])}); it holds {other}",
              file=err)
        return 1
    pred = predict_labels(net, x_test, args.batch_size)
    t = t_test.astype(np.int64)
    hits = pred == t
    names = _plots.class_names(kind)
    how = ", recognised from the files" if args.kind is None and found is not None else ""
    print(f"{args.params} on {kind} test set ({plural(t.size, 'image')}{how}), {args.dtype}, "
          f"backend {backend}")
    print(f"accuracy {hits.mean():.4f} ({int(hits.sum())}/{t.size})")
    labels = [name if name == str(c) else f"{c} {name}" for c, name in enumerate(names)]
    width = max(len(s) for s in labels + ["class"])
    print(f"  {'class':<{width}}  accuracy  correct/images")
    for c, label in enumerate(labels):
        mask = t == c
        if mask.any():
            print(f"  {label:<{width}}  {hits[mask].mean():>8.4f}  "
                  f"{int(hits[mask].sum())}/{int(mask.sum())}")
    return 0
