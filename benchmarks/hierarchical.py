"""The closing tables of chapter 16: hierarchical VAEs on binarized MNIST, and priors over the
codes of a trained VAE (a latent diffusion model beside N(0, I) and a learned mixture).

    python benchmarks/hierarchical.py --record benchmarks/results.json

* hierarchy: for each seed, on ``--train-images`` training images binarized afresh for every
  batch, ``--epochs`` epochs each (Adam 1e-3, batch 128): a one-stochastic-layer VAE with
  Burda et al.'s one-layer architecture (784-200-200-50, ReLU: ``DeepVAE(nh=200, nz=50,
  depth=2)``), and the two-stochastic-layer ``TwoLayerVAE`` (bottom-up inference) and
  ``LadderVAE`` (top-down inference) of Burda et al.'s two-layer architecture (784-200-200-100
  and 100-100-100-50, ReLU), each without and with a linear KL warm-up over
  ``--warmup-epochs``. Scored on the first ``--test-images`` test images binarized once
  (seed 0): L_1 (the ELBO, one draw) and L_k (``--k``), the KL term of each layer and the
  active units of each layer (Burda et al.'s measure, variance of the posterior mean > 0.01).
* priors: for each seed, a VAE(nh=256, nz=16) trained on binarized images (``--vae-epochs``),
  then three priors over its codes: N(0, I), what it was trained with; a mixture of 20
  Gaussians and a DDPM (T = 100, an MLP of 128 units) fitted afterwards to draws from its
  encoder, ``--prior-epochs`` passes each. On the codes of 2,000 test images (one draw of
  q(z | x) each, not seen in fitting): log p(z) under each prior (the DDPM's ELBO, a lower
  bound), and for 1,000 codes drawn from each prior, the log-density of the aggregate posterior
  of the first 1,000 test images there (higher: the draws land where images are encoded).

Budget (one thread; CPU time, which is what an idle 2-core CPU would take): hierarchy about
12 s of training and 19 s of scoring per model, so 2.6 minutes per seed for its five models;
priors about 33 s per seed; 9.5 minutes for all of it at the defaults. On the book's shared
machine (load 13-20 on 2 cores) the wall time was 15-20 times longer: each seed of the hierarchy
took about 50 minutes, so the three seeds ran as three processes side by side (``--seeds 0``,
``--seeds 1``, ``--seeds 2``; each records only its own rows, keeping the others'), and the
priors' three seeds 30 minutes. The command prints both times for each model. ``--parts`` and
``--seeds`` choose what to compute; rows of other parts and other seeds recorded with the same
settings are kept. Pass ``--device cuda --epochs 50`` for the long version on a GPU (recorded as
``hierarchical_cuda``; the chapter reads ``hierarchical_cpu``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import record  # noqa: E402

from vae_helpers import (  # noqa: E402
    VAE,
    DeepVAE,
    MixturePrior,
    active_units,
    aggregate_log_density,
    describe_device,
    fit,
    iw_log_likelihood,
    kl_per_dimension,
    load_mnist,
    log_standard_normal,
)
from vae_helpers.hierarchical import (  # noqa: E402
    LadderVAE,
    TwoLayerVAE,
    hierarchical_log_likelihood,
    hierarchical_loss,
    layer_active_units,
    layer_kl_terms,
)
from vae_helpers.latent_diffusion import LatentDiffusion, fit_diffusion  # noqa: E402

KEY = "hierarchical_"  # + the device type: hierarchical_cpu, hierarchical_cuda
MODELS = {
    "one layer": (lambda: DeepVAE(nh=200, nz=50, depth=2), "784-200-200-50"),
    "two layers, bottom-up": (lambda: TwoLayerVAE(), "784-200-200-100, 100-100-100-50"),
    "two layers, top-down (ladder)": (lambda: LadderVAE(), "784-200-200-100, 100-100-100-50"),
}


def _cpu_seconds(start: tuple[float, float]) -> dict:
    return {"cpu_seconds": round(time.process_time() - start[0], 1),
            "wall_seconds": round(time.perf_counter() - start[1], 1)}


def _now() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


def hierarchy_rows(train, test, args, seed: int, device) -> list[dict]:
    rows = []
    for name, (build, architecture) in MODELS.items():
        for warmup in ((0.0,) if name == "one layer" else (0.0, args.warmup_epochs)):
            torch.manual_seed(seed)
            model = build().to(device)
            start = _now()
            loss = None if name == "one layer" else hierarchical_loss
            fit(model, train, epochs=args.epochs, progress=False, pixels="binarized",
                warmup_epochs=warmup, loss=loss, seed=seed)
            row = {"model": name, "architecture": architecture, "seed": seed,
                   "warmup_epochs": warmup, "training": _cpu_seconds(start)}
            start = _now()
            torch.manual_seed(0)
            if name == "one layer":
                row["L_1"] = iw_log_likelihood(model, test, 1)
                row[f"L_{args.k}"] = iw_log_likelihood(model, test, args.k,
                                                       max_samples=50_000)
                row["kl_per_layer"] = [float(kl_per_dimension(model, test).sum())]
                row["active_units"] = [active_units(model, test)]
            else:
                row["L_1"] = hierarchical_log_likelihood(model, test, 1)
                row[f"L_{args.k}"] = hierarchical_log_likelihood(model, test, args.k,
                                                                 max_samples=50_000)
                row["kl_per_layer"] = [round(float(v), 3) for v in layer_kl_terms(model, test)]
                row["active_units"] = list(layer_active_units(model, test))
            row["L_1"], row[f"L_{args.k}"] = (round(row["L_1"], 3),
                                              round(row[f"L_{args.k}"], 3))
            row["scoring"] = _cpu_seconds(start)
            print(row, flush=True)
            rows.append(row)
    return rows


def prior_rows(train, test, args, seed: int, device) -> list[dict]:
    torch.manual_seed(seed)
    vae = VAE(nh=256, nz=16).to(device)
    start = _now()
    fit(vae, train, epochs=args.vae_epochs, progress=False, pixels="binarized", seed=seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        mu, log_var = vae.encode(train.drawn("binarized", seed).images)
        test_mu, test_log_var = vae.encode(test.images)
        held_out = test_mu + torch.exp(0.5 * test_log_var) * torch.randn(
            test_mu.shape, generator=generator, device=device)
    torch.manual_seed(seed)
    diffusion = LatentDiffusion(16, steps=100, nh=128).to(device)
    fit_diffusion(diffusion, mu, log_var, epochs=args.prior_epochs, seed=seed)
    torch.manual_seed(seed)
    mixture = MixturePrior(16, 20).to(device)
    adam = torch.optim.Adam(mixture.parameters(), lr=3e-2)
    for _ in range(args.prior_epochs):
        codes = mu + torch.exp(0.5 * log_var) * torch.randn(mu.shape, generator=generator,
                                                            device=device)
        for indices in torch.randperm(len(codes), generator=generator,
                                      device=device).split(500):
            loss = -mixture.log_prob(codes[indices]).mean()
            adam.zero_grad()
            loss.backward()
            adam.step()
    training = _cpu_seconds(start)
    start = _now()
    reference_mu, reference_log_var = test_mu[:1000], test_log_var[:1000]
    with torch.no_grad():
        log_p = {"standard normal": log_standard_normal(held_out),
                 "mixture of 20": mixture.log_prob(held_out),
                 "diffusion (ELBO)": diffusion.elbo(held_out, generator)}
        draws = {"standard normal": torch.randn(1000, 16, generator=generator, device=device),
                 "mixture of 20": mixture.sample(1000, generator=generator),
                 "diffusion (ELBO)": diffusion.sample(1000, generator=generator)}
        landing = {name: aggregate_log_density(z, reference_mu, reference_log_var)
                   for name, z in draws.items()}
        own = aggregate_log_density(held_out[1000:], reference_mu, reference_log_var)
    row = {"seed": seed, "vae_test_elbo": round(iw_log_likelihood(vae, test, 1), 3),
           "held_out_code_log_p": {n: round(float(v.mean()), 3) for n, v in log_p.items()},
           "draws_log_q_aggregate": {n: round(float(v.mean()), 3)
                                     for n, v in landing.items()},
           "test_codes_log_q_aggregate": round(float(own.mean()), 3),
           "training": training, "scoring": _cpu_seconds(start)}
    print(row, flush=True)
    return [row]


def summary(rows: list[dict], group: tuple[str, ...], values: list[str]) -> list[dict]:
    """Mean and standard deviation over seeds of each value, per group of rows."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(str(row[g]) for g in group), []).append(row)
    result = []
    for key, members in groups.items():
        entry = dict(zip(group, key), seeds=len(members))
        for value in values:
            numbers = [m[value] for m in members if value in m]
            if numbers and isinstance(numbers[0], list):
                numbers = list(zip(*numbers))
                entry[value] = [[round(statistics.mean(n), 3),
                                 round(statistics.stdev(n), 3) if len(n) > 1 else None]
                                for n in numbers]
            elif numbers:
                entry[value] = [round(statistics.mean(numbers), 3),
                                round(statistics.stdev(numbers), 3) if len(numbers) > 1
                                else None]
        result.append(entry)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--parts", default="hierarchy,priors")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--train-images", type=int, default=60_000)
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the hierarchy models")
    parser.add_argument("--warmup-epochs", type=float, default=1.0)
    parser.add_argument("--test-images", type=int, default=500)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--vae-epochs", type=int, default=3)
    parser.add_argument("--prior-epochs", type=int, default=20)
    parser.add_argument("--record", default=None, metavar="JSON")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    train = load_mnist("train", device=device, subset=args.train_images)
    full_test = load_mnist("test", device=device).drawn("binarized")
    command = "python benchmarks/hierarchical.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    computed = {}
    for part in args.parts.split(","):
        if part == "hierarchy":
            settings = {"train_images": len(train), "epochs": args.epochs,
                        "warmup_epochs": args.warmup_epochs, "test_images": args.test_images,
                        "k": args.k, "batch_size": 128, "lr": 1e-3, "pixels": "binarized"}
            test = full_test[:args.test_images]
            rows = [row for seed in seeds
                    for row in hierarchy_rows(train, test, args, seed, device)]
        elif part == "priors":
            settings = {"train_images": len(train), "vae_epochs": args.vae_epochs,
                        "prior_epochs": args.prior_epochs, "test_images": 2000,
                        "vae": "VAE(nh=256, nz=16)", "diffusion": "T = 100, MLP 128",
                        "mixture": 20}
            rows = [row for seed in seeds
                    for row in prior_rows(train, full_test[:2000], args, seed, device)]
        else:
            raise SystemExit(f"unknown part {part!r}: choose from hierarchy, priors")
        computed[part] = (settings, rows)
    figures = {}
    if args.record and Path(args.record).is_file():  # read only now: seeds may run in parallel
        figures = json.loads(Path(args.record).read_text()).get(KEY + device.type, {})
    for part, (settings, rows) in computed.items():
        earlier = figures.get(part, {})
        same = earlier.get("settings") == settings
        kept = [row for row in earlier.get("rows", []) if row["seed"] not in seeds] if same else []
        rows = sorted(kept + rows, key=lambda row: row["seed"])
        if part == "hierarchy":
            k = settings["k"]
            table = summary(rows, ("model", "warmup_epochs"),
                            ["L_1", f"L_{k}", "kl_per_layer", "active_units"])
        else:
            table = summary(rows, (), ["vae_test_elbo", "test_codes_log_q_aggregate"])
            for name in ("held_out_code_log_p", "draws_log_q_aggregate"):
                flat = [{"seed": r["seed"], **r[name]} for r in rows]
                table[0][name] = summary(flat, (), list(rows[0][name]))[0]
        figures[part] = {"settings": settings, "rows": rows, "summary": table,
                         "device": describe_device(device), "torch": torch.__version__,
                         "date": datetime.date.today().isoformat(),
                         "commands": (earlier.get("commands", []) if kept else []) + [command]}
        print(json.dumps(table), flush=True)
    if args.record:
        record(Path(args.record), KEY + device.type, figures)
    return figures


if __name__ == "__main__":
    main()
