"""Command line: ``python -m vae_helpers train --epochs 5`` (or ``vae-helpers train ...``).

Everything that can be checked is checked before the first epoch (sizes, device, memory, the
``--save`` target), every failure is one line on standard error with a non-zero exit status,
and Ctrl-C or SIGTERM stop cleanly, the completed epochs kept for ``--resume``.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from pathlib import Path

DESCRIPTION = (
    "Train the original tutorial's MLP VAE on MNIST (Adam, batch 128, summed negative ELBO) and "
    "print its epoch lines, '====> Epoch: N Average loss: ...', each as its epoch ends."
)
# Exit statuses: as a shell reports a process stopped by SIGINT or SIGTERM (128 + signal).
EXIT_STATUS = {"SIGINT": 130, "SIGTERM": 143}
DEBUG_VARIABLE = "VAE_DEBUG"  # set it to see the traceback of an unexpected error
DEFAULT_SEED = 2  # vae_helpers.training.DEFAULT_SEED, without importing torch for --help


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; ``name`` says which. A ``BaseException``, like
    ``KeyboardInterrupt``, so that no ``except Exception`` on the way swallows it."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def program_name(argv0: str | None = None) -> str:
    """How the user started us: ``python -m vae_helpers`` or the console script's own name."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    name = Path(argv0).name
    return "python -m vae_helpers" if name in ("__main__.py", "") else name


def _number(kind: type, low: float, strict: bool):
    """An argparse type: a ``kind`` number above ``low`` (or at least ``low``), finite."""
    words = {(int, True): "a positive integer", (int, False): "an integer, zero or more",
             (float, True): "a positive number", (float, False): "a number, zero or more"}

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"must be {words[kind, strict]}, not {text!r}")
        return value

    parse.__name__ = words[kind, strict]
    return parse


POSITIVE_INT, COUNT, POSITIVE = _number(int, 0, True), _number(int, 0, False), \
    _number(float, 0.0, True)


class Parser(argparse.ArgumentParser):
    """argparse, with a mistake reported in one line (not the usage block, then the error)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every option has help text and shows its default."""
    parser = Parser(prog=prog or program_name(), description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    train = commands.add_parser(
        "train", help="train the MLP VAE and print each epoch's loss", description=DESCRIPTION,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--epochs", type=COUNT, default=5,
                       help="passes over the training images (in all, when resuming)")
    train.add_argument("--batch-size", type=POSITIVE_INT, default=128,
                       help="images per Adam step")
    train.add_argument("--lr", type=POSITIVE, default=1e-3, help="Adam's learning rate")
    train.add_argument("--nz", type=POSITIVE_INT, default=2, help="latent dimensions")
    train.add_argument("--nh", type=POSITIVE_INT, default=512, help="hidden units of each network")
    train.add_argument("--seed", type=int, default=DEFAULT_SEED,
                       help="random seed: initial weights, batch order and Gaussian draws")
    train.add_argument("--data-dir", default=None,
                       help="folder that holds MNIST/raw/ (default: $VAE_DATA_DIR, else ./data)")
    train.add_argument("--device", default=None,
                       help="cpu, cuda or cuda:N (default: cuda when a GPU is present)")
    train.add_argument("--subset", type=POSITIVE_INT, default=None,
                       help="train on the first N training images only (default: all 60,000)")
    train.add_argument("--cuda-graph", action="store_true",
                       help="replay each epoch as a recorded CUDA graph (faster on a GPU)")
    train.add_argument("--save", default=None,
                       help="checkpoint file, written after every epoch (default: none)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run saved in --save, with the same options")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


class Output:
    """Standard output that outlives its reader: when it is closed (``... | head -1``), lines
    are dropped and the work goes on, so the checkpoint is still written."""

    def __init__(self) -> None:
        self.closed = sys.stdout is None

    def say(self, line: str) -> None:
        if self.closed:
            return
        try:
            print(line, flush=True)
        except (BrokenPipeError, ValueError, OSError):
            self.closed = True
            try:  # later writes (and the flush at exit) go nowhere instead of failing again
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError):
                sys.stdout = None


def epoch_line(history) -> str:
    """The original tutorial's line for the last epoch, with the test -ELBO and seconds."""
    epoch, loss = len(history.train_loss), history.train_loss[-1]
    test = f"test -ELBO {history.test_loss[-1]:.4f}, " if history.test_loss else ""
    return (f"====> Epoch: {epoch} Average loss: {loss:.4f}  "
            f"({test}{history.seconds[-1]:.2f} s)")


