"""Command line: ``python -m vae_helpers train --epochs 5`` (or ``vae-helpers train ...``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .checkpoints import save_checkpoint
from .data import load_mnist
from .devices import describe_device
from .errors import CheckpointError, DataError, TrainingDiverged
from .training import DEFAULT_SEED, History, train_model

DESCRIPTION = (
    "Train the original tutorial's MLP VAE on MNIST (Adam, batch 128, summed negative ELBO) and "
    "print its epoch lines, '====> Epoch: N Average loss: ...', each as its epoch ends."
)


def program_name(argv0: str | None = None) -> str:
    """How the user started us: ``python -m vae_helpers`` or the console script's own name."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    name = Path(argv0).name
    return "python -m vae_helpers" if name in ("__main__.py", "") else name


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every option has help text and shows its default."""
    parser = argparse.ArgumentParser(prog=prog or program_name(), description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    train = commands.add_parser(
        "train", help="train the MLP VAE and print each epoch's loss", description=DESCRIPTION,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--epochs", type=int, default=5, help="passes over the training images")
    train.add_argument("--batch-size", type=int, default=128, help="images per Adam step")
    train.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    train.add_argument("--nz", type=int, default=2, help="latent dimensions")
    train.add_argument("--nh", type=int, default=512, help="hidden units of each network")
    train.add_argument("--seed", type=int, default=DEFAULT_SEED,
                       help="random seed: initial weights, batch order and Gaussian draws")
    train.add_argument("--data-dir", default=None,
                       help="folder that holds MNIST/raw/ (default: $VAE_DATA_DIR, else ./data)")
    train.add_argument("--device", default=None,
                       help="cpu, cuda or cuda:N (default: cuda when a GPU is present)")
    train.add_argument("--subset", type=int, default=None,
                       help="train on the first N training images only (default: all 60,000)")
    train.add_argument("--cuda-graph", action="store_true",
                       help="replay each epoch as a recorded CUDA graph (faster on a GPU)")
    train.add_argument("--save", default=None,
                       help="write the trained model to this checkpoint file (default: none)")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def epoch_line(history: History) -> str:
    """The original tutorial's line for the last epoch, with the test -ELBO and seconds."""
    epoch, loss = len(history.train_loss), history.train_loss[-1]
    test = f"test -ELBO {history.test_loss[-1]:.4f}, " if history.test_loss else ""
    return (f"====> Epoch: {epoch} Average loss: {loss:.4f}  "
            f"({test}{history.seconds[-1]:.2f} s)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.save == "":
        print("error: --save needs a file name.", file=sys.stderr)
        return 1
    try:
        data = load_mnist("train", args.data_dir, args.device, args.subset)
        test = load_mnist("test", args.data_dir, args.device)
        print(f"device: {describe_device(data.device)}", flush=True)
        model, history = train_model(
            data, test, args.epochs, args.seed, "VAE", nh=args.nh, nz=args.nz,
            batch_size=args.batch_size, lr=args.lr, progress=not args.no_progress,
            cuda_graph=args.cuda_graph,
            on_epoch=lambda history: print(epoch_line(history), flush=True))
        if args.save:
            print(f"saved the model to {save_checkpoint(args.save, model, history.as_dict())}")
        else:
            print("no checkpoint written (use --save FILE to keep the model)")
    except (DataError, TrainingDiverged, CheckpointError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
