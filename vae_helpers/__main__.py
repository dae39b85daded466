"""Command line: ``python -m vae_helpers train --epochs 5`` trains the seed's VAE on MNIST."""

from __future__ import annotations

import argparse
import sys

import torch

from .checkpoints import save_checkpoint
from .data import load_mnist
from .devices import describe_device
from .errors import CheckpointError, DataError, TrainingDiverged
from .model import VAE
from .training import DEFAULT_SEED, fit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae_helpers", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train the MLP VAE and print each epoch's loss")
    train.add_argument("--epochs", type=int, default=5)
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--nz", type=int, default=2, help="latent dimensions")
    train.add_argument("--nh", type=int, default=512, help="hidden units")
    train.add_argument("--seed", type=int, default=DEFAULT_SEED)
    train.add_argument("--data-dir", default=None, help="folder with MNIST/raw ($VAE_DATA_DIR)")
    train.add_argument("--device", default=None, help="cpu or cuda (default: best available)")
    train.add_argument("--subset", type=int, default=None, help="train on the first N images")
    train.add_argument("--cuda-graph", action="store_true",
                       help="replay each epoch as a recorded CUDA graph (faster on a GPU)")
    train.add_argument("--save", default=None, help="write a checkpoint here")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    try:
        data = load_mnist("train", args.data_dir, args.device, args.subset)
        test = load_mnist("test", args.data_dir, args.device)
        print(f"device: {describe_device(data.device)}")
        torch.manual_seed(args.seed)
        model = VAE(nh=args.nh, nz=args.nz)
        history = fit(model, data, test, args.epochs, args.batch_size, args.lr, args.seed,
                      progress=not args.no_progress, cuda_graph=args.cuda_graph)
    except (DataError, TrainingDiverged, CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for epoch, (loss, test_loss, seconds) in enumerate(
        zip(history.train_loss, history.test_loss, history.seconds), start=1
    ):
        print(f"====> Epoch: {epoch} Average loss: {loss:.4f}  "
              f"(test -ELBO {test_loss:.4f}, {seconds:.2f} s)")
    if args.save:
        print(f"saved {save_checkpoint(args.save, model, history.as_dict())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
