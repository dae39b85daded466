"""Annealed importance sampling beside importance sampling on a 20-D VAE, with the BDMC bracket.

    python benchmarks/ais.py --record benchmarks/results.json

Chapter 7 checks AIS against the exact grid integral on its 2-D model; with a 20-D code there
is no grid, so this script compares AIS (``vae_helpers.ais_log_likelihood``, encoder start,
sigmoid schedule, HMC with two leapfrog steps) with the importance-weighted bounds L_k on the
same binarized test images, and measures both estimators' cost and spread per image:

* the model: ``VAE(nz=20)`` trained ``--epochs`` epochs on binarized MNIST (the book's recipe;
  loaded from ``--checkpoint`` when it is there);
* L_k for k = 1, 100, 1000 and AIS with each of ``--steps`` intermediate distributions and
  ``--chains`` chains, on the first ``--images`` test images, binarized with seed 0, for each of
  ``--seeds`` seeds: mean over images, sd over seeds, seconds per image (one thread), and for
  AIS the sd of one image's estimate over seeds (averaged over images);
* BDMC: ``--bdmc-images`` images simulated from the model, whose codes are exact posterior
  samples; the forward chain's mean estimate (below log p(x) in expectation) and the reverse
  chain's (above it), for each of ``--steps``, so the true average is bracketed.

Both AIS chains adapt their step size (Wu et al., 2017), so the bounds hold up to that small
adaptation effect. Budget (one thread; defaults: 2 epochs, 16 images, 8 chains, paths of 100
and 500 steps, 3 seeds): about 10 minutes on a busy shared 2-core CPU, most of it the 500-step
paths; ``--images 1000 --chains 16 --steps 100 1000 5000`` is a GPU-sized run.
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

from vae_helpers import (  # noqa: E402
    MNIST,
    ais_log_likelihood,
    bdmc,
    best_device,
    describe_device,
    iw_log_likelihood,
    load_mnist,
    load_or_train,
    simulate_data,
)


def timed(function, *args, **options):
    """(result, seconds) of ``function(*args, **options)``."""
    start = time.perf_counter()
    result = function(*args, **options)
    return result, time.perf_counter() - start


def summary(values: list[float], seconds: list[float], images: int) -> dict:
    """Mean over seeds of the per-seed averages, their sd, and seconds per image."""
    return {"mean": round(statistics.mean(values), 3),
            "sd": round(statistics.stdev(values), 3) if len(values) > 1 else None,
            "per_seed": [round(value, 3) for value in values],
            "seconds_per_image": round(statistics.mean(seconds) / images, 4)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default=best_device().type)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--checkpoint", default="checkpoints/vae_binarized_nz20.pt")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--chains", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--bdmc-images", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--record", default=None, metavar="JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    train = load_mnist("train", args.data_dir, device)
    test = load_mnist("test", args.data_dir, device)
    print(f"model: VAE(nz=20), {args.epochs} epochs on binarized images", flush=True)
    model, history = load_or_train(args.checkpoint, train, epochs=args.epochs, nz=20,
                                   pixels="binarized", progress=False)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    data = test[:args.images].drawn("binarized", seed=0)

    estimators = {}
    for k in (1, 100, 1000):
        values, seconds = [], []
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            value, second = timed(iw_log_likelihood, model, data, k)
            values.append(value)
            seconds.append(second)
        estimators[f"L_{k}"] = summary(values, seconds, args.images)
        print(f"L_{k:<5d} {estimators[f'L_{k}']}", flush=True)
    for steps in args.steps:
        values, seconds, per_image = [], [], []
        for seed in range(args.seeds):
            generator = torch.Generator(device=device).manual_seed(seed)
            result, second = timed(ais_log_likelihood, model, data.images, steps,
                                   args.chains, generator=generator)
            values.append(result.estimate.mean().item())
            per_image.append(result.estimate)
            seconds.append(second)
        estimators[f"AIS_{steps}"] = summary(values, seconds, args.images)
        if args.seeds > 1:  # the spread of one image's estimate over seeds, averaged
            spread = torch.stack(per_image).std(0).mean().item()
            estimators[f"AIS_{steps}"]["sd_per_image"] = round(spread, 3)
        print(f"AIS {steps} steps x {args.chains} chains: {estimators[f'AIS_{steps}']}",
              flush=True)

    generator = torch.Generator(device=device).manual_seed(0)
    simulated, codes = simulate_data(model, args.bdmc_images, generator)
    brackets = {}
    for steps in args.steps:
        (lower, upper), second = timed(bdmc, model, simulated, codes, steps, args.chains,
                                       generator=generator)
        brackets[str(steps)] = {"lower": round(lower.mean().item(), 3),
                                "upper": round(upper.mean().item(), 3),
                                "seconds_per_image": round(second / args.bdmc_images, 4)}
        print(f"BDMC {steps} steps: {brackets[str(steps)]}", flush=True)
    torch.manual_seed(0)
    simulated_l1000 = iw_log_likelihood(model, MNIST(simulated, torch.zeros(
        len(simulated), dtype=torch.long, device=device)), 1000)
    figures = {
        "device": describe_device(device), "torch": torch.__version__,
        "date": datetime.date.today().isoformat(), "epochs": args.epochs,
        "test_images": args.images, "chains": args.chains, "steps": args.steps,
        "seeds": args.seeds, "estimators": estimators,
        "bdmc": {"images": args.bdmc_images, "L_1000": round(simulated_l1000, 3),
                 "brackets": brackets},
    }
    print(f"BDMC images: L_1000 = {simulated_l1000:.3f}", flush=True)
    if args.record:
        record(Path(args.record), f"ais_{device.type}", figures)
    return figures


if __name__ == "__main__":
    main()
