"""Command line: ``python -m vae_helpers train --epochs 5`` (or ``vae-helpers train ...``).

Everything that can be checked is checked before the first epoch (numbers, device, memory, the
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
TRAINING_IMAGES = 60_000
LARGEST = 2**63 - 1  # torch's sizes are 64-bit integers
FLAGS = {"nh": "--nh", "nz": "--nz", "batch_size": "--batch-size", "lr": "--lr",
         "seed": "--seed", "examples": "--subset"}


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


def _integer(low: int, high: int):
    """An argparse type: an integer from ``low`` to ``high``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            kind = "a positive integer" if low == 1 and high == LARGEST else \
                f"an integer from {low:,} to {high:,}"
            raise argparse.ArgumentTypeError(f"must be {kind}, not {text!r}")
        return value
    return parse


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
    return value


class Parser(argparse.ArgumentParser):
    """argparse, with a mistake reported in one line (not the usage block, then the error)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every option has help text that states its default."""
    parser = Parser(prog=prog or program_name(), description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    train = commands.add_parser("train", help="train the MLP VAE and print each epoch's loss",
                                description=DESCRIPTION)
    positive = _integer(1, LARGEST)
    add = train.add_argument
    add("--epochs", type=positive, default=5,
        help="passes over the training images, in all when resuming (default: 5)")
    add("--batch-size", type=positive, default=128, help="images per Adam step (default: 128)")
    add("--lr", type=_positive_number, default=1e-3, help="Adam's learning rate (default: 0.001)")
    add("--nz", type=positive, default=2, help="latent dimensions (default: 2)")
    add("--nh", type=positive, default=512, help="hidden units of each network (default: 512)")
    add("--seed", type=_integer(0, 2**64 - 1), default=DEFAULT_SEED,
        help=f"random seed: initial weights, batch order, Gaussian draws (default: {DEFAULT_SEED})")
    add("--data-dir", default=None,
        help="folder that holds MNIST/raw/ (default: $VAE_DATA_DIR, else ./data)")
    add("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when a GPU is present)")
    add("--subset", type=_integer(1, TRAINING_IMAGES), default=None,
        help="train on the first N training images only (default: all 60,000)")
    add("--cuda-graph", action="store_true",
        help="replay each epoch as a recorded CUDA graph, on a GPU (default: off)")
    add("--save", default=None, help="checkpoint file, written after every epoch (default: none)")
    add("--resume", action="store_true",
        help="continue the run saved in --save, with the same options (default: off)")
    add("--overwrite", action="store_true",
        help="replace an existing --save file with a new run (default: off)")
    add("--no-progress", action="store_true", help="hide the progress bar (default: shown)")
    return parser


def _say(stream, line: str) -> bool:
    """Print ``line`` on ``stream`` unless it is closed; False once it is."""
    if stream is None:
        return False
    try:
        print(line, file=stream, flush=True)
        return True
    except (BrokenPipeError, ValueError, OSError):
        return False


class Output:
    """Standard output that outlives its reader: when it is closed (``... | head -1``), lines
    are dropped and the work goes on, so the checkpoint is still written."""

    def __init__(self) -> None:
        self.closed = sys.stdout is None

    def say(self, line: str) -> None:
        if not self.closed and not _say(sys.stdout, line):
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
    from .data import NX
    from .devices import memory_bytes

    nh, nz = args.nh, args.nz
    parameters = (NX + 1) * nh + 2 * (nh + 1) * nz + (nz + 1) * nh + (nh + 1) * NX
    images = (args.subset or TRAINING_IMAGES) + 10_000
    need = 4 * (4 * parameters + images * NX + 8 * args.batch_size * (NX + nh + nz))
    have = memory_bytes(device)
    if have is not None and need > have:
        raise ValueError(f"--nh {nh}, --nz {nz} and --batch-size {args.batch_size} need about "
                         f"{need / 2**30:,.1f} GiB to train; {device} has {have / 2**30:.1f} GiB.")


def _check_save(args: argparse.Namespace) -> None:
    """The ``--save`` options together and the target itself, before anything is loaded."""
    from .checkpoints import check_target

    if args.save == "":
        raise ValueError("--save needs a file name.")
    for flag, given in (("--resume", args.resume), ("--overwrite", args.overwrite)):
        if given and not args.save:
            raise ValueError(f"{flag} needs --save FILE, the checkpoint of the run to continue "
                             "or replace.")
    if args.resume and args.overwrite:
        raise ValueError("--resume continues the run in --save and --overwrite replaces it: "
                         "choose one.")
    if not args.save:
        return
    exists = os.path.lexists(args.save)
    if args.resume and not exists:
        raise ValueError(f"nothing to resume: {args.save} does not exist.")
    check_target(args.save)
    if exists and not (args.resume or args.overwrite):
        raise ValueError(f"{args.save} exists already: continue its run with --resume, or "
                         "replace it with --overwrite.")


def _epochs_saved(args: argparse.Namespace) -> int:
    """The epochs the ``--save`` checkpoint holds, after checking it was trained with these
    options (the same command, less ``--resume``)."""
    from .checkpoints import check_same_options, training_state
    from .data import NX

    payload, state = training_state(args.save)
    given = {"nx": NX, "nh": args.nh, "nz": args.nz, "batch_size": args.batch_size,
             "lr": args.lr, "seed": args.seed, "examples": args.subset or TRAINING_IMAGES}
    check_same_options(args.save, {**payload["config"], **state["options"]}, given,
                       {name: FLAGS.get(name, name) for name in given})
    return state["epoch"]


def _saved_epochs_line(path: str) -> str:
    """What the checkpoint at ``path`` holds now, read from the file itself."""
    from .checkpoints import training_state

    try:
        epochs = training_state(path)[1]["epoch"]
    except Exception:
        return "no epoch was saved"
    saved = "epoch 1 is" if epochs == 1 else f"epochs 1-{epochs} are"
    return f"{saved} saved in {path}; continue with the same command and --resume"


def _describe(error: BaseException) -> str:
    """One line that names the problem (a newline in a path shows as \\n)."""
    from .errors import CheckpointError, DataError, TrainingDiverged

    if isinstance(error, (DataError, CheckpointError, TrainingDiverged, ValueError, TypeError)):
        text = str(error)
    elif isinstance(error, OSError):
        where = f": {error.filename}" if error.filename else ""
        text = f"{error.strerror or error}{where}"
    elif isinstance(error, MemoryError) or "out of memory" in str(error):
        text = "not enough memory to train with these sizes; lower --nh, --nz or --batch-size."
    else:
        text = (f"unexpected {type(error).__name__}: {error} (set {DEBUG_VARIABLE}=1 to see the "
                "traceback)")
    return text.replace("\n", "\\n")


def _train(args: argparse.Namespace, out: Output) -> int:
    """Check everything, then train."""
    from .data import load_mnist
    from .devices import describe_device, resolve_device
    from .runs import train_model

    _check_save(args)
    device = resolve_device(args.device)
    if args.cuda_graph and device.type != "cuda":
        raise ValueError(f"--cuda-graph needs a CUDA device, and this run is on {device}.")
    _check_memory(args, device)
    done = 0
    if args.resume:
        done = _epochs_saved(args)
        if done >= args.epochs:
            out.say(f"{args.save} already holds {done} epochs; nothing to train "
                    "(raise --epochs to train more).")
            return 0
    data = load_mnist("train", args.data_dir, device, args.subset)
    test = load_mnist("test", args.data_dir, device)
    out.say(f"device: {describe_device(data.device)}")
    if args.resume:
        out.say(f"resuming {args.save} after epoch {done}")
    _, history = train_model(
        data, test, args.epochs, args.seed, "VAE", nh=args.nh, nz=args.nz,
        batch_size=args.batch_size, lr=args.lr, progress=not args.no_progress,
        cuda_graph=args.cuda_graph, on_epoch=lambda history: out.say(epoch_line(history)),
        checkpoint=args.save or None, resume=args.resume)
    out.say(f"saved the model to {args.save} (epoch {len(history.train_loss)})" if args.save
            else "no checkpoint written (use --save FILE to keep the model)")
    return 0


def _raise_interrupted(number: int, frame) -> None:
    raise Interrupted(signal.Signals(number).name)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = {number: signal.signal(number, _raise_interrupted)
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _train(args, Output())
    except Interrupted as stop:
        kept = (_saved_epochs_line(args.save) if args.save else
                "nothing was saved (use --save FILE to keep completed epochs)")
        _say(sys.stderr, f"interrupted by {stop.name}: {kept}.")
        return EXIT_STATUS[stop.name]
    except Exception as error:
        if os.environ.get(DEBUG_VARIABLE):
            raise
        _say(sys.stderr, f"error: {_describe(error)}")
        return 1
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


if __name__ == "__main__":
    sys.exit(main())
