"""Chapter 14's VQ-VAE over seeds: code use, reconstruction and the priors fitted afterwards.

    python benchmarks/discrete_latents.py --record benchmarks/results.json

Trains chapter 14's VQ-VAE (``VQVAE(codes=64, dim=16)``, ``fit_vqvae``: Adam 2e-3, batch 128,
commitment 0.25) for 2 epochs on the first 20,000 MNIST training images, once per seed (the
seed sets the initial weights, the first codes and the batch order) and codebook start: the
chapter's ("data": the codebook set to encoder outputs before the first step) and the
quantizer's default small uniform vectors ("uniform": ``initialize=False``). On the 10,000 test
images it measures the reconstruction term (Bernoulli cross-entropy, nats per image), the codes
in use, the perplexity and the share of grid positions taken by the most used code, and the
nats per test grid of three priors over the code grids: uniform (49 log 64), independent
positions, and each code given its left neighbor (both fitted on the grids of 10,000 training
images with counts smoothed by 1e-3, as in the chapter and its exercise 4). Chapter 14 prints
the table this records under ``discrete_latents_<device>``.

Budget: 10 runs (5 seeds x 2 starts) of about 10 s each alone on a 2-core CPU, a few minutes in
all; ``--seeds 3`` for less.
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import record  # noqa: E402

from vae_helpers import (  # noqa: E402
    VQVAE,
    best_device,
    codebook_perplexity,
    describe_device,
    fit_vqvae,
    load_mnist,
)

CODES, SMOOTHING = 64, 1e-3


def code_grids(model: VQVAE, images: torch.Tensor) -> torch.Tensor:
    """The (N, 7, 7) grid of code indices of each image (the encoder and the nearest code)."""
    with torch.no_grad():
        return torch.cat([model.quantizer.nearest(model.encode(x)) for x in images.split(2000)])


def prior_nats(train_codes: torch.Tensor, test_codes: torch.Tensor) -> dict:
    """Nats per test grid under the independent and the left-neighbor priors fitted on
    ``train_codes`` (the chapter's cell and its exercise 4, written for any device)."""
    device = train_codes.device
    frequencies = F.one_hot(train_codes, CODES).double().mean(0) + SMOOTHING  # (7, 7, K)
    log_p = (frequencies / frequencies.sum(-1, keepdim=True)).log()
    row = torch.arange(7, device=device)[:, None]
    column = torch.arange(7, device=device)[None, :]
    independent = -log_p[row, column, test_codes].sum((1, 2)).mean()
    left, right = train_codes[:, :, :-1], train_codes[:, :, 1:]
    i = torch.arange(7, device=device)[None, :, None].expand_as(left)
    j = torch.arange(6, device=device)[None, None, :].expand_as(left)
    counts = torch.zeros(7, 6, CODES, CODES, dtype=torch.float64, device=device).index_put_(
        (i, j, left, right), torch.ones(left.shape, dtype=torch.float64, device=device),
        accumulate=True) + SMOOTHING
    log_transition = (counts / counts.sum(-1, keepdim=True)).log()
    first_column = log_p[:, 0][torch.arange(7, device=device), test_codes[:, :, 0]]
    chained = log_transition[i[:1], j[:1], test_codes[:, :, :-1], test_codes[:, :, 1:]]
    left_neighbor = -(first_column.sum(1) + chained.sum((1, 2))).mean()
    return {"uniform_nats": round(49 * math.log(CODES), 3),
            "independent_nats": round(float(independent), 3),
            "left_neighbor_nats": round(float(left_neighbor), 3)}


@torch.no_grad()
def measure(model: VQVAE, train, test) -> dict:
    logits, indices, *_ = model(test.images)
    reconstruction = F.binary_cross_entropy_with_logits(logits, test.images, reduction="sum")
    counts = torch.bincount(indices.reshape(-1), minlength=CODES)
    return {"reconstruction": round(float(reconstruction) / len(test), 3),
            "codes_used": int((counts > 0).sum()),
            "perplexity": round(codebook_perplexity(indices, CODES), 3),
            "top_code_share": round(float(counts.max()) / indices.numel(), 4),
            **prior_nats(code_grids(model, train.images[:10_000]), indices)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--record", default=None, metavar="JSON")
    args = parser.parse_args()
    device = best_device()
    train = load_mnist("train", device=device, subset=20_000)
    test = load_mnist("test", device=device)
    rows = []
    for start_codes in ("data", "uniform"):
        for seed in range(args.seeds):
            started = time.perf_counter()
            torch.manual_seed(seed)
            model = VQVAE(codes=CODES, dim=16)
            losses = fit_vqvae(model, train, epochs=args.epochs, seed=seed,
                               initialize=start_codes == "data")
            row = {"codebook_start": start_codes, "seed": seed,
                   "training_seconds": round(time.perf_counter() - started, 1),
                   "final_training_loss": round(losses[-1], 3), **measure(model, train, test)}
            rows.append(row)
            print(row, flush=True)
    figures = {"date": datetime.date.today().isoformat(), "device": describe_device(),
               "torch": torch.__version__, "epochs": args.epochs, "train_images": len(train),
               "test_images": len(test), "model": "VQVAE(codes=64, dim=16)", "rows": rows}
    if args.record:
        record(Path(args.record), f"discrete_latents_{device.type}", figures)


if __name__ == "__main__":
    main()
