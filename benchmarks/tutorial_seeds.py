"""The original tutorial's table of training losses, reproduced over several seeds.

    python benchmarks/tutorial_seeds.py --record benchmarks/results.json

Trains the tutorial's model (784-512-2-512-784, Bernoulli pixels on gray levels, Adam 1e-3,
batches of 128, the summed loss) for 5 epochs on all 60,000 training images, once per seed
(seeds 0 to 9 by default; `train_model`, so seed 2 is exactly the training chapter's run on the
same device), and records each seed's average training loss and test negative ELBO per epoch,
their mean and sample standard deviation per epoch, and the tutorial's own table beside them.
The training chapter reads these figures instead of training ten models itself.

Budget: 10 seeds x 5 epochs = 50 epochs; about 2 s an epoch alone on a 2-core CPU (2 to 4
minutes in all), seconds on a GPU. Fewer seeds: ``--seeds 5``; on a shared
machine ``--threads 1`` wastes less time waiting.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import record  # noqa: E402

from vae_helpers import DEFAULT_SEED, best_device, describe_device, load_mnist, train_model  # noqa: E402

TUTORIAL_LOSSES = [186.35, 165.49, 161.61, 159.34, 157.57]  # the tutorial's "Average loss"


def summary(per_seed: list[list[float]]) -> dict:
    """Mean and sample standard deviation over seeds, per epoch (rounded to 0.001 nats)."""
    epochs = list(zip(*per_seed))
    return {"mean": [round(statistics.mean(values), 3) for values in epochs],
            "sd": [round(statistics.stdev(values), 3) for values in epochs]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default=best_device().type)
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0, 1, ..., SEEDS - 1")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--record", default=None, metavar="JSON")
    args = parser.parse_args(argv)
    if args.seeds < 3:
        parser.error("--seeds must be at least 3 (a spread needs several runs)")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    train = load_mnist("train", args.data_dir, device)
    test = load_mnist("test", args.data_dir, device)
    seeds, train_losses, test_losses = list(range(args.seeds)), [], []
    start = time.perf_counter()
    for seed in seeds:
        _, history = train_model(
            train, test, epochs=args.epochs, seed=seed, progress=False,
            on_epoch=lambda h, seed=seed: print(
                f"  seed {seed}, epoch {len(h.train_loss)}: train {h.train_loss[-1]:.2f}, "
                f"test {h.test_loss[-1]:.2f}, {h.seconds[-1]:.1f} s", flush=True))
        train_losses.append([round(value, 3) for value in history.train_loss])
        test_losses.append([round(value, 3) for value in history.test_loss])
        print(f"seed {seed}: train {train_losses[-1]}, test {test_losses[-1]}, "
              f"{sum(history.seconds):.1f} s", flush=True)
    figures = {
        "device": describe_device(device), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "date": datetime.date.today().isoformat(),
        "epochs": args.epochs, "seeds": seeds, "default_seed": DEFAULT_SEED,
        "tutorial_train_loss": TUTORIAL_LOSSES[:args.epochs],
        "train_loss_per_seed": train_losses, "test_loss_per_seed": test_losses,
        "train_loss": summary(train_losses), "test_loss": summary(test_losses),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print("train loss, mean per epoch:", figures["train_loss"]["mean"])
    print("train loss, sd per epoch:  ", figures["train_loss"]["sd"])
    print("tutorial:                  ", figures["tutorial_train_loss"])
    if args.record:
        record(Path(args.record), "tutorial_seeds_" + device.type, figures)
    return figures


if __name__ == "__main__":
    main()