def _check_memory(args: argparse.Namespace, device) -> None:
    """Refuse sizes whose training would not fit in this machine's memory, before allocating:
    weights, gradients and Adam's two moments (4 copies), the data and a batch's activations."""
    import torch

    from .data import NX
    from .devices import memory_bytes
    from .model import VAE, count_parameters

    with torch.device("meta"):
        parameters = count_parameters(VAE(nh=args.nh, nz=args.nz))
    images = (args.subset or 60_000) + 10_000
    floats = 4 * parameters + images * NX + 8 * args.batch_size * (NX + args.nh + args.nz)
    need, have = 4 * floats, memory_bytes(device)
    if need > have:
        raise ValueError(f"--nh {args.nh}, --nz {args.nz} and --batch-size {args.batch_size} "
                         f"need about {need / 2**30:.1f} GiB to train; {device} has "
                         f"{have / 2**30:.1f} GiB.")


def _epochs_saved(args: argparse.Namespace) -> int:
    """The epochs the ``--save`` checkpoint holds, after checking it was trained with these
    options (the same command, less ``--resume``)."""
    from .checkpoints import training_state
    from .data import NX
    from .errors import CheckpointError

    payload, state = training_state(args.save)
    saved = {**payload["config"], **state.get("options", {})}
    given = {"nx": NX, "nh": args.nh, "nz": args.nz, "batch_size": args.batch_size,
             "lr": args.lr, "seed": args.seed, "examples": args.subset or 60_000}
    flags = {"nh": "--nh", "nz": "--nz", "batch_size": "--batch-size", "lr": "--lr",
             "seed": "--seed", "examples": "--subset"}
    different = [f"{flags.get(name, name)} {saved.get(name)} (not {value})"
                 for name, value in given.items() if saved.get(name) != value]
    if different:
        raise CheckpointError(f"{args.save} was trained with other options; resume with "
                              f"{', '.join(different)}.")
    return state["epoch"]


def _describe(error: BaseException) -> str:
    """One line that names the problem."""
    from .errors import CheckpointError, DataError, TrainingDiverged

    if isinstance(error, (DataError, CheckpointError, TrainingDiverged, ValueError, TypeError)):
        return str(error).splitlines()[0]
    if isinstance(error, PermissionError):
        return f"permission denied: {error.filename or error}"
    if isinstance(error, OSError):
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror or error}{where}"
    if isinstance(error, MemoryError) or "out of memory" in str(error) or \
            "can't allocate" in str(error):
        return "not enough memory to train with these sizes; lower --nh, --nz or --batch-size."
    return (f"unexpected {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            f" (set {DEBUG_VARIABLE}=1 to see the traceback)")


def _train(args: argparse.Namespace, out: Output, done: list[int]) -> int:
    """Check everything, then train; ``done[0]`` follows the epochs saved so far."""
    from .checkpoints import check_target
    from .data import load_mnist
    from .devices import describe_device, resolve_device
    from .training import train_model

    if args.save == "":
        raise ValueError("--save needs a file name.")
    if args.resume and not args.save:
        raise ValueError("--resume needs --save FILE, the checkpoint of the run to continue.")
    if args.resume and not Path(args.save).is_file():
        raise ValueError(f"nothing to resume: {args.save} does not exist.")
    device = resolve_device(args.device)
    _check_memory(args, device)
    if args.save:
        check_target(args.save)
    if args.resume:
        done[0] = _epochs_saved(args)
        if done[0] >= args.epochs:
            out.say(f"{args.save} already holds {done[0]} epochs; nothing to train "
                    "(raise --epochs to train more).")
            return 0
    data = load_mnist("train", args.data_dir, device, args.subset)
    test = load_mnist("test", args.data_dir, device)
    out.say(f"device: {describe_device(data.device)}")
    if args.resume:
        out.say(f"resuming {args.save} after epoch {done[0]}")

    def on_epoch(history) -> None:
        if args.save:
            done[0] = len(history.train_loss)
        out.say(epoch_line(history))

    _, history = train_model(
        data, test, args.epochs, args.seed, "VAE", nh=args.nh, nz=args.nz,
        batch_size=args.batch_size, lr=args.lr, progress=not args.no_progress,
        cuda_graph=args.cuda_graph, on_epoch=on_epoch,
        checkpoint=args.save or None, resume=args.resume)
    if args.save:
        out.say(f"saved the model to {args.save} (epoch {len(history.train_loss)})")
    else:
        out.say("no checkpoint written (use --save FILE to keep the model)")
    return 0


def _raise_interrupted(number: int, frame) -> None:
    raise Interrupted(signal.Signals(number).name)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out, done = Output(), [0]
    previous = {number: signal.signal(number, _raise_interrupted)
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _train(args, out, done)
    except Interrupted as stop:
        if not args.save:
            kept = "nothing was saved (use --save FILE to keep completed epochs)"
        elif done[0]:
            kept = (f"epochs 1-{done[0]} are saved in {args.save}; continue with the same "
                    "command and --resume")
        else:
            kept = "no epoch was completed, so nothing was saved"
        print(f"interrupted by {stop.name}: {kept}.", file=sys.stderr)
        return EXIT_STATUS[stop.name]
    except Exception as error:
        if os.environ.get(DEBUG_VARIABLE):
            raise
        print(f"error: {_describe(error)}", file=sys.stderr)
        return 1
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


if __name__ == "__main__":
    sys.exit(main())
