"""Test log-likelihoods on binarized MNIST, for comparison with published numbers.

    python benchmarks/likelihoods.py --record benchmarks/results.json

Trains the book's MLP (784-512-nz-512-784, ReLU, Bernoulli pixels) with the original tutorial's
recipe (Adam 1e-3, batch 128) on dynamically binarized training images, for each (nz, epochs)
row, and estimates the test log-likelihood on the test set binarized once (seed 0): the ELBO,
the importance-weighted bounds L_k, and, for nz = 2, log p(x) by summing over a grid of codes
(which replaces L_1000 there).
The likelihood chapter prints these rows beside the published ones.
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

from vae_helpers import (  # noqa: E402
    best_device,
    describe_device,
    grid_log_likelihood,
    iw_log_likelihood,
    load_mnist,
    mean_negative_elbo,
    train_model,
)

ROWS = ((2, 5), (2, 50), (20, 50))
KS = (1, 100, 1000)


def evaluate(model, test, ks=KS) -> dict:
    """ELBO and L_k (nats per image) on ``test``; for a 2-D model, log p(x) itself by the grid
    integral instead of the costly L_1000 (it is what L_k tends to)."""
    torch.manual_seed(0)
    figures = {"elbo": round(-mean_negative_elbo(model, test), 3)}
    for k in ks:
        if k > 100 and model.nz == 2:
            continue
        figures[f"L_{k}"] = round(iw_log_likelihood(model, test, k, max_samples=200_000), 3)
    if model.nz == 2:
        figures["grid_log_px"] = round(float(grid_log_likelihood(model, test).mean()), 3)
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default=best_device().type)
    parser.add_argument("--rows", default=",".join(f"{nz}x{e}" for nz, e in ROWS),
                        help="comma-separated NZxEPOCHS, e.g. 2x5,20x50")
    parser.add_argument("--test-images", type=int, default=10_000)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--record", default=None, metavar="JSON")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    train = load_mnist("train", args.data_dir, device)
    test = load_mnist("test", args.data_dir, device)[:args.test_images].drawn("binarized")
    rows = []
    for spec in args.rows.split(","):
        nz, epochs = (int(value) for value in spec.split("x"))
        start = time.perf_counter()
        model, history = train_model(train, epochs=epochs, nz=nz, pixels="binarized",
                                     progress=False)
        row = {"nz": nz, "nh": 512, "epochs": epochs,
               "training_seconds": round(time.perf_counter() - start, 1), **evaluate(model, test)}
        print(row, flush=True)
        rows.append(row)
    figures = {"device": describe_device(device), "torch": torch.__version__,
               "date": datetime.date.today().isoformat(), "test_images": len(test),
               "test_binarization_seed": 0, "rows": rows}
    if args.record:
        record(Path(args.record), "likelihood_binarized_" + device.type, figures)
    return figures


if __name__ == "__main__":
    main()
