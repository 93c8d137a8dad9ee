"""python -m fastconv (or fastconv): bench, info, train, evaluate."""
import argparse
import importlib
import os
import sys

from ._version import __version__

# subcommand -> (module, help); each module has configure_parser(parser) and run(args) -> int
_COMMANDS = {
    "bench": ("fastconv._bench", "time every kernel against the NumPy reference (and PyTorch)"),
    "info": ("fastconv._info", "version, backends, threads, OpenMP and BLAS"),
    "train": ("fastconv._train", "train DeepConvNet on MNIST or Fashion-MNIST"),
    "evaluate": ("fastconv._evaluate", "accuracy of a parameter file on a test set"),
}


def thread_count(text):
    """The argparse ``type`` of the commands' ``--threads``: a count that
    :func:`fastconv.set_num_threads` takes, refused at parsing with its reason."""
    from ._backend import check_thread_count

    try:
        return check_thread_count(int(text))
    except ValueError as err:
        message = str(err) if "set_num_threads" in str(err) else f"not a whole number: {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def build_parser(command=None):
    """The argument parser; only ``command``'s module is imported to configure its options
    (so ``fastconv info`` does not import the training code)."""
    parser = argparse.ArgumentParser(prog="fastconv", description=__doc__)
    parser.add_argument("--version", action="version", version=f"fastconv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module)
        if name == command:
            importlib.import_module(module).configure_parser(p)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        code = importlib.import_module(args._module).run(args) or 0
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
    except BrokenPipeError:
        # The reader (`fastconv info | head -3`) has what it wanted: no traceback. Later
        # writes, the interpreter's final flush included, go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE: the shell's status for a process that SIGPIPE ended
    return code


if __name__ == "__main__":
    sys.exit(main())
