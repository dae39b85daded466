"""A long run of the original tutorial's model and recipe: how many epochs and seconds to a target.

    python benchmarks/long_run.py --target 138 --max-epochs 200 --record benchmarks/results.json

Trains ``VAE()`` (784-512-2-512-784) with Adam(lr=1e-3) and batch 128 on the full training set,
measures the test negative ELBO after every epoch, and stops at the first epoch that reaches
``--target`` nats (or after ``--max-epochs``). The training recipe is the tutorial's; only the
number of epochs grows. ``seconds`` is the whole run's wall time (test evaluations included);
``training_seconds`` counts the training epochs alone.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import record  # noqa: E402

from vae_helpers import VAE, best_device, describe_device, fit, load_mnist  # noqa: E402
from vae_helpers.training import DEFAULT_SEED  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default=best_device().type)
    parser.add_argument("--target", type=float, default=138.0, help="test -ELBO to reach")
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cuda-graph", action="store_true",
                        help="replay each epoch as a recorded CUDA graph (GPU only)")
    parser.add_argument("--record", default=None, metavar="JSON")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    train = load_mnist("train", args.data_dir, device)
    test = load_mnist("test", args.data_dir, device)
    torch.manual_seed(DEFAULT_SEED)
    model = VAE().to(device)
    start = time.perf_counter()
    history = fit(model, train, test, epochs=args.max_epochs, cuda_graph=args.cuda_graph,
                  stop_when=lambda h: h.test_loss[-1] <= args.target)
    seconds = time.perf_counter() - start
    test_losses = [round(loss, 3) for loss in history.test_loss]
    reached = test_losses[-1] <= args.target
    print(f"{'reached' if reached else 'did not reach'} test -ELBO {args.target} "
          f"after {len(test_losses)} epochs in {seconds:.1f} s on {describe_device(device)}; "
          f"best {min(test_losses):.2f}")
    figures = {"device": describe_device(device), "torch": torch.__version__,
               "date": datetime.date.today().isoformat(), "target": args.target,
               "reached": reached, "epochs": len(test_losses), "seconds": round(seconds, 1),
               "training_seconds": round(sum(history.seconds), 1), "cuda_graph": args.cuda_graph,
               "final_test_loss": test_losses[-1], "best_test_loss": min(test_losses),
               "test_loss_per_epoch": test_losses,
               "train_loss_per_epoch": [round(loss, 3) for loss in history.train_loss]}
    if args.record:
        record(Path(args.record), "long_run_" + device.type, figures)
    return figures


if __name__ == "__main__":
    main()
