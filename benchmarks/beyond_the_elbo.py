"""The closing tables of the chapters on posterior collapse and on tighter bounds and priors.

    python benchmarks/beyond_the_elbo.py --record benchmarks/results.json

The same experiments as the chapters, with more data and epochs (the chapters keep to a minute):

* collapse: the autoregressive VAE (nz = 16) at beta = 1, plain and with each remedy (free
  bits, linear and cyclical KL annealing, delta-VAE), same epochs each; test -ELBO, rate, active
  units, dimensions above 0.1 nats and the information I_q(x; z) (estimated on the first 2,000
  test images, as in chapter 11; gray levels, the Bernoulli cross-entropy); then the free-bits
  model continued on the plain ELBO for ``--continue-epochs`` epochs (does its rate drain?);
* iwae: the MLP VAE trained with L_k for k = 1, 5, 50 at equal epochs on binarized images, for
  each of ``--seeds`` seeds; test L_1, L_k, L_5000 (on the first ``--big-k-images`` test
  images), active units (on all), seconds per epoch; the gradient signal-to-noise ratio of the
  encoder and the decoder of the first seed's k = 1 model as k grows;
* priors: a 2-D VAE with the standard normal prior and with a learned mixture of 10 Gaussians,
  the same objective (L_1) and recipe (Adam 3e-3, the prior's parameters 3e-2), for each of
  ``--seeds`` seeds; test L_1 and L_500, and the share of prior draws that land in holes of the
  aggregate posterior (where its density is below a tenth of the prior's).

Budget (one thread, an idle 2-core CPU): collapse about 3 minutes; iwae about 6 minutes per
seed (most of it the k = 50 model and L_5000); priors about 1.5 minutes per seed. ``--parts``
runs some tables and keeps the others' recorded values, so the parts can be run one at a time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import record  # noqa: E402

from vae_helpers import (  # noqa: E402
    DEFAULT_SEED,
    VAE,
    AutoregressiveVAE,
    MixturePrior,
    StandardNormalPrior,
    active_units,
    aggregate_log_density,
    cyclical_kl_weight,
    fit,
    free_bits_loss,
    gradient_snr,
    iw_log_likelihood,
    iwae_loss,
    kl_per_dimension,
    load_mnist,
    rate_and_distortion,
)

KEY = "beyond_the_elbo_cpu"


@torch.no_grad()
def information(model, images: torch.Tensor, chunk: int = 1000) -> float:
    """I_q(x; z) for x uniform over ``images``: one z_n ~ q(z|x_n) each, the mean of
    log q(z_n|x_n) - log q(z_n), with q(z) the average of the posteriors (chapter 11)."""
    mu, log_var = model.encode(images)
    noise = torch.randn(mu.shape, generator=torch.Generator().manual_seed(0))
    z = mu + torch.exp(0.5 * log_var) * noise
    inv_var = torch.exp(-log_var)
    total = 0.0
    for start in range(0, len(z), chunk):
        block = z[start:start + chunk]
        squares = (block.pow(2) @ inv_var.T - 2 * block @ (mu * inv_var).T
                   + (mu.pow(2) * inv_var).sum(1))
        pairs = -0.5 * (squares + log_var.sum(1) + z.shape[1] * math.log(2 * math.pi))
        own = pairs[torch.arange(len(block)), torch.arange(start, start + len(block))]
        total += float((own - torch.logsumexp(pairs, 1) + math.log(len(z))).sum())
    return total / len(z)


def collapse_row(name: str, model, test, history) -> dict:
    torch.manual_seed(0)
    rate, distortion = rate_and_distortion(model, test)
    return {"run": name, "test_neg_elbo": round(rate + distortion, 2), "rate": round(rate, 2),
            "information": round(information(model, test.images[:2000]), 2),
            "active_units": active_units(model, test),
            "dims_above_0.1_nats": int((kl_per_dimension(model, test) > 0.1).sum()),
            "seconds": round(sum(history.seconds), 1)}


def collapse_table(train, test, epochs: int, continue_epochs: int) -> list[dict]:
    steps = -(-len(train) // 128)
    runs = {"plain ELBO": {}, "free bits (0.5 nats)": {"loss": partial(free_bits_loss, floor=0.5)},
            "linear annealing": {"warmup_epochs": epochs / 2},
            "cyclical annealing (4 cycles)": {
                "beta": lambda step: cyclical_kl_weight(step, steps * epochs // 4)},
            "delta-VAE (0.2 nats)": {"delta": 0.2}}
    rows = []
    for name, options in runs.items():
        options = dict(options)
        delta = options.pop("delta", 0.0)
        torch.manual_seed(0)
        model = AutoregressiveVAE(nh=256, nz=16, delta=delta)
        history = fit(model, train, epochs=epochs, progress=False,
                      optimizer=torch.optim.Adam(model.param_groups()), **options)
        rows.append(collapse_row(name, model, test, history))
        print(rows[-1], flush=True)
        if name.startswith("free bits") and continue_epochs:
            free_bits_model = model
    if continue_epochs:  # the free-bits model, continued on the plain ELBO (a fresh Adam)
        history = fit(free_bits_model, train, epochs=continue_epochs, progress=False,
                      optimizer=torch.optim.Adam(free_bits_model.param_groups()))
        rows.append(collapse_row(f"free bits, then {continue_epochs} epochs of plain ELBO",
                                 free_bits_model, test, history))
        print(rows[-1], flush=True)
    return rows


def iwae_table(train, test, epochs: int, big_k: int, big_k_images: int,
               seeds: range) -> dict:
    rows, models = [], {}
    for seed in seeds:
        for k in (1, 5, 50):
            torch.manual_seed(seed)
            model = VAE(nh=200, nz=50)
            history = fit(model, train, epochs=epochs, progress=False, pixels="binarized",
                          loss=partial(iwae_loss, k=k), seed=DEFAULT_SEED + seed)
            if seed == 0:
                models[k] = model
            torch.manual_seed(0)
            scored = test[:big_k_images]
            row = {"seed": seed, "k": k, "L_1": round(iw_log_likelihood(model, scored, 1), 2),
                   f"L_{k}": round(iw_log_likelihood(model, scored, k), 2),
                   f"L_{big_k}": round(iw_log_likelihood(model, scored, big_k), 2),
                   "active_units": active_units(model, test),
                   "seconds_per_epoch": round(sum(history.seconds) / epochs, 1)}
            rows.append(row)
            print(row, flush=True)
    if 0 not in seeds:  # the first seed's k = 1 model gives the SNR table
        return {"rows": rows, "big_k_test_images": big_k_images}
    torch.manual_seed(0)
    batch = train.drawn("binarized").images[:16]
    snr = []
    for k in (1, 10, 100, 1000):
        torch.manual_seed(0)
        ratio = gradient_snr(models[1], batch, k, repeats=50)
        snr.append({"k": k, "encoder": round(ratio["encoder"], 4),
                    "decoder": round(ratio["decoder"], 4)})
        print(snr[-1], flush=True)
    return {"rows": rows, "gradient_snr_of_k1_model": snr, "big_k_test_images": big_k_images}


def prior_table(train, test, epochs: int, seeds: range) -> list[dict]:
    rows = []
    for seed, name in ((s, n) for s in seeds
                       for n in ("standard normal", "mixture of 10 Gaussians")):
        torch.manual_seed(seed)
        model = VAE(nz=2)
        prior = StandardNormalPrior(2) if name == "standard normal" else MixturePrior(2, 10)
        adam = torch.optim.Adam([{"params": model.parameters()},
                                 {"params": prior.parameters(), "lr": 3e-2}], lr=3e-3)
        fit(model, train, epochs=epochs, progress=False, pixels="binarized", optimizer=adam,
            loss=partial(iwae_loss, k=1, prior=prior), seed=DEFAULT_SEED + seed)
        torch.manual_seed(0)
        with torch.no_grad():
            mu, log_var = model.encode(test.images)
            draws = prior.sample(5000, generator=torch.Generator().manual_seed(0))
            ratio = aggregate_log_density(draws, mu, log_var) - prior.log_prob(draws)
        row = {"seed": seed, "prior": name,
               "L_1": round(iw_log_likelihood(model, test, 1, prior=prior), 2),
               "L_500": round(iw_log_likelihood(model, test[:2000], 500, prior=prior), 2),
               "share_of_prior_draws_in_holes": round(float((ratio < -2.3).float().mean()), 3)}
        rows.append(row)
        print(row, flush=True)
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-images", type=int, default=60_000)
    parser.add_argument("--collapse-epochs", type=int, default=5)
    parser.add_argument("--iwae-train-images", type=int, default=20_000)
    parser.add_argument("--iwae-epochs", type=int, default=5)
    parser.add_argument("--big-k", type=int, default=5000)
    parser.add_argument("--big-k-images", type=int, default=500)
    parser.add_argument("--prior-epochs", type=int, default=10)
    parser.add_argument("--continue-epochs", type=int, default=2,
                        help="epochs of plain ELBO for the free-bits model after its run")
    parser.add_argument("--seeds", type=int, default=3,
                        help="seeds of the iwae and priors tables (the collapse table: one)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="compute seeds from this one on, keeping the recorded rows of the "
                             "earlier seeds (recorded with the same settings): a long table "
                             "can be run a seed at a time")
    parser.add_argument("--parts", default="collapse,iwae,priors",
                        help="which tables to compute (the others keep their recorded values)")
    parser.add_argument("--record", default=None, metavar="JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    gray = load_mnist("train", subset=args.train_images)
    test = load_mnist("test")
    binary_test = test.drawn("binarized")
    parts = args.parts.split(",")
    command = "python benchmarks/beyond_the_elbo.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    figures = {}
    if args.record and Path(args.record).is_file():
        figures = json.loads(Path(args.record).read_text()).get(KEY, {})
    subset = gray[:args.iwae_train_images]
    seeds = range(args.first_seed, args.seeds)
    for part in parts:
        start = time.perf_counter()
        earlier = figures.get(part, {})
        settings = {"iwae": {"train_images": len(subset), "epochs": args.iwae_epochs,
                             "big_k_test_images": args.big_k_images},
                    "priors": {"train_images": len(subset), "epochs": args.prior_epochs},
                    }.get(part, {})
        if args.first_seed > 0 and any(earlier.get(n) != v for n, v in settings.items()):
            raise SystemExit(f"the recorded {part} table has other settings than {settings}: "
                             "run it from --first-seed 0")
        if part == "collapse":
            figures[part] = {"train_images": len(gray), "epochs": args.collapse_epochs,
                             "rows": collapse_table(gray, test, args.collapse_epochs,
                                                   args.continue_epochs)}
        elif part == "iwae":
            table = iwae_table(subset, binary_test, args.iwae_epochs, args.big_k,
                               args.big_k_images, seeds)
            figures[part] = {**settings, "seeds": args.seeds, **table}
        elif part == "priors":
            figures[part] = {**settings, "seeds": args.seeds,
                             "rows": prior_table(subset, binary_test, args.prior_epochs,
                                                 seeds)}
        else:
            raise SystemExit(f"unknown part {part!r}: choose from collapse, iwae, priors")
        seconds, part_command = round(time.perf_counter() - start, 1), command
        if part != "collapse" and args.first_seed > 0:
            kept = [row for row in earlier.get("rows", [])
                    if row.get("seed", 0) < args.first_seed]
            figures[part]["rows"] = kept + figures[part]["rows"]
            for name in ("gradient_snr_of_k1_model",):
                if name in earlier:
                    figures[part][name] = earlier[name]
            part_command = earlier.get("command", "") + " && " + command
            seconds += earlier.get("seconds", 0)
        figures[part].update(command=part_command, date=datetime.date.today().isoformat(),
                             device="cpu (1 thread)", torch=torch.__version__,
                             seconds=seconds)
    if args.record:
        record(Path(args.record), KEY, figures)
    return figures


if __name__ == "__main__":
    main()
