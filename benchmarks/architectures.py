"""Chapter 10's four architectures over seeds: test -ELBO after each epoch, and seconds per epoch.

    python benchmarks/architectures.py --record benchmarks/results.json

The models of chapter 10, on the first 20,000 MNIST training images (gray levels, Bernoulli
pixels, Adam 1e-3, batches of 128, a two-dimensional code), scored on the 10,000 test images
after every epoch (the plain -ELBO, one draw of z per image):

- ``MLP``: the tutorial's ``VAE()``, one hidden layer of 512 in each network;
- ``wide MLP``: one hidden layer, widened to the convolutional model's parameter count;
- ``deep MLP``: ``DeepVAE``, three hidden layers in each network as the convolutional model
  has stages (the decoder's output layer makes its fourth), width chosen for that same count;
- ``conv``: ``ConvVAE()``.

Each seed (``--seeds``, default 5: it sets the initial weights, the batch order and the Gaussian
draws; the data stay the same) trains every model for ``--epochs`` (2, the chapter's budget);
the tutorial's MLP goes on to ``--mlp-epochs`` (12), so that its test -ELBO can be read after as
many epochs as fit in the time the convolutional model needs for its two. The models of one
seed are trained one after another, so that a change in the machine's speed hits them alike;
timings are wall-clock seconds per epoch with ``--threads`` CPU threads (1 by default, which
makes them steadier on a shared machine), and a busy machine makes them noisy: read their
ratios, not their values. Chapter 10 prints the table recorded under ``architectures_<device>``.

Budget: 32 minutes for 5 seeds on one thread of a 2-core CPU shared with other jobs (load about
15); much less on an idle machine. ``--seeds 3`` takes three fifths of that.
"""

from __future__ import annotations

import argparse
import datetime
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import record  # noqa: E402

from vae_helpers import (  # noqa: E402
    VAE,
    ConvVAE,
    DeepVAE,
    best_device,
    count_parameters,
    describe_device,
    fit,
    load_mnist,
)


def matched_widths() -> dict[str, int]:
    """Hidden widths that give the one-layer and the three-layer MLP the convolutional model's
    number of parameters: 1576 h + 788 and 4 h^2 + 1580 h + 788 (chapter 10)."""
    target = count_parameters(ConvVAE())
    wide = round((target - 788) / 1576)
    deep = round((-1580 + math.sqrt(1580 ** 2 + 16 * (target - 788))) / 8)
    return {"wide": wide, "deep": deep}


def builders() -> dict:
    widths = matched_widths()
    return {"MLP": VAE, "wide MLP": lambda: VAE(nh=widths["wide"]),
            "deep MLP": lambda: DeepVAE(nh=widths["deep"], depth=3), "conv": ConvVAE}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default=best_device().type)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--mlp-epochs", type=int, default=12)
    parser.add_argument("--train-images", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--record", default=None, metavar="JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    train = load_mnist("train", device=device, subset=args.train_images)
    test = load_mnist("test", device=device)
    print(f"device: {describe_device(device)}; torch {torch.__version__}; {args.seeds} seeds, "
          f"{args.epochs} epochs (MLP: {args.mlp_epochs}) on {len(train):,} images", flush=True)
    models = builders()
    rows = []
    for seed in range(args.seeds):
        for name, build in models.items():
            torch.manual_seed(seed)
            model = build()
            epochs = args.mlp_epochs if name == "MLP" else args.epochs
            start = time.perf_counter()
            history = fit(model, train, test, epochs=epochs, seed=seed, progress=False)
            rows.append({"model": name, "seed": seed, "parameters": count_parameters(model),
                         "test_loss": [round(v, 3) for v in history.test_loss],
                         "seconds": [round(s, 3) for s in history.seconds]})
            print(f"seed {seed} {name:9s} {count_parameters(model):>9,d} parameters: test -ELBO "
                  f"after {args.epochs} epochs {history.test_loss[args.epochs - 1]:.2f}, "
                  f"{statistics.median(history.seconds):.2f} s/epoch "
                  f"({time.perf_counter() - start:.0f} s with testing)", flush=True)
    figures = {"date": datetime.date.today().isoformat(), "device": describe_device(device),
               "torch": torch.__version__, "threads": args.threads, "epochs": args.epochs,
               "mlp_epochs": args.mlp_epochs, "train_images": len(train),
               "test_images": len(test), "widths": matched_widths(), "rows": rows}
    for name in models:
        finals = [row["test_loss"][args.epochs - 1] for row in rows if row["model"] == name]
        spread = statistics.stdev(finals) if len(finals) > 1 else 0.0
        print(f"{name:9s} test -ELBO after {args.epochs} epochs: "
              f"{statistics.mean(finals):.2f} ± {spread:.2f}", flush=True)
    if args.record:
        record(Path(args.record), f"architectures_{device.type}", figures)
    return figures


if __name__ == "__main__":
    main()
