"""Run under ``mpiexec`` by tests/test_distributed.py; also imported there, in one
process, for the reference runs (``train(case)`` without a communicator).

    python dp_cases.py SIZE CASES.json OUT_DIR  -> OUT_DIR/<case>-rank<r>.npz per case
    python dp_cases.py SIZE --abort             -> rank 1 raises in step 2, rank 0 waits

SIZE is the rank count the test started; a mismatch (an mpiexec of another MPI than
mpi4py's starts independent singletons) exits 3 with a message.
"""
import json
import sys
from pathlib import Path

import numpy as np

from fastconv import optim
from fastconv.models import DeepConvNet


def make_data(n, input_dim, classes, seed):
    """Noise plus a bright block whose position gives the class: learnable in a few steps,
    so that predictions differ between images."""
    rng = np.random.default_rng(seed)
    C, H, W = input_dim
    t = rng.integers(0, classes, size=n)
    x = 0.3 * rng.random((n, C, H, W))
    for i, c in enumerate(t):
        r = (c * (H - 3)) // max(classes - 1, 1)
        x[i, :, r:r + 3, r:r + 3] = 1.0
    return x, t


def train(case, wrap=None):
    """Train ``case``; ``wrap(net)`` returns a DataParallel (None: one process).

    Returns a dict: final ``params``, step ``losses``, the largest |gradient| of each
    step (``gmax``), and the evaluation set's predicted ``labels`` and ``accuracy``.
    """
    dtype = np.dtype(case["dtype"])
    net = DeepConvNet(**case["net"], dtype=dtype, rng=case["seed"])
    name, hyper = case["optimizer"]
    opt = getattr(optim, name)(**hyper)
    step = net if wrap is None else wrap(net)
    dims = tuple(case["net"]["input_dim"])
    classes = case["net"]["output_size"]
    x, t = make_data(sum(case["batches"]), dims, classes, case["seed"] + 1)
    x = x.astype(dtype)
    losses, gmax, start = [], [], 0
    for b in case["batches"]:
        loss, grads = step.loss_and_gradient(x[start:start + b], t[start:start + b])
        start += b
        losses.append(loss)
        gmax.append(max(float(np.max(np.abs(g))) for g in grads.values()))
        opt.update(net.params, grads)
    xe, te = make_data(case["eval"], dims, classes, case["seed"] + 2)
    xe = xe.astype(dtype)
    if wrap is None:
        labels = np.argmax(net.predict(xe), axis=1)
        accuracy = net.accuracy(xe, te, batch_size=case["eval_batch"])
    else:
        labels = step.predict_labels(xe, batch_size=case["eval_batch"])
        accuracy = step.accuracy(xe, te, batch_size=case["eval_batch"])
    return dict(params={k: v.copy() for k, v in net.params.items()},
                losses=np.array(losses), gmax=np.array(gmax), labels=labels,
                accuracy=accuracy, truth=te)


def _abort(comm, DataParallel):
    dp = DataParallel(DeepConvNet(input_dim=(1, 10, 10), hidden_size=4, output_size=3,
                                  dtype=np.float32, rng=0))
    x, t = make_data(4, (1, 10, 10), 3, 0)
    x = x.astype(np.float32)
    dp.loss_and_gradient(x, t)
    if comm.Get_rank() == 1:
        raise RuntimeError("deliberate failure on rank 1")
    dp.loss_and_gradient(x, t)  # rank 0 waits here for rank 1's contribution
    print("rank 0 passed a collective that rank 1 never entered", flush=True)


def main(argv):
    from fastconv.distributed import DataParallel, abort_on_error, world

    comm = world()
    if comm.Get_size() != int(argv[0]):
        print(f"started with {argv[0]} ranks but MPI.COMM_WORLD has {comm.Get_size()}: "
              f"this mpiexec belongs to another MPI than mpi4py's", file=sys.stderr)
        return 3
    with abort_on_error(comm):
        if argv[1] == "--abort":
            _abort(comm, DataParallel)
            return 0
        out = Path(argv[2])
        for case in json.loads(Path(argv[1]).read_text()):
            res = train(case, DataParallel)
            params = {f"param_{k}": v for k, v in res.pop("params").items()}
            np.savez(out / f"{case['name']}-rank{comm.Get_rank()}.npz", **params, **res)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
