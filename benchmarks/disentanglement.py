"""The MIG table over beta and seeds, and the KL decomposition, on the procedural shapes.

    python benchmarks/disentanglement.py --epochs 20 --record benchmarks/results.json

Trains the MLP VAE of chapter 13 (1024-256-6-256-1024, ReLU, Bernoulli pixels; Adam 1e-3,
batch 128) on 20,000 shapes (``make_shapes(20_000, seed=0)``) for each objective, beta and seed
(the seed sets the initial weights and the batch order; the data stay the same), and measures on
10,000 other draws (``seed=1``): the Mutual Information Gap of the posterior means, the rate
and distortion, and the three terms of the KL (``estimate_kl_decomposition``, batches of
1,000). Chapter 13 prints the table this records under ``disentanglement_<device>``.

Budget: 25 runs (4 betas and the beta-TCVAE, 5 seeds each) of about 35 s of training each at
20 epochs on one CPU thread (the recorded rows say 826 s of training in all), about 15 minutes
with the measurements; ``--seeds 3`` or fewer ``--epochs`` for less. Each run prints its row.
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
    VAE,
    describe_device,
    estimate_kl_decomposition,
    fit,
    fit_beta_tc,
    make_shapes,
    mutual_information_gap,
    rate_and_distortion,
)

RUNS = [("beta-VAE", 1.0), ("beta-VAE", 2.0), ("beta-VAE", 4.0), ("beta-VAE", 8.0),
        ("beta-TCVAE", 4.0)]


def train_one(objective: str, beta: float, seed: int, train, epochs: int) -> VAE:
    torch.manual_seed(seed)
    model = VAE(nx=1024, nh=256, nz=6)
    if objective == "beta-VAE":
        fit(model, train, epochs=epochs, beta=beta, seed=seed, progress=False)
    else:
        fit_beta_tc(model, train, epochs=epochs, beta=beta, batch_size=128, seed=seed)
    return model.eval()


@torch.no_grad()
def measure(model: VAE, test) -> dict:
    mu, _ = model.encode(test.images)
    torch.manual_seed(0)
    rate, distortion = rate_and_distortion(model, test)
    terms = estimate_kl_decomposition(model, test[:5000], batch_size=1000)
    return {"mig": round(mutual_information_gap(mu, test.factors), 4),
            "rate": round(rate, 3), "distortion": round(distortion, 3),
            **{name: round(value, 3) for name, value in terms.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--record", default=None, metavar="JSON")
    args = parser.parse_args()
    train, test = make_shapes(20_000, seed=0), make_shapes(10_000, seed=1)
    rows = []
    for objective, beta in RUNS:
        for seed in range(args.seeds):
            start = time.perf_counter()
            model = train_one(objective, beta, seed, train, args.epochs)
            seconds = time.perf_counter() - start
            row = {"objective": objective, "beta": beta, "seed": seed,
                   "training_seconds": round(seconds, 1), **measure(model, test)}
            rows.append(row)
            print(row, flush=True)
    figures = {"date": datetime.date.today().isoformat(), "device": describe_device(),
               "torch": torch.__version__, "epochs": args.epochs, "train_images": len(train),
               "test_images": len(test), "model": "VAE(nx=1024, nh=256, nz=6)", "rows": rows}
    if args.record:
        record(Path(args.record), "disentanglement_cpu", figures)


if __name__ == "__main__":
    main()
