"""``fastconv evaluate``: accuracy and per-class accuracy of a DeepConvNet parameter file
(``.npz`` from ``fastconv train``, or the book's ``.pkl``) on a test set.

``--dtype float16`` rounds the weights and the input images to float16 and computes in
float32 (fastconv's float16 rule), which is what the book's float16 experiment measures.
"""
import sys

from ._train import _positive_int, add_data_arguments, load_data, predict_labels, setup_backend


def configure_parser(parser):
    parser.add_argument("--params", required=True, metavar="FILE",
                        help="parameter file: .npz (fastconv train) or the book's .pkl")
    add_data_arguments(parser)
    parser.add_argument("--dtype", choices=("float16", "float32", "float64"),
                        default="float64", help="default: float64 (the book's)")
    parser.add_argument("--batch-size", type=_positive_int, default=500,
                        help="images per forward pass (default: 500)")
    parser.epilog = ("example: python -m fastconv evaluate --params "
                     "../shared/data/pretrained/deep_convnet_params.pkl --data "
                     "../shared/data/mnist")


def run(args):
    import numpy as np

    from fastconv import _plots
    from fastconv.models import DeepConvNet

    err = sys.stderr
    backend = setup_backend(args)
    data = load_data(args, err)
    if data is None:
        return 1
    _, (x_test, t_test) = data
    net = DeepConvNet(input_dim=x_test.shape[1:], dtype=args.dtype)
    try:
        net.load_params(args.params)
    except (OSError, ValueError) as exc:
        print(f"fastconv: cannot load {args.params}: {exc}", file=err)
        return 1
    pred = predict_labels(net, x_test, args.batch_size)
    t = t_test.astype(np.int64)
    hits = pred == t
    names = _plots.class_names(args.kind)
    print(f"{args.params} on {args.kind} test set ({t.size} images), {args.dtype}, "
          f"backend {backend}")
    print(f"accuracy {hits.mean():.4f} ({int(hits.sum())}/{t.size})")
    labels = [name if name == str(c) else f"{c} {name}" for c, name in enumerate(names)]
    width = max(len(s) for s in labels)
    for c, label in enumerate(labels):
        mask = t == c
        if mask.any():
            print(f"  {label:<{width}}  {hits[mask].mean():.4f}  "
                  f"({int(hits[mask].sum())}/{int(mask.sum())})")
    return 0
